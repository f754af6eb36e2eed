package daemon

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/atrest"
	"github.com/fednode/fednode/bolt"
	"github.com/fednode/fednode/keys"
	"github.com/fednode/fednode/node"
	"github.com/fednode/fednode/ratelimit"
	"github.com/fednode/fednode/redis"
)

// Options are what the process hands the daemon besides its configuration:
// the two log streams, and for tests a clock and a key generator.
type Options struct {
	Log   *slog.Logger // JSON logs on standard error, configured in cmd
	Audit *slog.Logger // the audit stream
	// Clock is the clock; nil means time.Now. Tests move it to cross windows.
	Clock func() time.Time
	// GenerateKey makes the node's RSA-4096 keys on a first start with local
	// keys; nil means crypto/rand. Tests hand out fixed keys: generation
	// takes seconds.
	GenerateKey func() (*rsa.PrivateKey, error)
}

// Daemon is a running node: the node service (embedded, so its methods
// are the daemon's) behind a listener, with everything it was built from.
type Daemon struct {
	*node.Server
	cfg      Config
	log      *slog.Logger
	ln       net.Listener
	http     *http.Server
	url      string
	metrics  *metricsListener // nil without METRICS_ADDR
	serveErr chan error
	be       backend
	vault    *keys.VaultClient // nil unless the node uses Vault
	admin    *adminSocket      // nil on Redis, or when it could not listen
}

// Run starts a node and serves until ctx is done, then shuts down cleanly.
// It is all cmd/fednode calls; end-to-end tests call it too.
func Run(ctx context.Context, cfg Config, opt Options) error {
	d, err := Open(ctx, cfg, opt)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err = <-d.serveErr:
		opt.Log.Error("server stopped", "err", err)
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open validates cfg, opens the store, the keys and the secrets the
// configuration names, listens on cfg.ListenAddr and starts serving. When
// NodeDomain is empty (development) it becomes the address the listener
// got, and PublicURL follows from it.
func Open(ctx context.Context, cfg Config, opt Options) (_ *Daemon, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	log := opt.Log
	now := opt.Clock
	if now == nil {
		now = time.Now
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	if cfg.UsesDataDir() { // before anything is written there
		if err := checkDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
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
	tlsCfg, certs, err := serverTLS(cfg)
	if err != nil {
		return nil, err
	}
	vc, err := openVault(ctx, &cfg, log)
	if err != nil {
		return nil, err
	}
	if vc != nil {
		undo = append(undo, func() { vc.Close() })
	}
	var keyring node.Keyring
	if cfg.KeysBackend == "vault" {
		t, err := keys.OpenTransit(ctx, vc, now, cfg.KeyRotationOverlap)
		if err != nil {
			return nil, fmt.Errorf("vault transit: %w", err)
		}
		keyring = t
	} else {
		l, err := keys.OpenLocal(filepath.Join(cfg.DataDir, "keys"), keys.LocalOptions{Now: now, Generate: opt.GenerateKey})
		if err != nil {
			return nil, err
		}
		keyring = l
	}
	secrets := node.StaticSecret(cfg.JWTSecret)
	if cfg.JWTSecretVaultPath != "" {
		if secrets, err = node.VaultSecrets(ctx, keys.NewSecrets(vc), cfg.JWTSecretVaultPath, cfg.JWTRotationOverlap, now); err != nil {
			return nil, fmt.Errorf("JWT_SECRET_VAULT_PATH: %w", err)
		}
	}
	be, err := openBackend(ctx, cfg, now, log, vc)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { be.close() })
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	undo = append(undo, func() { ln.Close() })
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	cfg.TLSEnabled = tlsCfg != nil // the node's meaning: this process serves HTTPS (by files or ACME)
	if cfg.NodeDomain == "" {
		cfg.NodeDomain, _ = fednode.ParseDomain(ln.Addr().String())
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = publicScheme(cfg, scheme) + "://" + cfg.NodeDomain
	}
	deps := node.Deps{
		Store: be.store, Limiter: be.limiter, Broker: be.broker, Replicas: be.redis,
		Keyring: keyring, Secrets: secrets, Clock: now, Log: log, Audit: opt.Audit,
	}
	if vc != nil {
		deps.Ready = map[string]func(context.Context) error{"vault": vc.Health}
	}
	deps.Collectors = append(deps.Collectors, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "fednode_store_damaged_records_total",
		Help: "Stored messages that failed to open (damaged or tampered with) since the node started; none of them was served."},
		func() float64 { return float64(be.sealer.Damaged()) }))
	cfg.MetricsSeparate = cfg.MetricsAddr != ""
	srv, err := node.New(ctx, cfg.Config, deps)
	if err != nil {
		return nil, err
	}
	var ml *metricsListener
	if cfg.MetricsSeparate {
		if ml, err = listenMetrics(ctx, cfg.MetricsAddr, srv.MetricsHandler(), log); err != nil {
			srv.Close()
			return nil, err
		}
	}
	d := &Daemon{Server: srv, cfg: cfg, log: log, ln: ln, url: scheme + "://" + ln.Addr().String(), serveErr: make(chan error, 1), be: be, vault: vc, metrics: ml}
	if src, ok := be.store.(backupSource); ok && !be.redis { // online backups (adminsock.go)
		if d.admin, err = serveAdmin(cfg.DataDir, src, log, opt.Audit); err != nil {
			log.Warn("admin socket: off, so `fednode admin backup` cannot reach this node while it runs", "err", err)
			err = nil
		}
	}
	d.http = newHTTPServer(ctx, srv.Handler(), log)
	go func() {
		if err := d.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.serveErr <- err
		}
	}()
	if ml != nil {
		ml.serve(d.serveErr)
	}
	srv.Start()
	if certs != nil {
		go certs.warm(log)
	}
	warnPlainInbox(cfg, scheme, log)
	log.Info("listening", "addr", ln.Addr().String(), "url", d.url, "node_domain", cfg.NodeDomain, "env", cfg.Env)
	return d, nil
}

