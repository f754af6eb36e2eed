package deploy_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/node"
)

const (
	alertsFile    = "prometheus/alerts.yml"
	alertTests    = "prometheus/alerts_test.yml"
	dashboardFile = "grafana/fednode.json"
)

// promtool returns the path of promtool (Debian's prometheus package; make
// tools installs it). Only a -short run may go without it.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if testing.Short() {
			t.Skip("promtool is not installed (make tools)")
		}
		t.Fatal("promtool is not installed: run make tools (apt-get install prometheus)")
	}
	return p
}

func run(t *testing.T, stdin []byte, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// TestAlertRules: promtool accepts the rules and their unit tests pass.
func TestAlertRules(t *testing.T) {
	p := promtool(t)
	run(t, nil, p, "check", "rules", alertsFile)
	run(t, nil, p, "test", "rules", alertTests)
}

// scrapeNode starts a real node (embedded store), makes the requests that
// create the series of labelled counters, and returns its /metrics.
func scrapeNode(t *testing.T) []byte {
	t.Helper()
	cfg := daemon.DefaultConfig()
	cfg.ListenAddr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.JWTSecret = "monitoring-test-secret-0123456789abcdef"
	cfg.Password = node.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	i := 0
	d, err := daemon.Open(context.Background(), cfg, daemon.Options{Log: quiet, Audit: quiet,
		GenerateKey: func() (*rsa.PrivateKey, error) { i++; return testkeys.Key(i - 1), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var body []byte
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/no/such/path", ""},
		{"POST", "/api/auth/login", `{"username":"nobody","password":"wrong-password"}`}, // an auth event
		{"POST", "/federation/inbox", `{}`},                                              // an inbox refusal
		{"GET", "/metrics", ""},
		{"GET", "/metrics", ""},
	} {
		r, _ := http.NewRequest(req.method, d.URL()+req.path, strings.NewReader(req.body))
		if req.body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	return body
}

// TestNodeMetricsLint: promtool's linter accepts a real node's scrape.
func TestNodeMetricsLint(t *testing.T) {
	p := promtool(t)
	run(t, scrapeNode(t), p, "check", "metrics")
}

var metricName = regexp.MustCompile(`\bfednode_[a-z0-9_]+\b`)

// TestMonitoringUsesExportedMetrics: every metric the alert rules and the
// dashboard query is one a node exports (a histogram's _bucket, _sum and
// _count included), so neither can silently watch nothing after a rename.
func TestMonitoringUsesExportedMetrics(t *testing.T) {
	exported := map[string]bool{}
	for _, l := range strings.Split(string(scrapeNode(t)), "\n") {
		f := strings.Fields(l)
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			exported[f[2]] = true
			if f[3] == "histogram" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					exported[f[2]+s] = true
				}
			}
		}
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs["alert "+r.Alert] = r.Expr
		}
	}
	raw, err = os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		for i, tg := range p.Targets {
			exprs["panel "+p.Title+" #"+string(rune('A'+i))] = tg.Expr
		}
	}
	for i, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok {
			exprs["variable "+string(rune('0'+i))] = q
		}
	}
	alerts := []string{"FednodeDown", "FednodeNotReady", "FednodeOutboxStuck", "FednodeDeadLettersGrowing",
		"FednodeVaultUnhealthy", "FednodeStoreUnhealthy", "FednodeHigh5xxRate", "FednodeLimiterFallback"}
	for _, a := range alerts {
		if exprs["alert "+a] == "" {
			t.Errorf("no alert %s", a)
		}
	}
	used := 0
	for where, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			used++
			if !exported[name] {
				t.Errorf("%s uses %s, which the node does not export", where, name)
			}
		}
	}
	if used < 20 || len(exported) < 20 || !slices.Contains(metricName.FindAllString(exprs["alert FednodeOutboxStuck"], -1), "fednode_outbox_oldest_job_age_seconds") {
		t.Fatalf("found %d uses of %d exported metrics: the parsing is broken", used, len(exported))
	}
}
