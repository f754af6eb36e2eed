package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/internal/syncbuf"
	"github.com/fednode/fednode/internal/vaulttest"
)

// get fetches url with an optional bearer token and returns the status and
// body.
func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func wantLines(t *testing.T, body string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(body, l) {
			t.Errorf("the scrape lacks %q", l)
		}
	}
}

// TestMetricsAfterActivity: after a user sends to a peer that cannot be
// reached, a request for nothing and an admin's ban, the scrape shows the
// outbox queue of that peer, the requests by route template, method and
// status with their latency, the ban, the store's health and the build.
func TestMetricsAfterActivity(t *testing.T) {
	n := startNode(t)
	root := n.admin("root")
	n.send(root, "bob@127.0.0.1:1", "to a peer that is not there")
	n.do("GET", "/api/messages/01NOSUCHMESSAGE", root, nil)
	n.do("GET", "/no/such/endpoint", "", nil)
	if r := n.do("POST", "/api/admin/bans", root, map[string]any{"key": "203.0.113.9", "duration": "1h", "reason": "spam from 203.0.113.9"}); r.Status != 201 {
		t.Fatalf("ban: %d %s", r.Status, r.Raw)
	}
	code, body := get(t, n.url+"/metrics", "")
	if code != 200 {
		t.Fatalf("scrape: %d", code)
	}
	wantLines(t, body,
		`fednode_outbox_queue_depth{peer="127.0.0.1:1"} 1`,
		`fednode_outbox_queue_depth{peer="other"} 0`,
		`fednode_outbox_oldest_job_age_seconds{peer="127.0.0.1:1"} `,
		"fednode_outbox_peers 1",
		"fednode_outbox_dead_letters 0",
		`fednode_http_request_duration_seconds_count{method="POST",route="/api/messages"} 1`,
		`fednode_http_requests_total{code="202",method="POST",route="/api/messages"} 1`,
		`fednode_http_requests_total{code="404",method="GET",route="/api/messages/{id}"} 1`,
		`fednode_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		"fednode_bans_active 1",
		`fednode_bans_total{reason="manual"} 1`,
		`fednode_dependency_up{dependency="store"} 1`,
		"fednode_ready 1",
		`fednode_build_info{goversion="go`,
	)
	if strings.Contains(body, "01NOSUCHMESSAGE") || strings.Contains(body, "spam from") {
		t.Error("a raw path or an admin's free text became a label")
	}
}

// TestMetricsAddr: with METRICS_ADDR the main listener answers /metrics
// 404, the metrics listener serves it, and with METRICS_TOKEN (from a
// _FILE too) only to the bearer of the token.
func TestMetricsAddr(t *testing.T) {
	const token = "scrape-token-0123456789"
	n := startNode(t, func(c *daemon.Config) { c.MetricsAddr, c.MetricsToken = "127.0.0.1:0", token })
	if code, body := get(t, n.url+"/metrics", token); code != 404 || !strings.Contains(body, `"not_found"`) {
		t.Fatalf("main listener: %d %s", code, body)
	}
	murl := n.srv.MetricsURL()
	if murl == "" {
		t.Fatal("no metrics listener")
	}
	if code, body := get(t, murl+"/metrics", ""); code != 401 || !strings.Contains(body, `"unauthorized"`) {
		t.Fatalf("no token: %d %s", code, body)
	}
	if code, _ := get(t, murl+"/metrics", token+"x"); code != 401 {
		t.Fatalf("a wrong token: %d", code)
	}
	if code, body := get(t, murl+"/metrics", token); code != 200 || !strings.Contains(body, "fednode_ready 1") {
		t.Fatalf("the token: %d %.300s", code, body)
	}
	if code, _ := get(t, murl+"/api/me", token); code != 404 {
		t.Fatalf("the metrics listener serves the API: %d", code)
	}
}

// TestRequestIDInErrors: every answer carries X-Request-Id; a REST error
// body names the same id; a sane incoming id is kept; the inbox's
// refusals keep to the protocol's strict body, the id in the header only.
func TestRequestIDInErrors(t *testing.T) {
	n := startNode(t)
	r := n.do("GET", "/api/nothing-here", "", nil)
	id := r.Header.Get("X-Request-Id")
	e, _ := r.Body["error"].(map[string]any)
	if r.Status != 404 || id == "" || e["request_id"] != id {
		t.Fatalf("header %q, body %s", id, r.Raw)
	}
	req, _ := http.NewRequest("GET", n.url+"/api/me", nil)
	req.Header.Set("X-Request-Id", "lb-7f3a9c")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error map[string]any }
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "lb-7f3a9c" || body.Error["request_id"] != "lb-7f3a9c" {
		t.Fatalf("incoming id not kept: %q %v", resp.Header.Get("X-Request-Id"), body)
	}
	r = n.do("POST", federation.InboxPath, "", `{}`)
	if r.Status != 401 || r.Header.Get("X-Request-Id") == "" || strings.Contains(r.Raw, "request_id") || federation.ErrorCode([]byte(r.Raw)) != "signature_missing" {
		t.Fatalf("inbox refusal: %d %s", r.Status, r.Raw)
	}
}

