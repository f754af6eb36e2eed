package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/storetest"
)

// TestEveryCallNamesItsOperationAndIsUnavailableWhileRedisIsDown: with its
// server stopped, every method of the store fails with an error that says
// which operation failed and wraps fednode.ErrUnavailable (so the node
// answers 503 and clients retry), never a bare go-redis error the node
// would have to recognise by its text. When the server is back, the same
// store serves again without being reopened; once closed, it is
// unavailable too.
func TestEveryCallNamesItsOperationAndIsUnavailableWhileRedisIsDown(t *testing.T) {
	t.Parallel() // most of it is waiting for dials that fail
	calls := storetest.Calls()
	srv := redistest.Start(t)
	s := fresh(t, srv.URL(), false)
	ctx := context.Background()
	if _, err := s.AppendMessage(ctx, fednode.Message{ID: "m1", Content: "kept"}, "alice"); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for name, c := range calls {
		err := c.Do(ctx, s)
		if !errors.Is(err, fednode.ErrUnavailable) || fednode.ErrorCode(err) != fednode.EUnavailable {
			t.Errorf("%s with Redis down: %v, want fednode.ErrUnavailable", name, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "redis: "+c.Op+": ") {
			t.Errorf("%s: %q does not start with %q", name, err, "redis: "+c.Op+": ")
		}
	}
	srv.Restart()
	// The client's pool redials a server it gave up on in the background,
	// about once a second.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := s.Ping(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping once Redis is back: %v", err)
		}
	}
	if m, err := s.Message(ctx, "m1"); err != nil || m.Content != "kept" {
		t.Fatalf("Message once Redis is back: %+v, %v", m, err)
	}
	s.Close()
	if _, err := s.User(ctx, "alice"); !errors.Is(err, fednode.ErrUnavailable) {
		t.Fatalf("User on a closed store: %v, want fednode.ErrUnavailable", err)
	}
}

// TestClusterDownIsUnavailable: on a cluster whose masters are all down,
// reads and writes are unavailable, not internal errors.
func TestClusterDownIsUnavailable(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	addrs := cl.Addrs()
	s := fresh(t, "redis://"+addrs[0]+"?addr="+addrs[1]+"&addr="+addrs[2], true)
	ctx := context.Background()
	for _, n := range cl.Nodes {
		n.Stop()
	}
	calls := storetest.Calls()
	for _, name := range []string{"Ping", "AppendMessage", "Messages"} {
		if err := calls[name].Do(ctx, s); !errors.Is(err, fednode.ErrUnavailable) {
			t.Errorf("%s with the cluster down: %v, want fednode.ErrUnavailable", name, err)
		}
	}
}

// TestRefusalsAreNotUnavailable: what Redis answered is not an outage.
func TestRefusalsAreNotUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	s := fresh(t, srv.URL(), false)
	ctx := context.Background()
	_, err := s.User(ctx, "nobody")
	if !errors.Is(err, fednode.ErrNotFound) || errors.Is(err, fednode.ErrUnavailable) || !strings.HasPrefix(err.Error(), "redis: user: ") {
		t.Fatalf("User(nobody): %v, want a not-found that names the operation", err)
	}
	_, err = s.CreateSession(ctx, fednode.Session{ID: "s 1", Username: "alice"}, 3)
	if err == nil || errors.Is(err, fednode.ErrUnavailable) || !strings.HasPrefix(err.Error(), "redis: create session: ") {
		t.Fatalf("CreateSession with an id no key may hold: %v", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Ping(ctx); err == nil || errors.Is(err, fednode.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Ping for a caller that gave up: %v, want context.Canceled and not unavailable", err)
	}
}
