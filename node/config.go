package node

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/clientip"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/keys"
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

// Config is everything the node is told. It is read once, from the
// environment, by FromEnv, checked by Validate, and passed explicitly: no
// package reads the environment or keeps configuration in globals.
type Config struct {
	Env        string // ENV: development | production
	ListenAddr string // LISTEN_ADDR
	DataDir    string // DATA_DIR
	NodeDomain string // NODE_DOMAIN: host[:port] that names this node in addresses
	PublicURL  string // PUBLIC_URL: the base URL users and peers reach the node at

	JWTSecret     string        // JWT_SECRET or JWT_SECRET_FILE
	JWTAlgorithm  string        // JWT_ALGORITHM: HS256 | HS384 | HS512
	JWTExpiration time.Duration // JWT_EXPIRATION_HOURS

	AllowedOrigins []string // ALLOWED_ORIGINS: comma-separated origins, or *

	TLSEnabled           bool   // TLS_ENABLED
	TLSCertPath          string // TLS_CERT_PATH
	TLSKeyPath           string // TLS_KEY_PATH
	TLSTerminatedByProxy bool   // TLS_TERMINATED_BY_PROXY: a trusted proxy in front terminates TLS

	LoginMaxFailures   int           // LOGIN_MAX_FAILURES
	LoginFailureWindow time.Duration // LOGIN_FAILURE_WINDOW
	MaxSessionsPerUser int           // MAX_SESSIONS_PER_USER

	LogLevel slog.Level // LOG_LEVEL: debug | info | warn | error
	AuditLog string     // AUDIT_LOG: stdout | stderr | a file path

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

	RedisURL       string // REDIS_URL: redis:// or rediss://; empty: the embedded store
	RedisPassword  string // REDIS_PASSWORD or REDIS_PASSWORD_FILE
	RedisCluster   bool   // REDIS_CLUSTER: REDIS_URL names a Redis Cluster
	RedisNamespace string // REDIS_NAMESPACE: key prefix shared by the replicas of one node
	RedisTLSCAFile string // REDIS_TLS_CA_FILE: CAs to trust for rediss://

	RateLimitDefault  ratelimit.Rule            // RATE_LIMIT_REQUESTS per RATE_LIMIT_WINDOW
	RateLimits        map[string]ratelimit.Rule // RATE_LIMIT_<CLASS>: per-class overrides
	RateLimitFailOpen bool                      // RATE_LIMIT_FAIL_OPEN
	TrustedProxies    []string                  // TRUSTED_PROXIES: CIDRs whose X-Forwarded-For is believed

	BanAfterViolations   int           // BAN_AFTER_VIOLATIONS: rate-limit refusals before a ban
	BanAfterAuthFailures int           // BAN_AFTER_AUTH_FAILURES
	BanAfterSigFailures  int           // BAN_AFTER_SIGNATURE_FAILURES
	BanWindow            time.Duration // BAN_WINDOW: the window those counts are in
	BanDuration          time.Duration // BAN_DURATION: the first ban's length; doubles per repeat
	BanMaxDuration       time.Duration // BAN_MAX_DURATION

	KeysBackend            string        // KEYS_BACKEND: local | vault
	VaultAddr              string        // VAULT_ADDR
	VaultToken             string        // VAULT_TOKEN or VAULT_TOKEN_FILE
	VaultRoleID            string        // VAULT_ROLE_ID (AppRole)
	VaultSecretID          string        // VAULT_SECRET_ID or VAULT_SECRET_ID_FILE
	VaultTransitMount      string        // VAULT_TRANSIT_MOUNT
	VaultKVMount           string        // VAULT_KV_MOUNT
	VaultKeyPrefix         string        // VAULT_KEY_PREFIX
	JWTSecretVaultPath     string        // JWT_SECRET_VAULT_PATH: KV v2 path of the JWT secret
	RedisPasswordVaultPath string        // REDIS_PASSWORD_VAULT_PATH
	JWTRotationOverlap     time.Duration // JWT_ROTATION_OVERLAP

	// Not from the environment: tuning that tests shorten.
	Password      PasswordParams
	WSPingPeriod  time.Duration
	WSPongWait    time.Duration
	WSWriteWait   time.Duration
	PruneInterval time.Duration
	// Now is the clock; nil means time.Now. Tests move it to cross windows.
	Now func() time.Time
	// GenerateKey makes the node's RSA-4096 keys on first start; nil means
	// crypto/rand. Tests hand out fixed keys: generation takes seconds.
	GenerateKey func() (*rsa.PrivateKey, error)
}

