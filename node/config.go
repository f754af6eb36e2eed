package node

import (
	"net/url"
	"strings"
	"time"

	"github.com/fednode/fednode/ratelimit"
)

// Environments.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
)

// MinSecretLen is the shortest JWT secret accepted in production (the seed's
// "min 32 chars").
const MinSecretLen = 32

// Config is what the node's service is told: names, limits, lifetimes and
// policies. The composition root (package daemon) reads it from the
// environment, checks it and hands it to New; nothing here reads the
// environment or keeps configuration in globals. The comments name the
// environment variable each field comes from.
type Config struct {
	Env        string // ENV: development | production
	NodeDomain string // NODE_DOMAIN: host[:port] that names this node in addresses
	PublicURL  string // PUBLIC_URL: the base URL users and peers reach the node at

	JWTAlgorithm       string        // JWT_ALGORITHM: HS256 | HS384 | HS512
	JWTExpiration      time.Duration // JWT_EXPIRATION_HOURS
	JWTRotationOverlap time.Duration // JWT_ROTATION_OVERLAP

	AllowedOrigins []string // ALLOWED_ORIGINS: comma-separated origins, or *

	TLSEnabled           bool // TLS_ENABLED: this process serves HTTPS
	TLSTerminatedByProxy bool // TLS_TERMINATED_BY_PROXY: a trusted proxy in front terminates TLS

	LoginMaxFailures   int           // LOGIN_MAX_FAILURES
	LoginFailureWindow time.Duration // LOGIN_FAILURE_WINDOW
	MaxSessionsPerUser int           // MAX_SESSIONS_PER_USER

	FederationMode         string        // FEDERATION_MODE: open | allowlist
	FederationAllowlist    []string      // FEDERATION_ALLOWLIST
	FederationBlocklist    []string      // FEDERATION_BLOCKLIST
	FederationAllowPrivate bool          // FEDERATION_ALLOW_PRIVATE: peers on loopback/private addresses (development)
	FederationPlainHTTP    bool          // FEDERATION_PLAIN_HTTP: talk to peers over http:// (development)
	FederationDateWindow   time.Duration // FEDERATION_DATE_WINDOW
	PeerKeyTTL             time.Duration // PEER_KEY_TTL
	PeerKeyRefetch         time.Duration // PEER_KEY_REFETCH_INTERVAL
	OutboxLanes            int           // OUTBOX_LANES_PER_PEER
	OutboxBatchSize        int           // OUTBOX_BATCH_SIZE
	OutboxRetryBase        time.Duration // OUTBOX_RETRY_BASE
	OutboxRetryMax         time.Duration // OUTBOX_RETRY_MAX
	OutboxGiveUpAfter      time.Duration // OUTBOX_GIVE_UP_AFTER
	OutboxLeaseTTL         time.Duration // OUTBOX_LEASE_TTL: how soon another replica takes over a dead one's peers
	KeyRotationOverlap     time.Duration // KEY_ROTATION_OVERLAP

	RateLimitDefault  ratelimit.Rule            // RATE_LIMIT_REQUESTS per RATE_LIMIT_WINDOW
	RateLimits        map[string]ratelimit.Rule // RATE_LIMIT_<CLASS>: per-class overrides
	RateLimitFailOpen bool                      // RATE_LIMIT_FAIL_OPEN (the limiter enforces it; the node reports it)
	TrustedProxies    []string                  // TRUSTED_PROXIES: CIDRs whose X-Forwarded-For is believed

	BanAfterViolations   int           // BAN_AFTER_VIOLATIONS: rate-limit refusals before a ban
	BanAfterAuthFailures int           // BAN_AFTER_AUTH_FAILURES
	BanAfterSigFailures  int           // BAN_AFTER_SIGNATURE_FAILURES
	BanWindow            time.Duration // BAN_WINDOW: the window those counts are in
	BanDuration          time.Duration // BAN_DURATION: the first ban's length; doubles per repeat
	BanMaxDuration       time.Duration // BAN_MAX_DURATION

	// Registration modes and the proof-of-work challenge (signup.go, challenge.go).
	RegistrationMode            string        // REGISTRATION_MODE: open | invite | closed
	ChallengeAfterLoginFailures int           // CHALLENGE_AFTER_LOGIN_FAILURES: per username or client within LOGIN_FAILURE_WINDOW; 0: always
	ChallengeAfterRegistrations int           // CHALLENGE_AFTER_REGISTRATIONS: attempts per client within ChallengeRegistrationWindow; 0: always
	ChallengeMaxNumber          int64         // CHALLENGE_MAX_NUMBER: the difficulty
	ChallengeTTL                time.Duration // CHALLENGE_TTL: how long a challenge may be solved and used

	MetricsToken    string // METRICS_TOKEN: /metrics answers only requests bearing it
	MetricsSeparate bool   // METRICS_ADDR is set: /metrics is served by MetricsHandler, not Handler
	MetricsTopPeers int    // peers the outbox metrics name; 0 means DefaultMetricsTopPeers

	// Not from the environment: tuning that tests shorten.
	Password      PasswordParams
	WSPingPeriod  time.Duration
	WSPongWait    time.Duration
	WSWriteWait   time.Duration
	PruneInterval time.Duration
	// How long a peer's user key document, and a peer's "no keys" answer,
	// are kept (peerkeys.go); 0 means the default.
	PeerUserKeysTTL         time.Duration
	PeerUserKeysNotFoundTTL time.Duration
}

