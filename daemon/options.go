package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/clientip"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/node"
	"github.com/fednode/fednode/ratelimit"
)

// option is one environment variable: its name, whether it is a secret
// (then NAME_FILE may hold it instead), its default and meaning as the
// README's table shows them (generated from this table), how it is read
// into a Config, and its own rule (rules between options are in
// Config.Validate).
type option struct {
	name   string
	secret bool
	def    string
	doc    string
	set    func(c *Config, v string) error
	check  func(c *Config) error
}

// options is every variable fednode reads, in the README's order.
var options = []option{
	{name: "ENV", def: "`development`",
		doc:   "`development` or `production`. Production refuses to start without `JWT_SECRET` (≥ 32 characters), with `ALLOWED_ORIGINS=*`, without TLS (`TLS_ENABLED`, `TLS_ACME`, or `TLS_TERMINATED_BY_PROXY=true`), without `NODE_DOMAIN`, or without an `https://` `PUBLIC_URL`.",
		set:   str(func(c *Config) *string { return &c.Env }),
		check: oneOf(func(c *Config) string { return c.Env }, node.EnvDevelopment, node.EnvProduction)},
	{name: "LISTEN_ADDR", def: "`127.0.0.1:8080`",
		doc:   "address the HTTP server listens on",
		set:   str(func(c *Config) *string { return &c.ListenAddr }),
		check: nonEmpty(func(c *Config) string { return c.ListenAddr })},
	{name: "DATA_DIR", def: "`./data`",
		doc:   "where the embedded store (`fednode.db`, bbolt) and the development JWT secret live; created with mode 0700",
		set:   str(func(c *Config) *string { return &c.DataDir }),
		check: nonEmpty(func(c *Config) string { return c.DataDir })},
	{name: "NODE_DOMAIN", def: "the listen address (development)",
		doc:   "the node's name in addresses: `user@NODE_DOMAIN` (host[:port], lower case)",
		set:   str(func(c *Config) *string { return &c.NodeDomain }),
		check: func(c *Config) error { return optionalDomain(c.NodeDomain) }},
	{name: "PUBLIC_URL", def: "`http(s)://NODE_DOMAIN`",
		doc:   "the base URL users and peers reach the node at; also the WebSocket's own origin",
		set:   str(func(c *Config) *string { return &c.PublicURL }),
		check: func(c *Config) error { return optionalBaseURL(c.PublicURL) }},
	{name: "JWT_SECRET", secret: true, def: "none",
		doc:   "HMAC key for session tokens, ≥ 32 characters. In development, when unset, a random secret is generated once and kept in `DATA_DIR/jwt_secret` (mode 0600). Generate one with `openssl rand -base64 48`.",
		set:   str(func(c *Config) *string { return &c.JWTSecret }),
		check: func(c *Config) error { return secretLength(c.JWTSecret) }},
	{name: "JWT_ALGORITHM", def: "`HS256`",
		doc:   "`HS256`, `HS384` or `HS512`; tokens signed any other way are refused",
		set:   str(func(c *Config) *string { return &c.JWTAlgorithm }),
		check: oneOf(func(c *Config) string { return c.JWTAlgorithm }, "HS256", "HS384", "HS512")},
	{name: "JWT_EXPIRATION_HOURS", def: "`24`",
		doc: "session lifetime (fractions allowed)",
		set: hours(func(c *Config) *time.Duration { return &c.JWTExpiration }),
		check: func(c *Config) error {
			return within(c.JWTExpiration, time.Minute, 90*24*time.Hour, "between 1 minute and 2160 hours")
		}},
	{name: "ALLOWED_ORIGINS", def: "none",
		doc:   "comma-separated browser origins allowed to call the API (CORS) and open the WebSocket; `*` only in development",
		set:   list(func(c *Config) *[]string { return &c.AllowedOrigins }, func(o string) string { return strings.TrimRight(o, "/") }),
		check: func(c *Config) error { return origins(c.AllowedOrigins) }},
	{name: "TLS_ENABLED", def: "`false`",
		doc: "serve HTTPS with the files below (TLS 1.2+)",
		set: boolean(func(c *Config) *bool { return &c.TLSEnabled })},
	{name: "TLS_CERT_PATH", def: "none",
		doc: "PEM certificate chain, for `TLS_ENABLED`",
		set: str(func(c *Config) *string { return &c.TLSCertPath })},
	{name: "TLS_KEY_PATH", def: "none",
		doc: "PEM private key of that certificate",
		set: str(func(c *Config) *string { return &c.TLSKeyPath })},
	{name: "TLS_ACME", def: "`false`",
		doc: "serve HTTPS with certificates obtained and renewed from an ACME CA (Let's Encrypt), kept in `DATA_DIR/acme`; the CA must reach the listener on port 443 (TLS-ALPN-01). Instead of `TLS_ENABLED`",
		set: boolean(func(c *Config) *bool { return &c.TLSACME })},
	{name: "TLS_ACME_DOMAINS", def: "`NODE_DOMAIN`'s host",
		doc:   "comma-separated DNS names to get certificates for; a handshake for any other name is refused",
		set:   list(func(c *Config) *[]string { return &c.TLSACMEDomains }, strings.ToLower),
		check: func(c *Config) error { return acmeDomains(c.TLSACMEDomains) }},
	{name: "TLS_ACME_EMAIL", def: "none",
		doc: "contact address given to the ACME CA for expiry and account notices",
		set: str(func(c *Config) *string { return &c.TLSACMEEmail })},
	{name: "TLS_ACME_DIRECTORY_URL", def: "Let's Encrypt production (`https://acme-v02.api.letsencrypt.org/directory`)",
		doc:   "the ACME CA's directory URL (Let's Encrypt staging: `https://acme-staging-v02.api.letsencrypt.org/directory`)",
		set:   str(func(c *Config) *string { return &c.TLSACMEDirectoryURL }),
		check: func(c *Config) error { return httpsURL(c.TLSACMEDirectoryURL) }},
	{name: "TLS_ACME_CA_FILE", def: "the system's CAs",
		doc: "PEM file of the CAs that may sign the ACME server's own HTTPS certificate, for a private ACME CA",
		set: str(func(c *Config) *string { return &c.TLSACMECAFile })},
	{name: "TLS_TERMINATED_BY_PROXY", def: "`false`",
		doc: "the operator's statement that a trusted proxy terminates TLS in front of the node; enables HSTS",
		set: boolean(func(c *Config) *bool { return &c.TLSTerminatedByProxy })},
	{name: "LOGIN_MAX_FAILURES", def: "`5`",
		doc:   "failed logins for one username within the window before it is locked",
		set:   integer(func(c *Config) *int { return &c.LoginMaxFailures }),
		check: atLeast(func(c *Config) int { return c.LoginMaxFailures }, 1)},
	{name: "LOGIN_FAILURE_WINDOW", def: "`15m`",
		doc:   "the lockout window (Go duration)",
		set:   duration(func(c *Config) *time.Duration { return &c.LoginFailureWindow }),
		check: func(c *Config) error { return within(c.LoginFailureWindow, time.Second, 1<<62, "at least 1s") }},
	{name: "MAX_SESSIONS_PER_USER", def: "`10`",
		doc:   "concurrent sessions per user; the oldest is revoked beyond it",
		set:   integer(func(c *Config) *int { return &c.MaxSessionsPerUser }),
		check: atLeast(func(c *Config) int { return c.MaxSessionsPerUser }, 1)},
	{name: "REGISTRATION_MODE", def: "`open`",
		doc:   "`open`: anyone may register; `invite`: registration needs a single-use invite code an admin issued (`fedctl admin invites create`); `closed`: nobody may (`registration_closed`)",
		set:   str(func(c *Config) *string { return &c.RegistrationMode }),
		check: oneOf(func(c *Config) string { return c.RegistrationMode }, node.RegistrationOpen, node.RegistrationInvite, node.RegistrationClosed)},
	{name: "CHALLENGE_AFTER_LOGIN_FAILURES", def: "`3`",
		doc:   "failed logins for a username, or from a client IP, within `LOGIN_FAILURE_WINDOW` after which a login needs a solved proof-of-work challenge; `0`: always",
		set:   integer(func(c *Config) *int { return &c.ChallengeAfterLoginFailures }),
		check: atLeast(func(c *Config) int { return c.ChallengeAfterLoginFailures }, 0)},
	{name: "CHALLENGE_AFTER_REGISTRATIONS", def: "`3`",
		doc:   "registration attempts from a client IP within an hour after which a registration needs a solved challenge; `0`: always",
		set:   integer(func(c *Config) *int { return &c.ChallengeAfterRegistrations }),
		check: atLeast(func(c *Config) int { return c.ChallengeAfterRegistrations }, 0)},
	{name: "CHALLENGE_MAX_NUMBER", def: "`250000`",
		doc: "the challenge's difficulty: a client tries half this many SHA-256 hashes on average (about 0.5–1 s in a browser, under 0.1 s for `fedctl`)",
		set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", v)
			}
			c.ChallengeMaxNumber = n
			return nil
		},
		check: func(c *Config) error {
			if n := c.ChallengeMaxNumber; n < 1000 || n > 100_000_000 {
				return errors.New("must be 1000 to 100000000")
			}
			return nil
		}},
	{name: "CHALLENGE_TTL", def: "`5m`",
		doc:   "how long a challenge may be solved and used (each once)",
		set:   duration(func(c *Config) *time.Duration { return &c.ChallengeTTL }),
		check: func(c *Config) error { return within(c.ChallengeTTL, 10*time.Second, time.Hour, "between 10s and 1h") }},
	{name: "LOG_LEVEL", def: "`info`",
		doc: "`debug`, `info`, `warn` or `error` (JSON logs on standard error)",
		set: logLevel(func(c *Config) *slog.Level { return &c.LogLevel })},
	{name: "AUDIT_LOG", def: "`stdout`",
		doc:   "where the audit stream goes: `stdout`, `stderr` or a file path (appended, mode 0600)",
		set:   str(func(c *Config) *string { return &c.AuditLog }),
		check: nonEmpty(func(c *Config) string { return c.AuditLog })},
	{name: "METRICS_ADDR", def: "none (on `LISTEN_ADDR`)",
		doc:   "serve `/metrics` on this address alone (plain HTTP, e.g. `10.0.0.5:9100` on the monitoring network); the main listener then answers it 404",
		set:   str(func(c *Config) *string { return &c.MetricsAddr }),
		check: func(c *Config) error { return optionalListenAddr(c.MetricsAddr, c.ListenAddr) }},
	{name: "METRICS_TOKEN", secret: true, def: "none",
		doc:   "when set, `/metrics` answers only requests with `Authorization: Bearer <token>` (≥ 16 characters; others get 401)",
		set:   str(func(c *Config) *string { return &c.MetricsToken }),
		check: func(c *Config) error { return minLength(c.MetricsToken, 16) }},
	{name: "FEDERATION_MODE", def: "`open`",
		doc:   "`open`: federate with every node not blocklisted; `allowlist`: only with listed nodes. Changeable at run time through the admin API",
		set:   str(func(c *Config) *string { return &c.FederationMode }),
		check: oneOf(func(c *Config) string { return c.FederationMode }, "open", "allowlist")},
	{name: "FEDERATION_ALLOWLIST", def: "none",
		doc:   "comma-separated node domains allowed in `allowlist` mode",
		set:   list(func(c *Config) *[]string { return &c.FederationAllowlist }, strings.ToLower),
		check: func(c *Config) error { return domains(c.FederationAllowlist) }},
	{name: "FEDERATION_BLOCKLIST", def: "none",
		doc:   "comma-separated node domains never federated with, in either mode",
		set:   list(func(c *Config) *[]string { return &c.FederationBlocklist }, strings.ToLower),
		check: func(c *Config) error { return domains(c.FederationBlocklist) }},
	{name: "FEDERATION_ALLOW_PRIVATE", def: "`false`",
		doc: "let the node reach peers on loopback, private and link-local addresses (development only; refused in production)",
		set: boolean(func(c *Config) *bool { return &c.FederationAllowPrivate })},
	{name: "FEDERATION_PLAIN_HTTP", def: "`false`",
		doc: "reach peers over `http://` instead of `https://` (development only; refused in production)",
		set: boolean(func(c *Config) *bool { return &c.FederationPlainHTTP })},
	{name: "FEDERATION_DATE_WINDOW", def: "`5m`",
		doc:   "how far a peer request's `Date` may be from this node's clock",
		set:   duration(func(c *Config) *time.Duration { return &c.FederationDateWindow }),
		check: func(c *Config) error { return positive(c.FederationDateWindow) }},
	{name: "PEER_KEY_TTL", def: "`1h`",
		doc:   "how long a peer's node document (its keys) is cached",
		set:   duration(func(c *Config) *time.Duration { return &c.PeerKeyTTL }),
		check: func(c *Config) error { return positive(c.PeerKeyTTL) }},
	{name: "PEER_KEY_REFETCH_INTERVAL", def: "`1m`",
		doc:   "the shortest time between two early refetches of one peer's document after a failed signature",
		set:   duration(func(c *Config) *time.Duration { return &c.PeerKeyRefetch }),
		check: func(c *Config) error { return positive(c.PeerKeyRefetch) }},
	{name: "OUTBOX_LANES_PER_PEER", def: "`4`",
		doc:   "concurrent deliveries per peer (each conversation stays in one lane, in order)",
		set:   integer(func(c *Config) *int { return &c.OutboxLanes }),
		check: between(func(c *Config) int { return c.OutboxLanes }, 1, 64)},
	{name: "OUTBOX_BATCH_SIZE", def: "`64`",
		doc:   "messages per delivery request (1 to 64)",
		set:   integer(func(c *Config) *int { return &c.OutboxBatchSize }),
		check: between(func(c *Config) int { return c.OutboxBatchSize }, 1, federation.MaxEnvelopeMsgs)},
	{name: "OUTBOX_RETRY_BASE", def: "`30s`",
		doc:   "first retry delay; doubles per failure, ±20% jitter",
		set:   duration(func(c *Config) *time.Duration { return &c.OutboxRetryBase }),
		check: func(c *Config) error { return positive(c.OutboxRetryBase) }},
	{name: "OUTBOX_RETRY_MAX", def: "`6h`",
		doc:   "longest delay between retries",
		set:   duration(func(c *Config) *time.Duration { return &c.OutboxRetryMax }),
		check: func(c *Config) error { return positive(c.OutboxRetryMax) }},
	{name: "OUTBOX_GIVE_UP_AFTER", def: "`120h`",
		doc:   "how long a message is retried before it fails and becomes a dead letter",
		set:   duration(func(c *Config) *time.Duration { return &c.OutboxGiveUpAfter }),
		check: func(c *Config) error { return positive(c.OutboxGiveUpAfter) }},
	{name: "OUTBOX_LEASE_TTL", def: "`30s`",
		doc:   "with replicas, each peer is served by one replica holding a lease; a replica that dies is taken over after this long",
		set:   duration(func(c *Config) *time.Duration { return &c.OutboxLeaseTTL }),
		check: func(c *Config) error { return positive(c.OutboxLeaseTTL) }},
	{name: "KEY_ROTATION_OVERLAP", def: "`168h`",
		doc:   "how long a rotated-out key stays published and usable",
		set:   duration(func(c *Config) *time.Duration { return &c.KeyRotationOverlap }),
		check: func(c *Config) error { return positive(c.KeyRotationOverlap) }},
	{name: "REDIS_URL", secret: true, def: "none (embedded store)",
		doc: "`redis://host:port/db` or `rediss://` (TLS): run on Redis, shared by every replica of this node. In production TLS is required unless Redis is on this host. A secret (hence `_FILE`) because it may carry an ACL user's credentials (`redis://user:password@host`)",
		set: str(func(c *Config) *string { return &c.RedisURL })},
	{name: "REDIS_PASSWORD", secret: true, def: "none",
		doc: "Redis password (`requirepass`); required in production",
		set: str(func(c *Config) *string { return &c.RedisPassword })},
	{name: "REDIS_CLUSTER", def: "`false`",
		doc: "`REDIS_URL` names a Redis Cluster: `redis://h1:p1?addr=h2:p2&addr=h3:p3`",
		set: boolean(func(c *Config) *bool { return &c.RedisCluster })},
	{name: "REDIS_TLS_CA_FILE", def: "the system's CAs",
		doc: "PEM file of the CAs that may sign the Redis server's certificate, for `rediss://` with a private CA",
		set: str(func(c *Config) *string { return &c.RedisTLSCAFile })},
	{name: "REDIS_NAMESPACE", def: "`fednode`",
		doc: "key prefix (and cluster hash tag) of this node; replicas of one node share it, different nodes must not",
		set: str(func(c *Config) *string { return &c.RedisNamespace })},
	{name: "RATE_LIMIT_REQUESTS", def: "`100`",
		doc: "default requests per window for a class without its own rule",
		set: integer(func(c *Config) *int { return &c.RateLimitDefault.Limit })},
	{name: "RATE_LIMIT_WINDOW", def: "`60`",
		doc: "the default window, in seconds (or a duration such as `1m`)",
		set: secondsOrDuration(func(c *Config) *time.Duration { return &c.RateLimitDefault.Window })},
	{name: "RATE_LIMIT_FAIL_OPEN", def: "`false`",
		doc: "while Redis is unreachable: `true` decides limits in process (counted in `fednode_ratelimit_fallback_total`); `false` answers 503 with `Retry-After`",
		set: boolean(func(c *Config) *bool { return &c.RateLimitFailOpen })},
	{name: "RATE_LIMIT_API_ANON", def: "the default",
		doc:   "unauthenticated API requests per IP, as `N/duration` (e.g. `100/1m`)",
		set:   rule(node.ClassAPIAnon),
		check: positiveRule(node.ClassAPIAnon)},
	{name: "RATE_LIMIT_API_AUTH", def: "`600/1m`",
		doc:   "authenticated API requests per user",
		set:   rule(node.ClassAPIAuth),
		check: positiveRule(node.ClassAPIAuth)},
	{name: "RATE_LIMIT_AUTH", def: "`10/1m`",
		doc:   "login and registration attempts per IP",
		set:   rule(node.ClassAuth),
		check: positiveRule(node.ClassAuth)},
	{name: "RATE_LIMIT_WS_CONNECT", def: "`30/1m`",
		doc:   "WebSocket connects per user",
		set:   rule(node.ClassWSConnect),
		check: positiveRule(node.ClassWSConnect)},
	{name: "RATE_LIMIT_WS_FRAMES", def: "`60/1m`",
		doc:   "frames a client may send on its sockets, per user; beyond it the socket closes (1013)",
		set:   rule(node.ClassWSFrames),
		check: positiveRule(node.ClassWSFrames)},
	{name: "RATE_LIMIT_METRICS", def: "the default",
		doc:   "`/metrics` requests per IP, counted by each process alone (so monitoring works while Redis is away)",
		set:   rule(node.ClassMetrics),
		check: positiveRule(node.ClassMetrics)},
	{name: "RATE_LIMIT_PROBE", def: "`300/1m`",
		doc:   "`/healthz` and `/readyz` requests per IP, counted by each process alone",
		set:   rule(node.ClassProbe),
		check: positiveRule(node.ClassProbe)},
	{name: "RATE_LIMIT_INBOX_PEER", def: "`1200/1m`",
		doc:   "federation deliveries per sending node",
		set:   rule(node.ClassInboxPeer),
		check: positiveRule(node.ClassInboxPeer)},
	{name: "RATE_LIMIT_INBOX_IP", def: "`600/1m`",
		doc:   "federation deliveries per IP",
		set:   rule(node.ClassInboxIP),
		check: positiveRule(node.ClassInboxIP)},
	{name: "RATE_LIMIT_PEER_KEYS", def: "`600/1m`",
		doc:   "peers' signed reads of users' end-to-end keys, per IP and per requesting node; apart from deliveries' limits, and refusals count toward no ban",
		set:   rule(node.ClassPeerKeys),
		check: positiveRule(node.ClassPeerKeys)},
	{name: "TRUSTED_PROXIES", def: "none",
		doc:   "comma-separated CIDRs of proxies whose `X-Forwarded-For` is believed (read from the right); from anyone else the header is ignored",
		set:   list(func(c *Config) *[]string { return &c.TrustedProxies }, func(s string) string { return s }),
		check: func(c *Config) error { _, err := clientip.New(c.TrustedProxies); return err }},
	{name: "BAN_AFTER_VIOLATIONS", def: "`20`",
		doc:   "rate-limit refusals within `BAN_WINDOW` before the IP is banned",
		set:   integer(func(c *Config) *int { return &c.BanAfterViolations }),
		check: atLeast(func(c *Config) int { return c.BanAfterViolations }, 1)},
	{name: "BAN_AFTER_AUTH_FAILURES", def: "`30`",
		doc:   "failed logins and refused tokens within `BAN_WINDOW` before the IP is banned",
		set:   integer(func(c *Config) *int { return &c.BanAfterAuthFailures }),
		check: atLeast(func(c *Config) int { return c.BanAfterAuthFailures }, 1)},
	{name: "BAN_AFTER_SIGNATURE_FAILURES", def: "`30`",
		doc:   "refused federation signatures within `BAN_WINDOW` before the IP is banned",
		set:   integer(func(c *Config) *int { return &c.BanAfterSigFailures }),
		check: atLeast(func(c *Config) int { return c.BanAfterSigFailures }, 1)},
	{name: "BAN_WINDOW", def: "`10m`",
		doc: "the window those counts are in",
		set: duration(func(c *Config) *time.Duration { return &c.BanWindow })},
	{name: "BAN_DURATION", def: "`15m`",
		doc: "a first ban's length; each ban within a day of the last one doubles it",
		set: duration(func(c *Config) *time.Duration { return &c.BanDuration })},
	{name: "BAN_MAX_DURATION", def: "`24h`",
		doc: "the longest automatic ban",
		set: duration(func(c *Config) *time.Duration { return &c.BanMaxDuration })},
	{name: "KEYS_BACKEND", def: "`local`",
		doc:   "`local`: the node's RSA keys in `DATA_DIR/keys`; `vault`: in Vault Transit (rsa-4096, not exportable); the node never holds a private key",
		set:   str(func(c *Config) *string { return &c.KeysBackend }),
		check: oneOf(func(c *Config) string { return c.KeysBackend }, "local", "vault")},
	{name: "VAULT_ADDR", def: "none",
		doc: "Vault's address (`https://` in production unless on this host); needed for `KEYS_BACKEND=vault` and any `*_VAULT_PATH`",
		set: str(func(c *Config) *string { return &c.VaultAddr })},
	{name: "VAULT_TOKEN", secret: true, def: "none",
		doc: "a Vault token (renewed while renewable); or use AppRole:",
		set: str(func(c *Config) *string { return &c.VaultToken })},
	{name: "VAULT_ROLE_ID", def: "none",
		doc: "AppRole role id: with `VAULT_SECRET_ID`, the node logs in, renews its token, and logs in again if the token is revoked or expires",
		set: str(func(c *Config) *string { return &c.VaultRoleID })},
	{name: "VAULT_SECRET_ID", secret: true, def: "none",
		doc: "AppRole secret id, with `VAULT_ROLE_ID`",
		set: str(func(c *Config) *string { return &c.VaultSecretID })},
	{name: "VAULT_TRANSIT_MOUNT", def: "`transit`",
		doc: "where Transit is mounted",
		set: str(func(c *Config) *string { return &c.VaultTransitMount })},
	{name: "VAULT_KV_MOUNT", def: "`secret`",
		doc: "where KV version 2 is mounted",
		set: str(func(c *Config) *string { return &c.VaultKVMount })},
	{name: "VAULT_KEY_PREFIX", def: "`fednode`",
		doc: "Transit key names: `<prefix>-sig`, `<prefix>-enc`",
		set: str(func(c *Config) *string { return &c.VaultKeyPrefix })},
	{name: "JWT_SECRET_VAULT_PATH", def: "none",
		doc: "KV path of the JWT secret (instead of `JWT_SECRET`), e.g. `fednode/jwt`; created when absent; rotatable with an overlap",
		set: str(func(c *Config) *string { return &c.JWTSecretVaultPath })},
	{name: "REDIS_PASSWORD_VAULT_PATH", def: "none",
		doc: "KV path of the Redis password (instead of `REDIS_PASSWORD`)",
		set: str(func(c *Config) *string { return &c.RedisPasswordVaultPath })},
	{name: "JWT_ROTATION_OVERLAP", def: "`24h`",
		doc:   "after a JWT secret rotation, how long tokens signed with the previous secret are still accepted",
		set:   duration(func(c *Config) *time.Duration { return &c.JWTRotationOverlap }),
		check: func(c *Config) error { return within(c.JWTRotationOverlap, 0, 1<<62, "must not be negative") }},
}