// EnvVars are the environment variables FromEnv reads (secrets also as
// NAME_FILE). The README's configuration table documents exactly these;
// tests hold the three together.
var EnvVars = []string{
	"ENV", "LISTEN_ADDR", "DATA_DIR", "NODE_DOMAIN", "PUBLIC_URL",
	"JWT_SECRET", "JWT_ALGORITHM", "JWT_EXPIRATION_HOURS", "ALLOWED_ORIGINS",
	"TLS_ENABLED", "TLS_CERT_PATH", "TLS_KEY_PATH", "TLS_TERMINATED_BY_PROXY",
	"LOGIN_MAX_FAILURES", "LOGIN_FAILURE_WINDOW", "MAX_SESSIONS_PER_USER", "LOG_LEVEL", "AUDIT_LOG",
	"FEDERATION_MODE", "FEDERATION_ALLOWLIST", "FEDERATION_BLOCKLIST", "FEDERATION_ALLOW_PRIVATE", "FEDERATION_PLAIN_HTTP",
	"FEDERATION_DATE_WINDOW", "PEER_KEY_TTL", "PEER_KEY_REFETCH_INTERVAL",
	"OUTBOX_LANES_PER_PEER", "OUTBOX_BATCH_SIZE", "OUTBOX_RETRY_BASE", "OUTBOX_RETRY_MAX", "OUTBOX_GIVE_UP_AFTER", "OUTBOX_LEASE_TTL",
	"KEY_ROTATION_OVERLAP",
	"REDIS_URL", "REDIS_PASSWORD", "REDIS_CLUSTER", "REDIS_NAMESPACE", "REDIS_TLS_CA_FILE",
	"RATE_LIMIT_REQUESTS", "RATE_LIMIT_WINDOW", "RATE_LIMIT_FAIL_OPEN",
	"RATE_LIMIT_API_ANON", "RATE_LIMIT_API_AUTH", "RATE_LIMIT_AUTH", "RATE_LIMIT_WS_CONNECT", "RATE_LIMIT_WS_FRAMES",
	"RATE_LIMIT_METRICS", "RATE_LIMIT_PROBE", "RATE_LIMIT_INBOX_PEER", "RATE_LIMIT_INBOX_IP",
	"TRUSTED_PROXIES",
	"BAN_AFTER_VIOLATIONS", "BAN_AFTER_AUTH_FAILURES", "BAN_AFTER_SIGNATURE_FAILURES", "BAN_WINDOW", "BAN_DURATION", "BAN_MAX_DURATION",
	"KEYS_BACKEND", "VAULT_ADDR", "VAULT_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID", "VAULT_TRANSIT_MOUNT", "VAULT_KV_MOUNT",
	"VAULT_KEY_PREFIX", "JWT_SECRET_VAULT_PATH", "REDIS_PASSWORD_VAULT_PATH", "JWT_ROTATION_OVERLAP",
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
)

// Classes lists every rate-limit class.
var Classes = []string{ClassAPIAnon, ClassAPIAuth, ClassAuth, ClassWSConnect, ClassWSFrames, ClassMetrics, ClassProbe, ClassInboxPeer, ClassInboxIP}

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

