package node_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/node"
)

// queueStore is fakeStore with an outbox of many peers.
type queueStore struct {
	fakeStore
	stats fednode.QueueStats
	reads int
}

func (q *queueStore) QueueStats(context.Context) (fednode.QueueStats, error) {
	q.reads++
	return q.stats, nil
}

func openMetricsServer(t *testing.T, store fednode.Store, set func(*node.Config)) *node.Server {
	t.Helper()
	return openServer(t, store, nil, set)
}

func scrape(t *testing.T, h http.Handler, token string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestOutboxMetricsBounded: with more peers than MetricsTopPeers, the
// depth and age series name exactly the top N plus "other", whose depth
// is the sum of the rest; the store is read once per scrape window.
func TestOutboxMetricsBounded(t *testing.T) {
	now := time.Now()
	store := &queueStore{fakeStore: fakeStore{PingFn: func(context.Context) error { return nil }}}
	total := 0
	for i := range 50 {
		store.stats.Peers = append(store.stats.Peers, fednode.PeerQueue{Peer: fmt.Sprintf("p%02d.example", i), Depth: i + 1, Oldest: now.Add(-time.Duration(i) * time.Minute)})
		total += i + 1
	}
	store.stats.DeadLetters = 7
	s := openMetricsServer(t, store, func(c *node.Config) { c.MetricsTopPeers = 3 })
	code, body := scrape(t, s.Handler(), "")
	if code != http.StatusOK {
		t.Fatalf("scrape: %d %s", code, body)
	}
	var depthLines, ageLines []string
	for _, l := range strings.Split(body, "\n") {
		switch {
		case strings.HasPrefix(l, "fednode_outbox_queue_depth{"):
			depthLines = append(depthLines, l)
		case strings.HasPrefix(l, "fednode_outbox_oldest_job_age_seconds{"):
			ageLines = append(ageLines, l)
		}
	}
	wantDepth := []string{
		`fednode_outbox_queue_depth{peer="other"} ` + fmt.Sprint(total-50-49-48),
		`fednode_outbox_queue_depth{peer="p47.example"} 48`,
		`fednode_outbox_queue_depth{peer="p48.example"} 49`,
		`fednode_outbox_queue_depth{peer="p49.example"} 50`,
	}
	if strings.Join(depthLines, "\n") != strings.Join(wantDepth, "\n") {
		t.Fatalf("depth series:\n%s\nwant\n%s", strings.Join(depthLines, "\n"), strings.Join(wantDepth, "\n"))
	}
	if len(ageLines) != 4 || !strings.HasPrefix(ageLines[0], `fednode_outbox_oldest_job_age_seconds{peer="other"} 2760`) {
		t.Fatalf("age series (other is the oldest of the rest, p46: 46 min): %v", ageLines)
	}
	for _, want := range []string{"fednode_outbox_peers 50", "fednode_outbox_dead_letters 7", `fednode_dependency_up{dependency="store"} 1`, "fednode_ready 1", "fednode_bans_active 0", "fednode_build_info{"} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	scrape(t, s.Handler(), "")
	if store.reads != 1 {
		t.Fatalf("two scrapes in a row read the store %d times", store.reads)
	}
}

// TestMetricsToken: with METRICS_TOKEN, /metrics answers 401 with a JSON
// error (and its request id) without the token or with a wrong one, and
// serves the right one.
func TestMetricsToken(t *testing.T) {
	store := &queueStore{fakeStore: fakeStore{PingFn: func(context.Context) error { return nil }}}
	s := openMetricsServer(t, store, func(c *node.Config) { c.MetricsToken = "metrics-token-0123456789" })
	for _, tt := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"a wrong token", "metrics-token-0123456780", http.StatusUnauthorized},
		{"a prefix of it", "metrics-token", http.StatusUnauthorized},
		{"the token", "metrics-token-0123456789", http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := scrape(t, s.Handler(), tt.token)
			if code != tt.want {
				t.Fatalf("%d %s", code, body)
			}
			if code == http.StatusUnauthorized && (!strings.Contains(body, `"code":"unauthorized"`) || !strings.Contains(body, `"request_id":"`)) {
				t.Fatalf("401 body: %s", body)
			}
		})
	}
}

// TestMetricsSeparate: with METRICS_ADDR, the main handler no longer
// serves /metrics (a JSON 404) and MetricsHandler serves only it.
func TestMetricsSeparate(t *testing.T) {
	store := &queueStore{fakeStore: fakeStore{PingFn: func(context.Context) error { return nil }}}
	s := openMetricsServer(t, store, func(c *node.Config) { c.MetricsSeparate = true })
	if code, body := scrape(t, s.Handler(), ""); code != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
		t.Fatalf("main handler: %d %s", code, body)
	}
	if code, body := scrape(t, s.MetricsHandler(), ""); code != http.StatusOK || !strings.Contains(body, "fednode_build_info") {
		t.Fatalf("metrics handler: %d %.200s", code, body)
	}
	rec := httptest.NewRecorder()
	s.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("the metrics listener serves /healthz: %d", rec.Code)
	}
}
