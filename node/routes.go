package node

import (
	"errors"
	"net/http"
	"path"
	"strings"

	"github.com/gorilla/mux"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/clientip"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/web"
)

// Handler is the node's whole HTTP surface.
//
// Every route states its own rate limit, so a header can never move a
// request out of its class: public routes count per client IP whatever
// the request carries (a bearer token included), authenticated routes count
// against the IP until the token is verified and per user after, and the
// federation inbox and the WebSocket limit themselves. /healthz is answered
// before the ban check, so that no ban and no dependency can make a live
// process look dead; it and /readyz and /metrics are limited in process.
func (s *Server) Handler() http.Handler {
	r := s.newRouter(ClassAPIAnon, "no such endpoint")
	liveness := s.public(ClassProbe, s.handleHealthz)
	r.Handle("/healthz", liveness).Methods(http.MethodGet)
	r.Handle("/readyz", s.public(ClassProbe, s.handleReadyz)).Methods(http.MethodGet)
	if !s.cfg.MetricsSeparate {
		r.Handle("/metrics", s.serveMetrics()).Methods(http.MethodGet)
	}

	r.Handle("/api/auth/register", s.public(ClassAuth, s.handleRegister)).Methods(http.MethodPost)
	r.Handle("/api/auth/login", s.public(ClassAuth, s.handleLogin)).Methods(http.MethodPost)
	r.Handle("/api/auth/challenge", s.public(ClassAPIAnon, s.handleChallenge)).Methods(http.MethodGet)
	r.Handle("/api/auth/logout", s.authed(s.handleLogout)).Methods(http.MethodPost)
	r.Handle("/api/auth/password", s.authed(s.handlePassword)).Methods(http.MethodPost)
	r.Handle("/api/me", s.authed(s.handleMe)).Methods(http.MethodGet)

	r.Handle("/api/messages", s.authed(s.handleSend)).Methods(http.MethodPost)
	r.Handle("/api/messages", s.authed(s.handleList)).Methods(http.MethodGet)
	r.Handle("/api/messages/{id}", s.authed(s.handleGet)).Methods(http.MethodGet)
	r.Handle("/api/messages/{id}", s.authed(s.handleDeleteMessage)).Methods(http.MethodDelete)

	// The web client's views of a user's own mailbox (conversations.go)
	// and account (account.go).
	r.Handle("/api/conversations", s.authed(s.handleConversations)).Methods(http.MethodGet)
	r.Handle("/api/conversations/{with}/messages", s.authed(s.handleConversationMessages)).Methods(http.MethodGet)
	r.Handle("/api/conversations/{with}/read", s.authed(s.handleConversationRead)).Methods(http.MethodPost)
	r.Handle("/api/blocks", s.authed(s.handleBlocks)).Methods(http.MethodGet)
	r.Handle("/api/blocks", s.authed(s.handleAddBlock)).Methods(http.MethodPost)
	r.Handle("/api/blocks", s.authed(s.handleRemoveBlock)).Methods(http.MethodDelete)
	r.Handle("/api/auth/logout-all", s.authed(s.handleLogoutAll)).Methods(http.MethodPost)
	r.Handle("/api/me", s.authed(s.handleDeleteMe)).Methods(http.MethodDelete)
	r.Handle("/api/me/export", s.authed(s.handleExport)).Methods(http.MethodGet)
	r.HandleFunc("/api/ws", s.handleWS).Methods(http.MethodGet) // limits per user once authenticated

	// End-to-end keys (handlers_keys.go).
	r.Handle("/api/keys", s.authed(s.handlePutKeys)).Methods(http.MethodPut)
	r.Handle("/api/keys", s.authed(s.handleGetKeys)).Methods(http.MethodGet)
	r.Handle("/api/keys", s.authed(s.handleDeleteKeys)).Methods(http.MethodDelete)
	r.Handle("/api/users/{address}/keys", s.authed(s.handleUserKeys)).Methods(http.MethodGet)

	r.Handle(federation.WellKnownPath, s.public(ClassAPIAnon, s.handleNodeDocument)).Methods(http.MethodGet)
	r.HandleFunc(federation.InboxPath, s.handleInbox).Methods(http.MethodPost)                 // limits per IP and per peer itself
	r.HandleFunc(federation.UserKeysRoute, s.handleFederationUserKeys).Methods(http.MethodGet) // limits itself, in peer_keys

	r.Handle("/api/admin/sessions/revoke-all", s.admin(s.handleRevokeAll)).Methods(http.MethodPost)
	r.Handle("/api/admin/federation", s.admin(s.handleGetPolicy)).Methods(http.MethodGet)
	r.Handle("/api/admin/federation", s.admin(s.handleSetPolicy)).Methods(http.MethodPut, http.MethodDelete)
	r.Handle("/api/admin/outbox/dead", s.admin(s.handleDeadLetters)).Methods(http.MethodGet)
	r.Handle("/api/admin/outbox/dead/redrive", s.admin(s.handleRedrive())).Methods(http.MethodPost)
	r.Handle("/api/admin/outbox/dead/purge", s.admin(s.handlePurge())).Methods(http.MethodPost)
	r.Handle("/api/admin/outbox/peers/{peer}/retry", s.admin(s.handleRetryPeer)).Methods(http.MethodPost)
	r.Handle("/api/admin/keys/rotate", s.admin(s.handleRotateKeys)).Methods(http.MethodPost)
	r.Handle("/api/admin/jwt/rotate", s.admin(s.handleRotateJWT)).Methods(http.MethodPost)
	r.Handle("/api/admin/bans", s.admin(s.handleBans)).Methods(http.MethodGet)
	r.Handle("/api/admin/bans", s.admin(s.handleBan)).Methods(http.MethodPost)
	r.Handle("/api/admin/bans", s.admin(s.handleUnban)).Methods(http.MethodDelete)
	r.Handle("/api/admin/invites", s.admin(s.handleInvites)).Methods(http.MethodGet)
	r.Handle("/api/admin/invites", s.admin(s.handleCreateInvites)).Methods(http.MethodPost)
	r.Handle("/api/admin/invites/{code}", s.admin(s.handleRevokeInvite)).Methods(http.MethodDelete)
	r.Handle("/api/admin/users", s.admin(s.handleUsers)).Methods(http.MethodGet)
	r.Handle("/api/admin/users/{username}", s.admin(s.handleUser)).Methods(http.MethodGet)
	r.Handle("/api/admin/users/{username}", s.admin(s.handleDeleteUser)).Methods(http.MethodDelete)
	r.Handle("/api/admin/users/{username}/suspend", s.admin(s.handleSuspend)).Methods(http.MethodPost)
	r.Handle("/api/admin/users/{username}/unsuspend", s.admin(s.handleUnsuspend)).Methods(http.MethodPost)
	r.Handle("/api/admin/users/{username}/unlock", s.admin(s.handleUnlock)).Methods(http.MethodPost)
	r.Handle("/api/admin/users/{username}/role", s.admin(s.handleRole)).Methods(http.MethodPut)

	// The browser client (package web), under its own page CSP.
	page := s.public(ClassAPIAnon, web.Handler(r.NotFoundHandler).ServeHTTP)
	r.Handle("/", page).Methods(http.MethodGet, http.MethodHead)
	r.PathPrefix(web.AssetsPrefix).Handler(page).Methods(http.MethodGet, http.MethodHead)

	// A path with dot segments is never redirected to its cleaned form:
	// /api/x/..%2f.. is a JSON 404, not the web client's page at /.
	routed := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if hasDotSegments(req.URL.Path) {
			r.NotFoundHandler.ServeHTTP(w, req)
			return
		}
		r.ServeHTTP(w, req)
	})
	api := s.refuseBanned(s.cors(routed))
	hsts := s.cfg.TLSEnabled || s.cfg.TLSTerminatedByProxy
	o := &observer{log: s.log, metrics: s.metrics.http, ips: s.ips, router: r}
	return o.wrap(recoverer(s.log, securityHeaders(hsts, s.identify(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && r.Method == http.MethodGet {
			liveness.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})))))
}