// DefaultConfig returns the embedded defaults: development mode on
// 127.0.0.1:8080 with data under ./data.
func DefaultConfig() Config {
	return Config{
		Env:                EnvDevelopment,
		ListenAddr:         "127.0.0.1:8080",
		DataDir:            "./data",
		JWTAlgorithm:       "HS256",
		JWTExpiration:      24 * time.Hour,
		LoginMaxFailures:   5,
		LoginFailureWindow: 15 * time.Minute,
		MaxSessionsPerUser: 10,
		LogLevel:           slog.LevelInfo,
		AuditLog:           "stdout",
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
		OutboxBatchSize:      16,
		OutboxRetryBase:      30 * time.Second,
		OutboxRetryMax:       6 * time.Hour,
		OutboxGiveUpAfter:    5 * 24 * time.Hour,
		OutboxLeaseTTL:       30 * time.Second,
		KeyRotationOverlap:   7 * 24 * time.Hour,

		RedisNamespace:   "fednode",
		RateLimitDefault: ratelimit.Rule{Limit: 100, Window: time.Minute},
		RateLimits: map[string]ratelimit.Rule{
			ClassAuth:      {Limit: 10, Window: time.Minute},
			ClassAPIAuth:   {Limit: 600, Window: time.Minute},
			ClassWSFrames:  {Limit: 60, Window: time.Minute},
			ClassWSConnect: {Limit: 30, Window: time.Minute},
			ClassInboxPeer: {Limit: 1200, Window: time.Minute},
			ClassInboxIP:   {Limit: 600, Window: time.Minute},
			ClassProbe:     {Limit: 300, Window: time.Minute},
		},
		BanAfterViolations:   20,
		BanAfterAuthFailures: 30,
		BanAfterSigFailures:  30,
		BanWindow:            10 * time.Minute,
		BanDuration:          15 * time.Minute,
		BanMaxDuration:       24 * time.Hour,

		KeysBackend:        "local",
		VaultTransitMount:  "transit",
		VaultKVMount:       "secret",
		VaultKeyPrefix:     "fednode",
		JWTRotationOverlap: 24 * time.Hour,
	}
}

