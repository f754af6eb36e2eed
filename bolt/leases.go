package bolt

import (
	"context"
	"errors"
	"sync"
	"time"
)

// AcquireLease takes the named lease for owner for ttl, or renews it if
// owner holds it. It reports whether owner holds the lease now. The embedded
// store serves one process, so its leases live in memory; like every other
// call, they fail once the store is closed.
func (d *Store) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if d.isClosed() {
		return false, errors.New("bolt: acquire lease: store closed")
	}
	return d.leases.acquire(name, owner, ttl), nil
}

// ReleaseLease gives the lease up if owner holds it.
func (d *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	if d.isClosed() {
		return errors.New("bolt: release lease: store closed")
	}
	d.leases.release(name, owner)
	return nil
}

type leases struct {
	mu      sync.Mutex
	m       map[string]lease
	sweepAt int // the size at which expired leases are next swept out
}

type lease struct {
	owner string
	until time.Time
}

func (l *leases) acquire(name, owner string, ttl time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]lease{}
	}
	now := time.Now()
	if cur, ok := l.m[name]; ok && cur.owner != owner && now.Before(cur.until) {
		return false
	}
	if len(l.m) >= l.sweepAt { // one-off leases (spent challenges) would pile up
		for k, cur := range l.m {
			if !now.Before(cur.until) {
				delete(l.m, k)
			}
		}
		l.sweepAt = max(1024, 2*len(l.m))
	}
	l.m[name] = lease{owner: owner, until: now.Add(ttl)}
	return true
}

func (l *leases) release(name, owner string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.m[name]; ok && cur.owner == owner {
		delete(l.m, name)
	}
}
