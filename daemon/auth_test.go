package daemon_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode/daemon"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

func TestTokensRefused(t *testing.T) {
	n := startNode(t)
	good := n.user("alice")
	me := n.do("GET", "/api/me", good, nil)
	if me.Status != 200 {
		t.Fatalf("good token refused: %s", me.Raw)
	}
	jti := me.Body["session"].(string)
	now := n.clock.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": n.srv.Domain(), "sub": "alice", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": jti}
		mod(c)
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	secret := []byte(testSecret)
	same := func(jwt.MapClaims) {}
	if sign(jwt.SigningMethodHS256, secret, claims(same)) == "" {
		t.Fatal("cannot forge")
	}
	// A well-formed forgery with the right key works: the refusals below are
	// about what differs, not about our test tokens being broken.
	if r := n.do("GET", "/api/me", sign(jwt.SigningMethodHS256, secret, claims(same)), nil); r.Status != 200 {
		t.Fatalf("control token refused: %s", r.Raw)
	}
	none := sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(same))
	tests := map[string]string{
		"alg none":         none,
		"other algorithm":  sign(jwt.SigningMethodHS512, secret, claims(same)),
		"bad signature":    sign(jwt.SigningMethodHS256, []byte("another-secret-another-secret-000"), claims(same)),
		"missing exp":      sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "exp") })),
		"past exp":         sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })),
		"missing iat":      sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "iat") })),
		"iat in future":    sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() })),
		"missing jti":      sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "jti") })),
		"unknown jti":      sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["jti"] = "01ARZ3NDEKTSV4RRFFQ69G5FAV" })),
		"jti of another":   sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["sub"] = "bob" })),
		"wrong issuer":     sign(jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["iss"] = "other.example" })),
		"garbage":          "not.a.token",
		"empty":            "",
		"oversized":        strings.Repeat("a", 5000),
		"tampered payload": strings.Replace(good, ".", ".x", 1),
	}
	for name, tok := range tests {
		t.Run(name, func(t *testing.T) {
			r := n.do("GET", "/api/me", tok, nil)
			if r.Status != 401 || r.code() != "unauthorized" || r.Header.Get("WWW-Authenticate") == "" {
				t.Fatalf("got %d %s", r.Status, r.Raw)
			}
		})
	}
	t.Run("revoked jti", func(t *testing.T) {
		if r := n.do("POST", "/api/auth/logout", good, nil); r.Status != 204 {
			t.Fatalf("logout: %d %s", r.Status, r.Raw)
		}
		for _, path := range []string{"/api/me", "/api/messages"} {
			if r := n.do("GET", path, good, nil); r.Status != 401 {
				t.Fatalf("revoked token on %s: %d", path, r.Status)
			}
		}
	})
	t.Run("expired by the clock", func(t *testing.T) {
		tok := n.login("alice", "password-alice")
		n.clock.Advance(25 * time.Hour)
		defer n.clock.Advance(-25 * time.Hour)
		if r := n.do("GET", "/api/me", tok, nil); r.Status != 401 {
			t.Fatalf("token past JWT_EXPIRATION_HOURS: %d", r.Status)
		}
	})
}

func TestLockout(t *testing.T) {
	n := startNode(t)
	n.register("alice", "password-alice")
	try := func(user, pw string) response {
		return n.do("POST", "/api/auth/login", "", map[string]string{"username": user, "password": pw})
	}
	for _, user := range []string{"alice", "ghost"} { // existing and not: same answers
		for i := 0; i < 5; i++ {
			if r := try(user, "wrong-password"); r.Status != 401 || r.code() != "invalid_credentials" {
				t.Fatalf("%s failure %d: %d %s", user, i+1, r.Status, r.Raw)
			}
		}
		r := try(user, "password-alice")
		if r.Status != http.StatusTooManyRequests || r.code() != "account_locked" {
			t.Fatalf("%s sixth attempt (right password for alice): %d %s", user, r.Status, r.Raw)
		}
		secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || secs < 1 || secs > 15*60 {
			t.Fatalf("%s Retry-After = %q", user, r.Header.Get("Retry-After"))
		}
	}
	// Another account is not affected.
	n.register("bob", "password-bob")
	if r := try("bob", "password-bob"); r.Status != 200 {
		t.Fatalf("bob locked by alice's failures: %s", r.Raw)
	}
	// The window passes: alice can log in again, and success clears the count.
	n.clock.Advance(15*time.Minute + time.Second)
	if r := try("alice", "password-alice"); r.Status != 200 {
		t.Fatalf("after the window: %d %s", r.Status, r.Raw)
	}
	for i := 0; i < 4; i++ {
		try("alice", "wrong-password")
	}
	if r := try("alice", "password-alice"); r.Status != 200 {
		t.Fatalf("four failures after a cleared count must not lock: %d", r.Status)
	}
	audit := n.audit.String()
	for _, ev := range []string{`"msg":"login.failure"`, `"msg":"login.locked"`, `"msg":"login.success"`, `"msg":"register"`} {
		if !strings.Contains(audit, ev) {
			t.Errorf("audit stream lacks %s", ev)
		}
	}
	if strings.Contains(audit, "password-alice") || strings.Contains(audit, "wrong-password") {
		t.Error("a password reached the audit stream")
	}
}