// FromEnv reads the configuration from getenv (os.Getenv in cmd/) on top of
// DefaultConfig. A secret may also be given as NAME_FILE, the path of a file
// holding it (trailing newlines are trimmed); setting both is an error. Every
// unparsable variable is reported, not just the first.
func FromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	var errs []error
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	secret := func(name string, dst *string) {
		v, file := getenv(name), getenv(name+"_FILE")
		switch {
		case v != "" && file != "":
			errs = append(errs, fmt.Errorf("%s and %s_FILE are both set; set one", name, name))
		case file != "":
			b, err := os.ReadFile(file)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s_FILE: %w", name, err))
				return
			}
			*dst = strings.TrimRight(string(b), "\r\n")
		case v != "":
			*dst = v
		}
	}
	boolean := func(name string, dst *bool) {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not true or false", name, v))
				return
			}
			*dst = b
		}
	}
	integer := func(name string, dst *int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a whole number", name, v))
				return
			}
			*dst = n
		}
	}
	duration := func(name string, dst *time.Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a duration such as 15m", name, v))
				return
			}
			*dst = d
		}
	}

	str("ENV", &c.Env)
	str("LISTEN_ADDR", &c.ListenAddr)
	str("DATA_DIR", &c.DataDir)
	str("NODE_DOMAIN", &c.NodeDomain)
	str("PUBLIC_URL", &c.PublicURL)
	secret("JWT_SECRET", &c.JWTSecret)
	str("JWT_ALGORITHM", &c.JWTAlgorithm)
	if v := getenv("JWT_EXPIRATION_HOURS"); v != "" {
		h, err := strconv.ParseFloat(v, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("JWT_EXPIRATION_HOURS: %q is not a number", v))
		} else {
			c.JWTExpiration = time.Duration(h * float64(time.Hour))
		}
	}
	list := func(name string, dst *[]string, clean func(string) string) {
		if v := getenv(name); v != "" {
			*dst = nil
			for _, o := range strings.Split(v, ",") {
				if o = strings.TrimSpace(o); o != "" {
					*dst = append(*dst, clean(o))
				}
			}
		}
	}
	list("ALLOWED_ORIGINS", &c.AllowedOrigins, func(o string) string { return strings.TrimRight(o, "/") })
	boolean("TLS_ENABLED", &c.TLSEnabled)
	str("TLS_CERT_PATH", &c.TLSCertPath)
	str("TLS_KEY_PATH", &c.TLSKeyPath)
	boolean("TLS_TERMINATED_BY_PROXY", &c.TLSTerminatedByProxy)
	integer("LOGIN_MAX_FAILURES", &c.LoginMaxFailures)
	duration("LOGIN_FAILURE_WINDOW", &c.LoginFailureWindow)
	integer("MAX_SESSIONS_PER_USER", &c.MaxSessionsPerUser)
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL: %q is not debug, info, warn or error", v))
		}
	}
	str("AUDIT_LOG", &c.AuditLog)
	str("FEDERATION_MODE", &c.FederationMode)
	list("FEDERATION_ALLOWLIST", &c.FederationAllowlist, strings.ToLower)
	list("FEDERATION_BLOCKLIST", &c.FederationBlocklist, strings.ToLower)
	boolean("FEDERATION_ALLOW_PRIVATE", &c.FederationAllowPrivate)
	boolean("FEDERATION_PLAIN_HTTP", &c.FederationPlainHTTP)
	duration("FEDERATION_DATE_WINDOW", &c.FederationDateWindow)
	duration("PEER_KEY_TTL", &c.PeerKeyTTL)
	duration("PEER_KEY_REFETCH_INTERVAL", &c.PeerKeyRefetch)
	integer("OUTBOX_LANES_PER_PEER", &c.OutboxLanes)
	integer("OUTBOX_BATCH_SIZE", &c.OutboxBatchSize)
	duration("OUTBOX_RETRY_BASE", &c.OutboxRetryBase)
	duration("OUTBOX_RETRY_MAX", &c.OutboxRetryMax)
	duration("OUTBOX_GIVE_UP_AFTER", &c.OutboxGiveUpAfter)
	duration("OUTBOX_LEASE_TTL", &c.OutboxLeaseTTL)
	duration("KEY_ROTATION_OVERLAP", &c.KeyRotationOverlap)
	str("REDIS_URL", &c.RedisURL)
	secret("REDIS_PASSWORD", &c.RedisPassword)
	boolean("REDIS_CLUSTER", &c.RedisCluster)
	str("REDIS_NAMESPACE", &c.RedisNamespace)
	str("REDIS_TLS_CA_FILE", &c.RedisTLSCAFile)
	integer("RATE_LIMIT_REQUESTS", &c.RateLimitDefault.Limit)
	if v := getenv("RATE_LIMIT_WINDOW"); v != "" { // the seed gives seconds; a duration works too
		if n, err := strconv.Atoi(v); err == nil {
			c.RateLimitDefault.Window = time.Duration(n) * time.Second
		} else if d, err := time.ParseDuration(v); err == nil {
			c.RateLimitDefault.Window = d
		} else {
			errs = append(errs, fmt.Errorf("RATE_LIMIT_WINDOW: %q is not seconds or a duration", v))
		}
	}
	boolean("RATE_LIMIT_FAIL_OPEN", &c.RateLimitFailOpen)
	for _, class := range Classes {
		name := "RATE_LIMIT_" + strings.ToUpper(class)
		if v := getenv(name); v != "" {
			r, err := parseRule(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				continue
			}
			c.RateLimits[class] = r
		}
	}
	list("TRUSTED_PROXIES", &c.TrustedProxies, func(s string) string { return s })
	integer("BAN_AFTER_VIOLATIONS", &c.BanAfterViolations)
	integer("BAN_AFTER_AUTH_FAILURES", &c.BanAfterAuthFailures)
	integer("BAN_AFTER_SIGNATURE_FAILURES", &c.BanAfterSigFailures)
	duration("BAN_WINDOW", &c.BanWindow)
	duration("BAN_DURATION", &c.BanDuration)
	duration("BAN_MAX_DURATION", &c.BanMaxDuration)
	str("KEYS_BACKEND", &c.KeysBackend)
	str("VAULT_ADDR", &c.VaultAddr)
	secret("VAULT_TOKEN", &c.VaultToken)
	str("VAULT_ROLE_ID", &c.VaultRoleID)
	secret("VAULT_SECRET_ID", &c.VaultSecretID)
	str("VAULT_TRANSIT_MOUNT", &c.VaultTransitMount)
	str("VAULT_KV_MOUNT", &c.VaultKVMount)
	str("VAULT_KEY_PREFIX", &c.VaultKeyPrefix)
	str("JWT_SECRET_VAULT_PATH", &c.JWTSecretVaultPath)
	str("REDIS_PASSWORD_VAULT_PATH", &c.RedisPasswordVaultPath)
	duration("JWT_ROTATION_OVERLAP", &c.JWTRotationOverlap)
	return c, errors.Join(errs...)
}

