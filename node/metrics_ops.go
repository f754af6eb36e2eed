package node

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/ratelimit"
)

// DefaultMetricsTopPeers is how many peers the outbox metrics name: the
// deepest queues; every other peer is summed under peer="other", so the
// number of series stays bounded however many peers the node talks to.
const DefaultMetricsTopPeers = 20

// otherPeers is the peer label of the peers beyond the top N.
const otherPeers = "other"

// stateTTL is how long a scrape reuses the store's queue statistics and
// the dependency checks: scrapes from several Prometheus servers, or a
// dashboard's refreshes, cost the store one read per stateTTL.
const stateTTL = 5 * time.Second

// httpMetrics are the latency and outcome of every request, by route
// template (a bounded set), method (bounded by methodLabel) and status.
type httpMetrics struct {
	duration *prometheus.HistogramVec
	requests *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	h := &httpMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fednode_http_request_duration_seconds",
			Help:    "Time to answer a request, by route template and method (for a WebSocket, to its upgrade).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"route", "method"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fednode_http_requests_total",
			Help: "Requests answered, by route template, method and status code."}, []string{"route", "method", "code"}),
	}
	reg.MustRegister(h.duration, h.requests)
	return h
}

func (h *httpMetrics) observe(route, method string, status int, d time.Duration) {
	h.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	h.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

// stateCollector reports, on each scrape, what the node is rather than
// what it did: the outbox queues, dead letters, bans in force, the health
// of what it depends on, and its build. The store and the dependencies are
// asked at most once per stateTTL.
type stateCollector struct {
	s       *Server
	top     int
	limiter *ratelimit.Failover // nil without a shared limiter

	depth, age, peers, dead, up, ready, bans, fallback *prometheus.Desc

	mu    sync.Mutex
	at    time.Time
	queue *fednode.QueueStats // nil until a read succeeds; then the last good one
	deps  []depCheck
}

func newStateCollector(s *Server, top int, limiter *ratelimit.Failover) *stateCollector {
	return &stateCollector{
		s: s, top: top, limiter: limiter,
		depth: prometheus.NewDesc("fednode_outbox_queue_depth", "Messages waiting in the outbox, for the deepest peers; the rest summed under peer=\"other\".", []string{"peer"}, nil),
		age:   prometheus.NewDesc("fednode_outbox_oldest_job_age_seconds", "Age of the first waiting message of each peer named in fednode_outbox_queue_depth; the oldest of the rest under peer=\"other\".", []string{"peer"}, nil),
		peers: prometheus.NewDesc("fednode_outbox_peers", "Peers with messages waiting.", nil, nil),
		dead:  prometheus.NewDesc("fednode_outbox_dead_letters", "Messages the node gave up delivering, kept for the operator.", nil, nil),
		up:    prometheus.NewDesc("fednode_dependency_up", "1 when a dependency passes its readiness check (store: bbolt or Redis; vault), else 0.", []string{"dependency"}, nil),
		ready: prometheus.NewDesc("fednode_ready", "1 when /readyz would answer 200, else 0 (draining, or a dependency down).", nil, nil),
		bans:  prometheus.NewDesc("fednode_bans_active", "Bans in force.", nil, nil),
		fallback: prometheus.NewDesc("fednode_ratelimit_fallback_active",
			"1 while the shared (Redis) limiter is held to be down and limits are decided in process or refused, else 0 (always 0 without Redis).", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.depth, c.age, c.peers, c.dead, c.up, c.ready, c.bans, c.fallback} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	queue, deps := c.refresh()
	now := c.s.now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if queue != nil {
		named, other := topPeers(queue.Peers, c.top)
		for _, p := range named {
			gauge(c.depth, float64(p.Depth), p.Peer)
			gauge(c.age, ageSeconds(now, p.Oldest), p.Peer)
		}
		gauge(c.depth, float64(other.Depth), otherPeers)
		gauge(c.age, ageSeconds(now, other.Oldest), otherPeers)
		gauge(c.peers, float64(len(queue.Peers)))
		gauge(c.dead, float64(queue.DeadLetters))
	}
	ready := 1.0
	for _, d := range deps {
		v := 1.0
		if d.err != nil {
			v, ready = 0, 0
		}
		gauge(c.up, v, d.name)
	}
	if c.s.draining.Load() {
		ready = 0
	}
	gauge(c.ready, ready)
	gauge(c.bans, float64(c.s.abuse.activeBans()))
	fallback := 0.0
	if c.limiter != nil && !c.limiter.Up() {
		fallback = 1
	}
	gauge(c.fallback, fallback)
}

// refresh reads the queues and checks the dependencies when the last read
// is older than stateTTL. A failed queue read keeps the last good one (and
// is logged): the store's own health shows in fednode_dependency_up.
func (c *stateCollector) refresh() (*fednode.QueueStats, []depCheck) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.s.now()
	if !c.at.IsZero() && now.Sub(c.at) < stateTTL && now.After(c.at) {
		return c.queue, c.deps
	}
	ctx, cancel := context.WithTimeout(c.s.bgCtx, 2*time.Second)
	defer cancel()
	if st, err := c.s.store.QueueStats(ctx); err != nil {
		c.s.log.Warn("metrics: outbox queue statistics", "err", err)
	} else {
		c.queue = &st
	}
	c.deps = c.s.checkDependencies(ctx)
	c.at = now
	return c.queue, c.deps
}

// topPeers splits peers into the top deepest (ties by name, so the set is
// stable) and the sum of the rest, whose Oldest is the oldest among them.
// A peer named like the rest's label is always counted in the rest.
func topPeers(peers []fednode.PeerQueue, top int) (named []fednode.PeerQueue, other fednode.PeerQueue) {
	sorted := slices.Clone(peers)
	slices.SortFunc(sorted, func(a, b fednode.PeerQueue) int {
		return cmp.Or(cmp.Compare(b.Depth, a.Depth), cmp.Compare(a.Peer, b.Peer))
	})
	other.Peer = otherPeers
	for _, p := range sorted {
		if len(named) < top && p.Peer != otherPeers {
			named = append(named, p)
			continue
		}
		other.Depth += p.Depth
		if other.Oldest.IsZero() || (!p.Oldest.IsZero() && p.Oldest.Before(other.Oldest)) {
			other.Oldest = p.Oldest
		}
	}
	return named, other
}

func ageSeconds(now, t time.Time) float64 {
	if t.IsZero() || t.After(now) {
		return 0
	}
	return now.Sub(t).Seconds()
}

// buildInfo is the fednode_build_info metric: always 1, its labels say
// which build runs (from the binary's own build information).
func buildInfo() prometheus.Collector {
	version, revision := "unknown", "unknown"
	goversion := runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fednode_build_info", Help: "Always 1; the labels name the running build."}, []string{"version", "goversion", "revision"})
	g.WithLabelValues(version, goversion, revision).Set(1)
	return g
}

// activeBans counts the bans in force.
func (a *abuse) activeBans() int {
	now := a.now()
	a.mu.RLock()
	defer a.mu.RUnlock()
	n := 0
	for _, b := range a.bans {
		if b.Active(now) {
			n++
		}
	}
	return n
}

// registerState adds what is read on each scrape: the state collector and
// the build information.
// It also makes the series of every known label value of the ban and
// delivery counters at 0, so that they exist (and rate() works) before
// the first event.
func (m *metrics) registerState(s *Server, top int, limiter ratelimit.Limiter) {
	f, _ := limiter.(*ratelimit.Failover)
	m.reg.MustRegister(newStateCollector(s, top, f), buildInfo())
	for _, reason := range []string{violationRate, violationAuth, violationSig, "manual"} {
		m.bans.WithLabelValues(reason)
	}
	for _, result := range []string{"delivered", "failed", "retried"} {
		m.deliveries.WithLabelValues(result)
	}
}

// serveMetrics answers a scrape: with METRICS_TOKEN set, only to a request
// that bears it (compared in constant time, over digests so that its
// length does not show either).
func (s *Server) serveMetrics() http.Handler {
	h := s.metrics.handler()
	var want [sha256.Size]byte
	if s.cfg.MetricsToken != "" {
		want = sha256.Sum256([]byte(s.cfg.MetricsToken))
	}
	return s.public(ClassMetrics, func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.MetricsToken != "" {
			got := sha256.Sum256([]byte(bearerToken(r)))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				writeError(w, r, s.log, fednode.Errorf(fednode.EUnauthorized, "/metrics needs the metrics token (METRICS_TOKEN) as a bearer token"))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// MetricsHandler serves /metrics alone, for the separate listener of
// METRICS_ADDR (Config.MetricsSeparate): with the same token, limit,
// request ids and access log as the main listener, and a JSON 404 for
// every other path.
func (s *Server) MetricsHandler() http.Handler {
	r := s.newRouter(ClassMetrics, "this listener serves only GET /metrics")
	r.Handle("/metrics", s.serveMetrics()).Methods(http.MethodGet)
	o := &observer{log: s.log, metrics: s.metrics.http, ips: s.ips, router: r}
	return o.wrap(recoverer(s.log, s.identify(r)))
}
