package redis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/redis"
	"github.com/fednode/fednode/storetest"
)

var namespaces int

// fresh returns a store in a namespace of its own, so every conformance
// subtest starts empty on the same server.
func fresh(t *testing.T, url string, cluster bool) fednode.Store {
	namespaces++
	s, err := redis.Open(context.Background(), redis.Options{URL: url, Password: redistest.Password, Cluster: cluster, Namespace: fmt.Sprintf("t%d", namespaces)})
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
