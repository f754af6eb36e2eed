package redis_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/redis"
	"github.com/fednode/fednode/storetest"
)

var namespaces atomic.Int64 // the outage tests run in parallel

// fresh returns a store in a namespace of its own, so every conformance
// subtest starts empty on the same server.
func fresh(t *testing.T, url string, cluster bool) fednode.Store {
	s, err := redis.Open(context.Background(), redis.Options{URL: url, Password: redistest.Password, Cluster: cluster, Namespace: fmt.Sprintf("t%d", namespaces.Add(1)), Sealer: storetest.NewSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformanceSingleServer(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, func(t *testing.T) fednode.Store { return fresh(t, srv.URL(), false) })
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	addrs := cl.Addrs()
	url := "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
	storetest.Run(t, func(t *testing.T) fednode.Store { return fresh(t, url, true) })
}

func TestPersistenceCheck(t *testing.T) {
	srv := redistest.Start(t) // appendonly yes, appendfsync always
	s, err := redis.Open(context.Background(), redis.Options{URL: srv.URL(), Password: redistest.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if w, err := s.CheckPersistence(ctx); err != nil || len(w) != 0 {
		t.Fatalf("AOF with fsync always: %v %v", w, err)
	}
	s.Client().ConfigSet(ctx, "appendfsync", "everysec")
	if w, _ := s.CheckPersistence(ctx); len(w) != 1 || !strings.Contains(w[0], "one second") {
		t.Fatalf("everysec: %v", w)
	}
	s.Client().ConfigSet(ctx, "appendonly", "no")
	if w, _ := s.CheckPersistence(ctx); len(w) != 1 || !strings.Contains(w[0], "appendonly is off") {
		t.Fatalf("no AOF: %v", w)
	}
}

func TestKeyPartsAreSafe(t *testing.T) {
	for in, safe := range map[string]bool{"alice": true, "01ARZ3NDEKTSV4RRFFQ69G5FAV": true, "b.example": true,
		"b.example:8443": false, "a*b": false, "{tag}": false, "x y": false, "[::1]:80": false, strings.Repeat("a", 129): false} {
		p := redis.Part(in)
		if (p == in) != safe {
			t.Errorf("Part(%q) = %q", in, p)
		}
		if strings.ContainsAny(p, "{}*?[]: ") {
			t.Errorf("Part(%q) = %q has a special character", in, p)
		}
	}
}

// commands counts the commands a client sends, and their names.
type commands struct {
	mu    sync.Mutex
	names []string
}

func (c *commands) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *commands) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.mu.Lock()
		c.names = append(c.names, cmd.Name())
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (c *commands) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.mu.Lock()
		c.names = append(c.names, "pipeline")
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

// TestMessagesIsOneRoundTrip: the batch read the outbox makes for a whole
// envelope costs one command, however many ids, on one server and on a
// cluster (where it works only because the node's keys share one slot).
func TestMessagesIsOneRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	cl := redistest.StartCluster(t, 3)
	addrs := cl.Addrs()
	for name, s := range map[string]*redis.Store{
		"single server": fresh(t, srv.URL(), false).(*redis.Store),
		"cluster":       fresh(t, "redis://"+addrs[0]+"?addr="+addrs[1]+"&addr="+addrs[2], true).(*redis.Store),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var ids []string
			for i := range 100 {
				id := fmt.Sprintf("m%03d", i)
				m := fednode.Message{ID: id, From: fednode.Address{User: "a", Domain: "d"}, To: fednode.Address{User: "b", Domain: "d"}, Content: id}
				if _, err := s.AppendMessage(ctx, m, "b"); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id, "missing-"+id)
			}
			seen := &commands{}
			s.Client().AddHook(seen)
			got, err := s.Messages(ctx, ids)
			if err != nil || len(got) != 100 || got["m042"].Content != "m042" {
				t.Fatalf("Messages: %d messages, %v", len(got), err)
			}
			if len(seen.names) != 1 || seen.names[0] != "mget" {
				t.Fatalf("Messages sent %v, want one MGET", seen.names)
			}
		})
	}
}