// hasDotSegments tells whether a path has "." or ".." segments (or empty
// ones), which the router would otherwise answer with a redirect.
func hasDotSegments(p string) bool {
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean != p
}

// newRouter is a router that labels routes for the observer and answers
// an unknown path (with notFound) and a wrong method with JSON errors,
// counted under class.
func (s *Server) newRouter(class, notFound string) *mux.Router {
	r := mux.NewRouter()
	r.Use(labelRoute)
	r.NotFoundHandler = s.public(class, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, fednode.Errorf(fednode.ENotFound, "%s", notFound))
	})
	r.MethodNotAllowedHandler = s.public(class, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, fednode.Errorf(fednode.EMethod, "method %s is not allowed here", r.Method))
	})
	return r
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// authed requires a live session, then applies the authenticated API limit
// per user.
func (s *Server) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, user, ok := s.authenticateLimited(w, r, bearerToken(r), ClassAPIAuth)
		if !ok {
			return
		}
		h(w, r.WithContext(newContextWithPrincipal(r.Context(), principal{Session: sess, User: user})))
	})
}

// authenticateLimited authenticates a token. A refused token counts against
// the client's unauthenticated limit and toward a ban for authentication
// failures; an accepted one against the user's limit of class. It has
// answered the request when ok is false.
func (s *Server) authenticateLimited(w http.ResponseWriter, r *http.Request, token, class string) (fednode.Session, fednode.User, bool) {
	sess, user, err := s.accounts.authenticate(r.Context(), token)
	if err != nil {
		if fednode.ErrorCode(err) == fednode.EUnauthorized {
			client := clientFromContext(r.Context())
			s.abuse.violation(r.Context(), violationAuth, client)
			if lerr := s.abuse.limit(w, r, ClassAPIAnon, client); lerr != nil {
				err = lerr
			}
		}
		writeError(w, r, s.log, err)
		return sess, user, false
	}
	if err := s.abuse.limit(w, r, class, "user:"+sess.Username); err != nil {
		writeError(w, r, s.log, err)
		return sess, user, false
	}
	return sess, user, true
}

