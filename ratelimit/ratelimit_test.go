package ratelimit_test

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/ratelimit"
	"github.com/fednode/fednode/redis"
)

func redisLimiter(t testing.TB, srv *redistest.Server) *redis.Limiter {
	c, err := redis.NewClient(redis.Options{URL: srv.URL(), Password: redistest.Password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return redis.NewLimiter(c, "test")
}

// Both implementations, the same behaviour.
func limiters(t *testing.T) map[string]ratelimit.Limiter {
	return map[string]ratelimit.Limiter{"memory": ratelimit.NewMemory(nil), "redis": redisLimiter(t, redistest.Start(t))}
}

func TestExactlyLimitPassUnderConcurrency(t *testing.T) {
	for name, l := range limiters(t) {
		t.Run(name, func(t *testing.T) {
			var passed atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < 100; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					d, err := l.Allow(context.Background(), "concurrent", ratelimit.Rule{Limit: 10, Window: time.Minute})
					if err != nil {
						t.Error(err)
					}
					if d.Allowed {
						passed.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			if passed.Load() != 10 {
				t.Fatalf("%d of 100 concurrent requests passed a limit of 10", passed.Load())
			}
		})
	}
}

func TestSlidingWindow(t *testing.T) {
	for name, l := range limiters(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			rule := ratelimit.Rule{Limit: 3, Window: 300 * time.Millisecond}
			for i := 0; i < 3; i++ {
				d, _ := l.Allow(ctx, "k", rule)
				if !d.Allowed || d.Remaining != 2-i {
					t.Fatalf("event %d: %+v", i, d)
				}
				if i == 0 {
					time.Sleep(150 * time.Millisecond) // the first event ages out before the others
				}
			}
			d, _ := l.Allow(ctx, "k", rule)
			if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > rule.Window {
				t.Fatalf("fourth: %+v", d)
			}
			if d, _ := l.Allow(ctx, "other", rule); !d.Allowed {
				t.Fatal("keys are independent")
			}
			if d.RetryAfter > 200*time.Millisecond {
				t.Fatalf("RetryAfter %v: it must be when the oldest event leaves, ~150ms from now", d.RetryAfter)
			}
			time.Sleep(d.RetryAfter + 20*time.Millisecond)
			if d, _ := l.Allow(ctx, "k", rule); !d.Allowed {
				t.Fatalf("after RetryAfter the window has room: %+v", d)
			}
			if d, _ := l.Allow(ctx, "k", rule); d.Allowed {
				t.Fatal("a sliding window frees one slot per aged event, not all")
			}
		})
	}
}

// failing is a primary that fails while down is set.
type failing struct {
	down  atomic.Bool
	calls atomic.Int32
	inner ratelimit.Limiter
}

func (f *failing) Allow(ctx context.Context, key string, r ratelimit.Rule) (ratelimit.Decision, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return ratelimit.Decision{}, errors.New("connection refused")
	}
	return f.inner.Allow(ctx, key, r)
}

func TestFailover(t *testing.T) {
	rule := ratelimit.Rule{Limit: 2, Window: time.Minute}
	ctx := context.Background()
	for _, open := range []bool{true, false} {
		primary := &failing{inner: ratelimit.NewMemory(nil)}
		var fallbacks atomic.Int32
		f := &ratelimit.Failover{Primary: primary, Fallback: ratelimit.NewMemory(nil), FailOpen: open, Cooldown: 50 * time.Millisecond,
			OnFallback: func(error) { fallbacks.Add(1) }}
		primary.down.Store(true)
		d, err := f.Allow(ctx, "k", rule)
		if open {
			if err != nil || !d.Allowed {
				t.Fatalf("fail open: %+v %v", d, err)
			}
			f.Allow(ctx, "k", rule)
			if d, _ := f.Allow(ctx, "k", rule); d.Allowed {
				t.Fatal("fail open still limits, in process")
			}
		} else if !errors.Is(err, ratelimit.ErrUnavailable) || d.RetryAfter <= 0 {
			t.Fatalf("fail closed: %+v %v", d, err)
		}
		calls := primary.calls.Load()
		f.Allow(ctx, "k2", rule)
		if primary.calls.Load() != calls {
			t.Fatal("during the cooldown the primary must not be asked")
		}
		if fallbacks.Load() < 2 {
			t.Fatal("every fallback must be counted")
		}
		primary.down.Store(false)
		time.Sleep(60 * time.Millisecond)
		if d, err := f.Allow(ctx, "k3", rule); err != nil || !d.Allowed || !f.Up() {
			t.Fatalf("recovery without restart: %+v %v", d, err)
		}
	}
}

// BenchmarkDecisions: limiter decisions per second in process and on a real
// Redis, same run. Compare with redis-benchmark against the same server:
//
//	go test ./ratelimit -run '^$' -bench Decisions -benchtime 3s
func BenchmarkDecisions(b *testing.B) {
	srv := redistest.Start(b)
	for name, l := range map[string]ratelimit.Limiter{"memory": ratelimit.NewMemory(nil), "redis": redisLimiter(b, srv)} {
		b.Run(name, func(b *testing.B) {
			rule := ratelimit.Rule{Limit: 1 << 30, Window: time.Minute}
			var n atomic.Int64
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				i := n.Add(1)
				key := "bench-" + string(rune('a'+i%26))
				for pb.Next() {
					if _, err := l.Allow(context.Background(), key, rule); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
	// redis-benchmark against the same server, in the same run: the ceiling
	// for one round trip per decision.
	b.Run("redis-benchmark-incr", func(b *testing.B) {
		host, port, _ := net.SplitHostPort(srv.Addr)
		out, err := exec.Command("redis-benchmark", "-h", host, "-p", port, "-a", redistest.Password,
			"-t", "incr", "-c", "16", "-n", "100000", "--csv").Output()
		if err != nil {
			b.Fatalf("redis-benchmark: %v", err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Split(line, ",")
			if len(f) > 1 && strings.Contains(f[0], "INCR") {
				rps, _ := strconv.ParseFloat(strings.Trim(f[1], `"`), 64)
				b.ReportMetric(rps, "requests/s")
				return
			}
		}
		b.Fatalf("no INCR line in %q", out)
	})
}
