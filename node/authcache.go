package node

import (
	"sync"
	"time"

	"github.com/fednode/fednode"
)

// authCacheTTL is how long a verified token is believed without checking
// its session in the store again. A revocation on this replica, and on any
// replica whose revocation event reaches this one, takes effect at once;
// only a lost event (Redis pub/sub is at-most-once) leaves a revoked
// session usable here, for at most this long.
const authCacheTTL = 5 * time.Second

// authCacheMax bounds the cache; past it, entries are dropped at random.
const authCacheMax = 65536

// authCache remembers tokens that verified, with their session and user,
// so that an authenticated request costs neither a JWT parse nor two store
// reads. It is keyed by the token itself and lives in memory only.
type authCache struct {
	mu      sync.Mutex
	entries map[string]authEntry
}

type authEntry struct {
	sess  fednode.Session
	user  fednode.User
	until time.Time
}

func newAuthCache() *authCache { return &authCache{entries: map[string]authEntry{}} }

// get returns the cached session and user of token, if still fresh.
func (c *authCache) get(token string, now time.Time) (fednode.Session, fednode.User, bool) {
	c.mu.Lock()
	e, ok := c.entries[token]
	c.mu.Unlock()
	if !ok || !now.Before(e.until) {
		return fednode.Session{}, fednode.User{}, false
	}
	return e.sess, e.user, true
}

// put remembers a verified token until the earlier of the cache's TTL and
// the session's own expiry.
func (c *authCache) put(token string, s fednode.Session, u fednode.User, now time.Time) {
	until := now.Add(authCacheTTL)
	if s.ExpiresAt.Before(until) {
		until = s.ExpiresAt
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= authCacheMax {
		for k := range c.entries { // map order is random enough for an eviction
			delete(c.entries, k)
			if len(c.entries) < authCacheMax*3/4 {
				break
			}
		}
	}
	c.entries[token] = authEntry{sess: s, user: u, until: until}
}

// forget drops every cached token of the given sessions.
func (c *authCache) forget(sessionIDs []string) {
	c.drop(sessionIDs, func(e authEntry) string { return e.sess.ID })
}

// forgetUsers drops every cached token of the given users (canonical
// names), so that a changed role or suspension is read from the store.
func (c *authCache) forgetUsers(names []string) {
	c.drop(names, func(e authEntry) string { return e.sess.Username })
}

// drop deletes the entries whose key is one of keys.
func (c *authCache) drop(keys []string, key func(authEntry) string) {
	if len(keys) == 0 {
		return
	}
	gone := make(map[string]bool, len(keys))
	for _, k := range keys {
		gone[k] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if gone[key(e)] {
			delete(c.entries, k)
		}
	}
}