// Rate-limit classes. Each has its own rule; RATE_LIMIT_<CLASS> (upper
// case) overrides it as "N/duration", e.g. RATE_LIMIT_AUTH=10/1m.
const (
	ClassAPIAnon   = "api_anon"   // unauthenticated API requests, per IP
	ClassAPIAuth   = "api_auth"   // authenticated API requests, per user
	ClassAuth      = "auth"       // login and registration, per IP (stricter)
	ClassWSConnect = "ws_connect" // WebSocket connects, per user
	ClassWSFrames  = "ws_frames"  // inbound WebSocket frames, per user
	ClassMetrics   = "metrics"    // /metrics, per IP, in process
	ClassProbe     = "probe"      // /healthz and /readyz, per IP, in process
	ClassInboxPeer = "inbox_peer" // federation deliveries, per sending node
	ClassInboxIP   = "inbox_ip"   // federation deliveries, per IP
	ClassPeerKeys  = "peer_keys"  // peers' signed reads of user keys, per IP and per requesting node; no ban
)

// Classes lists every rate-limit class.
var Classes = []string{ClassAPIAnon, ClassAPIAuth, ClassAuth, ClassWSConnect, ClassWSFrames, ClassMetrics, ClassProbe, ClassInboxPeer, ClassInboxIP, ClassPeerKeys}

// localClasses are decided by each process's own limiter, never the shared
// one: monitoring and health checks must work while Redis is away, and
// each replica is probed and scraped on its own anyway.
var localClasses = map[string]bool{ClassMetrics: true, ClassProbe: true}

// Rule returns the rule of a class.
func (c Config) Rule(class string) ratelimit.Rule {
	if r, ok := c.RateLimits[class]; ok {
		return r
	}
	return c.RateLimitDefault
}

// DefaultConfig returns the service's defaults (development mode).
func DefaultConfig() Config {
	return Config{
		Env:                EnvDevelopment,
		JWTAlgorithm:       "HS256",
		JWTExpiration:      24 * time.Hour,
		JWTRotationOverlap: 24 * time.Hour,
		LoginMaxFailures:   5,
		LoginFailureWindow: 15 * time.Minute,
		MaxSessionsPerUser: 10,
		Password:           DefaultPasswordParams,
		WSPingPeriod:       25 * time.Second,
		WSPongWait:         60 * time.Second,
		WSWriteWait:        10 * time.Second,
		PruneInterval:      time.Minute,

		FederationMode:       "open",
		FederationDateWindow: 5 * time.Minute,
		PeerKeyTTL:           time.Hour,
		PeerKeyRefetch:       time.Minute,
		OutboxLanes:          4,
		OutboxBatchSize:      64,
		OutboxRetryBase:      30 * time.Second,
		OutboxRetryMax:       6 * time.Hour,
		OutboxGiveUpAfter:    5 * 24 * time.Hour,
		OutboxLeaseTTL:       30 * time.Second,
		KeyRotationOverlap:   7 * 24 * time.Hour,

		RateLimitDefault: ratelimit.Rule{Limit: 100, Window: time.Minute},
		RateLimits: map[string]ratelimit.Rule{
			ClassAuth:      {Limit: 10, Window: time.Minute},
			ClassAPIAuth:   {Limit: 600, Window: time.Minute},
			ClassWSFrames:  {Limit: 60, Window: time.Minute},
			ClassWSConnect: {Limit: 30, Window: time.Minute},
			ClassInboxPeer: {Limit: 1200, Window: time.Minute},
			ClassInboxIP:   {Limit: 600, Window: time.Minute},
			ClassPeerKeys:  {Limit: 600, Window: time.Minute},
			ClassProbe:     {Limit: 300, Window: time.Minute},
		},
		BanAfterViolations:   20,
		BanAfterAuthFailures: 30,
		BanAfterSigFailures:  30,
		BanWindow:            10 * time.Minute,
		BanDuration:          15 * time.Minute,
		BanMaxDuration:       24 * time.Hour,

		RegistrationMode:            RegistrationOpen,
		ChallengeAfterLoginFailures: 3,
		ChallengeAfterRegistrations: 3,
		ChallengeMaxNumber:          250_000,
		ChallengeTTL:                5 * time.Minute,
	}
}

// Production reports whether the node runs in production mode.
func (c Config) Production() bool { return c.Env == EnvProduction }

// originAllowed reports whether a browser Origin may use the API.
func (c Config) originAllowed(origin string) bool {
	origin = strings.TrimRight(origin, "/")
	for _, o := range c.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// FederationScheme is how this node reaches peers: https, or http when
// FEDERATION_PLAIN_HTTP is set for development.
func (c Config) FederationScheme() string {
	if c.FederationPlainHTTP {
		return "http"
	}
	return "https"
}

// InboxScheme is the scheme of the inbox this node advertises in its node
// document: PUBLIC_URL's, which says how peers reach it (the daemon sets it
// from what the process serves, or https behind a TLS-terminating proxy).
// So a node serving plain HTTP never advertises an https:// inbox. Without
// a PUBLIC_URL (node tests) it is the federation scheme.
func (c Config) InboxScheme() string {
	if u, err := url.Parse(c.PublicURL); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return u.Scheme
	}
	return c.FederationScheme()
}
