package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/fednode/fednode"
)

func TestAuthCache(t *testing.T) {
	c := newAuthCache()
	now := time.Unix(1_800_000_000, 0)
	s := fednode.Session{ID: "s1", Username: "alice", ExpiresAt: now.Add(time.Hour)}
	c.put("tok", s, fednode.User{Username: "alice"}, now)
	if got, _, ok := c.get("tok", now.Add(time.Second)); !ok || got.ID != "s1" {
		t.Fatal("a fresh entry must be served")
	}
	if _, _, ok := c.get("tok", now.Add(authCacheTTL)); ok {
		t.Fatal("an entry is believed for authCacheTTL at most")
	}
	c.put("tok", s, fednode.User{}, now)
	c.forget([]string{"other", "s1"})
	if _, _, ok := c.get("tok", now); ok {
		t.Fatal("a revoked session's token must be forgotten at once")
	}
	short := fednode.Session{ID: "s2", ExpiresAt: now.Add(time.Second)}
	c.put("tok2", short, fednode.User{}, now)
	if _, _, ok := c.get("tok2", now.Add(2*time.Second)); ok {
		t.Fatal("an entry never outlives its session")
	}
	for i := 0; i < authCacheMax+10; i++ {
		c.put(fmt.Sprint(i), s, fednode.User{}, now)
	}
	if n := len(c.entries); n > authCacheMax {
		t.Fatalf("%d entries; the cache is bounded at %d", n, authCacheMax)
	}
}
