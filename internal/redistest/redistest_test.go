package redistest

import (
	"context"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

func TestSingleServerRestartKeepsData(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr, Password: Password})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := goredis.NewClient(&goredis.Options{Addr: s.Addr}).Ping(ctx).Err(); err == nil {
		t.Fatal("the server must require its password")
	}
	s.Kill() // append-only with fsync always: the write survives a crash
	s.Restart()
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after kill and restart: %q %v", v, err)
	}
}

func TestCluster(t *testing.T) {
	cl := StartCluster(t, 3)
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cl.Addrs(), Password: Password})
	defer c.Close()
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} { // spread over slots
		if err := c.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var masters atomic.Int32 // ForEachMaster runs concurrently
	c.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error { masters.Add(1); return nil })
	if masters.Load() != 3 {
		t.Fatalf("%d masters", masters.Load())
	}
}
