package daemon_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fednode/fednode/internal/redistest"
)

// usernames lists the names of a GET /api/admin/users answer.
func usernames(r response) []string {
	out := []string{}
	users, _ := r.Body["users"].([]any)
	for _, u := range users {
		out = append(out, u.(map[string]any)["username"].(string))
	}
	return out
}

func TestAdminListsAndShowsUsers(t *testing.T) {
	n := startNode(t)
	root := n.user("root")
	for _, u := range []string{"alice", "Bob", "malice", "carol"} {
		n.register(u, "password-"+u)
	}
	if r := n.do("GET", "/api/admin/users", root, nil); r.Status != http.StatusForbidden || r.code() != "forbidden" {
		t.Fatalf("a non-admin lists users: %d %s", r.Status, r.Raw)
	}
	n.promote("root")
	root = n.login("root", "password-root")

	for _, c := range []struct {
		query string
		want  string
		next  string
	}{
		{"", "[alice Bob carol malice root]", ""},
		{"?limit=2", "[alice Bob]", "bob"},
		{"?limit=2&after=bob", "[carol malice]", "malice"},
		{"?limit=2&after=malice", "[root]", ""},
		{"?prefix=MA", "[malice]", ""},
		{"?q=lic", "[alice malice]", ""},
		{"?role=admin", "[root]", ""},
	} {
		r := n.do("GET", "/api/admin/users"+c.query, root, nil)
		if got := strings.Join(usernames(r), " "); r.Status != 200 || "["+got+"]" != c.want || r.Body["next"] != c.next {
			t.Errorf("GET /api/admin/users%s = %d %s; want %s next %q", c.query, r.Status, r.Raw, c.want, c.next)
		}
	}
	for _, q := range []string{"?limit=0", "?limit=201", "?limit=x", "?after=a%20b", "?prefix=*", "?q=" + strings.Repeat("a", 65), "?role=owner"} {
		if r := n.do("GET", "/api/admin/users"+q, root, nil); r.Status != 400 || r.code() != "invalid_parameter" {
			t.Errorf("GET /api/admin/users%s = %d %s; want 400 invalid_parameter", q, r.Status, r.Raw)
		}
	}
	r := n.do("GET", "/api/admin/users/BOB", root, nil)
	if r.Status != 200 || r.Body["username"] != "Bob" || r.Body["address"] != "bob@"+n.srv.Domain() || r.Body["role"] != "user" ||
		r.Body["suspended"] != false || r.Body["locked"] != false || !rfc3339UTC.MatchString(r.Body["created_at"].(string)) {
		t.Fatalf("show Bob: %d %s", r.Status, r.Raw)
	}
	for _, name := range []string{"nobody", "not%20a%20name"} {
		if r := n.do("GET", "/api/admin/users/"+name, root, nil); r.Status != 404 || r.code() != "not_found" {
			t.Errorf("show %s: %d %s; want 404 not_found", name, r.Status, r.Raw)
		}
	}
}