// identify resolves who the request comes from (the client IP, or its /64)
// for the limits and bans after it.
func (s *Server) identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := s.ips.Addr(r)
		if info := requestInfoFromContext(r.Context()); info != nil {
			info.addr = addr // the access log reads it; no second resolution
		}
		next.ServeHTTP(w, r.WithContext(newContextWithClient(r.Context(), clientip.KeyOf(addr))))
	})
}

// refuseBanned answers a banned client before any other work.
func (s *Server) refuseBanned(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, banned := s.abuse.banned(clientFromContext(r.Context())); banned {
			s.abuse.refuseBanned(w, r, s.log, b)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// public counts a request that needs no login against its client IP's
// window of class, whatever headers it carries, then serves it.
func (s *Server) public(class string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.abuse.limit(w, r, class, clientFromContext(r.Context())); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		h(w, r)
	})
}

// admin requires a live session of a user with the admin role. The role
// is read from the store, not the token cache, so that a role removed or
// granted on any replica counts here at once.
func (s *Server) admin(h http.HandlerFunc) http.Handler {
	return s.authed(func(w http.ResponseWriter, r *http.Request) {
		p, _ := principalFromContext(r.Context())
		u, err := s.store.User(r.Context(), p.Session.Username)
		if errors.Is(err, fednode.ErrNotFound) {
			err = fednode.Errorf(fednode.EUnauthorized, "the token is missing, invalid, expired or revoked")
		}
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		if u.Role != fednode.RoleAdmin || u.Suspended() {
			writeError(w, r, s.log, fednode.Errorf(fednode.EForbidden, "this needs the admin role"))
			return
		}
		p.User = u
		h(w, r.WithContext(newContextWithPrincipal(r.Context(), p)))
	})
}
