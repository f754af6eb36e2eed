package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/e2e"
	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/internal/syncbuf"
)

// e2eCanary is what the end-to-end test sends; no window of e2eWindow of
// its bytes may appear anywhere but in the recipient's client.
const (
	e2eCanary    = "E2E-CANARY-5c0ffee1-only-bob-can-read-this-line"
	e2eCanaryTag = "e2ecanary5c0f"
	e2eWindow    = 8
)

// leaksCanary reports the first e2eWindow-byte piece of the canary (or of
// its tag) found in hay.
func leaksCanary(hay []byte) (string, bool) {
	for _, s := range []string{e2eCanary, e2eCanaryTag} {
		for i := 0; i+e2eWindow <= len(s); i++ {
			if bytes.Contains(hay, []byte(s[i:i+e2eWindow])) {
				return s[i : i+e2eWindow], true
			}
		}
	}
	return "", false
}

// e2eUser is a user's client: its account on a node and the keys it made
// on its own device.
type e2eUser struct {
	n     *testNode
	name  string
	token string
	keys  *e2e.Keys
}

func (u *e2eUser) addr() fednode.Address {
	return fednode.Address{User: u.name, Domain: u.n.srv.Domain()}
}

// newE2EUser registers name on n, makes its keys and publishes them.
func newE2EUser(t *testing.T, n *testNode, name string) *e2eUser {
	t.Helper()
	u := &e2eUser{n: n, name: name, token: n.user(name)}
	u.keys = newE2EKeys(t)
	pub := u.keys.Public()
	if r := n.do("PUT", "/api/keys", u.token, map[string]any{"enc_key": pub.EncSPKI, "sig_key": pub.SigSPKI}); r.Status != 200 {
		t.Fatalf("publish %s's keys: %d %s", name, r.Status, r.Raw)
	}
	return u
}

// keysOf fetches addr's key document through u's own node and checks it as
// a client does.
func (u *e2eUser) keysOf(t *testing.T, addr fednode.Address) *e2e.PublicKeys {
	t.Helper()
	r := u.n.do("GET", "/api/users/"+url.PathEscape(addr.String())+"/keys", u.token, nil)
	if r.Status != 200 {
		t.Fatalf("%s fetching %s's keys: %d %s", u.name, addr, r.Status, r.Raw)
	}
	var d fednode.UserKeyDocument
	if err := json.Unmarshal([]byte(r.Raw), &d); err != nil {
		t.Fatal(err)
	}
	pub, err := e2e.VerifyDocument(&d, addr)
	if err != nil {
		t.Fatalf("%s's key document: %v", addr, err)
	}
	return pub
}

