package node

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the node's Prometheus metrics, in a registry of its own (no
// globals: two nodes in one process, as in tests, do not collide).
type metrics struct {
	reg          *prometheus.Registry
	limits       *prometheus.CounterVec // decisions by class and result
	fallbacks    prometheus.Counter     // decisions made in process because Redis failed
	bans         *prometheus.CounterVec // bans by reason
	banned       prometheus.Counter     // requests refused because of a ban
	authEvents   *prometheus.CounterVec // login outcomes
	inboxRefused *prometheus.CounterVec // federation refusals by code
	deliveries   *prometheus.CounterVec // outbox outcomes
	sockets      prometheus.GaugeFunc
	http         *httpMetrics // requests by route (metrics_ops.go)
}

func newMetrics(liveSockets func() float64) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.limits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fednode_ratelimit_decisions_total", Help: "Rate-limit decisions by class and result (allowed, limited, unavailable)."}, []string{"class", "result"})
	m.fallbacks = prometheus.NewCounter(prometheus.CounterOpts{Name: "fednode_ratelimit_fallback_total", Help: "Decisions the in-process limiter made because Redis could not answer (RATE_LIMIT_FAIL_OPEN=true), or refusals because of it (false)."})
	m.bans = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fednode_bans_total", Help: "Bans imposed, by reason: the kind of abuse of an automatic ban, or manual (an admin's)."}, []string{"reason"})
	m.banned = prometheus.NewCounter(prometheus.CounterOpts{Name: "fednode_banned_requests_total", Help: "Requests refused because their client is banned."})
	m.authEvents = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fednode_auth_events_total", Help: "Authentication outcomes."}, []string{"event"})
	m.inboxRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fednode_inbox_refusals_total", Help: "Federation deliveries refused, by code."}, []string{"code"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fednode_outbox_messages_total", Help: "Outbox outcomes per message (delivered, failed, retried)."}, []string{"result"})
	m.sockets = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fednode_live_sockets", Help: "Open WebSocket connections on this replica."}, liveSockets)
	m.reg.MustRegister(m.limits, m.fallbacks, m.bans, m.banned, m.authEvents, m.inboxRefused, m.deliveries, m.sockets,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.http = newHTTPMetrics(m.reg)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
