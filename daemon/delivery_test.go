package daemon_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fednode/fednode/daemon"
)

// slowRetry makes the outbox wait an hour between retries: what arrives
// within a test came through a wake-up, not the backoff.
func slowRetry(c *daemon.Config) {
	c.OutboxRetryBase, c.OutboxRetryMax = time.Hour, time.Hour
}

// statusEvent reads socket frames until the status event of message id
// with status want, skipping mailbox entries and other events.
func statusEvent(t *testing.T, c *websocket.Conn, id, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		m := readMsg(t, c, time.Until(deadline))
		if m["event"] == "status" && m["id"] == id && m["status"] == want {
			return m
		}
	}
	t.Fatalf("no status event %s for %s", want, id)
	return nil
}

// TestDeliveryToADownPeerShowsAndWakes: with peer B down, a message to it
// stays queued and its sender sees the attempts, the last error in words
// with its code, and the next attempt an hour away; when B is back and
// delivers something to us, our queue for B drains at once, without
// waiting for the backoff, and the sender's socket is told.
func TestDeliveryToADownPeerShowsAndWakes(t *testing.T) {
	a, b := startNode(t, slowRetry), startNode(t, fastRetry)
	alice, bob := a.user("alice"), b.user("bob")
	bobAddr, aliceAddr := "bob@"+b.srv.Domain(), "alice@"+a.srv.Domain()
	waitStatus(t, a, alice, a.send(alice, bobAddr, "hello"), "delivered")

	bDomain := b.srv.Domain()
	b.srv.Close()
	b.srv = nil
	live := dialWS(t, a, alice, "")
	id := a.send(alice, bobAddr, "while you were out")
	var d map[string]any
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := a.do("GET", "/api/messages/"+id, alice, nil)
		d, _ = r.Body["delivery"].(map[string]any)
		if r.Body["status"] == "queued" && d != nil && d["attempts"] == float64(1) && d["next_attempt_at"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a queued message must show its attempt and next attempt: %s", r.Raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d["last_error_code"] != "peer_unreachable" || !strings.Contains(d["last_error"].(string), bDomain) {
		t.Fatalf("last error: %v", d)
	}
	next, err := time.Parse(time.RFC3339, d["next_attempt_at"].(string))
	if err != nil || time.Until(next) < 40*time.Minute {
		t.Fatalf("next attempt %v (%v), want about an hour away", d["next_attempt_at"], err)
	}
	if r := a.do("GET", "/api/messages/"+id, a.user("carol"), nil); r.Status != 404 {
		t.Fatalf("another user must not see the message: %s", r.Raw)
	}
	b.open()
	waitStatus(t, b, bob, b.send(bob, aliceAddr, "I'm back"), "delivered")
	waitStatus(t, a, alice, id, "delivered") // long before the hour
	statusEvent(t, live, id, "delivered")
	if box := waitMailbox(t, b, bob, 3); box[2]["content"] != "while you were out" {
		t.Fatalf("bob's mailbox: %v", box)
	}
}

