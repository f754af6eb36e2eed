package deploy_test

import (
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/fednode/fednode/daemon"
)

var update = flag.Bool("update", false, "rewrite deploy/vault/NODE.hcl from each node's configuration")

const composeFile = "../docker-compose.federation.yml"

// The compose file's shape, as far as the tests read it; parsing is strict,
// so a key the tests do not know is an error, not a setting left unchecked.
type compose struct {
	XHardened map[string]any `json:"x-hardened"`
	XNode     map[string]any `json:"x-node"`
	XRedis    map[string]any `json:"x-redis"`
	XNodeEnv  map[string]any `json:"x-node-env"`
	Services  map[string]service
	Networks  map[string]struct {
		Internal bool `json:"internal"`
	} `json:"networks"`
	Secrets map[string]struct {
		File string `json:"file"`
	} `json:"secrets"`
	Volumes map[string]any `json:"volumes"`
}

type service struct {
	Build       string            `json:"build"`
	Image       string            `json:"image"`
	User        string            `json:"user"`
	ReadOnly    bool              `json:"read_only"`
	CapDrop     []string          `json:"cap_drop"`
	SecurityOpt []string          `json:"security_opt"`
	MemLimit    string            `json:"mem_limit"`
	CPUs        float64           `json:"cpus"`
	PidsLimit   int               `json:"pids_limit"`
	Restart     string            `json:"restart"`
	Healthcheck *healthcheck      `json:"healthcheck"`
	Environment map[string]string `json:"environment"`
	Command     []string          `json:"command"`
	Secrets     []secretRef       `json:"secrets"`
	Ports       []string          `json:"ports"`
	Expose      []string          `json:"expose"`
	Volumes     []string          `json:"volumes"`
	Tmpfs       []string          `json:"tmpfs"`
	Networks    []string          `json:"networks"`
	DependsOn   map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
}

type healthcheck struct {
	Test        []string `json:"test"`
	Interval    string   `json:"interval"`
	Timeout     string   `json:"timeout"`
	Retries     int      `json:"retries"`
	StartPeriod string   `json:"start_period"`
}

// secretRef is a service's secret: a name, or {source, target}; either
// way it is mounted at /run/secrets/<target>.
type secretRef struct{ Source, Target string }

func (s *secretRef) UnmarshalJSON(b []byte) error {
	var name string
	if json.Unmarshal(b, &name) == nil {
		*s = secretRef{name, name}
		return nil
	}
	var long struct{ Source, Target string }
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&long); err != nil {
		return err
	}
	if long.Target == "" {
		long.Target = long.Source
	}
	*s = secretRef(long)
	return nil
}

// secretAt returns the source of the secret s mounts at path.
func (s service) secretAt(path string) (string, bool) {
	for _, r := range s.Secrets {
		if "/run/secrets/"+r.Target == path {
			return r.Source, true
		}
	}
	return "", false
}

// command is the service's command as the container gets it: compose turns
// $$ into $ (the file uses no host variable: loadCompose checks).
func (s service) command() string { return unescape(s.Command) }

func unescape(words []string) string { return strings.ReplaceAll(strings.Join(words, " "), "$$", "$") }

func loadCompose(t *testing.T) (compose, string) {
	t.Helper()
	raw, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ReplaceAll(string(raw), "$$", ""), "$") {
		t.Fatal("compose file: a $ interpolates a variable of the host's environment; write $$ for the container's shell")
	}
	var f compose
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		t.Fatalf("compose file: %v", err)
	}
	return f, string(raw)
}

// kind sorts the services: fednode nodes (built from the Dockerfile), their
// Redis servers, and Vault (the server and its one-shot init).
func kind(s service) string {
	switch {
	case s.Build == ".":
		return "node"
	case strings.HasPrefix(s.Image, "redis:"):
		return "redis"
	case strings.HasPrefix(s.Image, "hashicorp/vault:"):
		return "vault"
	}
	return "unknown"
}

