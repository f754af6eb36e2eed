package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/clientip"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/inbox"
	"github.com/fednode/fednode/keys"
	"github.com/fednode/fednode/outbox"
	"github.com/fednode/fednode/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
)

// Keyring is the node's key custody with the operator's rotation: a local
// key file (keys.Local) or Vault Transit (keys.Transit).
type Keyring interface {
	keys.Keyring
	Rotate(ctx context.Context, use string, overlap time.Duration) (keys.PublicKey, error)
}

// Deps are what a node is built from. The composition root (package
// daemon) opens and picks them; tests hand in fakes.
type Deps struct {
	Store   fednode.Store     // the full store contract; the parts of the node keep narrow views of it
	Limiter ratelimit.Limiter // shared by the replicas (Redis), or in process
	Broker  Broker            // events to every replica; NewLocalBroker for one process
	// Replicas says that several processes share Store: peer documents are
	// shared through it, and live sockets also poll their mailbox.
	Replicas bool
	Keyring  Keyring
	Secrets  TokenSecrets // StaticSecret or VaultSecrets
	// Ready are readiness checks besides the store's, by name (Vault).
	Ready map[string]func(context.Context) error
	Clock func() time.Time // nil means time.Now
	Log   *slog.Logger
	Audit *slog.Logger // the audit stream
	// Collectors are more metrics for /metrics, from parts the
	// composition root built (the at-rest sealer's damage count).
	Collectors []prometheus.Collector
}

// Server is the node's service: accounts, sessions, messages, the live
// sockets, the federation inbox and outbox, limits and bans, behind one
// http.Handler.
type Server struct {
	cfg      Config
	log      *slog.Logger
	audit    *slog.Logger
	store    fednode.Store
	accounts *accounts
	// challenges issues and checks proofs of work (challenge.go).
	challenges *challenges
	messages   *messaging
	hub        *hub
	now        func() time.Time

	keyring   Keyring
	secrets   TokenSecrets
	ready     map[string]func(context.Context) error
	directory *federation.Directory
	outbox    *outbox.Outbox
	inbox     *inbox.Inbox
	userKeys  *peerKeys // peers' users' end-to-end keys, kept a minute
	keyDocs   keyDocs   // user key documents this node signed lately
	policy    *federationPolicy
	abuse     *abuse
	ips       *clientip.Resolver
	metrics   *metrics
	broker    Broker
	waker     peerWaker
	bgCtx     context.Context
	cancelBg  context.CancelFunc
	wsPoll    bool        // replicas: sockets also check their mailbox every few seconds
	draining  atomic.Bool // Close has begun
	started   bool
	stop      chan struct{}
	closeOnce sync.Once
	bg        sync.WaitGroup // janitor, outbox and live sockets
}

// New builds a node from its configuration and dependencies. It starts no
// background work: Start does. cfg.NodeDomain must be set.
func New(ctx context.Context, cfg Config, d Deps) (*Server, error) {
	if cfg.NodeDomain == "" {
		return nil, errors.New("node: NodeDomain is not set")
	}
	if d.Store == nil || d.Limiter == nil || d.Broker == nil || d.Keyring == nil || d.Secrets == nil || d.Log == nil || d.Audit == nil {
		return nil, errors.New("node: a dependency is missing")
	}
	now := d.Clock
	if now == nil {
		now = time.Now
	}
	log, audit := d.Log, d.Audit
	keyring, secrets := d.Keyring, d.Secrets
	store := d.Store
	s := &Server{
		cfg: cfg, log: log, audit: audit, store: store, hub: newHub(), now: now, keyring: keyring, secrets: secrets,
		stop: make(chan struct{}), broker: d.Broker, ready: d.Ready,
	}
	s.bgCtx, s.cancelBg = context.WithCancel(context.WithoutCancel(ctx))
	s.metrics = newMetrics(func() float64 { return float64(s.hub.count()) })
	s.metrics.reg.MustRegister(d.Collectors...)
	if f, ok := d.Limiter.(*ratelimit.Failover); ok {
		f.OnFallback = func(err error) {
			s.metrics.fallbacks.Inc()
			log.Warn("rate limiting: Redis did not answer", "fail_open", cfg.RateLimitFailOpen, "err", err)
		}
	}
	var err error
	if s.ips, err = clientip.New(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	s.abuse = &abuse{cfg: cfg, limiter: d.Limiter, local: ratelimit.NewMemory(now), store: store, ips: s.ips, now: now, audit: audit, log: log, m: s.metrics,
		publish: s.broker.Publish, bans: map[string]fednode.Ban{}}
	if err := s.abuse.reload(ctx); err != nil {
		return nil, fmt.Errorf("bans: %w", err)
	}
	s.metrics.registerState(s, cmp.Or(cfg.MetricsTopPeers, DefaultMetricsTopPeers), d.Limiter)
	s.broker.Run(s.bgCtx, s.onEvent)
	if s.policy, err = newFederationPolicy(ctx, store, cfg); err != nil {
		return nil, err
	}
	client := federation.NewHTTPClient(federation.ClientOptions{AllowPrivate: cfg.FederationAllowPrivate})
	var shared federation.Shared
	if d.Replicas {
		shared = store
	}
	s.directory = federation.NewDirectory(client, cfg.FederationScheme(), cfg.PeerKeyTTL, cfg.PeerKeyRefetch, now, shared)
	replica := fednode.NewID(now()) // this process, as a lease owner
	s.wsPoll = d.Replicas
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
	s.outbox.OnStatus(s.publishStatus)
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
		LimitGet: func(ctx context.Context, key string) error {
			_, err := s.abuse.decide(ctx, ClassPeerKeys, key) // decide, not charge: no ban
			return err
		},
		Notify: s.notify, Now: now, Log: log, OnVerified: s.peerDelivered,
		OnRefusal: func(ctx context.Context, code, ip string) {
			s.metrics.inboxRefused.WithLabelValues(code).Inc()
			if signatureFailure[code] {
				s.abuse.violation(ctx, violationSig, ip)
			}
		},
	})
	s.userKeys = newPeerKeys(&federation.UserKeysFetcher{Domain: cfg.NodeDomain, Scheme: cfg.FederationScheme(), Client: client, Keyring: keyring, Peers: s.directory, Now: now}, now, cfg.PeerUserKeysTTL, cfg.PeerUserKeysNotFoundTTL)
	tokens := &tokenIssuer{secrets: secrets, alg: cfg.JWTAlgorithm, ttl: cfg.JWTExpiration, issuer: cfg.NodeDomain, now: s.now}
	s.accounts, err = newAccounts(store, tokens, cfg, audit, s.revoked)
	if err != nil {
		return nil, err
	}
	s.challenges = &challenges{cfg: cfg, secrets: secrets, store: store, limiter: d.Limiter, now: now, audit: audit}
	s.accounts.challenges = s.challenges
	s.accounts.signup = &signup{mode: cfg.RegistrationMode, invites: store, audit: audit}
	s.messages = &messaging{store: store, domain: cfg.NodeDomain, now: s.now, notify: s.notify, allowed: s.policy.Allowed, enqueued: s.outbox.Notify}
	return s, nil
}