// Readers, by type.

func str(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

func boolean(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*field(c) = b
		return nil
	}
}

func integer(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		*field(c) = n
		return nil
	}
}

func duration(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 15m", v)
		}
		*field(c) = d
		return nil
	}
}

// hours reads a number of hours, fractions allowed.
func hours(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		h, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		*field(c) = time.Duration(h * float64(time.Hour))
		return nil
	}
}

// secondsOrDuration reads whole seconds (as the seed gives them) or a
// duration.
func secondsOrDuration(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		if n, err := strconv.Atoi(v); err == nil {
			*field(c) = time.Duration(n) * time.Second
		} else if d, err := time.ParseDuration(v); err == nil {
			*field(c) = d
		} else {
			return fmt.Errorf("%q is not seconds or a duration", v)
		}
		return nil
	}
}

// list reads comma-separated items, each trimmed and then cleaned.
func list(field func(*Config) *[]string, clean func(string) string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var items []string
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				items = append(items, clean(o))
			}
		}
		*field(c) = items
		return nil
	}
}

func logLevel(field func(*Config) *slog.Level) func(*Config, string) error {
	return func(c *Config, v string) error {
		if err := field(c).UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("%q is not debug, info, warn or error", v)
		}
		return nil
	}
}

// rule reads a rate-limit class's "N/duration", e.g. "10/1m".
func rule(class string) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, d, ok := strings.Cut(v, "/")
		limit, err := strconv.Atoi(n)
		if !ok || err != nil || limit < 1 {
			return fmt.Errorf("%q is not N/duration, such as 10/1m", v)
		}
		window, err := time.ParseDuration(d)
		if err != nil || window <= 0 {
			return fmt.Errorf("%q is not N/duration, such as 10/1m", v)
		}
		c.RateLimits[class] = ratelimit.Rule{Limit: limit, Window: window}
		return nil
	}
}

