package deploy_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/fednode/fednode/daemon"
)

// TestComposeFederation validates docker-compose.federation.yml without a
// Docker engine: it parses strictly, every node's environment is a valid
// fednode configuration, uses only variables fednode reads, names each node
// by its service name, and publishes ports on loopback only; the containers
// are hardened as the security checklist asks.
func TestComposeFederation(t *testing.T) {
	raw, err := os.ReadFile("../docker-compose.federation.yml")
	if err != nil {
		t.Fatal(err)
	}
	type service struct {
		Build       string            `json:"build"`
		ReadOnly    bool              `json:"read_only"`
		CapDrop     []string          `json:"cap_drop"`
		SecurityOpt []string          `json:"security_opt"`
		MemLimit    string            `json:"mem_limit"`
		CPUs        float64           `json:"cpus"`
		Restart     string            `json:"restart"`
		Healthcheck map[string]any    `json:"healthcheck"`
		Environment map[string]string `json:"environment"`
		Ports       []string          `json:"ports"`
		Volumes     []string          `json:"volumes"`
	}
	var f struct {
		XNode    map[string]any         `json:"x-node"`
		Services map[string]service     `json:"services"`
		Volumes  map[string]interface{} `json:"volumes"`
	}
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		t.Fatalf("compose file: %v", err)
	}
	if len(f.Services) != 3 {
		t.Fatalf("want three nodes, got %d", len(f.Services))
	}
	hostPorts := map[string]bool{}
	for name, s := range f.Services {
		env := s.Environment
		for k := range env {
			if !slices.Contains(daemon.EnvVars, k) {
				t.Errorf("%s: %s is not a fednode variable", name, k)
			}
		}
		cfg, err := daemon.FromEnv(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: not a valid configuration:\n%v", name, err)
		}
		if cfg.NodeDomain != name+":8080" {
			t.Errorf("%s: NODE_DOMAIN %q must be the service name, which is what peers resolve", name, cfg.NodeDomain)
		}
		if !strings.HasSuffix(cfg.ListenAddr, ":8080") {
			t.Errorf("%s: listens on %s", name, cfg.ListenAddr)
		}
		for _, d := range cfg.FederationAllowlist {
			if _, ok := f.Services[strings.TrimSuffix(d, ":8080")]; !ok {
				t.Errorf("%s: allowlist names %s, which is not a node here", name, d)
			}
		}
		if s.Build != "." || !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") || s.MemLimit == "" || s.CPUs == 0 || s.Healthcheck == nil {
			t.Errorf("%s: must build the Dockerfile, read-only, all capabilities dropped, no-new-privileges, resource limits and a healthcheck: %+v", name, s)
		}
		if len(s.Volumes) != 1 || !strings.HasSuffix(s.Volumes[0], ":"+cfg.DataDir) {
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
	}
	docker, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"USER nonroot", "CGO_ENABLED=0", "distroless", "HEALTHCHECK"} {
		if !strings.Contains(string(docker), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// TestImageBuildsWithThePinnedToolchain: the container image is built with
// the Go toolchain go.mod pins, whose standard library is what `make
// vulncheck` scanned, and the same flags as `make build`.
func TestImageBuildsWithThePinnedToolchain(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var toolchain string
	for _, line := range strings.Split(string(mod), "\n") {
		if v, ok := strings.CutPrefix(line, "toolchain go"); ok {
			toolchain = strings.TrimSpace(v)
		}
	}
	if toolchain == "" {
		t.Fatal("go.mod pins no toolchain")
	}
	docker, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(docker), "FROM golang:"+toolchain+" AS build") {
		t.Fatalf("the Dockerfile must build with golang:%s, go.mod's toolchain", toolchain)
	}
	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	const flags = "-trimpath -ldflags='-s -w'"
	if !strings.Contains(string(docker), flags) || !strings.Contains(string(makefile), flags) {
		t.Fatalf("the Dockerfile and make build must both build with %s", flags)
	}
}
