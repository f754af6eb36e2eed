package daemon_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/node"
)

// TestTokenNeverLiftsPublicLimits: a bearer token, valid or not, never moves
// a request on a route that needs no login out of its IP's class.
func TestTokenNeverLiftsPublicLimits(t *testing.T) {
	n := startNode(t, func(c *daemon.Config) {
		c.RateLimits[node.ClassAPIAnon] = rule(3)
		c.RateLimits[node.ClassProbe] = rule(2)
		c.RateLimits[node.ClassMetrics] = rule(2)
	})
	n.register("alice", "password-alice")
	valid := n.login("alice", "password-alice")
	for _, tt := range []struct {
		name, token string
		paths       []string // requests in order; the last is over the limit
	}{
		{"node document, bad token", "garbage", []string{anonPath, anonPath, anonPath, anonPath}},
		{"probes, bad token", "garbage", []string{"/healthz", "/readyz", "/healthz"}},
		{"metrics, valid token", valid, []string{"/metrics", "/metrics", "/metrics"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n.clock.Advance(2 * time.Minute) // a fresh window
			for i, p := range tt.paths {
				r := n.get(p, tt.token)
				if i < len(tt.paths)-1 {
					if r.Status != 200 {
						t.Fatalf("request %d to %s: %d", i, p, r.Status)
					}
					continue
				}
				expect429(t, r, "the request over the limit, with a token, to "+p)
			}
		})
	}
	t.Run("unknown paths and a valid token", func(t *testing.T) {
		n.clock.Advance(2 * time.Minute)
		for i := 0; i < 3; i++ {
			if r := n.get("/no/such/path", valid); r.Status != 404 {
				t.Fatalf("request %d: %d", i, r.Status)
			}
		}
		expect429(t, n.get("/no/such/path", valid), "fourth request to an unknown path")
		// A refused token on an authenticated route counts against the same
		// window, and so is refused as over the limit.
		if r := n.get("/api/me", "garbage"); r.Status != 429 {
			t.Fatalf("a refused token after the IP's window is spent: %d", r.Status)
		}
		// The valid token is counted per user on authenticated routes.
		if r := n.get("/api/me", valid); r.Status != 200 {
			t.Fatalf("alice's own limit is untouched: %d", r.Status)
		}
	})
	t.Run("a preflight is counted too", func(t *testing.T) {
		n.clock.Advance(2 * time.Minute)
		for i := 0; i < 4; i++ {
			r := n.request(http.MethodOptions, "/api/messages", "Origin", "https://app.example", "Access-Control-Request-Method", "POST", "Authorization", "Bearer "+valid)
			if i < 3 && r.Status == 429 || i == 3 && r.Status != 429 {
				t.Fatalf("preflight %d: %d", i, r.Status)
			}
		}
	})
}

// TestProbesAndMetricsDuringRedisOutage: while Redis is down, liveness and
// metrics keep answering on every replica, readiness says why it is not
// ready, and in fail-closed mode every other limited route answers 503,
// whatever headers the request carries.
func TestProbesAndMetricsDuringRedisOutage(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		name := map[bool]string{true: "fail open", false: "fail closed"}[failOpen]
		t.Run(name, func(t *testing.T) {
			srv := redistest.Start(t)
			n := startNode(t, onRedis(srv.URL(), false), func(c *daemon.Config) { c.RateLimitFailOpen = failOpen })
			if r := n.do("GET", "/readyz", "", nil); r.Status != 200 {
				t.Fatalf("ready before the outage: %d %s", r.Status, r.Raw)
			}
			srv.Stop()
			time.Sleep(300 * time.Millisecond)
			if r := n.do("GET", "/healthz", "", nil); r.Status != 200 {
				t.Fatalf("liveness during the outage: %d %s", r.Status, r.Raw)
			}
			if r := n.get("/metrics", ""); r.Status != 200 {
				t.Fatalf("metrics during the outage: %d", r.Status)
			}
			r := n.do("GET", "/readyz", "", nil)
			if r.Status != 503 || !strings.Contains(r.Raw, "not ready") || !strings.Contains(r.Raw, "store") || strings.Contains(r.Raw, "127.0.0.1") {
				t.Fatalf("readiness during the outage must say the store, without its address: %d %s", r.Status, r.Raw)
			}
			if !failOpen {
				for _, path := range []string{anonPath, "/no/such/path"} {
					if r := n.get(path, "garbage"); r.Status != 503 {
						t.Fatalf("fail closed: %s with a token: %d", path, r.Status)
					}
				}
				if r := n.request(http.MethodOptions, "/api/messages", "Origin", "https://app.example", "Access-Control-Request-Method", "POST"); r.Status != 503 {
					t.Fatalf("fail closed: a preflight: %d", r.Status)
				}
			}
			srv.Restart()
			deadline := time.Now().Add(10 * time.Second)
			for n.do("GET", "/readyz", "", nil).Status != 200 {
				if time.Now().After(deadline) {
					t.Fatal("not ready again after Redis returned")
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// TestReadyzWhileShuttingDown: once Close has begun, readiness says so.
func TestReadyzWhileShuttingDown(t *testing.T) {
	n := startNode(t)
	h := n.srv.Handler()
	probe := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec
	}
	if rec := probe(); rec.Code != 200 {
		t.Fatalf("before: %d %s", rec.Code, rec.Body)
	}
	if err := n.srv.Close(); err != nil {
		t.Fatal(err)
	}
	n.srv = nil
	rec := probe()
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "shutting down") {
		t.Fatalf("after Close: %d %s", rec.Code, rec.Body)
	}
}
