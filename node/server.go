package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/mux"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/bolt"
	"github.com/fednode/fednode/clientip"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/inbox"
	"github.com/fednode/fednode/keys"
	"github.com/fednode/fednode/outbox"
	"github.com/fednode/fednode/ratelimit"
	"github.com/fednode/fednode/redis"
)

// nodeKeyring is the keyring with the operator's rotation.
type nodeKeyring interface {
	keys.Keyring
	Rotate(ctx context.Context, use string, overlap time.Duration) (keys.PublicKey, error)
}

// Store is everything the node needs from its storage backend.
type Store interface {
	authStore
	messageStore
	outbox.Store
	inbox.Store
	metaStore
	DeadLetters(ctx context.Context, limit int) ([]fednode.DeadLetter, error)
	Ping(ctx context.Context) error
	PruneSessions(ctx context.Context, now time.Time) (int, error)
	PruneLoginFailures(ctx context.Context, since time.Time) (int, error)
	banStore
	federation.Shared
	ReleaseLease(ctx context.Context, name, owner string) error
	Close() error
}

// Server is a running node.
type Server struct {
	cfg      Config
	log      *slog.Logger
	audit    *slog.Logger
	store    Store
	accounts *accounts
	messages *messaging
	hub      *hub
	now      func() time.Time

	keyring   nodeKeyring
	vault     *keys.VaultClient // nil unless the node uses Vault
	secrets   jwtSecrets
	directory *federation.Directory
	outbox    *outbox.Outbox
	inbox     *inbox.Inbox
	policy    *federationPolicy
	abuse     *abuse
	ips       *clientip.Resolver
	metrics   *metrics
	broker    broker
	bgCtx     context.Context
	cancelBg  context.CancelFunc
	closers   []func() error // extra clients to close after the store
	wsPoll    bool           // replicas: sockets also check their mailbox every few seconds
	draining  atomic.Bool    // Close has begun

	ln       net.Listener
	http     *http.Server
	url      string
	serveErr chan error
	stop     chan struct{}
	bg       sync.WaitGroup // janitor and live sockets
}

