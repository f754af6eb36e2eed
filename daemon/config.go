package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/fednode/fednode/keys"
	"github.com/fednode/fednode/node"
)

// Config is everything the process is told: the node's service settings
// (node.Config, embedded) and how to wire it: where to listen, where data
// lives, which store, which keys, which secrets. It is read once, from the
// environment, by FromEnv (from the table in options.go), checked by
// Validate, and passed explicitly.
type Config struct {
	node.Config

	ListenAddr string // LISTEN_ADDR
	DataDir    string // DATA_DIR

	JWTSecret string // JWT_SECRET or JWT_SECRET_FILE

	TLSCertPath string // TLS_CERT_PATH
	TLSKeyPath  string // TLS_KEY_PATH

	TLSACME             bool     // TLS_ACME: certificates from an ACME CA (acme.go)
	TLSACMEDomains      []string // TLS_ACME_DOMAINS; empty: NODE_DOMAIN's host
	TLSACMEEmail        string   // TLS_ACME_EMAIL
	TLSACMEDirectoryURL string   // TLS_ACME_DIRECTORY_URL; empty: Let's Encrypt production
	TLSACMECAFile       string   // TLS_ACME_CA_FILE: CAs of the ACME server's own certificate

	LogLevel slog.Level // LOG_LEVEL: debug | info | warn | error
	AuditLog string     // AUDIT_LOG: stdout | stderr | a file path

	MetricsAddr string // METRICS_ADDR: /metrics on a listener of its own

	RedisURL       string // REDIS_URL: redis:// or rediss://; empty: the embedded store
	RedisPassword  string // REDIS_PASSWORD or REDIS_PASSWORD_FILE
	RedisCluster   bool   // REDIS_CLUSTER: REDIS_URL names a Redis Cluster
	RedisNamespace string // REDIS_NAMESPACE: key prefix shared by the replicas of one node
	RedisTLSCAFile string // REDIS_TLS_CA_FILE: CAs to trust for rediss://

	KeysBackend            string // KEYS_BACKEND: local | vault
	VaultAddr              string // VAULT_ADDR
	VaultToken             string // VAULT_TOKEN or VAULT_TOKEN_FILE
	VaultRoleID            string // VAULT_ROLE_ID (AppRole)
	VaultSecretID          string // VAULT_SECRET_ID or VAULT_SECRET_ID_FILE
	VaultTransitMount      string // VAULT_TRANSIT_MOUNT
	VaultKVMount           string // VAULT_KV_MOUNT
	VaultKeyPrefix         string // VAULT_KEY_PREFIX
	JWTSecretVaultPath     string // JWT_SECRET_VAULT_PATH: KV v2 path of the JWT secret
	RedisPasswordVaultPath string // REDIS_PASSWORD_VAULT_PATH
}

// DefaultConfig returns the embedded defaults: development mode on
// 127.0.0.1:8080 with data under ./data.
func DefaultConfig() Config {
	return Config{
		Config:            node.DefaultConfig(),
		ListenAddr:        "127.0.0.1:8080",
		DataDir:           "./data",
		LogLevel:          slog.LevelInfo,
		AuditLog:          "stdout",
		RedisNamespace:    "fednode",
		KeysBackend:       "local",
		VaultTransitMount: "transit",
		VaultKVMount:      "secret",
		VaultKeyPrefix:    "fednode",
	}
}

// EnvVars are the environment variables FromEnv reads (secrets also as
// NAME_FILE), in the order of the table; the README's configuration table
// is generated from the same table.
var EnvVars = func() []string {
	names := make([]string, len(options))
	for i, o := range options {
		names[i] = o.name
	}
	return names
}()

// SecretEnvVars are the variables that hold secrets (or may), each of which
// may be given as NAME_FILE instead, the path of a file holding it.
var SecretEnvVars = func() []string {
	var names []string
	for _, o := range options {
		if o.secret {
			names = append(names, o.name)
		}
	}
	return names
}()

// FromEnv reads the configuration from getenv (os.Getenv in cmd/) on top of
// DefaultConfig, through the table of options. A secret may also be given
// as NAME_FILE, the path of a file holding it (trailing newlines are
// trimmed); setting both is an error. Every unparsable variable is
// reported, not just the first.
func FromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	var errs []error
	for _, o := range options {
		v := getenv(o.name)
		if o.secret {
			file := getenv(o.name + "_FILE")
			switch {
			case v != "" && file != "":
				errs = append(errs, fmt.Errorf("%s and %s_FILE are both set; set one", o.name, o.name))
				continue
			case file != "":
				b, err := os.ReadFile(file)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s_FILE: %w", o.name, err))
					continue
				}
				v = strings.TrimRight(string(b), "\r\n")
			}
		}
		if v == "" {
			continue
		}
		if err := o.set(&c, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.name, err))
		}
	}
	return c, errors.Join(errs...)
}

