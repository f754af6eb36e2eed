package node

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"

	"github.com/fednode/fednode"
)

// recoverer turns a panic into a logged internal error; the client sees the
// usual JSON error, never a stack trace.
func recoverer(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic", "request_id", requestIDFromContext(r.Context()), "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeError(w, r, log, fednode.Errorf(fednode.EInternal, "internal error; the operator can find it in the logs"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// securityHeaders sets the seed's headers on every response. The API serves
// only JSON, so the policy forbids everything a browser could load from it.
func securityHeaders(hsts bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Resource-Policy", "same-site")
		if hsts {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

// The methods and request headers a browser page may use, answered to
// every preflight: every route the web client calls (GET, POST, PUT,
// DELETE; a bearer token and a JSON body).
const (
	CORSMethods = "GET, POST, PUT, DELETE"
	CORSHeaders = "Authorization, Content-Type"
)

// cors answers only the origins in ALLOWED_ORIGINS. Other origins get no
// CORS headers (the browser then hides the response) and a refused
// preflight. The API authenticates with bearer tokens, never cookies, so
// Access-Control-Allow-Credentials is never sent and cross-site request
// forgery has no ambient credential to ride on. A preflight is answered
// here, before routing, and counted like any request that needs no login.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		allowed := s.cfg.originAllowed(origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			s.public(ClassAPIAnon, func(w http.ResponseWriter, r *http.Request) {
				if !allowed {
					writeError(w, r, s.log, fednode.Errorf(fednode.EOrigin, "this origin is not in ALLOWED_ORIGINS"))
					return
				}
				h := w.Header()
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Methods", CORSMethods)
				h.Set("Access-Control-Allow-Headers", CORSHeaders)
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
			}).ServeHTTP(w, r)
			return
		}
		if allowed {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Expose-Headers", "Retry-After, "+HeaderRequestID)
		}
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status for the access log and the metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write records the implicit 200 of a handler that writes a body without
// calling WriteHeader.
func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Hijack lets WebSocket upgrades through the recorder.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if s.status == 0 {
		s.status = http.StatusSwitchingProtocols // the upgrade answers on the raw connection
	}
	return http.NewResponseController(s.ResponseWriter).Hijack()
}
