package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fednode/fednode/daemon"
	"github.com/gorilla/websocket"
)

func wsURL(n *testNode) string { return "ws" + strings.TrimPrefix(n.url, "http") + "/api/ws" }

func TestWebSocketBrowserAuthBySubprotocol(t *testing.T) {
	n := startNode(t, func(c *daemon.Config) { c.AllowedOrigins = []string{"https://app.example.org"} })
	bob := n.user("bob")
	alice := n.user("alice")
	d := websocket.Dialer{Subprotocols: []string{"fednode.v1", "bearer." + bob}}
	h := http.Header{"Origin": {"https://app.example.org"}}
	c, resp, err := d.Dial(wsURL(n), h)
	if err != nil {
		t.Fatalf("dial with the bearer subprotocol: %v", err)
	}
	defer c.Close()
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "fednode.v1" {
		t.Fatalf("server chose subprotocol %q; it must be fednode.v1 and never echo the token", got)
	}
	n.send(alice, "bob", "via subprotocol")
	if m := readMsg(t, c, 2*time.Second); m["content"] != "via subprotocol" {
		t.Fatalf("got %v", m)
	}
}

func TestWebSocketRefusesBeforeUpgrade(t *testing.T) {
	n := startNode(t, func(c *daemon.Config) { c.AllowedOrigins = []string{"https://app.example.org"} })
	bob := n.user("bob")
	tests := []struct {
		name   string
		header http.Header
		protos []string
		status int
	}{
		{"foreign origin", http.Header{"Origin": {"https://evil.example"}, "Authorization": {"Bearer " + bob}}, nil, 403},
		{"no token", nil, []string{"fednode.v1"}, 401},
		{"bad token in subprotocol", nil, []string{"fednode.v1", "bearer.x.y.z"}, 401},
		{"bad cursor", http.Header{"Authorization": {"Bearer " + bob}}, nil, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := websocket.Dialer{Subprotocols: tt.protos}
			u := wsURL(n)
			if tt.name == "bad cursor" {
				u += "?after=x"
			}
			c, resp, err := d.Dial(u, tt.header)
			if err == nil {
				c.Close()
				t.Fatal("upgrade succeeded")
			}
			if resp == nil || resp.StatusCode != tt.status {
				t.Fatalf("got %v, want HTTP %d before any upgrade", resp, tt.status)
			}
		})
	}
	// Same origin as PUBLIC_URL is always allowed.
	c, _, err := websocket.DefaultDialer.Dial(wsURL(n), http.Header{"Origin": {n.url}, "Authorization": {"Bearer " + bob}})
	if err != nil {
		t.Fatalf("same-origin socket refused: %v", err)
	}
	c.Close()
}

// TestStuckClientNeverBlocksOthers: one client never reads. Another client
// of the same user and a client of another user receive everything
// promptly, sends are never slowed, and the stuck socket is dropped by the
// ping/pong deadline.
func TestStuckClientNeverBlocksOthers(t *testing.T) {
	n := startNode(t)
	alice := n.user("alice")
	bob := n.user("bob")
	stuck := dialWS(t, n, bob, "") // never read
	_ = stuck
	reader := dialWS(t, n, bob, "")
	const total = 300
	big := strings.Repeat("z", 9000) // fill the stuck socket's buffers fast
	var wg sync.WaitGroup
	wg.Add(1)
	got := 0
	go func() {
		defer wg.Done()
		for got < total {
			reader.SetReadDeadline(time.Now().Add(10 * time.Second))
			var m map[string]any
			if err := reader.ReadJSON(&m); err != nil {
				t.Errorf("reader after %d: %v", got, err)
				return
			}
			got++
		}
	}()
	start := time.Now()
	for i := 0; i < total; i++ {
		n.send(alice, "bob", fmt.Sprintf("%d %s", i, big))
	}
	sendTime := time.Since(start)
	wg.Wait()
	if got != total {
		t.Fatalf("reader got %d of %d", got, total)
	}
	t.Logf("%d sends in %v with a stuck client connected", total, sendTime)
	deadline := time.Now().Add(5 * time.Second)
	for n.srv.LiveSockets() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stuck socket not dropped: %d live", n.srv.LiveSockets())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The dropped client reconnects with its cursor and misses nothing.
	// Bob's mailbox holds only these, so message i has cursor i+1.
	again := dialWS(t, n, bob, fmt.Sprintf("?after=%d", total-2))
	for i := total - 2; i < total; i++ {
		if m := readMsg(t, again, 2*time.Second); !strings.HasPrefix(m["content"].(string), fmt.Sprint(i)+" ") {
			t.Fatalf("catch-up got %.10q, want message %d", m["content"], i)
		}
	}
}

func TestWebSocketReadLimit(t *testing.T) {
	n := startNode(t)
	bob := n.user("bob")
	c := dialWS(t, n, bob, "")
	if err := c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 8192))); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c, websocket.CloseMessageTooBig)
}

// TestStuckReaderCostsLittle: a client that never reads is dropped, and
// until then the node holds little for it in the kernel: everything the
// client can still read after the drop (its own small receive buffer plus
// what the node's send buffer held) stays far below what an unbounded,
// auto-tuned send buffer would hold (megabytes).
func TestStuckReaderCostsLittle(t *testing.T) {
	n := startNode(t)
	alice, bob := n.user("alice"), n.user("bob")
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(8 << 10)
		}
		return c, err
	}}
	stuck, _, err := d.Dial(wsURL(n), http.Header{"Authorization": {"Bearer " + bob}})
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	const total = 300
	big := strings.Repeat("z", 9000)
	for i := 0; i < total; i++ {
		n.send(alice, "bob", fmt.Sprintf("%d %s", i, big))
	}
	deadline := time.Now().Add(10 * time.Second)
	for n.srv.LiveSockets() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("stuck socket not dropped: %d live", n.srv.LiveSockets())
		}
		time.Sleep(50 * time.Millisecond)
	}
	raw := stuck.NetConn()
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	held, _ := io.Copy(io.Discard, raw)
	t.Logf("the node had written %d bytes (of %d sent) that the stuck client could still read", held, total*9000)
	if held == 0 || held > 512<<10 {
		t.Fatalf("%d bytes were held for a client that never reads; want some, and under 512 KiB", held)
	}
}
