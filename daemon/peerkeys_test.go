package daemon_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/node"
)

// TestKeyLookupsSpareDeliveries: one user of A looking up many addresses
// of B makes B refuse A's key reads (429, peer_keys) and nothing else:
// the reads spend neither B's delivery budgets nor count toward a ban of
// A's address, so A's deliveries to B still pass. Looking up the same
// address again is answered from A's cache, not by asking B.
func TestKeyLookupsSpareDeliveries(t *testing.T) {
	a := startNode(t, fastRetry)
	b := startNode(t, fastRetry, func(c *daemon.Config) {
		c.RateLimits[node.ClassPeerKeys] = rule(3)
		c.RateLimits[node.ClassInboxIP] = rule(3)
		c.RateLimits[node.ClassInboxPeer] = rule(3)
		c.BanAfterViolations = 2
		c.BanAfterSigFailures = 2
	})
	alice, bob := a.user("alice"), b.user("bob")
	publish(t, b, bob, newUserKeys(t, 1))
	bobAddr := "bob@" + b.srv.Domain()

	lookup := func(addr string) response { return a.do("GET", "/api/users/"+url.PathEscape(addr)+"/keys", alice, nil) }
	// The same address, many times: B is asked once.
	for i := range 10 {
		if r := lookup(bobAddr); r.Status != 200 {
			t.Fatalf("bob's keys, lookup %d: %d %s", i, r.Status, r.Raw)
		}
	}
	// Addresses with no keys: B is asked once each, and says so.
	if r := lookup("nobody0@" + b.srv.Domain()); r.Status != 404 {
		t.Fatalf("nobody0: %d %s", r.Status, r.Raw)
	}
	if r := lookup("nobody0@" + b.srv.Domain()); r.Status != 404 {
		t.Fatalf("nobody0 again: %d %s", r.Status, r.Raw)
	}
	// A burst of distinct addresses: B's key-read budget (3, two spent)
	// runs out and A answers unavailable, as for a peer that says 429.
	limited := 0
	for i := 1; i <= 12; i++ {
		r := lookup(fmt.Sprintf("nobody%d@%s", i, b.srv.Domain()))
		switch {
		case r.Status == 404:
		case r.Status == 503 && r.code() == fednode.EUnavailable:
			limited++
		default:
			t.Fatalf("nobody%d: %d %s", i, r.Status, r.Raw)
		}
	}
	if limited != 11 {
		t.Fatalf("%d of 12 lookups were refused by B; want 11 (bob and nobody0 read once each, from A's cache after)", limited)
	}

	// A's deliveries to B still pass.
	for i := range 2 {
		id := a.send(alice, bobAddr, fmt.Sprintf("after the burst %d", i))
		waitStatus(t, a, alice, id, "delivered")
	}
	if box := waitMailbox(t, b, bob, 2); len(box) != 2 {
		t.Fatalf("bob's mailbox: %v", box)
	}
}
