package daemon_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/fednode/fednode/daemon"
)

// fastRetry makes the outbox retry within milliseconds.
func fastRetry(c *daemon.Config) {
	c.OutboxRetryBase, c.OutboxRetryMax = 20*time.Millisecond, 100*time.Millisecond
}

// waitStatus polls a message's status on the sender's node.
func waitStatus(t *testing.T, n *testNode, token, id, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := n.do("GET", "/api/messages/"+id, token, nil)
		if r.Body["status"] == want {
			return r.Body
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s: status %v (reason %v), want %s", id, r.Body["status"], r.Body["reason"], want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitMailbox polls until a mailbox has n messages.
func waitMailbox(t *testing.T, n *testNode, token string, count int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		box := n.mailbox(token)
		if len(box) >= count {
			return box
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailbox has %d messages, want %d", len(box), count)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFederationThreeNodesAllDirections(t *testing.T) {
	nodes := []*testNode{startNode(t, fastRetry), startNode(t, fastRetry), startNode(t, fastRetry)}
	names := []string{"alice", "bob", "carol"}
	tokens := make([]string, 3)
	for i, n := range nodes {
		tokens[i] = n.user(names[i])
	}
	addr := func(i int) string { return names[i] + "@" + nodes[i].srv.Domain() }

	live := dialWS(t, nodes[1], tokens[1], "")
	id := nodes[0].send(tokens[0], addr(1), "alice to bob, live")
	if r := nodes[0].do("GET", "/api/messages/"+id, tokens[0], nil); r.Body["status"] != "queued" && r.Body["status"] != "delivered" {
		t.Fatalf("a remote send starts queued: %v", r.Body["status"])
	}
	got := readMsg(t, live, 10*time.Second)
	if got["id"] != id || got["from"] != addr(0) || got["to"] != addr(1) || got["content"] != "alice to bob, live" {
		t.Fatalf("bob's socket got %v", got)
	}
	waitStatus(t, nodes[0], tokens[0], id, "delivered")

	// Every ordered pair of nodes, with tags, plus a local message.
	want := map[int][]string{}
	for from := 0; from < 3; from++ {
		for to := 0; to < 3; to++ {
			if from == to {
				continue
			}
			content := fmt.Sprintf("%s to %s", names[from], names[to])
			r := nodes[from].do("POST", "/api/messages", tokens[from], map[string]any{"to": addr(to), "content": content, "tags": []string{"fed"}})
			if r.Status != 202 || r.Body["status"] != "queued" {
				t.Fatalf("send %s: %d %s", content, r.Status, r.Raw)
			}
			waitStatus(t, nodes[from], tokens[from], r.Body["id"].(string), "delivered")
			want[to] = append(want[to], content)
		}
	}
	nodes[2].user("dave")
	nodes[2].send(tokens[2], "dave", "local on c")

	for i, n := range nodes {
		box := n.mailbox(tokens[i])
		received := map[string]map[string]any{}
		for _, m := range box {
			if m["to"] == addr(i) {
				received[m["content"].(string)] = m
			}
		}
		for _, c := range want[i] {
			m, ok := received[c]
			if !ok {
				t.Fatalf("%s did not receive %q; mailbox %v", names[i], c, box)
			}
			if tags := m["tags"].([]any); len(tags) != 1 || tags[0] != "fed" {
				t.Fatalf("tags lost on the way: %v", m["tags"])
			}
			if r := n.do("GET", "/api/messages/"+m["id"].(string), tokens[i], nil); r.Status != 200 {
				t.Fatalf("recipient cannot read a remote message by id: %s", r.Raw)
			}
		}
	}
}

func TestFederationRemoteUnknownRecipientFails(t *testing.T) {
	a, b := startNode(t, fastRetry), startNode(t, fastRetry)
	alice := a.user("alice")
	id := a.send(alice, "nobody@"+b.srv.Domain(), "into the void")
	m := waitStatus(t, a, alice, id, "failed")
	if m["reason"] == nil || m["reason"] == "" {
		t.Fatalf("a failed delivery needs a reason: %v", m)
	}
}