// TestAdminDeadLetters: an admin redrives a dead letter (its sender's
// socket sees it queued, then delivered), purges one, redrives a peer's,
// and asks to retry a peer now; refusals are 400, 403 and 404 with their
// codes; each action is audited with who did it.
func TestAdminDeadLetters(t *testing.T) {
	a, b := startNode(t, fastRetry), startNode(t, fastRetry)
	alice := a.user("alice")
	root := a.admin("root")
	boss := b.admin("boss")
	b.user("bob")
	bobAddr := "bob@" + b.srv.Domain()
	b.do("PUT", "/api/admin/federation", boss, map[string]any{"mode": "allowlist", "allowlist": []string{"friend.example"}})
	var ids []string
	for _, c := range []string{"one", "two", "three"} {
		id := a.send(alice, bobAddr, c)
		if m := waitStatus(t, a, alice, id, "failed"); m["reason_code"] != "peer_refused" {
			t.Fatalf("reason code %v", m["reason_code"])
		}
		ids = append(ids, id)
	}
	dead := a.do("GET", "/api/admin/outbox/dead", root, nil)
	if items := dead.Body["dead_letters"].([]any); len(items) != 3 || items[0].(map[string]any)["code"] != "peer_refused" {
		t.Fatalf("dead letters: %s", dead.Raw)
	}
	for _, tc := range []struct {
		token  string
		body   any
		status int
		code   string
	}{
		{alice, map[string]any{"all": true}, 403, "forbidden"},
		{root, map[string]any{}, 400, "invalid_request"},
		{root, map[string]any{"all": true, "peer": b.srv.Domain()}, 400, "invalid_request"},
		{root, map[string]any{"peer": "Not A Domain"}, 400, "invalid_request"},
		{root, map[string]any{"message_id": ids[0][:25] + "0"}, 404, "not_found"},
	} {
		if r := a.do("POST", "/api/admin/outbox/dead/redrive", tc.token, tc.body); r.Status != tc.status || r.code() != tc.code {
			t.Fatalf("redrive %v: %d %s, want %d %s", tc.body, r.Status, r.Raw, tc.status, tc.code)
		}
	}
	b.do("PUT", "/api/admin/federation", boss, map[string]any{"mode": "open"})
	live := dialWS(t, a, alice, "")
	if r := a.do("POST", "/api/admin/outbox/dead/redrive", root, map[string]any{"message_id": ids[0]}); r.Status != 200 || r.Body["redriven"] != float64(1) {
		t.Fatalf("redrive one: %s", r.Raw)
	}
	statusEvent(t, live, ids[0], "queued")
	statusEvent(t, live, ids[0], "delivered")
	waitStatus(t, a, alice, ids[0], "delivered")
	if r := a.do("POST", "/api/admin/outbox/dead/purge", root, map[string]any{"message_id": ids[1]}); r.Status != 200 || r.Body["purged"] != float64(1) {
		t.Fatalf("purge one: %s", r.Raw)
	}
	if r := a.do("POST", "/api/admin/outbox/dead/redrive", root, map[string]any{"peer": b.srv.Domain()}); r.Status != 200 || r.Body["redriven"] != float64(1) {
		t.Fatalf("redrive the peer's: %s", r.Raw)
	}
	waitStatus(t, a, alice, ids[2], "delivered")
	if m := waitStatus(t, a, alice, ids[1], "failed"); m["reason_code"] != "peer_refused" {
		t.Fatalf("a purged letter's message stays failed: %v", m)
	}
	if r := a.do("POST", "/api/admin/outbox/dead/purge", root, map[string]any{"all": true}); r.Status != 200 || r.Body["purged"] != float64(0) {
		t.Fatalf("purge all: %s", r.Raw)
	}
	if r := a.do("POST", "/api/admin/outbox/peers/"+b.srv.Domain()+"/retry", root, nil); r.Status != 202 || r.Body["peer"] != b.srv.Domain() {
		t.Fatalf("retry now: %s", r.Raw)
	}
	if r := a.do("POST", "/api/admin/outbox/peers/Bad%20Peer/retry", root, nil); r.Status != 400 {
		t.Fatalf("retry now, bad peer: %s", r.Raw)
	}
	audit := a.audit.String()
	for _, want := range []string{
		`"msg":"dead_letters.redriven","by":"root","count":1,"message_id":"` + ids[0] + `"`,
		`"msg":"dead_letters.purged","by":"root","count":1,"message_id":"` + ids[1] + `"`,
		`"msg":"dead_letters.redriven","by":"root","count":1,"peer":"` + b.srv.Domain() + `"`,
		`"msg":"dead_letters.purged","by":"root","count":0,"all":true`,
		`"msg":"peer.retry_now","by":"root","peer":"` + b.srv.Domain() + `"`,
	} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %s", want)
		}
	}
}
