package daemon_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode/daemon"
	"github.com/gorilla/websocket"
)

// dialWS opens the live socket with a bearer header.
func dialWS(t testing.TB, n *testNode, token, query string) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(n.url, "http")+"/api/ws"+query, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial ws: %v (status %d)", err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readMsg(t testing.TB, c *websocket.Conn, within time.Duration) map[string]any {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	var m map[string]any
	if err := c.ReadJSON(&m); err != nil {
		t.Fatalf("read ws: %v", err)
	}
	return m
}

var rfc3339UTC = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`)

func TestEndToEnd(t *testing.T) {
	n := startNode(t)
	alice := n.user("Alice")
	bob := n.user("bob")
	dom := n.srv.Domain()

	live := dialWS(t, n, bob, "")
	start := time.Now()
	id := n.send(alice, "bob", "hello bob")
	got := readMsg(t, live, 2*time.Second)
	t.Logf("accepted -> pushed in %v", time.Since(start))
	if got["id"] != id || got["from"] != "alice@"+dom || got["to"] != "bob@"+dom || got["content"] != "hello bob" {
		t.Fatalf("pushed %v", got)
	}
	if !rfc3339UTC.MatchString(got["created_at"].(string)) {
		t.Fatalf("created_at %q is not RFC 3339 UTC", got["created_at"])
	}
	if tags, ok := got["tags"].([]any); !ok || len(tags) != 0 {
		t.Fatalf("tags must be an empty array, got %v", got["tags"])
	}
	// Fully qualified recipient, tags, and a reply.
	n.do("POST", "/api/messages", bob, map[string]any{"to": "alice@" + dom, "content": "hi alice", "tags": []string{"greeting", "x-1"}})
	if r := n.do("POST", "/api/messages", bob, map[string]any{"to": "ALICE", "content": "case-insensitive"}); r.Status != http.StatusAccepted {
		t.Fatalf("send to ALICE: %d %s", r.Status, r.Raw)
	}

	box := n.mailbox(alice)
	if len(box) != 3 || box[0]["id"] != id || box[1]["content"] != "hi alice" || box[2]["content"] != "case-insensitive" {
		t.Fatalf("alice's mailbox: %v", box)
	}
	if tags := box[1]["tags"].([]any); len(tags) != 2 || tags[0] != "greeting" {
		t.Fatalf("tags not kept: %v", box[1]["tags"])
	}
	// Paging with stable cursors.
	p1 := n.do("GET", "/api/messages?limit=2", alice, nil)
	if len(p1.Body["messages"].([]any)) != 2 {
		t.Fatalf("page 1: %s", p1.Raw)
	}
	p2 := n.do("GET", "/api/messages?limit=2&after="+p1.Body["next"].(string), alice, nil)
	if msgs := p2.Body["messages"].([]any); len(msgs) != 1 || msgs[0].(map[string]any)["content"] != "case-insensitive" {
		t.Fatalf("page 2: %s", p2.Raw)
	}
	p3 := n.do("GET", "/api/messages?after="+p2.Body["next"].(string), alice, nil)
	if len(p3.Body["messages"].([]any)) != 0 || p3.Body["next"] != p2.Body["next"] {
		t.Fatalf("past the end: %s", p3.Raw)
	}
	// One message by id: parties only.
	if r := n.do("GET", "/api/messages/"+id, bob, nil); r.Status != 200 || r.Body["content"] != "hello bob" || r.Body["status"] != "delivered" {
		t.Fatalf("GET by id as recipient: %d %s", r.Status, r.Raw)
	}
	carol := n.user("carol")
	if r := n.do("GET", "/api/messages/"+id, carol, nil); r.Status != 404 || r.code() != "not_found" {
		t.Fatalf("GET by id as a third party: %d %s", r.Status, r.Raw)
	}

	// Restart: everything is still there, tokens included.
	n.restart()
	box2 := n.mailbox(alice)
	if len(box2) != 3 || box2[0]["id"] != id || box2[2]["cursor"] != box[2]["cursor"] {
		t.Fatalf("after restart alice sees %v", box2)
	}
	live2 := dialWS(t, n, bob, "?after="+box[0]["cursor"].(string))
	// Bob's mailbox: 1 hello (received), 2 hi alice (sent), 3 case-insensitive (sent).
	for _, want := range []string{"hi alice", "case-insensitive"} {
		if m := readMsg(t, live2, 2*time.Second); m["content"] != want {
			t.Fatalf("catch-up after reconnect: got %v, want %q", m["content"], want)
		}
	}
	n.send(alice, "bob", "after restart")
	if m := readMsg(t, live2, 2*time.Second); m["content"] != "after restart" {
		t.Fatalf("live after catch-up: %v", m)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	n := startNode(t)
	if r := n.do("GET", "/healthz", "", nil); r.Status != 200 || r.Body["status"] != "ok" {
		t.Fatalf("healthz: %d %s", r.Status, r.Raw)
	}
	if r := n.do("GET", "/readyz", "", nil); r.Status != 200 || r.Body["store"] != "ok" {
		t.Fatalf("readyz: %d %s", r.Status, r.Raw)
	}
}

func TestSecurityHeadersAndCORS(t *testing.T) {
	n := startNode(t, func(c *daemon.Config) { c.AllowedOrigins = []string{"https://app.example.org"} })
	r := n.do("GET", "/healthz", "", nil)
	for h, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
	} {
		if !strings.Contains(r.Header.Get(h), want) {
			t.Errorf("%s = %q, want %q", h, r.Header.Get(h), want)
		}
	}
	if r.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS must not be sent over plain HTTP")
	}
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", n.url+"/api/messages", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := preflight("https://app.example.org"); resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.org" {
		t.Fatalf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight("https://evil.example"); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("refused preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight("https://evil.example"); resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatal("credentials must never be allowed cross-origin")
	}

	hsts := startNode(t, func(c *daemon.Config) { c.TLSTerminatedByProxy = true })
	if hsts.do("GET", "/healthz", "", nil).Header.Get("Strict-Transport-Security") == "" {
		t.Fatal("HSTS must be sent when TLS is terminated in front of the node")
	}
}