func TestAdminSuspendsAUser(t *testing.T) {
	n := startNode(t)
	root := n.admin("root")
	alice, bob := n.user("alice"), n.user("bob")
	bob2 := n.login("bob", "password-bob")
	live := dialWS(t, n, bob, "")
	if r := n.do("GET", "/api/me", bob2, nil); r.Status != 200 { // now in the token cache
		t.Fatal(r.Raw)
	}
	if r := n.do("POST", "/api/admin/users/bob/suspend", alice, map[string]string{"reason": "x"}); r.Status != 403 {
		t.Fatalf("a non-admin suspends: %d %s", r.Status, r.Raw)
	}

	r := n.do("POST", "/api/admin/users/bob/suspend", root, map[string]string{"reason": "spam"})
	if r.Status != 200 || r.Body["suspended"] != true || r.Body["suspend_reason"] != "spam" || r.Body["suspended_by"] != "root" ||
		!rfc3339UTC.MatchString(r.Body["suspended_at"].(string)) {
		t.Fatalf("suspend: %d %s", r.Status, r.Raw)
	}
	// At once: every token refused, the socket closed.
	for _, tok := range []string{bob, bob2} {
		if r := n.do("GET", "/api/me", tok, nil); r.Status != 401 {
			t.Fatalf("a suspended user's token: %d %s", r.Status, r.Raw)
		}
	}
	expectClosed(t, live, websocket.ClosePolicyViolation)
	// Login: refused with its code only to who knows the password.
	login := func(pw string) response {
		return n.do("POST", "/api/auth/login", "", map[string]string{"username": "bob", "password": pw})
	}
	if r := login("password-bob"); r.Status != 403 || r.code() != "account_suspended" || !strings.Contains(r.Raw, "spam") {
		t.Fatalf("login while suspended: %d %s", r.Status, r.Raw)
	}
	if r := login("wrong-password"); r.Status != 401 || r.code() != "invalid_credentials" {
		t.Fatalf("a wrong password while suspended: %d %s", r.Status, r.Raw)
	}
	// Messages to them are refused.
	if r := n.do("POST", "/api/messages", alice, map[string]string{"to": "bob", "content": "hi"}); r.Status != 422 || r.code() != "recipient_suspended" || r.field() != "to" {
		t.Fatalf("send to a suspended user: %d %s", r.Status, r.Raw)
	}
	if r := n.do("GET", "/api/admin/users?q=bob", root, nil); !strings.Contains(r.Raw, `"suspended":true`) {
		t.Fatalf("the list must show the suspension: %s", r.Raw)
	}
	// Refusals: yourself, no one, a reason too long, a body not JSON.
	for _, c := range []struct {
		path   string
		body   any
		status int
		code   string
	}{
		{"/api/admin/users/ROOT/suspend", nil, 409, "conflict"},
		{"/api/admin/users/nobody/suspend", nil, 404, "not_found"},
		{"/api/admin/users/alice/suspend", map[string]string{"reason": strings.Repeat("x", 501)}, 400, "invalid_request"},
		{"/api/admin/users/alice/suspend", map[string]string{"why": "x"}, 400, "unknown_field"},
		{"/api/admin/users/nobody/unsuspend", nil, 404, "not_found"},
	} {
		if r := n.do("POST", c.path, root, c.body); r.Status != c.status || r.code() != c.code {
			t.Errorf("POST %s %v: %d %s; want %d %s", c.path, c.body, r.Status, r.Raw, c.status, c.code)
		}
	}

	r = n.do("POST", "/api/admin/users/bob/unsuspend", root, nil)
	if r.Status != 200 || r.Body["suspended"] != false || r.Body["suspend_reason"] != nil {
		t.Fatalf("unsuspend: %d %s", r.Status, r.Raw)
	}
	if r := login("password-bob"); r.Status != 200 {
		t.Fatalf("login after unsuspension: %d %s", r.Status, r.Raw)
	}
	n.send(alice, "bob", "welcome back")
	audit := n.audit.String()
	for _, ev := range []string{`"msg":"user.suspended","user":"bob","by":"root"`, `"msg":"user.unsuspended","user":"bob","by":"root"`, `"msg":"login.suspended"`} {
		if !strings.Contains(audit, ev) {
			t.Errorf("audit stream lacks %s", ev)
		}
	}
}

func TestAdminLiftsALockout(t *testing.T) {
	n := startNode(t)
	root := n.admin("root")
	n.register("carol", "password-carol")
	login := func(pw string) response {
		return n.do("POST", "/api/auth/login", "", map[string]string{"username": "carol", "password": pw})
	}
	for i := 0; i < 5; i++ {
		login("wrong-password")
	}
	if r := login("password-carol"); r.code() != "account_locked" {
		t.Fatalf("not locked: %s", r.Raw)
	}
	if r := n.do("GET", "/api/admin/users/carol", root, nil); r.Body["locked"] != true || !rfc3339UTC.MatchString(r.Body["locked_until"].(string)) {
		t.Fatalf("show a locked user: %s", r.Raw)
	}
	if r := n.do("POST", "/api/admin/users/nobody/unlock", root, nil); r.Status != 404 {
		t.Fatalf("unlock nobody: %d", r.Status)
	}
	if r := n.do("POST", "/api/admin/users/carol/unlock", root, nil); r.Status != 200 || r.Body["locked"] != false {
		t.Fatalf("unlock: %d %s", r.Status, r.Raw)
	}
	if r := login("password-carol"); r.Status != 200 {
		t.Fatalf("login after unlock: %d %s", r.Status, r.Raw)
	}
	if !strings.Contains(n.audit.String(), `"msg":"user.unlocked","user":"carol","by":"root"`) {
		t.Error("unlock must be audited")
	}
}

