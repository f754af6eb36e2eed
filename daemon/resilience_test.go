package daemon_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/federation"
)

// TestPeerDownThenBack: bob's node is down while alice sends; everything is
// delivered when it returns, in order, once.
func TestPeerDownThenBack(t *testing.T) {
	a, b := startNode(t, fastRetry), startNode(t, fastRetry)
	alice := a.user("alice")
	bob := b.user("bob")
	bobAddr := "bob@" + b.srv.Domain()
	a.send(alice, bobAddr, "before the outage")
	waitMailbox(t, b, bob, 1)

	if err := b.srv.Close(); err != nil {
		t.Fatal(err)
	}
	const n = 30
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, a.send(alice, bobAddr, fmt.Sprintf("during %02d", i)))
	}
	time.Sleep(300 * time.Millisecond) // several failed attempts
	r := a.do("GET", "/api/messages/"+ids[0], alice, nil)
	if r.Body["status"] != "queued" {
		t.Fatalf("while the peer is down the status stays queued: %v", r.Body["status"])
	}
	b.srv = nil
	b.open() // same DATA_DIR and port
	box := waitMailbox(t, b, bob, n+1)
	if len(box) != n+1 {
		t.Fatalf("bob has %d messages, want %d exactly once", len(box), n+1)
	}
	for i := 0; i < n; i++ {
		if want := fmt.Sprintf("during %02d", i); box[i+1]["content"] != want {
			t.Fatalf("message %d is %q, want %q: order per pair must hold", i, box[i+1]["content"], want)
		}
	}
	for _, id := range ids {
		waitStatus(t, a, alice, id, "delivered")
	}
}

// TestKeyRotationHealsByItself: both sides rotate with no overlap at all,
// so each side's cached copy of the other's keys is wrong, and delivery
// still succeeds through the refetch path. A flood of bad signatures then
// makes the receiver fetch the sender's document at most once per interval.
func TestKeyRotationHealsByItself(t *testing.T) {
	a := startNode(t, fastRetry)
	b := startNode(t, fastRetry, func(c *daemon.Config) { c.PeerKeyRefetch = time.Hour })
	alice := a.user("alice")
	bob := b.user("bob")
	bobAddr := "bob@" + b.srv.Domain()
	a.send(alice, bobAddr, "before rotation") // both now cache each other's documents
	waitMailbox(t, b, bob, 1)

	ctx := t.Context()
	if _, err := b.srv.RotateKeys(ctx, "enc", 0); err != nil { // a's cached enc key of b is now dead
		t.Fatal(err)
	}
	if _, err := a.srv.RotateKeys(ctx, "sig", 0); err != nil { // b's cached sig key of a is now dead
		t.Fatal(err)
	}
	id := a.send(alice, bobAddr, "after rotation")
	waitStatus(t, a, alice, id, "delivered")
	box := waitMailbox(t, b, bob, 2)
	if box[1]["content"] != "after rotation" {
		t.Fatalf("got %v", box[1]["content"])
	}

	// Flood: requests signed with unknown keys of a known peer. b may refetch
	// a's document once per PEER_KEY_REFETCH_INTERVAL (an hour here), and it
	// just did for the rotation: so no fetch at all.
	m := newPeer(t)
	m.post(b, marshal(m.envelope(b, "mallory", bobAddr, "x")), time.Now(), nil) // b learns m
	before := b.srv.PeerDocumentFetches()
	for i := 0; i < 50; i++ {
		r := m.post(b, marshal(m.envelope(b, "mallory", bobAddr, "x")), time.Now(), func(r *http.Request) {
			r.Header.Set("Signature", strings.Replace(r.Header.Get("Signature"), m.sigKeyID(), m.domain+"#sig-"+fmt.Sprintf("%032x", i), 1))
		})
		if r.code() != "unknown_key" {
			t.Fatalf("flood request %d: %s", i, r.Raw)
		}
	}
	if got := b.srv.PeerDocumentFetches() - before; got > 1 {
		t.Fatalf("50 bad signatures caused %d document fetches; at most 1 per interval", got)
	}
}

// TestRotationDuringForgeryFlood: a forger flooding requests under a's name
// with unknown keys, from another address, spends the early-refetch budget
// anyone can spend; a's own rotation, seen from the address a's deliveries
// come from, is still picked up at once instead of after the interval.
func TestRotationDuringForgeryFlood(t *testing.T) {
	a := startNode(t, fastRetry)
	b := startNode(t, fastRetry, func(c *daemon.Config) {
		c.TrustedProxies = []string{"127.0.0.1/32"} // so the forger can appear to come from elsewhere
		c.PeerKeyRefetch = time.Hour
	})
	alice, bob := a.user("alice"), b.user("bob")
	bobAddr := "bob@" + b.srv.Domain()
	a.send(alice, bobAddr, "before rotation")
	waitMailbox(t, b, bob, 1)

	m := newPeer(t)
	forge := func(i int) response {
		e := m.envelope(b, "mallory", bobAddr, "forged")
		e.FromNode = a.srv.Domain()
		return m.post(b, marshal(e), time.Now(), func(r *http.Request) {
			r.Header.Set("X-Forwarded-For", "198.51.100.7")
			r.Header.Set("Signature", strings.Replace(r.Header.Get("Signature"), m.sigKeyID(), federation.KeyID(a.srv.Domain(), fmt.Sprintf("sig-%032x", i)), 1))
		})
	}
	before := b.srv.PeerDocumentFetches()
	if r := forge(0); r.code() != "unknown_key" { // spends the budget anyone can spend
		t.Fatalf("forged request: %s", r.Raw)
	}
	stop := make(chan struct{})
	flooded := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				flooded <- n
				return
			default:
			}
			n++
			if r := forge(n); r.code() != "unknown_key" {
				t.Errorf("forged request %d: %s", n, r.Raw)
			}
		}
	}()

	if _, err := a.srv.RotateKeys(t.Context(), "sig", 0); err != nil { // b's cached sig key of a is now dead
		t.Fatal(err)
	}
	start := time.Now()
	id := a.send(alice, bobAddr, "after rotation")
	waitStatus(t, a, alice, id, "delivered")
	took := time.Since(start)
	close(stop)
	n := <-flooded
	if took > 5*time.Second {
		t.Fatalf("the rotation took %s to be accepted during the flood", took)
	}
	if got := b.srv.PeerDocumentFetches() - before; got > 2 {
		t.Fatalf("%d forged requests and one rotation caused %d fetches of a's document; at most one per budget", n+1, got)
	}
	t.Logf("rotation accepted after %s during a flood of %d forged requests", took.Round(time.Millisecond), n+1)
}