// Production reports whether the node runs in production mode.
func (c Config) Production() bool { return c.Env == EnvProduction }

// Validate checks the whole configuration and names every problem at once,
// so an operator fixes them in one go. In production it refuses what the
// seed's checklist calls "must do before production": a missing or short
// JWT secret, wildcard CORS, and plain HTTP without a TLS-terminating proxy.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.Env != EnvDevelopment && c.Env != EnvProduction {
		bad("ENV: %q is not development or production", c.Env)
	}
	if c.ListenAddr == "" {
		bad("LISTEN_ADDR: must not be empty")
	}
	if c.DataDir == "" {
		bad("DATA_DIR: must not be empty")
	}
	if c.NodeDomain != "" {
		if d, err := fednode.ParseDomain(c.NodeDomain); err != nil || d != c.NodeDomain {
			bad("NODE_DOMAIN: %q is not a lower-case host name or IP address with an optional port", c.NodeDomain)
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad("PUBLIC_URL: %q is not an http(s) base URL", c.PublicURL)
		}
	}
	switch c.JWTAlgorithm {
	case "HS256", "HS384", "HS512":
	default:
		bad("JWT_ALGORITHM: %q is not supported; use HS256, HS384 or HS512", c.JWTAlgorithm)
	}
	if c.JWTExpiration < time.Minute || c.JWTExpiration > 90*24*time.Hour {
		bad("JWT_EXPIRATION_HOURS: must be between 1 minute and 2160 hours")
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < MinSecretLen {
		bad("JWT_SECRET: must be at least %d characters (generate one with: openssl rand -base64 48)", MinSecretLen)
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("ALLOWED_ORIGINS: %q is not an origin such as https://app.example.org", o)
		}
	}
	if c.TLSEnabled {
		for name, p := range map[string]string{"TLS_CERT_PATH": c.TLSCertPath, "TLS_KEY_PATH": c.TLSKeyPath} {
			if p == "" {
				bad("%s: required when TLS_ENABLED=true", name)
			} else if _, err := os.Stat(p); err != nil {
				bad("%s: %v", name, err)
			}
		}
	}
	if c.LoginMaxFailures < 1 {
		bad("LOGIN_MAX_FAILURES: must be at least 1")
	}
	if c.LoginFailureWindow < time.Second {
		bad("LOGIN_FAILURE_WINDOW: must be at least 1s")
	}
	if c.MaxSessionsPerUser < 1 {
		bad("MAX_SESSIONS_PER_USER: must be at least 1")
	}
	if c.AuditLog == "" {
		bad("AUDIT_LOG: must be stdout, stderr or a file path")
	}
	if err := c.Password.validate(); err != nil {
		bad("password hashing: %v", err)
	}

	if c.FederationMode != "open" && c.FederationMode != "allowlist" {
		bad("FEDERATION_MODE: %q is not open or allowlist", c.FederationMode)
	}
	for name, l := range map[string][]string{"FEDERATION_ALLOWLIST": c.FederationAllowlist, "FEDERATION_BLOCKLIST": c.FederationBlocklist} {
		for _, d := range l {
			if cd, err := fednode.ParseDomain(d); err != nil || cd != d {
				bad("%s: %q is not a node domain", name, d)
			}
		}
	}
	for name, d := range map[string]time.Duration{"FEDERATION_DATE_WINDOW": c.FederationDateWindow, "PEER_KEY_TTL": c.PeerKeyTTL,
		"PEER_KEY_REFETCH_INTERVAL": c.PeerKeyRefetch, "OUTBOX_RETRY_BASE": c.OutboxRetryBase, "OUTBOX_RETRY_MAX": c.OutboxRetryMax,
		"OUTBOX_GIVE_UP_AFTER": c.OutboxGiveUpAfter, "KEY_ROTATION_OVERLAP": c.KeyRotationOverlap, "OUTBOX_LEASE_TTL": c.OutboxLeaseTTL} {
		if d <= 0 {
			bad("%s: must be a positive duration", name)
		}
	}
	if c.OutboxRetryMax < c.OutboxRetryBase {
		bad("OUTBOX_RETRY_MAX: must not be shorter than OUTBOX_RETRY_BASE")
	}
	if c.OutboxLanes < 1 || c.OutboxLanes > 64 {
		bad("OUTBOX_LANES_PER_PEER: must be 1 to 64")
	}
	if c.OutboxBatchSize < 1 || c.OutboxBatchSize > federation.MaxEnvelopeMsgs {
		bad("OUTBOX_BATCH_SIZE: must be 1 to %d", federation.MaxEnvelopeMsgs)
	}
	if c.RateLimitDefault.Limit < 1 || c.RateLimitDefault.Window <= 0 {
		bad("RATE_LIMIT_REQUESTS, RATE_LIMIT_WINDOW: must be positive")
	}
	for _, class := range Classes {
		if r, ok := c.RateLimits[class]; ok && (r.Limit < 1 || r.Window <= 0) {
			bad("RATE_LIMIT_%s: must be a positive N/duration", strings.ToUpper(class))
		}
	}
	if _, err := clientip.New(c.TrustedProxies); err != nil {
		bad("TRUSTED_PROXIES: %v", err)
	}
	for name, n := range map[string]int{"BAN_AFTER_VIOLATIONS": c.BanAfterViolations, "BAN_AFTER_AUTH_FAILURES": c.BanAfterAuthFailures, "BAN_AFTER_SIGNATURE_FAILURES": c.BanAfterSigFailures} {
		if n < 1 {
			bad("%s: must be at least 1", name)
		}
	}
	if c.BanWindow <= 0 || c.BanDuration <= 0 || c.BanMaxDuration < c.BanDuration {
		bad("BAN_WINDOW, BAN_DURATION, BAN_MAX_DURATION: must be positive, and the maximum at least the first ban")
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			bad("REDIS_URL: %q is not a redis:// or rediss:// URL", c.RedisURL)
		} else if c.Production() {
			if c.RedisPassword == "" && u.User == nil {
				bad("REDIS_PASSWORD: Redis must require a password in production (requirepass)")
			}
			host := u.Hostname()
			if ip := net.ParseIP(host); u.Scheme == "redis" && !(host == "localhost" || ip != nil && ip.IsLoopback()) {
				bad("REDIS_URL: use rediss:// (TLS) for a Redis that is not on this host")
			}
		}
		if c.JWTSecret == "" && c.JWTSecretVaultPath == "" {
			bad("JWT_SECRET: required with REDIS_URL (or JWT_SECRET_VAULT_PATH): every replica of a node must sign and check tokens with one secret")
		}
	}

	if c.KeysBackend != "local" && c.KeysBackend != "vault" {
		bad("KEYS_BACKEND: %q is not local or vault", c.KeysBackend)
	}
	if c.usesVault() {
		if c.VaultAddr == "" {
			bad("VAULT_ADDR: required with KEYS_BACKEND=vault or a *_VAULT_PATH")
		} else if u, err := url.Parse(c.VaultAddr); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("VAULT_ADDR: %q is not an http(s) URL", c.VaultAddr)
		} else if c.Production() && u.Scheme != "https" {
			if ip := net.ParseIP(u.Hostname()); !(u.Hostname() == "localhost" || ip != nil && ip.IsLoopback()) {
				bad("VAULT_ADDR: use https:// for a Vault that is not on this host")
			}
		}
		if c.VaultToken == "" && (c.VaultRoleID == "" || c.VaultSecretID == "") {
			bad("VAULT_TOKEN: required, or VAULT_ROLE_ID with VAULT_SECRET_ID (AppRole)")
		}
	}
	if c.JWTSecret != "" && c.JWTSecretVaultPath != "" {
		bad("JWT_SECRET, JWT_SECRET_VAULT_PATH: set one")
	}
	if c.JWTRotationOverlap < 0 {
		bad("JWT_ROTATION_OVERLAP: must not be negative")
	}

	if c.Production() {
		if c.FederationAllowPrivate || c.FederationPlainHTTP {
			bad("FEDERATION_ALLOW_PRIVATE, FEDERATION_PLAIN_HTTP: development only; refused in production")
		}
		if c.JWTSecret == "" && c.JWTSecretVaultPath == "" {
			bad("JWT_SECRET: required in production (or JWT_SECRET_FILE, or JWT_SECRET_VAULT_PATH)")
		}
		for _, o := range c.AllowedOrigins {
			if o == "*" {
				bad("ALLOWED_ORIGINS: * is refused in production; list the origins of your web clients")
			}
		}
		if !c.TLSEnabled && !c.TLSTerminatedByProxy {
			bad("TLS_ENABLED: TLS is required in production; set TLS_ENABLED=true, or TLS_TERMINATED_BY_PROXY=true if a trusted proxy terminates TLS in front of the node")
		}
		if c.NodeDomain == "" {
			bad("NODE_DOMAIN: required in production")
		}
		if !strings.HasPrefix(c.PublicURL, "https://") {
			bad("PUBLIC_URL: an https:// URL is required in production")
		}
	}
	return errors.Join(errs...)
}

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