// TestComposeFederation validates docker-compose.federation.yml without a
// Docker engine. Every node's environment is a valid fednode configuration
// (loaded by the node's own loader, secrets read from the files the node
// would read), uses only variables fednode reads, names the node by its
// service name, publishes on loopback only, gets every secret through
// *_FILE from a secret file, and its own Redis and Vault credentials; and
// every service is hardened, limited and (if long-running) checked for
// liveness.
func TestComposeFederation(t *testing.T) {
	f, _ := loadCompose(t)
	members := map[string][]string{} // network: services on it
	byKind := map[string][]string{}
	for name, s := range f.Services {
		byKind[kind(s)] = append(byKind[kind(s)], name)
		for _, n := range s.Networks {
			if _, ok := f.Networks[n]; !ok {
				t.Errorf("%s: network %s is not declared", name, n)
			}
			members[n] = append(members[n], name)
		}
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: must be read-only, with all capabilities dropped and no-new-privileges", name)
		}
		if s.MemLimit == "" || s.CPUs <= 0 || s.PidsLimit <= 0 {
			t.Errorf("%s: must have resource limits (mem_limit, cpus, pids_limit): %q %v %d", name, s.MemLimit, s.CPUs, s.PidsLimit)
		}
		if s.Restart != "no" && (s.Healthcheck == nil || len(s.Healthcheck.Test) < 2) {
			t.Errorf("%s: a long-running service needs a healthcheck", name)
		}
		if s.User == "" && kind(s) != "node" { // the node's image sets its user
			t.Errorf("%s: must run as an unprivileged user", name)
		}
		for _, r := range s.Secrets {
			if _, ok := f.Secrets[r.Source]; !ok {
				t.Errorf("%s: secret %s is not declared", name, r.Source)
			}
		}
	}
	if len(byKind["node"]) != 3 || len(byKind["redis"]) != 3 || len(byKind["vault"]) != 2 || len(byKind["unknown"]) != 0 {
		t.Fatalf("want three nodes, three Redis servers, Vault and its init: %v", byKind)
	}
	for n, net := range f.Networks {
		if net.Internal {
			continue
		}
		for _, m := range members[n] {
			if kind(f.Services[m]) != "node" {
				t.Errorf("network %s is not internal, but %s (not a node) is on it", n, m)
			}
		}
	}
	for _, name := range append(byKind["redis"], byKind["vault"]...) {
		s := f.Services[name]
		if len(s.Ports) > 0 || len(s.Expose) > 0 {
			t.Errorf("%s: must publish no port: %v %v", name, s.Ports, s.Expose)
		}
		for _, n := range s.Networks {
			if !f.Networks[n].Internal {
				t.Errorf("%s: network %s must be internal", name, n)
			}
		}
	}
	for _, name := range byKind["redis"] {
		checkRedis(t, name, f.Services[name])
	}
	checkVault(t, f)

	hostPorts := map[string]bool{}
	redisOf := map[string]string{} // Redis service: its node
	prefixes, jwtPaths := map[string]bool{}, map[string]bool{}
	for _, name := range byKind["node"] {
		s := f.Services[name]
		cfg := checkNodeEnv(t, f, name, s)
		if cfg.NodeDomain != name+":8080" {
			t.Errorf("%s: NODE_DOMAIN %q must be the service name, which is what peers resolve", name, cfg.NodeDomain)
		}
		if !strings.HasSuffix(cfg.ListenAddr, ":8080") {
			t.Errorf("%s: listens on %s", name, cfg.ListenAddr)
		}
		for _, d := range cfg.FederationAllowlist {
			if kind(f.Services[strings.TrimSuffix(d, ":8080")]) != "node" {
				t.Errorf("%s: allowlist names %s, which is not a node here", name, d)
			}
		}
		if want := []string{"CMD", "/usr/local/bin/fednode", "healthcheck"}; !slices.Equal(s.Healthcheck.Test, want) {
			t.Errorf("%s: the healthcheck must be liveness, %v (it asks /healthz), not %v", name, want, s.Healthcheck.Test)
		}
		if cfg.UsesDataDir() && (len(s.Volumes) != 1 || !strings.HasSuffix(s.Volumes[0], ":"+cfg.DataDir)) {
			t.Errorf("%s: DATA_DIR %s must be a volume (the root filesystem is read-only): %v", name, cfg.DataDir, s.Volumes)
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %s must be published on loopback only", name, p)
			}
			hp := strings.Split(p, ":")[1]
			if hostPorts[hp] {
				t.Errorf("host port %s used twice", hp)
			}
			hostPorts[hp] = true
		}

		// Its own Redis, alone with it on an internal network, with the
		// same password secret; never another node's.
		u, err := url.Parse(cfg.RedisURL)
		if err != nil {
			t.Fatalf("%s: REDIS_URL: %v", name, err)
		}
		r := u.Hostname()
		if kind(f.Services[r]) != "redis" || redisOf[r] != "" {
			t.Errorf("%s: REDIS_URL must name a Redis of its own, not %q (also used by %q)", name, r, redisOf[r])
		}
		redisOf[r] = name
		if _, ok := s.DependsOn[r]; !ok {
			t.Errorf("%s: must depend on its Redis %s", name, r)
		}
		shared := false
		for _, n := range f.Services[r].Networks {
			m := slices.Sorted(slices.Values(members[n]))
			shared = shared || slices.Contains(s.Networks, n)
			if !slices.Equal(m, slices.Sorted(slices.Values([]string{name, r}))) {
				t.Errorf("%s: network %s must hold %s and its node alone, holds %v", r, n, r, m)
			}
		}
		if !shared {
			t.Errorf("%s: shares no network with its Redis %s", name, r)
		}
		mine, _ := s.secretAt(s.Environment["REDIS_PASSWORD_FILE"])
		theirs, _ := f.Services[r].secretAt("/run/secrets/redis-password")
		if mine == "" || mine != theirs {
			t.Errorf("%s: its REDIS_PASSWORD_FILE (secret %q) must be its Redis' requirepass (secret %q)", name, mine, theirs)
		}

		// Vault: its own keys, JWT secret, policy and token.
		if cfg.KeysBackend != "vault" || cfg.JWTSecretVaultPath == "" || prefixes[cfg.VaultKeyPrefix] || jwtPaths[cfg.JWTSecretVaultPath] {
			t.Errorf("%s: keys and JWT secret must be in Vault under a prefix and path of its own: %s %s", name, cfg.VaultKeyPrefix, cfg.JWTSecretVaultPath)
		}
		prefixes[cfg.VaultKeyPrefix], jwtPaths[cfg.JWTSecretVaultPath] = true, true
		if v, _ := url.Parse(cfg.VaultAddr); v == nil || f.Services[v.Hostname()].Image == "" || !strings.Contains(f.Services[v.Hostname()].command(), "vault server") {
			t.Errorf("%s: VAULT_ADDR %s must be the stack's Vault", name, cfg.VaultAddr)
		}
		token, _ := s.secretAt(s.Environment["VAULT_TOKEN_FILE"])
		if token != name+"-vault-token" || !slices.ContainsFunc(f.Services["vault-init"].Secrets, func(r secretRef) bool { return r.Source == token }) {
			t.Errorf("%s: its Vault token must be its own secret %s-vault-token, which vault-init creates: %q", name, name, token)
		}
		if s.DependsOn["vault-init"].Condition != "service_completed_successfully" {
			t.Errorf("%s: must start after vault-init has completed", name)
		}
		checkPolicy(t, name, cfg)
	}
}

