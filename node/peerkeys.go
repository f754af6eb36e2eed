package node

import (
	"context"
	"sync"
	"time"

	"github.com/fednode/fednode"
)

// userKeysFetcher fetches a remote user's key document from its home node
// and verifies it (federation.UserKeysFetcher).
type userKeysFetcher interface {
	Fetch(ctx context.Context, addr fednode.Address) (fednode.UserKeyDocument, error)
}

// peerKeys keeps the peers' user key documents this node fetched and
// verified, so that its users looking keys up (a client does on every
// conversation it opens) cost the home node one signed GET per address per
// peerKeysTTL, and a user cannot spend a peer's patience on this node's
// behalf. A "no such keys" answer is kept for peerKeysNotFoundTTL; other
// failures (unreachable, not verifying) are not kept. Concurrent lookups
// of one address wait for one fetch. A key change reaches this node's
// users at most peerKeysTTL late; the clients pin keys anyway.
type peerKeys struct {
	fetch            userKeysFetcher
	now              func() time.Time
	ttl, notFoundTTL time.Duration

	mu       sync.Mutex
	docs     map[string]peerKeysEntry
	inFlight map[string]*peerKeysCall
}

type peerKeysEntry struct {
	doc     fednode.UserKeyDocument
	err     error // ENotFound, or nil
	expires time.Time
}

type peerKeysCall struct {
	done chan struct{}
	doc  fednode.UserKeyDocument
	err  error
}

// Bounds of the cache of peers' user key documents; Config's
// PeerUserKeysTTL and PeerUserKeysNotFoundTTL (tests) override the TTLs.
const (
	peerKeysTTL         = time.Minute
	peerKeysNotFoundTTL = 30 * time.Second
	peerKeysFetchLimit  = 30 * time.Second // a shared fetch outlives the caller that started it, not this
	maxPeerKeys         = 4096
)

func newPeerKeys(f userKeysFetcher, now func() time.Time, ttl, notFoundTTL time.Duration) *peerKeys {
	if ttl <= 0 {
		ttl = peerKeysTTL
	}
	if notFoundTTL <= 0 {
		notFoundTTL = peerKeysNotFoundTTL
	}
	return &peerKeys{fetch: f, now: now, ttl: ttl, notFoundTTL: notFoundTTL, docs: map[string]peerKeysEntry{}, inFlight: map[string]*peerKeysCall{}}
}

// Fetch returns addr's verified key document as its home node last said
// it, fetching it when it is not kept.
func (p *peerKeys) Fetch(ctx context.Context, addr fednode.Address) (fednode.UserKeyDocument, error) {
	key := addr.String()
	p.mu.Lock()
	if e, ok := p.docs[key]; ok && p.now().Before(e.expires) {
		p.mu.Unlock()
		return e.doc, e.err
	}
	c, ok := p.inFlight[key]
	if !ok {
		c = &peerKeysCall{done: make(chan struct{})}
		p.inFlight[key] = c
		go p.run(ctx, addr, c)
	}
	p.mu.Unlock()
	select {
	case <-c.done:
		return c.doc, c.err
	case <-ctx.Done():
		return fednode.UserKeyDocument{}, ctx.Err()
	}
}

// run fetches addr for every caller waiting on c: not under the first
// caller's cancellation, which must not fail the others.
func (p *peerKeys) run(ctx context.Context, addr fednode.Address, c *peerKeysCall) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), peerKeysFetchLimit)
	defer cancel()
	c.doc, c.err = p.fetch.Fetch(ctx, addr)
	key := addr.String()
	now := p.now() // the answer's time, before any waiter goes on
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inFlight, key)
	close(c.done)
	ttl := p.ttl
	if c.err != nil {
		if fednode.ErrorCode(c.err) != fednode.ENotFound {
			return
		}
		ttl = p.notFoundTTL
	}
	if len(p.docs) >= maxPeerKeys {
		for k, e := range p.docs {
			if !now.Before(e.expires) {
				delete(p.docs, k)
			}
		}
		if len(p.docs) >= maxPeerKeys {
			p.docs = map[string]peerKeysEntry{} // full of live entries: start over, fetching again is only slower
		}
	}
	p.docs[key] = peerKeysEntry{doc: c.doc, err: c.err, expires: now.Add(ttl)}
}
