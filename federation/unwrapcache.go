package federation

import (
	"container/list"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"time"

	fcrypto "github.com/fednode/fednode/crypto"
	"github.com/fednode/fednode/keys"
)

// Bounds on the receiver's cache of unwrapped data keys (the package's
// crypto summary "reusing data keys" says why).
const (
	// UnwrapCacheSize is how many data keys the receiver keeps: enough for
	// every peer's current data key, as many peers as the node serves at
	// once, and small (about 200 bytes an entry).
	UnwrapCacheSize = 4096
	// UnwrapCacheTTL is how long after its first unwrap a data key is kept:
	// the sender's DataKeyMaxAge, plus slack for requests in flight.
	UnwrapCacheTTL = DataKeyMaxAge + 10*time.Minute
)

// UnwrapCacheOptions tune NewUnwrapCache; the zero value is right for
// production.
type UnwrapCacheOptions struct {
	Size int           // entries; 0 means UnwrapCacheSize
	TTL  time.Duration // per entry, from its first unwrap; 0 means UnwrapCacheTTL
	Now  func() time.Time
}

// UnwrapCache remembers the data keys this node has unwrapped, so that a
// sender reusing a data key costs the receiver one RSA-OAEP decryption (or
// one Vault Transit call) per data key instead of one per message.
//
// An entry is keyed by the full id of the encryption key that unwrapped it
// and the SHA-256 of the wrapped bytes, never by the sender's data key id:
// RSA-OAEP decryption is a function of the private key and the ciphertext,
// so an entry holds exactly what unwrapping those bytes would give, whoever
// sent them. A sender cannot poison another's entry, and the same id with
// other wrapped bytes is unwrapped afresh.
//
// An entry lives at most TTL after its first unwrap (expired entries leave
// memory at the first unwrap a minute or more after the last sweep), the
// least recently used goes first when the cache is full, and an entry is served only while
// its encryption key is still one of the keyring's live keys: when a
// rotation's overlap ends (or a key is withdrawn), every entry of that key
// is dropped at its next use. Failures are not cached. Concurrent unwraps
// of the same bytes wait for one decryption.
//
// It is safe for concurrent use. A nil *UnwrapCache unwraps every time.
type UnwrapCache struct {
	size int
	ttl  time.Duration
	now  func() time.Time

	mu      sync.Mutex
	entries map[unwrapKey]*list.Element // values are *unwrapEntry
	lru     list.List                   // most recently used first
	swept   time.Time
}

// unwrapSweepEvery is how often expired entries are dropped from memory (on
// the next unwrap after it), whether or not they are used again.
const unwrapSweepEvery = time.Minute

type unwrapKey struct {
	encKeyID string // full key id
	wrapped  [sha256.Size]byte
}

type unwrapEntry struct {
	key     unwrapKey
	ready   chan struct{} // closed when the first unwrap ended
	settled bool          // under mu: the first unwrap ended
	dataKey []byte        // set before ready is closed; nil when it failed
	expires time.Time     // under mu
}

// NewUnwrapCache returns an empty cache with the bounds of o.
func NewUnwrapCache(o UnwrapCacheOptions) *UnwrapCache {
	c := &UnwrapCache{size: o.Size, ttl: o.TTL, now: o.Now, entries: map[unwrapKey]*list.Element{}}
	if c.size <= 0 {
		c.size = UnwrapCacheSize
	}
	if c.ttl <= 0 {
		c.ttl = UnwrapCacheTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Unwrap returns the data key wrapped to encKeyID (a full key id of this
// node), from the cache when it was unwrapped before and its key is still
// live, else with kr (and then keeps it). Errors wrap ErrUnwrap and kr's
// error, so keys.ErrUnavailable stays visible.
func (c *UnwrapCache) Unwrap(ctx context.Context, kr Unwrapper, encKeyID string, wrapped []byte) ([]byte, error) {
	_, kid, err := ParseKeyID(encKeyID)
	if err != nil {
		return nil, ErrUnwrap
	}
	if c == nil {
		return unwrap(ctx, kr, kid, wrapped)
	}
	key := unwrapKey{encKeyID: encKeyID, wrapped: sha256.Sum256(wrapped)}
	for {
		e, first := c.claim(key)
		if first {
			dk, err := unwrap(ctx, kr, kid, wrapped)
			c.settle(e, dk)
			return dk, err
		}
		select {
		case <-e.ready:
		case <-ctx.Done():
			return unwrap(ctx, kr, kid, wrapped) // exactly what an uncached call would do now
		}
		if e.dataKey == nil {
			continue // the first unwrap failed; failures are not cached
		}
		if live, err := keyLive(ctx, kr, kid); err != nil || !live {
			if err == nil {
				c.drop(encKeyID)
			}
			return unwrap(ctx, kr, kid, wrapped) // the keyring decides, and refuses a retired key
		}
		return slices.Clone(e.dataKey), nil
	}
}

func unwrap(ctx context.Context, kr Unwrapper, kid string, wrapped []byte) ([]byte, error) {
	dk, err := kr.Decrypt(ctx, kid, wrapped)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnwrap, err)
	}
	return dk, nil
}

// keyLive reports whether kid is a live encryption key of kr.
func keyLive(ctx context.Context, kr Unwrapper, kid string) (bool, error) {
	pubs, err := kr.PublicKeys(ctx)
	if err != nil {
		return false, err
	}
	for _, k := range pubs {
		if k.ID == kid && k.Use == keys.UseEnc {
			return true, nil
		}
	}
	return false, nil
}

// claim returns the entry for key and whether the caller made it, and so
// must unwrap and settle it. An expired entry is replaced.
func (c *UnwrapCache) claim(key unwrapKey) (*unwrapEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if now.Sub(c.swept) >= unwrapSweepEvery || now.Before(c.swept) {
		c.sweep(now)
	}
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*unwrapEntry)
		if !e.settled || now.Before(e.expires) {
			c.lru.MoveToFront(el)
			return e, false
		}
		c.remove(el)
	}
	e := &unwrapEntry{key: key, ready: make(chan struct{})}
	c.entries[key] = c.lru.PushFront(e)
	for c.lru.Len() > c.size {
		c.remove(c.lru.Back()) // a waiter of an evicted entry still gets its result
	}
	return e, true
}

// settle records the first unwrap's result: a data key is kept for TTL, a
// failure forgets the entry.
func (c *UnwrapCache) settle(e *unwrapEntry, dk []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.settled = true
	if len(dk) == fcrypto.DataKeySize {
		e.dataKey = slices.Clone(dk)
		e.expires = c.now().Add(c.ttl)
	} else if el, ok := c.entries[e.key]; ok && el.Value == e {
		c.remove(el)
	}
	close(e.ready)
}

// sweep drops every expired entry. The caller holds c.mu.
func (c *UnwrapCache) sweep(now time.Time) {
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*unwrapEntry); e.settled && !now.Before(e.expires) {
			c.remove(el)
		}
		el = next
	}
	c.swept = now
}

// drop forgets every entry of the encryption key encKeyID.
func (c *UnwrapCache) drop(encKeyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if el.Value.(*unwrapEntry).key.encKeyID == encKeyID {
			c.remove(el)
		}
		el = next
	}
}

func (c *UnwrapCache) remove(el *list.Element) {
	delete(c.entries, el.Value.(*unwrapEntry).key)
	c.lru.Remove(el)
}

// Len is how many entries the cache holds (for tests and metrics).
func (c *UnwrapCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
