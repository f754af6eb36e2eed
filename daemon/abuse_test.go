package daemon_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/node"
	"github.com/fednode/fednode/ratelimit"
)

func rule(n int) ratelimit.Rule { return ratelimit.Rule{Limit: n, Window: time.Minute} }

// get sends a GET with optional headers (name, value pairs).
func (n *testNode) get(path, token string, headers ...string) response {
	n.t.Helper()
	if token != "" {
		headers = append(headers, "Authorization", "Bearer "+token)
	}
	return n.request("GET", path, headers...)
}

// request sends method path with headers (name, value pairs) and reads the
// answer.
func (n *testNode) request(method, path string, headers ...string) response {
	n.t.Helper()
	req, _ := http.NewRequest(method, n.url+path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
}

func expect429(t *testing.T, r response, what string) {
	t.Helper()
	if r.Status != 429 {
		t.Fatalf("%s: status %d, want 429", what, r.Status)
	}
	if secs, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 60 {
		t.Fatalf("%s: Retry-After %q", what, r.Header.Get("Retry-After"))
	}
	if !strings.Contains(r.Header.Get("RateLimit"), "remaining=0") || r.Header.Get("RateLimit-Policy") == "" {
		t.Fatalf("%s: RateLimit headers %q / %q", what, r.Header.Get("RateLimit"), r.Header.Get("RateLimit-Policy"))
	}
}

func TestLimitClasses(t *testing.T) {
	n := startNode(t, func(c *daemon.Config) {
		c.RateLimits[node.ClassAPIAnon] = rule(3)
		c.RateLimits[node.ClassMetrics] = rule(2)
		c.RateLimits[node.ClassAuth] = rule(4)
		c.RateLimits[node.ClassAPIAuth] = rule(3)
		c.RateLimits[node.ClassWSConnect] = rule(2)
		c.RateLimits[node.ClassWSFrames] = rule(2)
	})
	t.Run("unauthenticated API, per IP", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			if r := n.get(anonPath, ""); r.Status != 200 || r.Header.Get("RateLimit") == "" {
				t.Fatalf("request %d: %d, RateLimit %q", i, r.Status, r.Header.Get("RateLimit"))
			}
		}
		expect429(t, n.get(anonPath, ""), "fourth anonymous request")
		r := n.do("GET", anonPath, "", nil)
		if r.code() != "rate_limited" {
			t.Fatalf("429 must carry the stable code: %s", r.Raw)
		}
	})
	t.Run("metrics, its own class", func(t *testing.T) {
		n.get("/metrics", "")
		if r := n.get("/metrics", ""); r.Status != 200 {
			t.Fatalf("metrics: %d", r.Status)
		}
		expect429(t, n.get("/metrics", ""), "third metrics request")
	})
	var alice, bob string
	t.Run("login and registration, stricter, per IP", func(t *testing.T) {
		n.register("alice", "password-alice")
		n.register("bob", "password-bob")
		alice = n.login("alice", "password-alice")
		bob = n.login("bob", "password-bob")
		r := n.do("POST", "/api/auth/login", "", map[string]string{"username": "alice", "password": "password-alice"})
		expect429(t, r, "fifth auth request")
	})
	t.Run("authenticated API, per user", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			if r := n.get("/api/me", alice); r.Status != 200 {
				t.Fatalf("alice request %d: %d", i, r.Status)
			}
		}
		expect429(t, n.get("/api/me", alice), "alice's fourth")
		if r := n.get("/api/me", bob); r.Status != 200 {
			t.Fatalf("bob shares alice's IP but not her limit: %d", r.Status)
		}
	})
	t.Run("WebSocket connects and frames, per user", func(t *testing.T) {
		ws := dialWS(t, n, bob, "")
		dialWS(t, n, bob, "")
		_, resp, err := websocket.DefaultDialer.Dial(wsURL(n), http.Header{"Authorization": {"Bearer " + bob}})
		if err == nil || resp == nil || resp.StatusCode != 429 {
			t.Fatalf("third connect: %v %v", resp, err)
		}
		for i := 0; i < 3; i++ {
			ws.WriteMessage(websocket.TextMessage, []byte("hi"))
		}
		expectClosed(t, ws, websocket.CloseTryAgainLater)
	})
}