// Start starts the node's background work: the janitor and the outbox.
func (s *Server) Start() {
	s.started = true
	s.bg.Add(2)
	go s.janitor()
	go func() {
		defer s.bg.Done()
		s.outbox.Run(s.bgCtx)
	}()
}

// Draining makes readiness fail from now on, before the listener stops.
func (s *Server) Draining() { s.draining.Store(true) }

// Domain is the node's NODE_DOMAIN.
func (s *Server) Domain() string { return s.cfg.NodeDomain }

// Close stops the background work and closes the live sockets, and waits
// for both; a second Close only waits. The store and the other
// dependencies belong to the caller.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.draining.Store(true)
		s.hub.closeAll() // first, so that sockets say "going away" (1001)
		close(s.stop)
		s.cancelBg() // then whatever is stuck in a store call gives up
	})
	s.bg.Wait()
	return nil
}

// signatureFailure lists the inbox refusals that count toward a ban of the
// sending IP: forged or broken signatures, not clock skew or limits.
var signatureFailure = map[string]bool{
	fednode.ESigMissing: true, fednode.ESigMalformed: true, fednode.ESigHeaders: true, fednode.ESigAlgorithm: true,
	fednode.ESigInvalid: true, fednode.EUnknownKey: true, fednode.EKeyIDMismatch: true, fednode.EDigest: true,
}

// notify wakes the live sockets of users on every replica.
func (s *Server) notify(users ...string) {
	if err := s.broker.Publish(s.bgCtx, TopicNotify, users); err != nil {
		s.log.Warn("broker: notify", "err", err)
		s.hub.notify(users...) // at least this replica's sockets
	}
}

// revoked closes the sockets of revoked sessions on every replica.
func (s *Server) revoked(ids []string) {
	if len(ids) == 0 {
		return
	}
	s.accounts.cache.forget(ids) // here at once, whatever the broker does
	if err := s.broker.Publish(s.bgCtx, TopicRevoke, ids); err != nil {
		s.log.Warn("broker: revoke", "err", err)
		s.hub.closeSessions(ids)
	}
}

// onEvent handles an event from any replica, this one included.
func (s *Server) onEvent(topic string, payload []string) {
	switch topic {
	case TopicNotify:
		s.hub.notify(payload...)
	case TopicRevoke:
		s.accounts.cache.forget(payload)
		s.hub.closeSessions(payload)
	case TopicStatus:
		s.onStatusEvent(payload)
	case TopicWake:
		s.onWakeEvent(payload)
	case TopicUsers:
		s.accounts.cache.forgetUsers(payload)
	case TopicBans:
		if err := s.abuse.reload(s.bgCtx); err != nil {
			s.log.Warn("bans: reload", "err", err)
		}
	}
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
			ctx := s.bgCtx // Close cancels a stuck store call
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
			if _, err := s.store.PruneInvites(ctx, now.Add(-inviteKeep)); err != nil {
				s.log.Error("prune invites", "err", err)
			}
			if r, ok := s.keyring.(interface{ Retire(context.Context) error }); ok {
				if err := r.Retire(ctx); err != nil {
					s.log.Warn("keys: retire rotated versions", "err", err)
				}
			}
		}
	}
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
	s.keyDocs.clear() // documents are signed with the current signing key
	return federation.KeyID(s.cfg.NodeDomain, k.ID), nil
}

// PeerDocumentFetches is how many peer documents this node has fetched.
func (s *Server) PeerDocumentFetches() int64 { return s.directory.Fetches() }
