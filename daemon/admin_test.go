package daemon_test

import (
	"strings"
	"testing"
)

func TestAdminFederationControls(t *testing.T) {
	a, b := startNode(t, fastRetry), startNode(t, fastRetry)
	alice := a.user("alice")
	root := a.admin("root")
	boss := b.admin("boss")
	bob := b.user("bob")
	bobAddr := "bob@" + b.srv.Domain()

	if r := a.do("GET", "/api/admin/federation", alice, nil); r.Status != 403 {
		t.Fatalf("a non-admin read the policy: %d", r.Status)
	}
	r := a.do("GET", "/api/admin/federation", root, nil)
	if r.Status != 200 || r.Body["mode"] != "open" {
		t.Fatalf("policy: %s", r.Raw)
	}

	// Sender side: blocking a domain refuses sends to it at once.
	r = a.do("PUT", "/api/admin/federation", root, map[string]any{"mode": "open", "blocklist": []string{b.srv.Domain()}})
	if r.Status != 200 {
		t.Fatalf("set policy: %s", r.Raw)
	}
	if r := a.do("POST", "/api/messages", alice, map[string]any{"to": bobAddr, "content": "x"}); r.Status != 422 || r.code() != "federation_disabled" {
		t.Fatalf("send to a blocked node: %d %s", r.Status, r.Raw)
	}
	if r := a.do("PUT", "/api/admin/federation", root, map[string]any{"mode": "sometimes"}); r.Status != 400 || r.field() != "mode" {
		t.Fatalf("bad mode: %s", r.Raw)
	}
	if r := a.do("PUT", "/api/admin/federation", root, map[string]any{"mode": "open", "blocklist": []string{"Not A Domain"}}); r.Status != 400 || r.field() != "blocklist" {
		t.Fatalf("bad domain: %s", r.Raw)
	}
	// The change survives a restart; DELETE resets to the configuration.
	a.restart()
	if r := a.do("POST", "/api/messages", alice, map[string]any{"to": bobAddr, "content": "x"}); r.code() != "federation_disabled" {
		t.Fatalf("the policy must persist across restarts: %s", r.Raw)
	}
	if r := a.do("DELETE", "/api/admin/federation", root, nil); r.Status != 200 || len(r.Body["blocklist"].([]any)) != 0 {
		t.Fatalf("reset: %s", r.Raw)
	}

	// Receiver side: b allowlists only another node, so a's delivery is
	// refused for good and becomes a dead letter a's operator can see.
	if r := b.do("PUT", "/api/admin/federation", boss, map[string]any{"mode": "allowlist", "allowlist": []string{"friend.example"}}); r.Status != 200 {
		t.Fatalf("b policy: %s", r.Raw)
	}
	id := a.send(alice, bobAddr, "refused at the door")
	m := waitStatus(t, a, alice, id, "failed")
	if !strings.Contains(m["reason"].(string), "peer_blocked") {
		t.Fatalf("reason %q must name the refusal", m["reason"])
	}
	dead := a.do("GET", "/api/admin/outbox/dead", root, nil)
	items := dead.Body["dead_letters"].([]any)
	if dead.Status != 200 || len(items) != 1 || items[0].(map[string]any)["message_id"] != id || items[0].(map[string]any)["peer"] != b.srv.Domain() {
		t.Fatalf("dead letters: %s", dead.Raw)
	}
	if len(b.mailbox(bob)) != 0 {
		t.Fatal("a blocked delivery was stored")
	}
	// Let a in again: delivery resumes at once.
	b.do("PUT", "/api/admin/federation", boss, map[string]any{"mode": "allowlist", "allowlist": []string{a.srv.Domain()}})
	id = a.send(alice, bobAddr, "welcome back")
	waitStatus(t, a, alice, id, "delivered")

	// Key rotation through the admin API: published beside the old key.
	r = b.do("POST", "/api/admin/keys/rotate", boss, map[string]any{"use": "enc", "overlap": "1h"})
	if r.Status != 200 || !strings.HasPrefix(r.Body["id"].(string), b.srv.Domain()+"#enc-") {
		t.Fatalf("rotate: %s", r.Raw)
	}
	doc := b.do("GET", "/.well-known/fednode", "", nil)
	if keys := doc.Body["keys"].([]any); len(keys) != 3 {
		t.Fatalf("during the overlap the document publishes 3 keys, got %d", len(keys))
	}
	if r := b.do("POST", "/api/admin/keys/rotate", boss, map[string]any{"use": "both"}); r.Status != 400 || r.field() != "use" {
		t.Fatalf("bad use: %s", r.Raw)
	}
	id = a.send(alice, bobAddr, "after b rotated")
	waitStatus(t, a, alice, id, "delivered")
	if !strings.Contains(b.audit.String(), "keys.rotated") || !strings.Contains(b.audit.String(), "federation.policy") {
		t.Fatal("rotation and policy changes must be audited")
	}
}
