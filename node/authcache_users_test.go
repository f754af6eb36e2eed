package node

import (
	"testing"
	"time"

	"github.com/fednode/fednode"
)

// TestAuthCacheForgetsUsers: a role or suspension change drops every
// cached token of that user, and only theirs.
func TestAuthCacheForgetsUsers(t *testing.T) {
	c := newAuthCache()
	now := time.Unix(1_800_000_000, 0)
	for tok, user := range map[string]string{"a1": "alice", "a2": "alice", "b1": "bob"} {
		c.put(tok, fednode.Session{ID: tok, Username: user, ExpiresAt: now.Add(time.Hour)}, fednode.User{Username: user}, now)
	}
	c.forgetUsers([]string{"alice", "nobody"})
	for tok, kept := range map[string]bool{"a1": false, "a2": false, "b1": true} {
		if _, _, ok := c.get(tok, now); ok != kept {
			t.Errorf("token %s cached = %v, want %v", tok, ok, kept)
		}
	}
	c.forgetUsers(nil)
	if _, _, ok := c.get("b1", now); !ok {
		t.Error("forgetting no one forgets nobody")
	}
}
