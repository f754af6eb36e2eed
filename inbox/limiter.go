package inbox

import (
	"sync"
	"time"
)

// WindowLimiter is an in-process sliding-window limiter: at most Limit
// events per key in any Window, estimated from the current and previous
// fixed windows (the previous one weighted by how much of it still
// overlaps). It is the inbox's first line against floods; the node-wide,
// Redis-backed limiter of the abuse-protection work replaces it.
type WindowLimiter struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	current map[string]int
	prev    map[string]int
	start   time.Time
}

// NewWindowLimiter allows limit events per key per window.
func NewWindowLimiter(limit int, window time.Duration, now func() time.Time) *WindowLimiter {
	return &WindowLimiter{limit: limit, window: window, now: now, current: map[string]int{}, prev: map[string]int{}, start: now()}
}

// Allow counts one event for key and reports whether it is within the limit.
func (l *WindowLimiter) Allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	switch elapsed := now.Sub(l.start); {
	case elapsed >= 2*l.window:
		l.prev, l.current, l.start = map[string]int{}, map[string]int{}, now
	case elapsed >= l.window:
		l.prev, l.current, l.start = l.current, map[string]int{}, l.start.Add(l.window)
	}
	weight := 1 - float64(now.Sub(l.start))/float64(l.window)
	estimate := float64(l.prev[key])*weight + float64(l.current[key])
	if estimate >= float64(l.limit) {
		return false
	}
	l.current[key]++
	return true
}