// federationScheme is how this node reaches peers: https, or http when
// FEDERATION_PLAIN_HTTP is set for development.
func (c Config) federationScheme() string {
	if c.FederationPlainHTTP {
		return "http"
	}
	return "https"
}

// parseRule parses "N/duration", e.g. "10/1m".
func parseRule(v string) (ratelimit.Rule, error) {
	n, d, ok := strings.Cut(v, "/")
	limit, err := strconv.Atoi(n)
	if !ok || err != nil || limit < 1 {
		return ratelimit.Rule{}, fmt.Errorf("%q is not N/duration, such as 10/1m", v)
	}
	window, err := time.ParseDuration(d)
	if err != nil || window <= 0 {
		return ratelimit.Rule{}, fmt.Errorf("%q is not N/duration, such as 10/1m", v)
	}
	return ratelimit.Rule{Limit: limit, Window: window}, nil
}

// usesVault reports whether the node talks to Vault at all.
func (c Config) usesVault() bool {
	return c.KeysBackend == "vault" || c.JWTSecretVaultPath != "" || c.RedisPasswordVaultPath != ""
}

// vaultConfig is the Vault part of the configuration.
func (c Config) vaultConfig(log *slog.Logger) keys.VaultConfig {
	return keys.VaultConfig{Addr: c.VaultAddr, Token: c.VaultToken, RoleID: c.VaultRoleID, SecretID: c.VaultSecretID,
		TransitMount: c.VaultTransitMount, KVMount: c.VaultKVMount, KeyPrefix: c.VaultKeyPrefix, Log: log}
}