func TestLockoutIsConfigurable(t *testing.T) {
	n := startNode(t, func(c *daemon.Config) { c.LoginMaxFailures = 2; c.LoginFailureWindow = time.Minute })
	n.register("alice", "password-alice")
	for i := 0; i < 2; i++ {
		n.do("POST", "/api/auth/login", "", map[string]string{"username": "alice", "password": "bad-password"})
	}
	r := n.do("POST", "/api/auth/login", "", map[string]string{"username": "alice", "password": "password-alice"})
	if r.code() != "account_locked" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("after 2 failures with LOGIN_MAX_FAILURES=2: %s", r.Raw)
	}
	if secs, _ := strconv.Atoi(r.Header.Get("Retry-After")); secs > 60 {
		t.Fatalf("Retry-After %d beyond a 1 minute window", secs)
	}
}

func TestSessions(t *testing.T) {
	n := startNode(t, func(c *daemon.Config) { c.MaxSessionsPerUser = 2 })
	n.register("alice", "password-alice")
	t1 := n.login("alice", "password-alice")
	n.clock.Advance(time.Second)
	t2 := n.login("alice", "password-alice")
	ws1 := dialWS(t, n, t1, "")
	n.clock.Advance(time.Second)
	t3 := n.login("alice", "password-alice") // evicts t1, the oldest
	if r := n.do("GET", "/api/me", t1, nil); r.Status != 401 {
		t.Fatalf("oldest session beyond the limit must be evicted: %d", r.Status)
	}
	expectClosed(t, ws1, websocket.ClosePolicyViolation)
	for _, tok := range []string{t2, t3} {
		if r := n.do("GET", "/api/me", tok, nil); r.Status != 200 {
			t.Fatalf("newer sessions must live: %s", r.Raw)
		}
	}

	// Password change revokes all, including the one that asked.
	ws3 := dialWS(t, n, t3, "")
	r := n.do("POST", "/api/auth/password", t3, map[string]string{"current_password": "wrong-one", "new_password": "new-password"})
	if r.Status != 401 || r.field() != "current_password" {
		t.Fatalf("wrong current password: %s", r.Raw)
	}
	r = n.do("POST", "/api/auth/password", t3, map[string]string{"current_password": "password-alice", "new_password": "short"})
	if r.Status != 400 || r.field() != "new_password" {
		t.Fatalf("short new password: %s", r.Raw)
	}
	if r := n.do("POST", "/api/auth/password", t3, map[string]string{"current_password": "password-alice", "new_password": "new-password"}); r.Status != 204 {
		t.Fatalf("password change: %d %s", r.Status, r.Raw)
	}
	for _, tok := range []string{t2, t3} {
		if r := n.do("GET", "/api/me", tok, nil); r.Status != 401 {
			t.Fatal("password change must revoke every session")
		}
	}
	expectClosed(t, ws3, websocket.ClosePolicyViolation)
	if r := n.do("POST", "/api/auth/login", "", map[string]string{"username": "alice", "password": "password-alice"}); r.Status != 401 {
		t.Fatal("old password still works")
	}
	n.login("alice", "new-password")
}

func TestAdminRevokesEverySession(t *testing.T) {
	n := startNode(t)
	admin := n.user("root")
	bob := n.user("bob")
	if r := n.do("POST", "/api/admin/sessions/revoke-all", admin, nil); r.Status != 403 {
		t.Fatalf("before promotion: %d", r.Status)
	}
	// The first admin is made offline, with the node stopped.
	n.srv.Close()
	if err := daemon.Promote(t.Context(), n.cfg, "ROOT"); err != nil {
		t.Fatal(err)
	}
	if err := daemon.Promote(t.Context(), n.cfg, "nobody"); err == nil {
		t.Fatal("promoting an unknown user must fail")
	}
	n.srv = nil
	n.open()
	live := dialWS(t, n, bob, "")
	r := n.do("POST", "/api/admin/sessions/revoke-all", admin, nil)
	if r.Status != 200 || r.Body["revoked"].(float64) != 2 {
		t.Fatalf("revoke-all: %d %s", r.Status, r.Raw)
	}
	for _, tok := range []string{admin, bob} {
		if r := n.do("GET", "/api/me", tok, nil); r.Status != 401 {
			t.Fatal("a session survived revoke-all")
		}
	}
	expectClosed(t, live, websocket.ClosePolicyViolation)
	if !strings.Contains(n.audit.String(), "sessions.revoked_all") {
		t.Fatal("revoke-all must be audited")
	}
}

func expectClosed(t *testing.T, c *websocket.Conn, code int) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, code) {
			t.Fatalf("socket ended with %v, want close code %d", err, code)
		}
		return
	}
}