// Run starts a node and serves until ctx is done, then shuts down cleanly.
// It is all cmd/fednode calls; end-to-end tests call it too.
func Run(ctx context.Context, cfg Config, log, audit *slog.Logger) error {
	s, err := Open(ctx, cfg, log, audit)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err = <-s.serveErr:
		log.Error("server stopped", "err", err)
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open validates cfg, opens the store, listens on cfg.ListenAddr and starts
// serving. When NodeDomain is empty (development) it becomes the address the
// listener got, and PublicURL follows from it.
func Open(ctx context.Context, cfg Config, log, audit *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	if cfg.RedisURL == "" { // before the keys and the secret: see prepareStore
		if err := prepareStore(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if cfg.JWTSecret == "" && cfg.JWTSecretVaultPath == "" { // development only: Validate refuses this in production
		secret, err := loadOrCreateDevSecret(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		cfg.JWTSecret = secret
		log.Warn("JWT_SECRET is not set: using the development secret kept in DATA_DIR", "file", devSecretFile)
	}
	var tlsCfg *tls.Config
	if cfg.TLSEnabled {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertPath, cfg.TLSKeyPath)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	var vc *keys.VaultClient
	if cfg.usesVault() {
		var err error
		if vc, err = keys.NewVaultClient(ctx, cfg.vaultConfig(log)); err != nil {
			return nil, fmt.Errorf("vault: %w", err)
		}
	}
	closeVault := func() {
		if vc != nil {
			vc.Close()
		}
	}
	if cfg.RedisPasswordVaultPath != "" {
		v, err := keys.NewSecrets(vc).Read(ctx, cfg.RedisPasswordVaultPath, 0)
		if err != nil {
			closeVault()
			return nil, fmt.Errorf("REDIS_PASSWORD_VAULT_PATH: %w", err)
		}
		cfg.RedisPassword = v.Value
	}
	var keyring nodeKeyring
	if cfg.KeysBackend == "vault" {
		t, err := keys.OpenTransit(ctx, vc, now, cfg.KeyRotationOverlap)
		if err != nil {
			closeVault()
			return nil, fmt.Errorf("vault transit: %w", err)
		}
		keyring = t
	} else {
		l, err := keys.OpenLocal(filepath.Join(cfg.DataDir, "keys"), keys.LocalOptions{Now: now, Generate: cfg.GenerateKey})
		if err != nil {
			closeVault()
			return nil, err
		}
		keyring = l
	}
	var secrets jwtSecrets = staticSecret(cfg.JWTSecret)
	if cfg.JWTSecretVaultPath != "" {
		vs, err := newVaultSecrets(ctx, keys.NewSecrets(vc), cfg.JWTSecretVaultPath, cfg.JWTRotationOverlap, now)
		if err != nil {
			closeVault()
			return nil, fmt.Errorf("JWT_SECRET_VAULT_PATH: %w", err)
		}
		secrets = vs
	}
	be, err := openBackend(ctx, cfg, now, log)
	if err != nil {
		closeVault()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		be.close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	scheme := "http"
	if cfg.TLSEnabled {
		scheme = "https"
	}
	if cfg.NodeDomain == "" {
		cfg.NodeDomain, _ = fednode.ParseDomain(ln.Addr().String())
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = scheme + "://" + cfg.NodeDomain
	}
	s, err := newServer(ctx, cfg, be, keyring, secrets, log, audit)
	if err != nil {
		ln.Close()
		be.close()
		closeVault()
		return nil, err
	}
	s.vault = vc
	s.ln = ln
	s.url = scheme + "://" + ln.Addr().String()
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.serveErr <- err
		}
	}()
	s.bg.Add(2)
	go s.janitor()
	go func() {
		defer s.bg.Done()
		s.outbox.Run(s.bgCtx)
	}()
	log.Info("listening", "addr", ln.Addr().String(), "url", s.url, "node_domain", cfg.NodeDomain, "env", cfg.Env)
	return s, nil
}

// backend is the storage, limiter and event channel a node runs on: bbolt,
// an in-process limiter and in-process events for a single node; Redis for
// all three when replicas share it.
type backend struct {
	store   Store
	limiter ratelimit.Limiter
	broker  broker
	closers []func() error
	redis   bool
}

func (b backend) close() {
	for _, c := range b.closers {
		c()
	}
	b.store.Close()
}

func openBackend(ctx context.Context, cfg Config, now func() time.Time, log *slog.Logger) (backend, error) {
	if cfg.RedisURL == "" {
		// Never Create: a start made the store in prepareStore, and an
		// admin command on a missing store must not make an empty one.
		store, err := bolt.OpenWith(ctx, cfg.DataDir, bolt.Options{Timeout: 2 * time.Second, Log: log})
		if err != nil {
			return backend{}, storeError(cfg, err)
		}
		return backend{store: store, limiter: ratelimit.NewMemory(now), broker: &localBroker{}}, nil
	}
	opt := redis.Options{URL: cfg.RedisURL, Password: cfg.RedisPassword, Cluster: cfg.RedisCluster, Namespace: cfg.RedisNamespace, CAFile: cfg.RedisTLSCAFile}
	store, err := redis.Open(ctx, opt)
	if err != nil {
		return backend{}, err
	}
	if warnings, err := store.CheckPersistence(ctx); err != nil {
		log.Warn("redis: cannot read the persistence settings; make sure Redis runs with appendonly yes and appendfsync always", "err", err)
	} else {
		for _, w := range warnings {
			log.Warn("redis: accepted messages are at risk", "problem", w)
		}
	}
	fast, err := redis.NewFastClient(opt)
	if err != nil {
		store.Close()
		return backend{}, err
	}
	return backend{
		store: store, redis: true,
		limiter: &ratelimit.Failover{Primary: redis.NewLimiter(fast, cfg.RedisNamespace), Fallback: ratelimit.NewMemory(now),
			FailOpen: cfg.RateLimitFailOpen, Cooldown: time.Second, Now: now},
		broker:  redis.NewBroker(store.Client(), cfg.RedisNamespace, log),
		closers: []func() error{fast.Close},
	}, nil
}

func newServer(ctx context.Context, cfg Config, be backend, keyring nodeKeyring, secrets jwtSecrets, log, audit *slog.Logger) (*Server, error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	store := be.store
	s := &Server{
		cfg: cfg, log: log, audit: audit, store: store, hub: newHub(), now: now, keyring: keyring, secrets: secrets,
		serveErr: make(chan error, 1), stop: make(chan struct{}), broker: be.broker, closers: be.closers,
	}
	s.bgCtx, s.cancelBg = context.WithCancel(context.WithoutCancel(ctx))
	s.metrics = newMetrics(func() float64 { return float64(s.hub.count()) })
	if f, ok := be.limiter.(*ratelimit.Failover); ok {
		f.OnFallback = func(err error) {
			s.metrics.fallbacks.Inc()
			log.Warn("rate limiting: Redis did not answer", "fail_open", cfg.RateLimitFailOpen, "err", err)
		}
	}
	var err error
	if s.ips, err = clientip.New(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	s.abuse = &abuse{cfg: cfg, limiter: be.limiter, local: ratelimit.NewMemory(now), store: store, ips: s.ips, now: now, audit: audit, log: log, m: s.metrics,
		publish: s.broker.Publish, bans: map[string]fednode.Ban{}}
	if err := s.abuse.reload(ctx); err != nil {
		return nil, fmt.Errorf("bans: %w", err)
	}
	s.broker.Run(s.bgCtx, s.onEvent)
	if s.policy, err = newFederationPolicy(ctx, store, cfg); err != nil {
		return nil, err
	}
	client := federation.NewHTTPClient(federation.ClientOptions{AllowPrivate: cfg.FederationAllowPrivate})
	var shared federation.Shared
	if be.redis {
		shared = store
	}
	s.directory = federation.NewDirectory(client, cfg.federationScheme(), cfg.PeerKeyTTL, cfg.PeerKeyRefetch, now, shared)
	replica := fednode.NewID(now()) // this process, as a lease owner
	s.wsPoll = be.redis
	s.outbox = outbox.New(outbox.Config{
		Domain: cfg.NodeDomain, Lanes: cfg.OutboxLanes, BatchSize: cfg.OutboxBatchSize,
		RetryBase: cfg.OutboxRetryBase, RetryMax: cfg.OutboxRetryMax, GiveUpAfter: cfg.OutboxGiveUpAfter,
		Allowed: s.policy.Allowed,
		Lease: func(ctx context.Context, peer string) (bool, error) {
			return store.AcquireLease(ctx, "outbox:"+peer, replica, cfg.OutboxLeaseTTL)
		},
		Release:  func(ctx context.Context, peer string) { store.ReleaseLease(ctx, "outbox:"+peer, replica) },
		LeaseTTL: cfg.OutboxLeaseTTL,
	}, store, s.directory, keyring, client, log, now)
	s.outbox.OnEvent(func(peer string, delivered, failed, retried int) {
		s.metrics.deliveries.WithLabelValues("delivered").Add(float64(delivered))
		s.metrics.deliveries.WithLabelValues("failed").Add(float64(failed))
		s.metrics.deliveries.WithLabelValues("retried").Add(float64(retried))
	})
	s.inbox = inbox.New(inbox.Config{Domain: cfg.NodeDomain, DateWindow: cfg.FederationDateWindow}, inbox.Deps{
		Store: store, Peers: s.directory, Keyring: keyring, Allowed: s.policy.Allowed,
		LimitIP: func(ctx context.Context, ip string) error {
			_, err := s.abuse.charge(ctx, ClassInboxIP, ip, ip)
			return err
		},
		LimitPeer: func(ctx context.Context, peer string) error {
			_, err := s.abuse.decide(ctx, ClassInboxPeer, peer)
			return err
		},
		Notify: s.notify, Now: now, Log: log,
		OnRefusal: func(code, ip string) {
			s.metrics.inboxRefused.WithLabelValues(code).Inc()
			if signatureFailure[code] {
				s.abuse.violation(context.Background(), violationSig, ip)
			}
		},
	})
	tokens := &tokenIssuer{secrets: secrets, alg: cfg.JWTAlgorithm, ttl: cfg.JWTExpiration, issuer: cfg.NodeDomain, now: s.now}
	s.accounts, err = newAccounts(store, tokens, cfg, audit, s.revoked)
	if err != nil {
		return nil, err
	}
	s.messages = &messaging{store: store, domain: cfg.NodeDomain, now: s.now, notify: s.notify, allowed: s.policy.Allowed, enqueued: s.outbox.Notify}
	return s, nil
}

// signatureFailure lists the inbox refusals that count toward a ban of the
// sending IP: forged or broken signatures, not clock skew or limits.
var signatureFailure = map[string]bool{
	fednode.ESigMissing: true, fednode.ESigMalformed: true, fednode.ESigHeaders: true, fednode.ESigAlgorithm: true,
	fednode.ESigInvalid: true, fednode.EUnknownKey: true, fednode.EKeyIDMismatch: true, fednode.EDigest: true,
}

// notify wakes the live sockets of users on every replica.
func (s *Server) notify(users ...string) {
	if err := s.broker.Publish(s.bgCtx, topicNotify, users); err != nil {
		s.log.Warn("broker: notify", "err", err)
		s.hub.notify(users...) // at least this replica's sockets
	}
}

// revoked closes the sockets of revoked sessions on every replica.
func (s *Server) revoked(ids []string) {
	if len(ids) == 0 {
		return
	}
	if err := s.broker.Publish(s.bgCtx, topicRevoke, ids); err != nil {
		s.log.Warn("broker: revoke", "err", err)
		s.hub.closeSessions(ids)
	}
}

// onEvent handles an event from any replica, this one included.
func (s *Server) onEvent(topic string, payload []string) {
	switch topic {
	case topicNotify:
		s.hub.notify(payload...)
	case topicRevoke:
		s.hub.closeSessions(payload)
	case topicBans:
		if err := s.abuse.reload(s.bgCtx); err != nil {
			s.log.Warn("bans: reload", "err", err)
		}
	}
}

// URL is the base URL the server listens on.
func (s *Server) URL() string { return s.url }

// Domain is the node's NODE_DOMAIN as resolved at Open.
func (s *Server) Domain() string { return s.cfg.NodeDomain }

// Close stops accepting requests, closes live sockets, waits for in-flight
// work and closes the store.
func (s *Server) Close() error {
	s.draining.Store(true) // readiness says so from now on
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	close(s.stop)
	s.cancelBg()
	s.hub.closeAll()
	s.bg.Wait()
	for _, c := range s.closers {
		c()
	}
	if s.vault != nil {
		s.vault.Close()
	}
	if cerr := s.store.Close(); err == nil {
		err = cerr
	}
	return err
}

// janitor prunes expired sessions and stale login failures.
func (s *Server) janitor() {
	defer s.bg.Done()
	t := time.NewTicker(s.cfg.PruneInterval)
	defer t.Stop()
	bans := time.NewTicker(2 * time.Second) // other replicas' bans, if an event was lost
	defer bans.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-bans.C:
			if err := s.abuse.reload(s.bgCtx); err != nil {
				s.log.Debug("bans: reload", "err", err) // the last good list stays in force
			}
		case <-t.C:
			ctx := context.Background()
			now := s.now()
			if _, err := s.store.PruneSessions(ctx, now); err != nil {
				s.log.Error("prune sessions", "err", err)
			}
			if _, err := s.store.PruneLoginFailures(ctx, now.Add(-s.cfg.LoginFailureWindow)); err != nil {
				s.log.Error("prune login failures", "err", err)
			}
			if _, err := s.store.PruneBans(ctx, now.Add(-banRepeatWindow)); err != nil {
				s.log.Error("prune bans", "err", err)
			}
			if r, ok := s.keyring.(interface{ Retire(context.Context) error }); ok {
				if err := r.Retire(ctx); err != nil {
					s.log.Warn("keys: retire rotated versions", "err", err)
				}
			}
		}
	}
}

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
	r := mux.NewRouter()
	r.NotFoundHandler = s.public(ClassAPIAnon, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, fednode.Errorf(fednode.ENotFound, "no such endpoint"))
	})
	r.MethodNotAllowedHandler = s.public(ClassAPIAnon, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, fednode.Errorf(fednode.EMethod, "method %s is not allowed here", r.Method))
	})
	liveness := s.public(ClassProbe, s.handleHealthz)
	r.Handle("/healthz", liveness).Methods(http.MethodGet)
	r.Handle("/readyz", s.public(ClassProbe, s.handleReadyz)).Methods(http.MethodGet)
	r.Handle("/metrics", s.public(ClassMetrics, s.metrics.handler().ServeHTTP)).Methods(http.MethodGet)

	r.Handle("/api/auth/register", s.public(ClassAuth, s.handleRegister)).Methods(http.MethodPost)
	r.Handle("/api/auth/login", s.public(ClassAuth, s.handleLogin)).Methods(http.MethodPost)
	r.Handle("/api/auth/logout", s.authed(s.handleLogout)).Methods(http.MethodPost)
	r.Handle("/api/auth/password", s.authed(s.handlePassword)).Methods(http.MethodPost)
	r.Handle("/api/me", s.authed(s.handleMe)).Methods(http.MethodGet)

	r.Handle("/api/messages", s.authed(s.handleSend)).Methods(http.MethodPost)
	r.Handle("/api/messages", s.authed(s.handleList)).Methods(http.MethodGet)
	r.Handle("/api/messages/{id}", s.authed(s.handleGet)).Methods(http.MethodGet)
	r.HandleFunc("/api/ws", s.handleWS).Methods(http.MethodGet) // limits per user once authenticated

	r.Handle(federation.WellKnownPath, s.public(ClassAPIAnon, s.handleNodeDocument)).Methods(http.MethodGet)
	r.HandleFunc(federation.InboxPath, s.handleInbox).Methods(http.MethodPost) // limits per IP and per peer itself

	r.Handle("/api/admin/sessions/revoke-all", s.admin(s.handleRevokeAll)).Methods(http.MethodPost)
	r.Handle("/api/admin/federation", s.admin(s.handleGetPolicy)).Methods(http.MethodGet)
	r.Handle("/api/admin/federation", s.admin(s.handleSetPolicy)).Methods(http.MethodPut, http.MethodDelete)
	r.Handle("/api/admin/outbox/dead", s.admin(s.handleDeadLetters)).Methods(http.MethodGet)
	r.Handle("/api/admin/keys/rotate", s.admin(s.handleRotateKeys)).Methods(http.MethodPost)
	r.Handle("/api/admin/jwt/rotate", s.admin(s.handleRotateJWT)).Methods(http.MethodPost)
	r.Handle("/api/admin/bans", s.admin(s.handleBans)).Methods(http.MethodGet)
	r.Handle("/api/admin/bans", s.admin(s.handleBan)).Methods(http.MethodPost)
	r.Handle("/api/admin/bans", s.admin(s.handleUnban)).Methods(http.MethodDelete)

	api := s.refuseBanned(s.cors(r))
	hsts := s.cfg.TLSEnabled || s.cfg.TLSTerminatedByProxy
	return recoverer(s.log, accessLog(s.log, securityHeaders(hsts, s.identify(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && r.Method == http.MethodGet {
			liveness.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})))))
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
		next.ServeHTTP(w, r.WithContext(newContextWithClient(r.Context(), s.ips.Key(r))))
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

