package federation

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Directory fetches peers' node documents and caches them.
//
// A document is cached for TTL. When a signature from a peer fails to verify
// with the cached keys (the peer may have rotated), the inbox asks for an
// early refetch, which happens at most once per RefetchEvery per peer and
// budget: a flood of bad signatures cannot make the node hammer anyone.
// There are two budgets. Refresh spends the one that anybody can trigger (a
// request from an address the peer has never delivered from); RefreshTrusted
// spends one that only the peer itself can: its own answers to us, and
// requests from addresses its verified deliveries came from. So forged
// requests under a peer's name cannot delay that peer's key rotation. A
// failed fetch is remembered for a short while for the same reason. Fetches
// for one peer are serialised, so concurrent requests wait for one fetch
// instead of each making their own.
type Directory struct {
	shared       Shared
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
	forcedAt  [2]time.Time // by budget
	err       error
	errAt     time.Time
}

// Early-refetch budgets, and the lease that spends each across replicas.
const (
	budgetAnyone = iota
	budgetTrusted
)

var budgetLease = [2]string{budgetAnyone: "refetch:", budgetTrusted: "refetch-trusted:"}

// negativeTTL is how long a failed fetch is remembered.
const negativeTTL = 10 * time.Second

// Shared is the replicas' common cache of documents, and the lease that
// limits early refetches to one per interval across all of them.
type Shared interface {
	PeerDocument(ctx context.Context, domain string) ([]byte, time.Time, error)
	SetPeerDocument(ctx context.Context, domain string, doc []byte, fetchedAt time.Time) error
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
}

// NewDirectory returns a directory fetching over client with scheme ("https",
// or "http" in development). shared may be nil (a single process).
func NewDirectory(client *http.Client, scheme string, ttl, refetchEvery time.Duration, now func() time.Time, shared Shared) *Directory {
	return &Directory{client: client, scheme: scheme, ttl: ttl, refetchEvery: refetchEvery, now: now, entries: map[string]*dirEntry{}, shared: shared}
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
	if p, at, ok := d.fromShared(ctx, domain); ok && now.Sub(at) < d.ttl {
		e.peer, e.fetchedAt, e.err = p, at, nil
		return p, nil
	}
	return d.fetchLocked(ctx, e, domain)
}

// fromShared reads another replica's copy of a document.
func (d *Directory) fromShared(ctx context.Context, domain string) (*Peer, time.Time, bool) {
	if d.shared == nil {
		return nil, time.Time{}, false
	}
	doc, at, err := d.shared.PeerDocument(ctx, domain)
	if err != nil {
		return nil, time.Time{}, false
	}
	p, err := ParseNodeDocument(doc, domain, d.scheme, d.now())
	if err != nil {
		return nil, time.Time{}, false
	}
	return p, at, true
}

// Refresh refetches the peer's document unless an early refetch on the
// budget anyone can trigger happened less than RefetchEvery ago. It reports
// whether it fetched.
func (d *Directory) Refresh(ctx context.Context, domain string) (*Peer, bool, error) {
	return d.refresh(ctx, domain, budgetAnyone)
}

// RefreshTrusted is Refresh on the budget only the peer itself can spend:
// call it for a failure that a third party cannot cause (the peer's own
// answer, or a request from an address the peer delivered from).
func (d *Directory) RefreshTrusted(ctx context.Context, domain string) (*Peer, bool, error) {
	return d.refresh(ctx, domain, budgetTrusted)
}

func (d *Directory) refresh(ctx context.Context, domain string, budget int) (*Peer, bool, error) {
	e := d.entry(domain)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := d.now()
	allowed := e.forcedAt[budget].IsZero() || now.Sub(e.forcedAt[budget]) >= d.refetchEvery
	if allowed && d.shared != nil {
		// One early refetch per interval and budget across all replicas.
		var err error
		allowed, err = d.shared.AcquireLease(ctx, budgetLease[budget]+domain, fmt.Sprintf("%p-%d", d, now.UnixNano()), d.refetchEvery)
		if err != nil {
			allowed = false
		}
		if !allowed { // another replica refetched: its copy may be what we need
			if p, at, ok := d.fromShared(ctx, domain); ok && at.After(e.fetchedAt) {
				e.peer, e.fetchedAt, e.forcedAt[budget] = p, at, now
				return p, true, nil
			}
		}
	}
	if !allowed {
		if e.peer == nil {
			return nil, false, errors.New("federation: peer document unavailable")
		}
		return e.peer, false, nil
	}
	e.forcedAt[budget] = now
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
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != DocumentMediaType {
		return nil, fmt.Errorf("federation: fetch %s: %w: served as %q, not %s", domain, ErrInvalidDocument, resp.Header.Get("Content-Type"), DocumentMediaType)
	}
	body, err := ReadCapped(resp, MaxDocumentBytes)
	if err != nil {
		return nil, fmt.Errorf("federation: fetch %s: %w", domain, err)
	}
	p, err := ParseNodeDocument(body, domain, d.scheme, d.now())
	if err != nil {
		return nil, fmt.Errorf("federation: fetch %s: %w: %w", domain, ErrInvalidDocument, err)
	}
	if d.shared != nil {
		d.shared.SetPeerDocument(ctx, domain, body, d.now()) // best effort: the fetch itself succeeded
	}
	return p, nil
}