// logLines parses a JSON log.
func logLines(t *testing.T, raw string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(raw), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// TestAccessAndShutdownLogged: a real node logs each request at info with
// its id, client, route, method, status and duration, and logs the
// shutdown's steps with their durations.
func TestAccessAndShutdownLogged(t *testing.T) {
	var buf syncbuf.Buffer
	n := startNode(t, logTo{&buf})
	r := n.do("GET", "/api/messages/01ABC", "", nil)
	var access map[string]any
	for _, l := range logLines(t, buf.String()) {
		if l["msg"] == "request" && l["route"] == "/api/messages/{id}" {
			access = l
		}
	}
	if access == nil || access["level"] != "INFO" || access["request_id"] != r.Header.Get("X-Request-Id") || access["client"] != "127.0.0.1" ||
		access["method"] != "GET" || access["status"] != float64(401) || access["duration_ms"] == nil {
		t.Fatalf("access line %v\nlog:\n%s", access, buf.String())
	}
	if err := n.srv.Close(); err != nil {
		t.Fatal(err)
	}
	n.srv = nil
	steps := map[string]map[string]any{}
	for _, l := range logLines(t, buf.String()) {
		if m, _ := l["msg"].(string); strings.HasPrefix(m, "shutdown: ") {
			steps[m] = l
		}
	}
	if steps["shutdown: draining"] == nil || steps["shutdown: drained"]["duration_ms"] == nil || steps["shutdown: complete"]["duration_ms"] == nil {
		t.Fatalf("shutdown steps: %v", steps)
	}
}

// TestRedisClientLogRouted: go-redis's own messages land in the node's
// JSON log, tagged component=go-redis: here the one go-redis writes when
// it is given an expiry under its 1 ms resolution.
func TestRedisClientLogRouted(t *testing.T) {
	srv := redistest.Start(t)
	var buf syncbuf.Buffer
	startNode(t, onRedis(srv.URL(), false), logTo{&buf})
	opt, err := goredis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.Password = redistest.Password
	c := goredis.NewClient(opt)
	defer c.Close()
	if err := c.Set(context.Background(), "observe:probe", "x", 500*time.Microsecond).Err(); err != nil {
		t.Fatal(err)
	}
	for _, l := range logLines(t, buf.String()) {
		if l["component"] == "go-redis" && l["level"] == "WARN" && strings.Contains(l["detail"].(string), "truncating to 1ms") {
			return
		}
	}
	t.Fatalf("no go-redis line in the node's log:\n%s", buf.String())
}

// TestVaultHealthMetric: the Vault readiness check is a gauge, 1 while
// Vault answers, 0 once the node's token is revoked, with fednode_ready.
func TestVaultHealthMetric(t *testing.T) {
	v := vaulttest.Start(t)
	var token string
	n := startNode(t, onVault(t, v, "metrics", false), func(c *daemon.Config) { token = c.VaultToken })
	_, body := get(t, n.url+"/metrics", "")
	wantLines(t, body, `fednode_dependency_up{dependency="vault"} 1`, "fednode_ready 1")
	if err := v.Client(t).Auth().Token().RevokeTree(token); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5100 * time.Millisecond) // the scrape's cache of the checks
	_, body = get(t, n.url+"/metrics", "")
	wantLines(t, body, `fednode_dependency_up{dependency="vault"} 0`, `fednode_dependency_up{dependency="store"} 1`, "fednode_ready 0")
}

// TestMetricsOptions: METRICS_ADDR must be host:port and not LISTEN_ADDR;
// METRICS_TOKEN is a secret (METRICS_TOKEN_FILE) of at least 16 characters.
func TestMetricsOptions(t *testing.T) {
	file := t.TempDir() + "/token"
	if err := os.WriteFile(file, []byte("from-a-file-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		bad  string // the variable the error names; "" for none
	}{
		{"a separate address", map[string]string{"METRICS_ADDR": "127.0.0.1:9100"}, ""},
		{"not host:port", map[string]string{"METRICS_ADDR": "9100"}, "METRICS_ADDR"},
		{"the main address", map[string]string{"LISTEN_ADDR": "127.0.0.1:9100", "METRICS_ADDR": "127.0.0.1:9100"}, "METRICS_ADDR"},
		{"a short token", map[string]string{"METRICS_TOKEN": "short"}, "METRICS_TOKEN"},
		{"a token file", map[string]string{"METRICS_TOKEN_FILE": file}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := daemon.Load(func(k string) string { return tt.env[k] })
			switch {
			case tt.bad == "" && err != nil:
				t.Fatal(err)
			case tt.bad != "" && (err == nil || !strings.Contains(err.Error(), tt.bad+":")):
				t.Fatalf("want an error naming %s, got %v", tt.bad, err)
			}
			if tt.env["METRICS_TOKEN_FILE"] != "" && cfg.MetricsToken != "from-a-file-0123456789" {
				t.Fatalf("token %q", cfg.MetricsToken)
			}
		})
	}
}
