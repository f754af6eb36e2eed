package node

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/gorilla/mux"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/clientip"
)

// HeaderRequestID carries a request's id: taken from the request when it is
// sane (see validRequestID), made otherwise, and always answered.
const HeaderRequestID = "X-Request-Id"

// routeUnmatched is the route label of a request no route matched.
const routeUnmatched = "unmatched"

// requestInfo is what the observer learns about a request while it is
// served: its id, and the route template the router matched.
type requestInfo struct {
	id    string
	route string
	addr  netip.Addr // the client, once identify resolved it
}

type requestInfoKey struct{}

func newContextWithRequestInfo(ctx context.Context, info *requestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, info)
}

func requestInfoFromContext(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return info
}

// requestIDFromContext is the request's id, or "" outside a request.
func requestIDFromContext(ctx context.Context) string {
	if info := requestInfoFromContext(ctx); info != nil {
		return info.id
	}
	return ""
}

// validRequestID accepts an incoming X-Request-Id of 1 to 64 characters
// from [A-Za-z0-9._-]: enough for UUIDs and the ids of common proxies,
// and nothing that could forge a log line or a header. The id is for
// correlating logs, never for trust.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// observer is the outermost layer of every handler: it gives the request
// its id (header, context), and when it is done writes the access log line
// and the HTTP metrics, labelled by route template, never the raw path.
type observer struct {
	log     *slog.Logger
	metrics *httpMetrics       // nil: no metrics
	ips     *clientip.Resolver // decides the client's address
	router  *mux.Router        // names the route of a request nobody labelled; may be nil
}

func (o *observer) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now() // real time, whatever clock the node is given
		id := r.Header.Get(HeaderRequestID)
		if !validRequestID(id) {
			id = fednode.NewID(start)
		}
		w.Header().Set(HeaderRequestID, id)
		info := &requestInfo{id: id}
		r = r.WithContext(newContextWithRequestInfo(r.Context(), info))
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 { // nothing written: net/http answers 200
			rec.status = http.StatusOK
		}
		elapsed := time.Since(start)
		route := info.route
		if route == "" {
			route = o.routeOf(r)
		}
		method := methodLabel(r.Method)
		if o.metrics != nil {
			o.metrics.observe(route, method, rec.status, elapsed)
		}
		addr := info.addr
		if !addr.IsValid() { // answered before identify (a probe, the metrics listener)
			addr = o.ips.Addr(r)
		}
		client := addr.String()
		o.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", id), slog.String("client", client), slog.String("method", r.Method),
			slog.String("route", route), slog.String("path", r.URL.Path), slog.Int("status", rec.status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000))
	})
}

// routeOf names the route of a request that was answered before the
// router saw it (a ban, a preflight, the liveness probe).
func (o *observer) routeOf(r *http.Request) string {
	var m mux.RouteMatch
	if o.router != nil && o.router.Match(r, &m) && m.MatchErr == nil && m.Route != nil {
		if t, err := m.Route.GetPathTemplate(); err == nil {
			return t
		}
	}
	return routeUnmatched
}

// labelRoute is router middleware: it records the matched route's
// template for the observer.
func labelRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := requestInfoFromContext(r.Context()); info != nil {
			if route := mux.CurrentRoute(r); route != nil {
				info.route, _ = route.GetPathTemplate()
			}
		}
		next.ServeHTTP(w, r)
	})
}

// methodLabel bounds the method label: any other token a client sends is
// "other".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodHead, http.MethodPatch:
		return m
	}
	return "other"
}