// Rules of one option.

func oneOf(field func(*Config) string, allowed ...string) func(*Config) error {
	return func(c *Config) error {
		v := field(c)
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("%q is not %s", v, strings.Join(allowed, " or "))
	}
}

func nonEmpty(field func(*Config) string) func(*Config) error {
	return func(c *Config) error {
		if field(c) == "" {
			return errors.New("must not be empty")
		}
		return nil
	}
}

func atLeast(field func(*Config) int, min int) func(*Config) error {
	return func(c *Config) error {
		if field(c) < min {
			return fmt.Errorf("must be at least %d", min)
		}
		return nil
	}
}

func between(field func(*Config) int, min, max int) func(*Config) error {
	return func(c *Config) error {
		if n := field(c); n < min || n > max {
			return fmt.Errorf("must be %d to %d", min, max)
		}
		return nil
	}
}

func within(d, min, max time.Duration, rule string) error {
	if d < min || d > max {
		return errors.New("must be " + strings.TrimPrefix(rule, "must be "))
	}
	return nil
}

func positiveRule(class string) func(*Config) error {
	return func(c *Config) error {
		if r, ok := c.RateLimits[class]; ok && (r.Limit < 1 || r.Window <= 0) {
			return errors.New("must be a positive N/duration")
		}
		return nil
	}
}