// TestE2ECanaryAcrossNodes: alice on node A sends an end-to-end encrypted
// canary to bob on node B, on bbolt and then on Redis. Bob's client reads
// it in clear (and alice's reads her own copy); neither node's store (the
// bbolt file, or everything Redis holds), log, audit stream or API answer
// shows a byte of it, nor what either node makes of its store with its own
// keys: unlike at-rest sealing, the nodes cannot open it.
func TestE2ECanaryAcrossNodes(t *testing.T) {
	for _, backend := range []string{"bolt", "redis"} {
		t.Run(backend, func(t *testing.T) {
			var raw []func() []byte // everything each node holds at rest
			logs := []*syncbuf.Buffer{{}, {}}
			nodes := make([]*testNode, 2)
			for i := range nodes {
				opts := []any{fastRetry, logTo{logs[i]}}
				if backend == "redis" {
					srv := redistest.Start(t)
					opts = append(opts, func(c *daemon.Config) { // one node, its own Redis, its own domain
						c.RedisURL, c.RedisPassword, c.RedisNamespace = srv.URL(), redistest.Password, "e2e"
					})
					raw = append(raw, func() []byte { return srv.Raw(t) })
				}
				nodes[i] = startNode(t, opts...)
				if backend == "bolt" {
					n := nodes[i]
					raw = append(raw, func() []byte {
						b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, "fednode.db"))
						if err != nil {
							t.Fatal(err)
						}
						return b
					})
				}
			}
			alice, bob := newE2EUser(t, nodes[0], "alice"), newE2EUser(t, nodes[1], "bob")

			bobKeys := alice.keysOf(t, bob.addr()) // through A, signed by B
			if bobKeys.Fingerprint() != bob.keys.Public().Fingerprint() {
				t.Fatalf("alice sees bob's fingerprint %s, bob has %s", bobKeys.Fingerprint(), bob.keys.Public().Fingerprint())
			}
			id := fednode.NewID(time.Now())
			sealed, err := e2e.Seal(id, alice.addr(), bob.addr(), e2eCanary, []string{e2eCanaryTag}, []*e2e.PublicKeys{bobKeys}, alice.keys)
			if err != nil {
				t.Fatal(err)
			}
			r := alice.n.do("POST", "/api/messages", alice.token, map[string]any{"to": bob.addr().String(), "id": id, "e2e": sealed})
			if r.Status != 202 || r.Body["id"] != id {
				t.Fatalf("send: %d %s", r.Status, r.Raw)
			}
			waitStatus(t, alice.n, alice.token, id, "delivered")

			var got map[string]any
			for _, m := range waitMailbox(t, bob.n, bob.token, 1) {
				if m["id"] == id {
					got = m
				}
			}
			if got == nil || got["content"] != "" || got["from"] != alice.addr().String() {
				t.Fatalf("bob's mailbox holds %v", got)
			}
			aliceKeys := bob.keysOf(t, alice.addr()) // through B, signed by A
			content, tags, err := e2e.Open(id, alice.addr(), bob.addr(), e2eOf(t, got), bob.keys, aliceKeys)
			if err != nil || content != e2eCanary || len(tags) != 1 || tags[0] != e2eCanaryTag {
				t.Fatalf("bob's client opens %q %v: %v", content, tags, err)
			}
			own := alice.n.do("GET", "/api/messages/"+id, alice.token, nil)
			if content, _, err := e2e.Open(id, alice.addr(), bob.addr(), e2eOf(t, own.Body), alice.keys, alice.keys.Public()); err != nil || content != e2eCanary {
				t.Fatalf("alice's client opens her own copy: %q %v", content, err)
			}
			if _, _, err := e2e.Open(id, alice.addr(), bob.addr(), e2eOf(t, got), newE2EKeys(t), aliceKeys); err == nil {
				t.Fatal("a third key opened the message")
			}

			// What each node served, holds, and wrote down. The mailboxes
			// are what a node makes of its store with its own keys (at-rest
			// sealing undone): what its operator could read.
			seen := map[string][]byte{
				"A's answer to alice": []byte(own.Raw), "B's answer to bob": []byte(bob.n.do("GET", "/api/messages/"+id, bob.token, nil).Raw),
				"A's mailbox of alice": []byte(alice.n.do("GET", "/api/messages", alice.token, nil).Raw),
				"B's mailbox of bob":   []byte(bob.n.do("GET", "/api/messages", bob.token, nil).Raw),
			}
			for i, n := range nodes {
				n.srv.Close() // flushes and releases the bbolt file
				n.srv = nil
				seen[fmt.Sprintf("node %d's store", i)] = raw[i]()
				seen[fmt.Sprintf("node %d's log", i)] = []byte(logs[i].String())
				seen[fmt.Sprintf("node %d's audit stream", i)] = []byte(n.audit.String())
			}
			if len(seen["node 1's log"]) == 0 {
				t.Fatal("node B logged nothing: the log check would prove nothing")
			}
			for where, b := range seen {
				if piece, ok := leaksCanary(b); ok {
					t.Errorf("%s holds %q of the canary", where, piece)
				}
			}
			// The payload itself is stored (sealed again at rest): the
			// nodes keep what they relay, and only its holder's keys open it.
			if _, ok := leaksCanary(seen["B's answer to bob"]); ok || !bytes.Contains(seen["B's answer to bob"], []byte(`"e2e"`)) {
				t.Fatalf("B's answer: %s", seen["B's answer to bob"])
			}
		})
	}
}

func newE2EKeys(t *testing.T) *e2e.Keys {
	t.Helper()
	k, err := e2e.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
