package daemon

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode/node"
	"github.com/fednode/fednode/ratelimit"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnvDefaults(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Env != node.EnvDevelopment || c.ListenAddr != "127.0.0.1:8080" || c.DataDir != "./data" || c.JWTAlgorithm != "HS256" ||
		c.JWTExpiration != 24*time.Hour || c.LoginMaxFailures != 5 || c.LoginFailureWindow != 15*time.Minute || c.MaxSessionsPerUser != 10 {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the embedded defaults must be valid: %v", err)
	}
}

func TestFromEnvReadsEverything(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "s")
	os.WriteFile(secretFile, []byte(strings.Repeat("k", 40)+"\n"), 0o600)
	c, err := FromEnv(env(map[string]string{
		"ENV": "production", "LISTEN_ADDR": ":9000", "DATA_DIR": dir, "NODE_DOMAIN": "a.example", "PUBLIC_URL": "https://a.example",
		"JWT_SECRET_FILE": secretFile, "JWT_ALGORITHM": "HS512", "JWT_EXPIRATION_HOURS": "1.5",
		"ALLOWED_ORIGINS": "https://x.example/, https://y.example", "TLS_TERMINATED_BY_PROXY": "true",
		"LOGIN_MAX_FAILURES": "3", "LOGIN_FAILURE_WINDOW": "10m", "MAX_SESSIONS_PER_USER": "4", "LOG_LEVEL": "debug", "AUDIT_LOG": "stderr",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.JWTSecret != strings.Repeat("k", 40) || c.JWTAlgorithm != "HS512" || c.JWTExpiration != 90*time.Minute ||
		len(c.AllowedOrigins) != 2 || c.AllowedOrigins[0] != "https://x.example" || c.LoginMaxFailures != 3 ||
		c.LoginFailureWindow != 10*time.Minute || c.MaxSessionsPerUser != 4 || c.AuditLog != "stderr" || !c.TLSTerminatedByProxy {
		t.Fatalf("parsed %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("a complete production config must validate: %v", err)
	}
}

func TestFromEnvNamesEveryBadVariable(t *testing.T) {
	_, err := FromEnv(env(map[string]string{
		"TLS_ENABLED": "maybe", "LOGIN_MAX_FAILURES": "five", "LOGIN_FAILURE_WINDOW": "15", "JWT_EXPIRATION_HOURS": "a day",
		"LOG_LEVEL": "loud", "JWT_SECRET": "x", "JWT_SECRET_FILE": "/nonexistent",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"TLS_ENABLED", "LOGIN_MAX_FAILURES", "LOGIN_FAILURE_WINDOW", "JWT_EXPIRATION_HOURS", "LOG_LEVEL", "JWT_SECRET and JWT_SECRET_FILE"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestProductionRefusesUnsafeConfig(t *testing.T) {
	c := DefaultConfig()
	c.Env = node.EnvProduction
	c.AllowedOrigins = []string{"*"}
	err := c.Validate()
	if err == nil {
		t.Fatal("unsafe production config accepted")
	}
	for _, want := range []string{"JWT_SECRET: required", "ALLOWED_ORIGINS: * is refused", "TLS_ENABLED", "NODE_DOMAIN", "PUBLIC_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	c.JWTSecret = strings.Repeat("s", 31)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("a 31-character secret: %v", err)
	}
	c.JWTSecret = strings.Repeat("s", 32)
	c.AllowedOrigins = []string{"https://app.example"}
	c.TLSEnabled = true
	c.TLSCertPath, c.TLSKeyPath = "/nonexistent/cert", ""
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "TLS_CERT_PATH") || !strings.Contains(err.Error(), "TLS_KEY_PATH: required") {
		t.Fatalf("TLS without files: %v", err)
	}
}

func TestValidateRefusesNonsense(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"ENV":                   func(c *Config) { c.Env = "staging" },
		"JWT_ALGORITHM":         func(c *Config) { c.JWTAlgorithm = "none" },
		"JWT_EXPIRATION_HOURS":  func(c *Config) { c.JWTExpiration = 0 },
		"NODE_DOMAIN":           func(c *Config) { c.NodeDomain = "Bad Domain" },
		"PUBLIC_URL":            func(c *Config) { c.PublicURL = "ftp://x" },
		"ALLOWED_ORIGINS":       func(c *Config) { c.AllowedOrigins = []string{"not a url"} },
		"MAX_SESSIONS_PER_USER": func(c *Config) { c.MaxSessionsPerUser = 0 },
	} {
		c := DefaultConfig()
		mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDevSecretIsGeneratedOnceWithMode0600(t *testing.T) {
	dir := t.TempDir()
	s1, err := loadOrCreateDevSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, devSecretFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v, %v", st.Mode().Perm(), err)
	}
	if len(s1) < node.MinSecretLen {
		t.Fatalf("generated secret too short: %d", len(s1))
	}
	s2, _ := loadOrCreateDevSecret(dir)
	if s1 != s2 {
		t.Fatal("the development secret must be kept, not regenerated")
	}
	if other, _ := loadOrCreateDevSecret(t.TempDir()); other == s1 {
		t.Fatal("two data dirs got the same secret")
	}
	os.Chmod(filepath.Join(dir, devSecretFile), 0o644)
	if _, err := loadOrCreateDevSecret(dir); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("world-readable secret used: %v", err)
	}
}

func TestFromEnvReadsExactlyEnvVars(t *testing.T) {
	asked := map[string]bool{}
	FromEnv(func(k string) string { asked[k] = true; return "" })
	for _, v := range EnvVars {
		if !asked[v] {
			t.Errorf("EnvVars lists %s but FromEnv never reads it", v)
		}
		delete(asked, v)
	}
	for _, o := range options { // secrets are read as NAME_FILE too; the README says so beside NAME
		if o.secret {
			delete(asked, o.name+"_FILE")
		}
	}
	for v := range asked {
		t.Errorf("FromEnv reads %s, which EnvVars (and so the README) does not list", v)
	}
}

var update = flag.Bool("update", false, "rewrite the README's configuration table from the table of options")

// TestREADMEConfigurationTable: the README's configuration table is the one
// the table of options makes (go test ./daemon -run READMEConfiguration
// -update rewrites it).
func TestREADMEConfigurationTable(t *testing.T) {
	const begin, end = "<!-- BEGIN CONFIGURATION: generated from daemon/options.go by go test ./daemon -run READMEConfiguration -update -->\n", "<!-- END CONFIGURATION -->"
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("the README has no %q ... %q section", begin, end)
	}
	want := configTable()
	if got := readme[i+len(begin) : j]; got != want {
		if *update {
			if err := os.WriteFile("../README.md", []byte(readme[:i+len(begin)]+want+readme[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("the README's configuration table differs from the table of options; run go test ./daemon -run READMEConfiguration -update")
	}
}

func TestREADMEDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range EnvVars {
		if !strings.Contains(string(readme), "| `"+v+"`") && !strings.Contains(string(readme), "`"+v+"` /") && !strings.Contains(string(readme), ", `"+v+"`") {
			t.Errorf("the README's configuration table has no row for %s", v)
		}
	}
}

func TestRedisConfigRules(t *testing.T) {
	prod := func(mod func(*Config)) error {
		c := DefaultConfig()
		c.Env, c.JWTSecret, c.NodeDomain, c.PublicURL, c.TLSTerminatedByProxy = node.EnvProduction, strings.Repeat("s", 40), "a.example", "https://a.example", true
		mod(&c)
		return c.Validate()
	}
	if err := prod(func(c *Config) { c.RedisURL, c.RedisPassword = "rediss://redis.internal:6380", "pw" }); err != nil {
		t.Fatalf("TLS Redis with a password: %v", err)
	}
	if err := prod(func(c *Config) { c.RedisURL, c.RedisPassword = "redis://127.0.0.1:6379", "pw" }); err != nil {
		t.Fatalf("plain Redis on loopback: %v", err)
	}
	for name, tt := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"no password":         {func(c *Config) { c.RedisURL = "rediss://redis.internal:6380" }, "REDIS_PASSWORD"},
		"plain TCP, remote":   {func(c *Config) { c.RedisURL, c.RedisPassword = "redis://redis.internal:6379", "pw" }, "rediss://"},
		"not a redis URL":     {func(c *Config) { c.RedisURL, c.RedisPassword = "http://x", "pw" }, "REDIS_URL"},
		"bad rate rule":       {func(c *Config) { c.RateLimits[node.ClassAuth] = ratelimit.Rule{} }, "RATE_LIMIT_AUTH"},
		"bad trusted proxies": {func(c *Config) { c.TrustedProxies = []string{"everyone"} }, "TRUSTED_PROXIES"},
	} {
		err := prod(tt.mod)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	dev := DefaultConfig()
	dev.RedisURL = "redis://127.0.0.1:6379"
	if err := dev.Validate(); err == nil || !strings.Contains(err.Error(), "JWT_SECRET: required with REDIS_URL") {
		t.Fatalf("replicas need one shared JWT secret: %v", err)
	}
	c, err := FromEnv(env(map[string]string{"RATE_LIMIT_AUTH": "5/30s", "RATE_LIMIT_WINDOW": "120", "RATE_LIMIT_REQUESTS": "7"}))
	if err != nil || c.Rule(node.ClassAuth) != (ratelimit.Rule{Limit: 5, Window: 30 * time.Second}) || c.Rule(node.ClassMetrics) != (ratelimit.Rule{Limit: 7, Window: 2 * time.Minute}) {
		t.Fatalf("rules: %+v %+v %v", c.Rule(node.ClassAuth), c.Rule(node.ClassMetrics), err)
	}
	for _, bad := range []string{"5", "x/1m", "5/never", "0/1m"} {
		if _, err := FromEnv(env(map[string]string{"RATE_LIMIT_AUTH": bad})); err == nil {
			t.Errorf("RATE_LIMIT_AUTH=%q accepted", bad)
		}
	}
}

// TestUnknownVariablesAreNamed: a variable with one of our prefixes that
// fednode does not read is named (for a warning at start); others are not.
func TestUnknownVariablesAreNamed(t *testing.T) {
	got := UnknownVariables([]string{"RATE_LIMIT_AUHT=5/1m", "RATE_LIMIT_AUTH=5/1m", "JWT_SECRET_FILE=/run/s", "HOME=/root",
		"VAULT_TOKEN_FILE=/run/t", "BAN_AFTR=1", "TLS_ENABLED=true", "LISTEN_ADDR=:1", "REDIS_NAMESPACE_FILE=/x"})
	want := []string{"BAN_AFTR", "RATE_LIMIT_AUHT", "REDIS_NAMESPACE_FILE"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestLoadReportsEverythingInOneRound: a variable that does not parse and
// a rule that fails are reported together.
func TestLoadReportsEverythingInOneRound(t *testing.T) {
	_, err := Load(env(map[string]string{"LOGIN_MAX_FAILURES": "five", "FEDERATION_MODE": "closed", "OUTBOX_LANES_PER_PEER": "0"}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"LOGIN_MAX_FAILURES: \"five\" is not a whole number", "FEDERATION_MODE: \"closed\" is not open or allowlist", "OUTBOX_LANES_PER_PEER: must be 1 to 64"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
}