// newHTTPServer is the server of each listener: bounded reads, writes,
// idle connections and headers; net/http's own complaints in the JSON log.
func newHTTPServer(ctx context.Context, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// URL is the base URL the daemon listens on.
func (d *Daemon) URL() string { return d.url }

// Close says the node is going (readiness fails from now on), stops
// accepting requests and waits for in-flight ones, stops the node's work
// and closes its live sockets, then closes what Open opened.
//
// Each step is logged: the start of the drain, the end of the drain (with
// how long in-flight requests took, and whether they ran out of time),
// and the end of the shutdown, with its whole duration.
func (d *Daemon) Close() error {
	start := time.Now()
	d.Server.Draining()
	d.log.Info("shutdown: draining", "in_flight_timeout", shutdownTimeout.String(), "live_sockets", d.Server.LiveSockets())
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := d.http.Shutdown(ctx)
	if d.admin != nil {
		d.admin.close()
	}
	d.log.Info("shutdown: drained", "duration_ms", time.Since(start).Milliseconds(), "timed_out", errors.Is(err, context.DeadlineExceeded))
	if cerr := d.Server.Close(); err == nil {
		err = cerr
	}
	if d.metrics != nil { // last: the drain can be watched to its end
		if cerr := d.metrics.close(); err == nil {
			err = cerr
		}
	}
	if cerr := d.be.close(); err == nil {
		err = cerr
	}
	if d.vault != nil {
		d.vault.Close()
	}
	if err != nil {
		d.log.Warn("shutdown: complete, with an error", "duration_ms", time.Since(start).Milliseconds(), "err", err)
	} else {
		d.log.Info("shutdown: complete", "duration_ms", time.Since(start).Milliseconds())
	}
	return err
}

// shutdownTimeout is how long Close waits for in-flight requests.
const shutdownTimeout = 10 * time.Second

// VaultCalls is how many requests this node has made to Vault (0 without
// Vault), for benchmarks and tests.
func (d *Daemon) VaultCalls() int64 {
	if d.vault == nil {
		return 0
	}
	return d.vault.Calls()
}

// backend is the storage, limiter and event channel a node runs on: bbolt,
// an in-process limiter and in-process events for a single node; Redis for
// all three when replicas share it.
type backend struct {
	store   fednode.Store
	limiter ratelimit.Limiter
	broker  node.Broker
	closers []func() error
	redis   bool
	sealer  *atrest.Sealer // seals and opens the store's messages at rest
}

func (b backend) close() error {
	for _, c := range b.closers {
		c()
	}
	return b.store.Close()
}

func openBackend(ctx context.Context, cfg Config, now func() time.Time, log *slog.Logger, vc *keys.VaultClient) (backend, error) {
	sealer, check, err := openSealer(ctx, cfg, vc, log)
	if err != nil {
		return backend{}, err
	}
	be, err := openBackendSealed(ctx, cfg, now, log, sealer)
	if err != nil {
		return backend{}, err
	}
	be.sealer = sealer // for every kind of store, in one place
	if err := check(ctx, be.store); err != nil {
		be.close()
		return backend{}, err
	}
	return be, nil
}

func openBackendSealed(ctx context.Context, cfg Config, now func() time.Time, log *slog.Logger, sealer *atrest.Sealer) (backend, error) {
	if cfg.RedisURL == "" {
		// Never Create: a start made the store in prepareStore, and an
		// admin command on a missing store must not make an empty one.
		store, err := bolt.Open(ctx, bolt.Options{Dir: cfg.DataDir, Timeout: 2 * time.Second, Log: log, Sealer: sealer})
		if err != nil {
			return backend{}, storeError(cfg, err)
		}
		return backend{store: store, limiter: ratelimit.NewMemory(now), broker: node.NewLocalBroker()}, nil
	}
	goredis.SetLogger(redisLogger{log})
	opt := redis.Options{URL: cfg.RedisURL, Password: cfg.RedisPassword, Cluster: cfg.RedisCluster, Namespace: cfg.RedisNamespace, CAFile: cfg.RedisTLSCAFile}
	opt.Log, opt.Sealer = log, sealer
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

// openVault makes the Vault client when the configuration uses Vault (nil
// otherwise), and reads into cfg the Redis password kept there: what the
// node and the offline admin commands both need before they open the store.
func openVault(ctx context.Context, cfg *Config, log *slog.Logger) (*keys.VaultClient, error) {
	if !cfg.usesVault() {
		return nil, nil
	}
	vc, err := keys.NewVaultClient(ctx, cfg.vaultConfig(log))
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if cfg.RedisPasswordVaultPath != "" {
		v, err := keys.NewSecrets(vc).Read(ctx, cfg.RedisPasswordVaultPath, 0)
		if err != nil {
			vc.Close()
			return nil, fmt.Errorf("REDIS_PASSWORD_VAULT_PATH: %w", err)
		}
		cfg.RedisPassword = v.Value
	}
	return vc, nil
}