// admin requires a live session of a user with the admin role.
func (s *Server) admin(h http.HandlerFunc) http.Handler {
	return s.authed(func(w http.ResponseWriter, r *http.Request) {
		p, _ := principalFromContext(r.Context())
		if p.User.Role != fednode.RoleAdmin {
			writeError(w, r, s.log, fednode.Errorf(fednode.EForbidden, "this needs the admin role"))
			return
		}
		h(w, r)
	})
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz says whether this process should be sent traffic: not
// while it shuts down, nor while the store cannot take writes or Vault is
// needed and unreachable. The reasons are named; internal detail goes to
// the log only.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	out := map[string]string{"status": "ready"}
	var problems []string
	if s.draining.Load() {
		problems = append(problems, "the node is shutting down")
	} else {
		if err := s.store.Ping(ctx); err != nil {
			s.log.Error("readiness: store", "err", err)
			problems = append(problems, "store: "+storeProblem(err))
		} else {
			out["store"] = "ok"
		}
		if s.vault != nil {
			if err := s.vault.Health(ctx); err != nil {
				s.log.Warn("readiness: vault", "err", err)
				problems = append(problems, "vault: "+strings.TrimPrefix(err.Error(), keys.ErrUnavailable.Error()+": "))
			} else {
				out["vault"] = "ok"
			}
		}
	}
	if len(problems) > 0 {
		writeError(w, r, s.log, &fednode.Error{Code: fednode.EUnavailable, Message: "not ready: " + strings.Join(problems, "; "), RetryAfter: 5})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// storeProblem says why the store failed its check, in words safe to
// show: a store's own *fednode.Error says it, a full disk is named, and
// anything else (an address, a path) stays in the log.
func storeProblem(err error) string {
	var e *fednode.Error
	switch {
	case errors.As(err, &e):
		return e.Message
	case errors.Is(err, syscall.ENOSPC):
		return "it cannot take writes: no space left on device"
	case errors.Is(err, syscall.EIO):
		return "it cannot take writes: I/O error"
	}
	return "it is not reachable"
}

// LiveSockets is the number of open WebSocket connections.
func (s *Server) LiveSockets() int { return s.hub.count() }

// RotateKeys makes a new current key of a use ("sig" or "enc"); the old one
// stays published and usable for overlap.
func (s *Server) RotateKeys(ctx context.Context, use string, overlap time.Duration) (string, error) {
	k, err := s.keyring.Rotate(ctx, use, overlap)
	if err != nil {
		return "", err
	}
	return federation.KeyID(s.cfg.NodeDomain, k.ID), nil
}

// PeerDocumentFetches is how many peer documents this node has fetched.
func (s *Server) PeerDocumentFetches() int64 { return s.directory.Fetches() }

// VaultCalls is how many requests this node has made to Vault (0 without
// Vault), for benchmarks and tests.
func (s *Server) VaultCalls() int64 {
	if s.vault == nil {
		return 0
	}
	return s.vault.Calls()
}
