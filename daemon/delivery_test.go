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