func TestClientKeysBehindTrustedProxies(t *testing.T) {
	behind := startNode(t, func(c *daemon.Config) {
		c.RateLimits[node.ClassAPIAnon] = rule(2)
		c.TrustedProxies = []string{"127.0.0.1/32"}
	})
	hit := func(n *testNode, xff string) int {
		return n.get(anonPath, "", "X-Forwarded-For", xff).Status
	}
	// Two clients behind the proxy have separate buckets.
	for _, ip := range []string{"198.51.100.1", "198.51.100.2"} {
		codes := []int{hit(behind, ip), hit(behind, ip), hit(behind, ip)}
		if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
			t.Fatalf("client %s must get exactly its own 2: %v", ip, codes)
		}
	}
	// A client forging a left hop is still counted by the hop the proxy saw.
	if hit(behind, "6.6.6.6, 198.51.100.1") != 429 {
		t.Fatal("a forged left-most hop escaped the limit")
	}
	// IPv6 grouped by /64; IPv4-mapped counts as IPv4.
	if codes := []int{hit(behind, "2001:db8:1:2::1"), hit(behind, "2001:db8:1:2::ffff"), hit(behind, "2001:db8:1:2:abcd::9")}; codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Fatalf("one /64 is one client: %v", codes)
	}
	if hit(behind, "2001:db8:1:3::1") != 200 {
		t.Fatal("another /64 is another client")
	}
	if hit(behind, "::ffff:198.51.100.2") != 429 {
		t.Fatal("IPv4-mapped 198.51.100.2 is 198.51.100.2, already at its limit")
	}

	// Without a trusted proxy the header changes nothing.
	direct := startNode(t, func(c *daemon.Config) { c.RateLimits[node.ClassAPIAnon] = rule(2) })
	codes := []int{}
	for i := 0; i < 3; i++ {
		codes = append(codes, hit(direct, fmt.Sprintf("203.0.113.%d", i)))
	}
	if codes[2] != 429 {
		t.Fatalf("forged X-Forwarded-For from an untrusted peer gave fresh buckets: %v", codes)
	}
}

func TestBansEscalateExpireAndPersist(t *testing.T) {
	n := startNode(t, func(c *daemon.Config) {
		c.RateLimits[node.ClassAPIAnon] = rule(1)
		c.BanAfterViolations = 3
		c.BanDuration = time.Minute
	})
	violate := func() response {
		var r response
		for i := 0; i < 10; i++ {
			r = n.do("GET", anonPath, "", nil)
			if r.Status == 403 {
				return r
			}
			time.Sleep(5 * time.Millisecond)
		}
		return r
	}
	r := violate()
	if r.Status != 403 || r.code() != "banned" {
		t.Fatalf("after repeated violations: %d %s", r.Status, r.Raw)
	}
	first, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	if first < 50 || first > 60 {
		t.Fatalf("first ban lasts BAN_DURATION (60 s): Retry-After %d", first)
	}
	// Refused before any other work: even the login endpoint.
	if r := n.do("POST", "/api/auth/login", "", map[string]string{"username": "x", "password": "y"}); r.code() != "banned" {
		t.Fatalf("a banned client reached login: %s", r.Raw)
	}
	// Survives a restart.
	n.restart()
	if r := n.do("GET", anonPath, "", nil); r.code() != "banned" {
		t.Fatalf("the ban did not survive a restart: %s", r.Raw)
	}
	// Expires by itself.
	n.clock.Advance(61 * time.Second)
	if r := n.do("GET", anonPath, "", nil); r.Status != 200 {
		t.Fatalf("after the ban: %d %s", r.Status, r.Raw)
	}
	// A repeat offender within a day gets twice as long.
	r = violate()
	second, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	if r.code() != "banned" || second < 110 || second > 120 {
		t.Fatalf("second ban: %s Retry-After %d, want ~120", r.code(), second)
	}
	if !strings.Contains(n.audit.String(), `"msg":"ban.added"`) {
		t.Fatal("bans must be audited")
	}
}