func TestAdminGrantsAndRemovesTheAdminRole(t *testing.T) {
	n := startNode(t)
	root := n.admin("root")
	alice := n.user("alice")
	if r := n.do("GET", "/api/admin/users", alice, nil); r.Status != 403 { // alice's token is now cached as a user's
		t.Fatal(r.Raw)
	}
	role := func(tok, user, to string) response {
		return n.do("PUT", "/api/admin/users/"+user+"/role", tok, map[string]string{"role": to})
	}
	if r := role(root, "alice", "admin"); r.Status != 200 || r.Body["role"] != "admin" {
		t.Fatalf("grant: %d %s", r.Status, r.Raw)
	}
	if r := n.do("GET", "/api/admin/users", alice, nil); r.Status != 200 {
		t.Fatalf("the granted role must count at once, not after the token cache: %d %s", r.Status, r.Raw)
	}
	if r := role(alice, "root", "user"); r.Status != 200 || r.Body["role"] != "user" {
		t.Fatalf("remove: %d %s", r.Status, r.Raw)
	}
	if r := n.do("GET", "/api/admin/users", root, nil); r.Status != 403 {
		t.Fatalf("the removed role must count at once: %d %s", r.Status, r.Raw)
	}
	for _, c := range []struct {
		user, role string
		body       any
		status     int
		code       string
	}{
		{"alice", "", map[string]string{"role": "user"}, 409, "conflict"}, // the last admin
		{"nobody", "", map[string]string{"role": "admin"}, 404, "not_found"},
		{"root", "", map[string]string{"role": "owner"}, 400, "invalid_request"},
		{"root", "", map[string]string{}, 400, "missing_field"},
	} {
		r := n.do("PUT", "/api/admin/users/"+c.user+"/role", alice, c.body)
		if r.Status != c.status || r.code() != c.code {
			t.Errorf("PUT role of %s %v: %d %s; want %d %s", c.user, c.body, r.Status, r.Raw, c.status, c.code)
		}
	}
	// A suspended admin does not count as another admin.
	role(alice, "root", "admin")
	n.do("POST", "/api/admin/users/root/suspend", alice, nil)
	if r := role(alice, "alice", "user"); r.Status != 409 {
		t.Fatalf("demoting the last active admin: %d %s", r.Status, r.Raw)
	}
	audit := n.audit.String()
	for _, ev := range []string{`"msg":"user.role_granted","user":"alice","role":"admin","by":"root"`, `"msg":"user.role_removed","user":"root","role":"admin","by":"alice"`} {
		if !strings.Contains(audit, ev) {
			t.Errorf("audit stream lacks %s", ev)
		}
	}
}