// checkNodeEnv loads a node's environment through the node's own loader:
// each *_FILE must point at a secret the service mounts, declared as a file
// in deploy/secrets/, and no secret is given inline (a REDIS_URL is allowed
// inline only without a password).
func checkNodeEnv(t *testing.T, f compose, name string, s service) daemon.Config {
	t.Helper()
	env := s.Environment
	for k := range env {
		if !slices.Contains(daemon.EnvVars, k) && !slices.Contains(daemon.SecretEnvVars, strings.TrimSuffix(k, "_FILE")) {
			t.Errorf("%s: %s is not a fednode variable", name, k)
		}
	}
	files := map[string]string{} // NAME_FILE: a stand-in for the secret file
	for _, k := range daemon.SecretEnvVars {
		if v, ok := env[k]; ok {
			if u, err := url.Parse(v); k != "REDIS_URL" || err != nil {
				t.Errorf("%s: %s is a secret: give it as %s_FILE, from a secret", name, k, k)
			} else if _, hasPassword := u.User.Password(); hasPassword {
				t.Errorf("%s: REDIS_URL carries a password: give it as REDIS_URL_FILE, from a secret", name)
			}
		}
		path, ok := env[k+"_FILE"]
		if !ok {
			continue
		}
		src, ok := s.secretAt(path)
		if !ok {
			t.Errorf("%s: %s_FILE=%s is not a secret the service mounts", name, k, path)
			continue
		}
		if file := f.Secrets[src].File; !strings.HasPrefix(file, "./deploy/secrets/") {
			t.Errorf("%s: secret %s must be a file in deploy/secrets/, made by scripts/compose-secrets: %q", name, src, file)
		}
		stand := filepath.Join(t.TempDir(), src)
		if err := os.WriteFile(stand, []byte(strings.Repeat("s", 64)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		files[k+"_FILE"] = stand
	}
	cfg, err := daemon.FromEnv(func(k string) string {
		if v, ok := files[k]; ok {
			return v
		}
		return env[k]
	})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: not a valid configuration:\n%v", name, err)
	}
	return cfg
}

// checkRedis: a node's store. AOF with an fsync per write, the password
// from its secret file, its data on a named volume, a liveness check.
func checkRedis(t *testing.T, name string, s service) {
	t.Helper()
	cmd := s.command()
	for _, want := range []string{"redis-server", "--appendonly yes", "--appendfsync always", `--requirepass "$(cat /run/secrets/redis-password)"`} {
		if !strings.Contains(cmd, want) {
			t.Errorf("%s: the command lacks %q: %s", name, want, cmd)
		}
	}
	if _, ok := s.secretAt("/run/secrets/redis-password"); !ok {
		t.Errorf("%s: mounts no redis-password secret", name)
	}
	if len(s.Volumes) != 1 || !strings.HasSuffix(s.Volumes[0], ":/data") || strings.HasPrefix(s.Volumes[0], ".") || strings.HasPrefix(s.Volumes[0], "/") {
		t.Errorf("%s: its data must be a named volume at /data: %v", name, s.Volumes)
	}
	if hc := unescape(s.Healthcheck.Test); !strings.Contains(hc, "redis-cli ping") || !strings.Contains(hc, "/run/secrets/redis-password") {
		t.Errorf("%s: the healthcheck must ping with the password from the secret file: %s", name, hc)
	}
}

// checkVault: the demo's Vault is dev mode, said so, with its root token
// from a secret file; vault-init runs once after it is healthy.
func checkVault(t *testing.T, f compose) {
	t.Helper()
	v, init := f.Services["vault"], f.Services["vault-init"]
	cmd := v.command()
	if !strings.Contains(cmd, "vault server -dev ") || !strings.Contains(cmd, "$(cat /run/secrets/vault-root-token)") {
		t.Errorf("vault: the dev server with the root token from its secret file: %s", cmd)
	}
	if hc := unescape(v.Healthcheck.Test); hc != "CMD vault status" || v.Environment["VAULT_ADDR"] != "http://127.0.0.1:8200" {
		t.Errorf("vault: the healthcheck must be vault status on itself: %s", hc)
	}
	if init.Restart != "no" || init.DependsOn["vault"].Condition != "service_healthy" || !strings.Contains(init.command(), "/fednode/vault/init.sh") {
		t.Errorf("vault-init: runs deploy/vault/init.sh once, after Vault is healthy: %+v", init)
	}
	_, raw := loadCompose(t)
	if strings.Count(raw, "DEVELOPMENT ONLY") < 3 {
		t.Error("the dev-mode Vault must be marked DEVELOPMENT ONLY at the top and on both services")
	}
}

// checkPolicy: vault-init writes deploy/vault/NODE.hcl as the node's
// policy, and it is exactly what `fednode admin vault-policy` makes of the
// node's configuration (-update writes it).
func checkPolicy(t *testing.T, name string, cfg daemon.Config) {
	t.Helper()
	want, err := daemon.VaultPolicy(cfg, false)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	path := filepath.Join("vault", name+".hcl")
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Errorf("%s: %s is not the node's policy (%v); run go test ./deploy -run ComposeFederation -update", name, path, err)
	}
	init, err := os.ReadFile("vault/init.sh")
	if err != nil || !strings.Contains(string(init), name) {
		t.Errorf("vault/init.sh does not set up %s", name)
	}
}