func TestBansForAuthAndSignatureFailures(t *testing.T) {
	n := startNode(t, func(c *daemon.Config) { c.BanAfterAuthFailures = 3; c.BanAfterSigFailures = 3 })
	n.register("alice", "password-alice")
	for i := 0; i < 3; i++ {
		n.do("POST", "/api/auth/login", "", map[string]string{"username": "alice", "password": "wrong-password"})
	}
	if r := n.do("GET", anonPath, "", nil); r.code() != "banned" {
		t.Fatalf("after 3 failed logins: %s", r.Raw)
	}

	s := startNode(t, func(c *daemon.Config) { c.BanAfterSigFailures = 3 })
	s.user("bob")
	m := newPeer(t)
	body := marshal(m.envelope(s, "mallory", "bob@"+s.srv.Domain(), "x")) // before this client is banned
	for i := 0; i < 3; i++ {
		if r := m.post(s, body, time.Now(), func(r *http.Request) { r.Header.Set("Digest", "SHA-256=AAAA") }); r.code() != "digest_mismatch" {
			t.Fatalf("bad digest %d: %s", i, r.Raw)
		}
	}
	if r := m.post(s, body, time.Now(), nil); r.code() != "banned" {
		t.Fatalf("after 3 bad signatures: %d %s", r.Status, r.Raw)
	}
}

func TestAdminBans(t *testing.T) {
	n := startNode(t)
	root := n.admin("root")
	for _, tt := range []struct {
		body   map[string]any
		status int
		field  string
	}{
		{map[string]any{"key": "203.0.113.9", "duration": "1h", "reason": "spam"}, 201, ""},
		{map[string]any{"key": "2001:db8:7:7::1"}, 201, ""},
		{map[string]any{"key": "10.0.0.0/8"}, 400, "key"},
		{map[string]any{"key": "203.0.113.10", "duration": "forever"}, 400, "duration"},
	} {
		r := n.do("POST", "/api/admin/bans", root, tt.body)
		if r.Status != tt.status || r.field() != tt.field {
			t.Fatalf("ban %v: %d %s", tt.body, r.Status, r.Raw)
		}
	}
	r := n.do("GET", "/api/admin/bans", root, nil)
	bans := r.Body["bans"].([]any)
	if len(bans) != 2 {
		t.Fatalf("bans: %s", r.Raw)
	}
	keys := map[string]bool{}
	for _, b := range bans {
		keys[b.(map[string]any)["key"].(string)] = b.(map[string]any)["active"].(bool)
	}
	if !keys["203.0.113.9"] || !keys["2001:db8:7:7::/64"] {
		t.Fatalf("listed: %v", keys)
	}
	if r := n.do("DELETE", "/api/admin/bans?key=2001:db8:7:7::5", root, nil); r.Status != 204 {
		t.Fatalf("unban by any address of the /64: %d %s", r.Status, r.Raw)
	}
	if r := n.do("GET", "/api/admin/bans", root, nil); len(r.Body["bans"].([]any)) != 1 {
		t.Fatalf("after unban: %s", r.Raw)
	}
	// Banning the loopback address bans this very client, admin or not.
	n.do("POST", "/api/admin/bans", root, map[string]any{"key": "127.0.0.1", "duration": "1m"})
	if r := n.do("GET", "/api/me", root, nil); r.code() != "banned" {
		t.Fatalf("a banned admin still got through: %s", r.Raw)
	}
}

// anonPath is a route that needs no login, counted in the api_anon class.
// (/healthz, /readyz and /metrics are limited in process, in their own
// classes.)
const anonPath = federation.WellKnownPath
