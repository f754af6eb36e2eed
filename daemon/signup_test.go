package daemon_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fednode/fednode/client"
	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/internal/vaulttest"
)

func creds(user string) map[string]string {
	return map[string]string{"username": user, "password": "password-" + user}
}

func withInvite(user, code string) map[string]string {
	m := creds(user)
	m["invite"] = code
	return m
}

func TestRegistrationClosed(t *testing.T) {
	n := startNode(t, func(c *daemon.Config) { c.RegistrationMode = "closed" })
	r := n.do("POST", "/api/auth/register", "", withInvite("alice", strings.Repeat("a", 26)))
	if r.Status != 403 || r.code() != "registration_closed" {
		t.Fatalf("register on a closed node: %d %s", r.Status, r.Raw)
	}
}

// inviteNode is a node in invite mode with an admin, root, made the way an
// operator makes the first account: an invite issued offline.
func inviteNode(t *testing.T, opts ...any) (*testNode, string) {
	t.Helper()
	n := startNode(t, append([]any{func(c *daemon.Config) { c.RegistrationMode = "invite" }}, opts...)...)
	if err := n.srv.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []time.Duration{30 * time.Second, 91 * 24 * time.Hour} { // the API's bounds hold offline too
		if _, err := daemon.CreateInvite(context.Background(), n.cfg, ttl); err == nil {
			t.Fatalf("an offline invite valid for %s was made; the API refuses that lifetime", ttl)
		}
	}
	inv, err := daemon.CreateInvite(context.Background(), n.cfg, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	n.srv = nil
	n.open()
	if r := n.do("POST", "/api/auth/register", "", withInvite("root", inv.Code)); r.Status != 201 {
		t.Fatalf("the first account with an offline invite: %d %s", r.Status, r.Raw)
	}
	n.promote("root")
	return n, n.login("root", "password-root")
}

func TestRegistrationByInvite(t *testing.T) {
	n, root := inviteNode(t)
	ctx := context.Background()
	admin := n.api(root)

	for name, tc := range map[string]struct {
		body map[string]string
		code string
	}{
		"no invite":            {creds("carol"), "invite_required"},
		"unknown invite":       {withInvite("carol", strings.Repeat("a", 26)), "invite_invalid"},
		"malformed invite":     {withInvite("carol", "../../x"), "invite_invalid"},
		"empty invite":         {withInvite("carol", ""), "invite_required"},
		"bad name, no invite":  {creds("no spaces"), "invite_required"},
		"bad name with invite": {withInvite("no spaces", strings.Repeat("a", 26)), "invalid_username"},
	} {
		t.Run(name, func(t *testing.T) {
			r := n.do("POST", "/api/auth/register", "", tc.body)
			if r.Status/100 != 4 || r.code() != tc.code {
				t.Fatalf("got %d %s, want %s", r.Status, r.Raw, tc.code)
			}
		})
	}

	invites, err := admin.CreateInvites(ctx, 2, "1h")
	if err != nil || len(invites) != 2 || invites[0].State != "unused" || invites[0].CreatedBy != "root" || invites[0].Code == invites[1].Code {
		t.Fatalf("CreateInvites = %+v, %v", invites, err)
	}
	// A code is read out and typed: case and spaces around it do not matter.
	if r := n.do("POST", "/api/auth/register", "", withInvite("Carol", " "+strings.ToUpper(invites[0].Code)+" ")); r.Status != 201 {
		t.Fatalf("register with an invite: %d %s", r.Status, r.Raw)
	}
	carol := n.login("carol", "password-Carol")
	if _, err := n.api(carol).CreateInvites(ctx, 1, ""); apiCode(err) != "forbidden" {
		t.Fatalf("a user made invites: %v", err)
	}
	if r := n.do("POST", "/api/auth/register", "", withInvite("dave", invites[0].Code)); r.Status != 403 || r.code() != "invite_used" || r.field() != "invite" {
		t.Fatalf("a used invite again: %d %s", r.Status, r.Raw)
	}
	// A registration refused for its name does not spend the invite.
	if r := n.do("POST", "/api/auth/register", "", withInvite("CAROL", invites[1].Code)); r.code() != "username_taken" {
		t.Fatalf("a taken name with an invite: %s", r.Raw)
	}
	list, err := admin.Invites(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]client.Invite{}
	for _, inv := range list {
		states[inv.Code] = inv
	}
	if got := states[invites[0].Code]; got.State != "used" || got.UsedBy != "carol" || got.UsedAt == "" {
		t.Fatalf("the used invite is listed as %+v", got)
	}
	if got := states[invites[1].Code]; got.State != "unused" {
		t.Fatalf("the invite refused with a taken name is listed as %+v", got)
	}

	// Revoked: unknown from then on.
	if err := admin.RevokeInvite(ctx, invites[1].Code); err != nil {
		t.Fatal(err)
	}
	if err := admin.RevokeInvite(ctx, invites[1].Code); apiCode(err) != "not_found" {
		t.Fatalf("revoking twice: %v", err)
	}
	if r := n.do("POST", "/api/auth/register", "", withInvite("erin", invites[1].Code)); r.code() != "invite_invalid" {
		t.Fatalf("a revoked invite: %s", r.Raw)
	}

	// Expired: refused, and listed as such.
	short, err := admin.CreateInvites(ctx, 1, "1m")
	if err != nil {
		t.Fatal(err)
	}
	n.clock.Advance(61 * time.Second)
	if r := n.do("POST", "/api/auth/register", "", withInvite("erin", short[0].Code)); r.Status != 403 || r.code() != "invite_expired" {
		t.Fatalf("an expired invite: %d %s", r.Status, r.Raw)
	}
	list, _ = admin.Invites(ctx)
	if last := list[len(list)-1]; last.Code != short[0].Code || last.State != "expired" {
		t.Fatalf("the expired invite is listed as %+v", last)
	}

	for name, body := range map[string]any{
		"count 0":           map[string]any{"count": 0},
		"count 101":         map[string]any{"count": 101},
		"expiry not a time": map[string]any{"expires_in": "soon"},
		"expiry too long":   map[string]any{"expires_in": "9000h"},
	} {
		if r := n.do("POST", "/api/admin/invites", root, body); r.Status != 400 || r.code() != "invalid_request" {
			t.Errorf("%s: %d %s", name, r.Status, r.Raw)
		}
	}

	audit := n.audit.String()
	for _, ev := range []string{`"msg":"invite.created"`, `"msg":"invite.used"`, `"msg":"invite.revoked"`} {
		if !strings.Contains(audit, ev) {
			t.Errorf("the audit stream has no %s", ev)
		}
	}
}

func apiCode(err error) string {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// TestInviteUsedOnceAcrossReplicas: registrations racing for one code on
// two replicas sharing Redis make one account.
func TestInviteUsedOnceAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	inviteMode := func(c *daemon.Config) { c.RegistrationMode = "invite" }
	r1, root := inviteNode(t, onRedis(srv.URL(), false))
	r2 := startNode(t, onRedis(srv.URL(), false), inviteMode)
	invites, err := r1.api(root).CreateInvites(context.Background(), 1, "")
	if err != nil {
		t.Fatal(err)
	}
	const racers = 8
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := []*testNode{r1, r2}[i%2]
			errs[i] = n.api("").RegisterWithInvite(context.Background(), "racer"+string(rune('a'+i)), "password-racer", invites[0].Code)
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case apiCode(err) != "invite_used":
			t.Errorf("racer %d: %v, want invite_used", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d registrations with one invite succeeded, want 1", won)
	}
}

// solve gets a challenge from n and solves it.
func solve(t *testing.T, n *testNode) string {
	t.Helper()
	ch, err := n.api("").Challenge(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s, err := client.Solve(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func login(user, password, solution string) map[string]string {
	m := map[string]string{"username": user, "password": password}
	if solution != "" {
		m["challenge"] = solution
	}
	return m
}

func TestLoginChallenge(t *testing.T) {
	n := startNode(t, func(c *daemon.Config) {
		c.ChallengeAfterLoginFailures, c.LoginMaxFailures, c.ChallengeMaxNumber = 3, 20, 5000
	})
	n.register("alice", "password-alice")
	n.register("bob", "password-bob")
	if r := n.do("POST", "/api/auth/login", "", login("alice", "password-alice", "")); r.Status != 200 {
		t.Fatalf("no failures, no challenge: %s", r.Raw)
	}
	for range 3 {
		if r := n.do("POST", "/api/auth/login", "", login("alice", "wrong-password", "")); r.code() != "invalid_credentials" {
			t.Fatalf("a wrong password: %s", r.Raw)
		}
	}
	r := n.do("POST", "/api/auth/login", "", login("alice", "password-alice", ""))
	if r.Status != 403 || r.code() != "challenge_required" || r.field() != "challenge" || !strings.Contains(r.Raw, "GET /api/auth/challenge") {
		t.Fatalf("after 3 failures without a solution: %d %s", r.Status, r.Raw)
	}
	// The challenge is ALTCHA's shape.
	ch := n.do("GET", "/api/auth/challenge", "", nil)
	if ch.Status != 200 || ch.Body["algorithm"] != "SHA-256" || ch.Body["maxnumber"] != float64(5000) || ch.Body["salt"] == "" || len(ch.Body["signature"].(string)) != 64 {
		t.Fatalf("challenge: %d %s", ch.Status, ch.Raw)
	}

	good := solve(t, n)
	if r := n.do("POST", "/api/auth/login", "", login("alice", "password-alice", good)); r.Status != 200 {
		t.Fatalf("a correct solution: %d %s", r.Status, r.Raw)
	}
	// The name's failures are cleared by the login, the client's are not:
	// still required, and a solution is good once.
	if r := n.do("POST", "/api/auth/login", "", login("alice", "password-alice", good)); r.code() != "challenge_invalid" || !strings.Contains(r.Raw, "already been used") {
		t.Fatalf("a reused solution: %d %s", r.Status, r.Raw)
	}
	// From the same client, another name needs one too.
	if r := n.do("POST", "/api/auth/login", "", login("bob", "password-bob", "")); r.code() != "challenge_required" {
		t.Fatalf("another name from a failing client: %s", r.Raw)
	}

	forged := func(solution string, edit func(map[string]any)) string {
		raw, _ := base64.StdEncoding.DecodeString(solution)
		var m map[string]any
		json.Unmarshal(raw, &m)
		edit(m)
		b, _ := json.Marshal(m)
		return base64.StdEncoding.EncodeToString(b)
	}
	fresh := solve(t, n)
	for name, tc := range map[string]struct{ solution, says string }{
		"garbage":         {"not-a-solution", "does not parse"},
		"wrong number":    {forged(fresh, func(m map[string]any) { m["number"] = m["number"].(float64) + 1 }), "does not solve"},
		"forged":          {forged(fresh, func(m map[string]any) { m["signature"] = strings.Repeat("0", 64) }), "not issued by this node"},
		"edited salt":     {forged(fresh, func(m map[string]any) { m["salt"] = strings.Replace(m["salt"].(string), "expires=", "expires=9", 1) }), "not issued by this node"},
		"unknown member":  {forged(fresh, func(m map[string]any) { m["extra"] = 1 }), "does not parse"},
		"another's token": {"eyJhbGciOiJIUzI1NiJ9", "does not parse"},
	} {
		t.Run(name, func(t *testing.T) {
			r := n.do("POST", "/api/auth/login", "", login("bob", "password-bob", tc.solution))
			if r.Status != 403 || r.code() != "challenge_invalid" || !strings.Contains(r.Raw, tc.says) {
				t.Fatalf("got %d %s, want challenge_invalid saying %q", r.Status, r.Raw, tc.says)
			}
		})
	}
	// The refusals spent nothing: the untouched solution still works.
	if r := n.do("POST", "/api/auth/login", "", login("bob", "password-bob", fresh)); r.Status != 200 {
		t.Fatalf("the untouched solution after the forgeries: %d %s", r.Status, r.Raw)
	}
	// Expired.
	late := solve(t, n)
	n.clock.Advance(5*time.Minute + time.Second)
	if r := n.do("POST", "/api/auth/login", "", login("bob", "password-bob", late)); r.code() != "challenge_invalid" || !strings.Contains(r.Raw, "expired") {
		t.Fatalf("an expired solution: %d %s", r.Status, r.Raw)
	}
	// The Go client solves it when asked.
	c := n.api("")
	if _, err := c.Login(context.Background(), "bob", "password-bob"); err != nil || c.Token == "" {
		t.Fatalf("client.Login with a challenge required: %v", err)
	}
	// Once the client's failures leave the window, no more challenges.
	n.clock.Advance(15 * time.Minute)
	if r := n.do("POST", "/api/auth/login", "", login("bob", "password-bob", "")); r.Status != 200 {
		t.Fatalf("after the window: %d %s", r.Status, r.Raw)
	}
	audit := n.audit.String()
	for _, ev := range []string{`"msg":"challenge.required"`, `"msg":"challenge.failed"`} {
		if !strings.Contains(audit, ev) {
			t.Errorf("the audit stream has no %s", ev)
		}
	}
}

func TestRegistrationChallenge(t *testing.T) {
	n := startNode(t, func(c *daemon.Config) { c.ChallengeAfterRegistrations, c.ChallengeMaxNumber = 2, 5000 })
	for _, u := range []string{"a1", "a2"} {
		if r := n.do("POST", "/api/auth/register", "", creds(u)); r.Status != 201 {
			t.Fatalf("registration %s: %d %s", u, r.Status, r.Raw)
		}
	}
	if r := n.do("POST", "/api/auth/register", "", creds("a3")); r.Status != 403 || r.code() != "challenge_required" {
		t.Fatalf("a third registration within the hour: %d %s", r.Status, r.Raw)
	}
	body := creds("a3")
	body["challenge"] = solve(t, n)
	if r := n.do("POST", "/api/auth/register", "", body); r.Status != 201 {
		t.Fatalf("with a solution: %d %s", r.Status, r.Raw)
	}
	if r := n.do("POST", "/api/auth/register", "", map[string]string{"username": "a4", "password": "password-a4", "challenge": body["challenge"]}); r.code() != "challenge_invalid" {
		t.Fatalf("a solution used for a second registration: %s", r.Raw)
	}
	n.register("a5", "password-a5") // the Go client solves it
	n.clock.Advance(time.Hour + time.Second)
	if r := n.do("POST", "/api/auth/register", "", creds("a6")); r.Status != 201 {
		t.Fatalf("an hour later: %d %s", r.Status, r.Raw)
	}
}

// TestChallengeSpentOnceAcrossReplicas: a solution spent on one replica is
// refused on the other; a challenge from one is good on the other.
func TestChallengeSpentOnceAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	always := func(c *daemon.Config) { c.ChallengeAfterLoginFailures, c.ChallengeMaxNumber = 0, 5000 }
	r1, r2 := startNode(t, onRedis(srv.URL(), false), always), startNode(t, onRedis(srv.URL(), false), always)
	r1.register("alice", "password-alice")
	s := solve(t, r1)
	if r := r2.do("POST", "/api/auth/login", "", login("alice", "password-alice", s)); r.Status != 200 {
		t.Fatalf("a challenge of replica 1 on replica 2: %d %s", r.Status, r.Raw)
	}
	if r := r1.do("POST", "/api/auth/login", "", login("alice", "password-alice", s)); r.code() != "challenge_invalid" {
		t.Fatalf("the same solution again on replica 1: %s", r.Raw)
	}
}

// TestChallengeSurvivesJWTSecretRotation: the challenge key follows the
// JWT secret in Vault; a challenge issued before a rotation is still good
// after it, and new ones name the new version.
func TestChallengeSurvivesJWTSecretRotation(t *testing.T) {
	v := vaulttest.Start(t)
	n := startNode(t, func(c *daemon.Config) { // local keys: only the JWT secret in Vault
		c.VaultAddr, c.VaultKeyPrefix, c.JWTSecret, c.JWTSecretVaultPath = v.Addr, "powjwt", "", "powjwt/jwt"
		c.VaultToken = nodeToken(t, v, *c, "4h")
		c.JWTRotationOverlap, c.ChallengeAfterLoginFailures, c.ChallengeMaxNumber = time.Hour, 0, 5000
	})
	root := n.admin("root") // the client solves the challenge
	before := solve(t, n)
	if r := n.do("POST", "/api/admin/jwt/rotate", root, nil); r.Status != 200 {
		t.Fatalf("rotate: %s", r.Raw)
	}
	if r := n.do("POST", "/api/auth/login", "", login("root", "password-root", before)); r.Status != 200 {
		t.Fatalf("a challenge issued before the rotation, used after it: %d %s", r.Status, r.Raw)
	}
	ch, err := n.api("").Challenge(context.Background())
	if err != nil || !strings.Contains(ch.Salt, "kid=v2&") {
		t.Fatalf("a challenge after the rotation: %+v %v", ch, err)
	}
}