// TestComposeSecretsScript: scripts/compose-secrets makes every secret file
// the compose file names, each random, readable by the containers' users,
// in a directory only its owner can enter; a second run keeps them.
func TestComposeSecretsScript(t *testing.T) {
	f, _ := loadCompose(t)
	dir := filepath.Join(t.TempDir(), "secrets")
	run := func() {
		if out, err := exec.Command("bash", "../scripts/compose-secrets", dir).CombinedOutput(); err != nil {
			t.Fatalf("compose-secrets: %v\n%s", err, out)
		}
	}
	run()
	first := map[string]string{}
	seen := map[string]bool{}
	for name, s := range f.Secrets {
		p := filepath.Join(dir, strings.TrimPrefix(s.File, "./deploy/secrets/"))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(b) != 64 || seen[string(b)] {
			t.Errorf("%s: want 64 fresh hex digits, got %q", name, b)
		}
		seen[string(b)], first[name] = true, string(b)
		if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v", name, st.Mode())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("the directory's mode is %v", st.Mode())
	}
	run()
	for name, s := range f.Secrets {
		b, _ := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(s.File, "./deploy/secrets/")))
		if string(b) != first[name] {
			t.Errorf("%s: a second run changed it", name)
		}
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil || !strings.Contains(string(ignore), "deploy/secrets") {
		t.Errorf(".dockerignore must keep deploy/secrets out of the image build (%v)", err)
	}
	gitignore, err := os.ReadFile("../.gitignore")
	if err != nil || !strings.Contains(string(gitignore), "/deploy/secrets/") {
		t.Errorf(".gitignore must keep deploy/secrets out of git (%v)", err)
	}
}