func optionalDomain(d string) error {
	if d == "" {
		return nil
	}
	if cd, err := fednode.ParseDomain(d); err != nil || cd != d {
		return fmt.Errorf("%q is not a lower-case host name or IP address with an optional port", d)
	}
	return nil
}

func domains(l []string) error {
	for _, d := range l {
		if cd, err := fednode.ParseDomain(d); err != nil || cd != d {
			return fmt.Errorf("%q is not a node domain", d)
		}
	}
	return nil
}

func optionalBaseURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an http(s) base URL", s)
	}
	return nil
}

func origins(l []string) error {
	for _, o := range l {
		if o == "*" {
			continue
		}
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("%q is not an origin such as https://app.example.org", o)
		}
	}
	return nil
}

// optionalListenAddr is the rule of a second listen address: host:port,
// not the main one.
func optionalListenAddr(addr, main string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if addr == main && port != "0" {
		return errors.New("must not be LISTEN_ADDR")
	}
	return nil
}

func minLength(s string, n int) error {
	if s != "" && len(s) < n {
		return fmt.Errorf("must be at least %d characters", n)
	}
	return nil
}

func secretLength(s string) error {
	if err := minLength(s, node.MinSecretLen); err != nil {
		return fmt.Errorf("%w (generate one with: openssl rand -base64 48)", err)
	}
	return nil
}

// configTable is the README's configuration table, made from options:
// one row per variable, with its _FILE form for secrets.
func configTable() string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	for _, o := range options {
		name := "`" + o.name + "`"
		if o.secret {
			name += " / `" + o.name + "_FILE`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", name, o.def, o.doc)
	}
	return b.String()
}