// Load is FromEnv then Validate, reporting every problem of both in one
// round: a variable that does not parse and a rule that fails are named
// together, so an operator fixes them in one go.
func Load(getenv func(string) string) (Config, error) {
	c, err := FromEnv(getenv)
	return c, errors.Join(err, c.Validate())
}

// ourPrefixes are the beginnings of the variables fednode reads; a variable
// that starts with one of them but is not in the table is most likely a
// typo (RATE_LIMIT_AUHT=5/1m) that would otherwise be ignored in silence.
var ourPrefixes = []string{"RATE_LIMIT_", "BAN_", "JWT_", "TLS_", "REDIS_", "VAULT_", "FEDERATION_", "OUTBOX_", "PEER_KEY_", "LOGIN_", "KEYS_", "KEY_ROTATION_", "REGISTRATION_", "CHALLENGE_", "METRICS_"}

// UnknownVariables returns the variables of environ ("NAME=value", as
// os.Environ gives them) that carry one of fednode's prefixes but are not
// read by it, for a warning at start.
func UnknownVariables(environ []string) []string {
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		base := strings.TrimSuffix(name, "_FILE")
		if slices.ContainsFunc(ourPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) && !known(name, base) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return unknown
}

func known(name, base string) bool {
	for _, o := range options {
		if o.name == name || o.secret && o.name == base {
			return true
		}
	}
	return false
}

// Validate checks the whole configuration and names every problem at once,
// so an operator fixes them in one go: each option's own rule from the
// table, then the rules between options. In production it refuses what the
// seed's checklist calls "must do before production": a missing or short
// JWT secret, wildcard CORS, and plain HTTP without a TLS-terminating proxy.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, o := range options {
		if o.check == nil {
			continue
		}
		if err := o.check(&c); err != nil {
			bad("%s: %v", o.name, err)
		}
	}
	if err := c.Password.Validate(); err != nil {
		bad("password hashing: %v", err)
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
	errs = append(errs, c.acmeProblems()...)
	if strings.HasPrefix(c.PublicURL, "https://") && !c.ServesTLS() && !c.TLSTerminatedByProxy {
		// The node document would advertise an https:// inbox nobody serves.
		bad("PUBLIC_URL: %q is https:// but this node serves plain HTTP; set TLS_ENABLED or TLS_ACME, or TLS_TERMINATED_BY_PROXY=true if a proxy terminates TLS in front of it", c.PublicURL)
	}
	if c.OutboxRetryMax < c.OutboxRetryBase {
		bad("OUTBOX_RETRY_MAX: must not be shorter than OUTBOX_RETRY_BASE")
	}
	if c.RateLimitDefault.Limit < 1 || c.RateLimitDefault.Window <= 0 {
		bad("RATE_LIMIT_REQUESTS, RATE_LIMIT_WINDOW: must be positive")
	}
	if c.BanWindow <= 0 || c.BanDuration <= 0 || c.BanMaxDuration < c.BanDuration {
		bad("BAN_WINDOW, BAN_DURATION, BAN_MAX_DURATION: must be positive, and the maximum at least the first ban")
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			shown := "the value" // it may hold a password: shown only redacted
			if err == nil {
				shown = fmt.Sprintf("%q", u.Redacted())
			}
			bad("REDIS_URL: %s is not a redis:// or rediss:// URL", shown)
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

	if c.Production() {
		if c.FederationAllowPrivate || c.FederationPlainHTTP {
			bad("FEDERATION_ALLOW_PRIVATE, FEDERATION_PLAIN_HTTP: development only; refused in production")
		}
		if c.JWTSecret == "" && c.JWTSecretVaultPath == "" {
			bad("JWT_SECRET: required in production (or JWT_SECRET_FILE, or JWT_SECRET_VAULT_PATH)")
		}
		if slices.Contains(c.AllowedOrigins, "*") {
			bad("ALLOWED_ORIGINS: * is refused in production; list the origins of your web clients")
		}
		if !c.ServesTLS() && !c.TLSTerminatedByProxy {
			bad("TLS_ENABLED: TLS is required in production; set TLS_ENABLED=true (with a certificate) or TLS_ACME=true, or TLS_TERMINATED_BY_PROXY=true if a trusted proxy terminates TLS in front of the node")
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

// usesVault reports whether the node talks to Vault at all.
func (c Config) usesVault() bool {
	return c.KeysBackend == "vault" || c.JWTSecretVaultPath != "" || c.RedisPasswordVaultPath != ""
}

// vaultConfig is the Vault part of the configuration.
func (c Config) vaultConfig(log *slog.Logger) keys.VaultConfig {
	return keys.VaultConfig{Addr: c.VaultAddr, Token: c.VaultToken, RoleID: c.VaultRoleID, SecretID: c.VaultSecretID,
		TransitMount: c.VaultTransitMount, KVMount: c.VaultKVMount, KeyPrefix: c.VaultKeyPrefix, Log: log}
}

// positive is the rule of a duration that must be above zero.
func positive(d time.Duration) error {
	if d <= 0 {
		return errors.New("must be a positive duration")
	}
	return nil
}
