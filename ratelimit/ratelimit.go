// Package ratelimit decides whether a request may proceed under a sliding
// window: at most Limit events per key in any Window.
//
// Memory is the exact in-process implementation (a log of event times per
// key) for a single node; package redis provides the same decision for
// replicas, one atomic Lua script per decision. Failover puts the in-process
// limiter behind Redis for RATE_LIMIT_FAIL_OPEN=true, or refuses with
// ErrUnavailable for false.
package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fednode/fednode"
)

// Rule is a limit: Limit events per Window.
type Rule struct {
	Limit  int
	Window time.Duration
}

// Decision is the answer for one event.
type Decision struct {
	Allowed    bool
	Limit      int
	Remaining  int           // events left in the window after this one
	RetryAfter time.Duration // when refused: until the oldest event leaves the window
	Reset      time.Duration // until the window has fully room again
}

// Limiter decides one event for a key (class and client key, already
// combined by the caller) under a rule.
type Limiter interface {
	Allow(ctx context.Context, key string, r Rule) (Decision, error)
}

// ErrUnavailable is returned by Failover in fail-closed mode when the shared
// limiter cannot answer.
var ErrUnavailable = fmt.Errorf("ratelimit: the shared limiter is unavailable: %w", fednode.ErrUnavailable)

// Memory is an exact sliding-window-log limiter in process memory. Idle keys
// are swept so memory stays proportional to active clients.
type Memory struct {
	now func() time.Time

	mu     sync.Mutex
	logs   map[string][]time.Time
	sweep  time.Time
	maxAge time.Duration
}

// NewMemory returns an in-process limiter; now nil means time.Now.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, logs: map[string][]time.Time{}}
}

// Allow implements Limiter.
func (m *Memory) Allow(ctx context.Context, key string, r Rule) (Decision, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.Window > m.maxAge {
		m.maxAge = r.Window
	}
	if now.Sub(m.sweep) > time.Minute {
		m.sweepLocked(now)
	}
	log := m.logs[key]
	cut := now.Add(-r.Window)
	i := 0
	for i < len(log) && !log[i].After(cut) {
		i++
	}
	log = log[i:]
	d := Decision{Limit: r.Limit}
	if len(log) >= r.Limit {
		m.logs[key] = log
		d.RetryAfter = log[len(log)-r.Limit].Add(r.Window).Sub(now)
		d.Reset = log[len(log)-1].Add(r.Window).Sub(now)
		return d, nil
	}
	log = append(log, now)
	m.logs[key] = log
	d.Allowed, d.Remaining = true, r.Limit-len(log)
	d.Reset = log[0].Add(r.Window).Sub(now)
	return d, nil
}

func (m *Memory) sweepLocked(now time.Time) {
	for k, log := range m.logs {
		if len(log) == 0 || now.Sub(log[len(log)-1]) > m.maxAge {
			delete(m.logs, k)
		}
	}
	m.sweep = now
}

// Failover asks Primary (Redis) and, when it fails, either decides with
// Fallback (fail open: availability) or returns ErrUnavailable (fail closed:
// security). After a failure Primary is left alone for Cooldown, so a dead
// Redis costs no request a connection timeout; then it is tried again, and
// the node recovers by itself when Redis returns.
type Failover struct {
	Primary    Limiter
	Fallback   Limiter
	FailOpen   bool
	Cooldown   time.Duration
	OnFallback func(err error) // counts fallbacks (a metric); may be nil
	Now        func() time.Time

	mu        sync.Mutex
	downUntil time.Time
}

// Allow implements Limiter.
func (f *Failover) Allow(ctx context.Context, key string, r Rule) (Decision, error) {
	now := f.now()
	f.mu.Lock()
	down := now.Before(f.downUntil)
	f.mu.Unlock()
	var err error
	if !down {
		var d Decision
		if d, err = f.Primary.Allow(ctx, key, r); err == nil {
			return d, nil
		}
		f.mu.Lock()
		f.downUntil = now.Add(f.Cooldown)
		f.mu.Unlock()
	} else {
		err = ErrUnavailable
	}
	if f.OnFallback != nil {
		f.OnFallback(err)
	}
	if !f.FailOpen {
		return Decision{Limit: r.Limit, RetryAfter: f.Cooldown}, ErrUnavailable
	}
	return f.Fallback.Allow(ctx, key, r)
}

func (f *Failover) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// Up reports whether the primary is currently believed to answer.
func (f *Failover) Up() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.now().Before(f.downUntil)
}
