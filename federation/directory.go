package federation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Directory fetches peers' node documents and caches them.
//
// A document is cached for TTL. When a signature from a peer fails to verify
// with the cached keys (the peer may have rotated), the inbox calls Refresh,
// which refetches at most once per RefetchEvery per peer: a flood of bad
// signatures cannot make the node hammer anyone. A failed fetch is
// remembered for a short while for the same reason. Fetches for one peer are
// serialised, so concurrent requests wait for one fetch instead of each
// making their own.
type Directory struct {
	client       *http.Client
	scheme       string
	ttl          time.Duration
	refetchEvery time.Duration
	now          func() time.Time

	mu      sync.Mutex
	entries map[string]*dirEntry
	fetches atomic.Int64
}

type dirEntry struct {
	mu        sync.Mutex
	peer      *Peer
	fetchedAt time.Time
	forcedAt  time.Time
	err       error
	errAt     time.Time
}

// negativeTTL is how long a failed fetch is remembered.
const negativeTTL = 10 * time.Second

// NewDirectory returns a directory fetching over client with scheme ("https",
// or "http" in development).
func NewDirectory(client *http.Client, scheme string, ttl, refetchEvery time.Duration, now func() time.Time) *Directory {
	return &Directory{client: client, scheme: scheme, ttl: ttl, refetchEvery: refetchEvery, now: now, entries: map[string]*dirEntry{}}
}

func (d *Directory) entry(domain string) *dirEntry {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.entries[domain]
	if e == nil {
		e = &dirEntry{}
		d.entries[domain] = e
	}
	return e
}

// Peer returns the peer's validated document, from cache while fresh.
func (d *Directory) Peer(ctx context.Context, domain string) (*Peer, error) {
	e := d.entry(domain)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := d.now()
	if e.peer != nil && now.Sub(e.fetchedAt) < d.ttl {
		return e.peer, nil
	}
	if e.err != nil && now.Sub(e.errAt) < negativeTTL {
		if e.peer != nil {
			return e.peer, nil // stale beats nothing while the peer is unreachable
		}
		return nil, e.err
	}
	return d.fetchLocked(ctx, e, domain)
}

// Refresh refetches the peer's document unless it was force-refetched less
// than RefetchEvery ago. It reports whether it fetched.
func (d *Directory) Refresh(ctx context.Context, domain string) (*Peer, bool, error) {
	e := d.entry(domain)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := d.now()
	if !e.forcedAt.IsZero() && now.Sub(e.forcedAt) < d.refetchEvery {
		if e.peer == nil {
			return nil, false, errors.New("federation: peer document unavailable")
		}
		return e.peer, false, nil
	}
	e.forcedAt = now
	p, err := d.fetchLocked(ctx, e, domain)
	return p, err == nil, err
}

func (d *Directory) fetchLocked(ctx context.Context, e *dirEntry, domain string) (*Peer, error) {
	p, err := d.fetch(ctx, domain)
	now := d.now()
	if err != nil {
		e.err, e.errAt = err, now
		return nil, err
	}
	e.peer, e.fetchedAt, e.err = p, now, nil
	return p, nil
}

// Fetches is how many documents the directory has requested (for tests and
// metrics).
func (d *Directory) Fetches() int64 { return d.fetches.Load() }

func (d *Directory) fetch(ctx context.Context, domain string) (*Peer, error) {
	d.fetches.Add(1)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.scheme+"://"+domain+WellKnownPath, nil)
	if err != nil {
		return nil, fmt.Errorf("federation: fetch %s: %w", domain, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("federation: fetch %s: %w", domain, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("federation: fetch %s: HTTP %d", domain, resp.StatusCode)
	}
	body, err := ReadCapped(resp, MaxDocumentBytes)
	if err != nil {
		return nil, fmt.Errorf("federation: fetch %s: %w", domain, err)
	}
	return ParseNodeDocument(body, domain, d.scheme, d.now())
}