func TestAdminDeletesAUser(t *testing.T) {
	n := startNode(t)
	root := n.admin("root")
	alice, bob := n.user("alice"), n.user("bob")
	shared := n.send(alice, "bob", "alice to bob")
	n.send(bob, "alice", "bob to alice")
	n.send(bob, "bob", "a note to self") // bob's alone: deleted with him
	live := dialWS(t, n, bob, "")

	if r := n.do("DELETE", "/api/admin/users/bob", alice, nil); r.Status != 403 {
		t.Fatalf("a non-admin deletes: %d", r.Status)
	}
	r := n.do("DELETE", "/api/admin/users/BOB", root, nil)
	if r.Status != 200 || r.Body["username"] != "bob" || r.Body["sessions_revoked"] != 1.0 || r.Body["messages_deleted"] != 1.0 {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	expectClosed(t, live, websocket.ClosePolicyViolation)
	if r := n.do("GET", "/api/me", bob, nil); r.Status != 401 {
		t.Fatalf("a deleted user's token: %d", r.Status)
	}
	if r := n.do("GET", "/api/admin/users/bob", root, nil); r.Status != 404 {
		t.Fatalf("show a deleted user: %d", r.Status)
	}
	if box := n.mailbox(alice); len(box) != 2 || box[0]["id"] != shared {
		t.Fatalf("alice keeps what she shared with bob: %v", box)
	}
	if r := n.do("POST", "/api/auth/register", "", map[string]string{"username": "Bob", "password": "password-impostor"}); r.Status != 409 || r.code() != "username_taken" {
		t.Fatalf("a deleted name must stay reserved: %d %s", r.Status, r.Raw)
	}
	if r := n.do("POST", "/api/messages", alice, map[string]string{"to": "bob", "content": "hi"}); r.code() != "unknown_recipient" {
		t.Fatalf("send to a deleted user: %s", r.Raw)
	}
	if r := n.do("DELETE", "/api/admin/users/bob", root, nil); r.Status != 404 {
		t.Fatalf("delete again: %d %s", r.Status, r.Raw)
	}
	if r := n.do("DELETE", "/api/admin/users/root", root, nil); r.Status != 409 || r.code() != "conflict" {
		t.Fatalf("delete yourself: %d %s", r.Status, r.Raw)
	}
	if !strings.Contains(n.audit.String(), `"msg":"user.deleted","user":"bob","by":"root"`) {
		t.Error("delete must be audited")
	}
}

// TestSuspendedRecipientRefusedOverFederation: a peer's delivery to a
// suspended user is refused per message with recipient_suspended, and the
// sending node fails it at once as a dead letter with that reason,
// without retrying it for days.
func TestSuspendedRecipientRefusedOverFederation(t *testing.T) {
	a, b := startNode(t), startNode(t) // default retry times: a retried message would not fail in time
	root := b.admin("root")
	b.user("bob")
	if r := b.do("POST", "/api/admin/users/bob/suspend", root, map[string]string{"reason": "abuse"}); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	// The inbox's answer, as any peer sees it.
	p := newPeer(t)
	r := p.post(b, marshal(p.envelope(b, "mallory", "bob@"+b.srv.Domain(), "hi")), time.Now(), nil)
	res := r.Body["results"].([]any)[0].(map[string]any)
	if r.Status != 200 || res["status"] != "refused" || res["code"] != "recipient_suspended" {
		t.Fatalf("inbox answer: %d %s", r.Status, r.Raw)
	}
	// A node's outbox.
	admin := a.admin("admin")
	alice := a.user("alice")
	id := a.send(alice, "bob@"+b.srv.Domain(), "are you there?")
	m := waitStatus(t, a, alice, id, "failed")
	if !strings.Contains(m["reason"].(string), "recipient_suspended") {
		t.Fatalf("reason: %v", m["reason"])
	}
	dead := a.do("GET", "/api/admin/outbox/dead", admin, nil)
	var body struct {
		Dead []struct {
			MessageID string `json:"message_id"`
			Reason    string `json:"reason"`
			Attempts  int    `json:"attempts"`
		} `json:"dead_letters"`
	}
	json.Unmarshal([]byte(dead.Raw), &body)
	if len(body.Dead) != 1 || body.Dead[0].MessageID != id || !strings.Contains(body.Dead[0].Reason, "recipient_suspended") || body.Dead[0].Attempts != 1 {
		t.Fatalf("dead letters: %s", dead.Raw)
	}
}

// TestReplicasSuspensionAndRoleAtOnce: a suspension on replica 1 refuses
// the user's token on replica 2 at once (though replica 2 had it cached)
// and closes their socket there; a role granted on 1 counts on 2 at once.
func TestReplicasSuspensionAndRoleAtOnce(t *testing.T) {
	srv := redistest.Start(t)
	r1, r2 := startNode(t, onRedis(srv.URL(), false)), startNode(t, onRedis(srv.URL(), false))
	root := r1.admin("root")
	bob, alice := r1.user("bob"), r1.user("alice")
	for _, tok := range []string{bob, alice} {
		if r := r2.do("GET", "/api/me", tok, nil); r.Status != 200 { // cached on replica 2
			t.Fatal(r.Raw)
		}
	}
	if r := r2.do("GET", "/api/admin/users", alice, nil); r.Status != 403 {
		t.Fatal(r.Raw)
	}
	live := dialWS(t, r2, bob, "")
	if r := r1.do("POST", "/api/admin/users/bob/suspend", root, nil); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	// The revocation event crosses Redis in milliseconds; replica 2's token
	// cache would otherwise believe the token for 5 s.
	start := time.Now()
	for r2.do("GET", "/api/me", bob, nil).Status != 401 {
		if time.Since(start) > time.Second {
			t.Fatal("replica 2 honours a suspended user's token")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("suspended on replica 1 -> refused on replica 2 after %v", time.Since(start))
	expectClosed(t, live, websocket.ClosePolicyViolation)
	if r := r2.do("POST", "/api/auth/login", "", map[string]string{"username": "bob", "password": "password-bob"}); r.code() != "account_suspended" {
		t.Fatalf("login on replica 2: %s", r.Raw)
	}
	if r := r1.do("PUT", "/api/admin/users/alice/role", root, map[string]string{"role": "admin"}); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	if r := r2.do("GET", "/api/admin/users", alice, nil); r.Status != 200 || !strings.Contains(r.Raw, `"suspended":true`) {
		t.Fatalf("replica 2 after the grant on replica 1: %d %s", r.Status, r.Raw)
	}
	if r := r1.do("PUT", "/api/admin/users/alice/role", root, map[string]string{"role": "user"}); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	if r := r2.do("GET", "/api/admin/users", alice, nil); r.Status != 403 {
		t.Fatalf("replica 2 after the removal on replica 1: %d %s", r.Status, r.Raw)
	}
}
