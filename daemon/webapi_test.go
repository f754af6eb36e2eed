package daemon_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode/daemon"
)

// convs decodes GET /api/conversations.
func convs(t *testing.T, n *testNode, token, query string) (list []map[string]any, next string) {
	t.Helper()
	r := n.do("GET", "/api/conversations"+query, token, nil)
	if r.Status != 200 {
		t.Fatalf("conversations: %d %s", r.Status, r.Raw)
	}
	for _, c := range r.Body["conversations"].([]any) {
		list = append(list, c.(map[string]any))
	}
	return list, r.Body["next"].(string)
}

func withsOf(cs []map[string]any) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c["with"].(string))
	}
	return out
}

// TestConversationsAPI: conversations list newest first with unread counts
// and pages; one conversation's messages page newest first; reading moves
// the unread count; bad input is refused with a JSON error.
func TestConversationsAPI(t *testing.T) {
	n := startNode(t)
	d := n.srv.Domain()
	alice, bob, carol := n.user("alice"), n.user("bob"), n.user("carol")
	n.send(alice, "bob", "hello bob")
	n.send(bob, "alice", "hi alice")
	n.send(carol, "alice", strings.Repeat("long ", 40))
	n.send(alice, "alice", "note to self")
	n.send(bob, "alice", "again")

	list, next := convs(t, n, alice, "")
	if want := []string{"bob@" + d, "alice@" + d, "carol@" + d}; !slices.Equal(withsOf(list), want) || next != "" {
		t.Fatalf("alice's conversations: %v next %q; want %v", withsOf(list), next, want)
	}
	b := list[0]
	if b["unread"].(float64) != 2 || b["last_from_me"] != false || b["last_preview"] != "again" || b["last_cursor"].(float64) != 5 {
		t.Fatalf("conversation with bob: %v", b)
	}
	if _, err := time.Parse(time.RFC3339, b["last_at"].(string)); err != nil {
		t.Fatalf("last_at: %v", err)
	}
	if p := list[2]["last_preview"].(string); len([]rune(p)) != 80 {
		t.Fatalf("preview of %d characters", len([]rune(p)))
	}
	if self := list[1]; self["unread"].(float64) != 0 || self["last_from_me"] != true {
		t.Fatalf("to herself: %v", self)
	}
	page, next := convs(t, n, alice, "?limit=2")
	if len(page) != 2 || next != "4" {
		t.Fatalf("first page: %v next %q", withsOf(page), next)
	}
	page, _ = convs(t, n, alice, "?limit=2&before="+next)
	if !slices.Equal(withsOf(page), []string{"carol@" + d}) {
		t.Fatalf("second page: %v", withsOf(page))
	}

	path := "/api/conversations/" + url.PathEscape("BOB@"+d) + "/messages"
	r := n.do("GET", path+"?limit=2", alice, nil)
	var got struct {
		Messages []struct {
			Content string `json:"content"`
			Cursor  string `json:"cursor"`
			Status  string `json:"status"`
		} `json:"messages"`
		NextBefore uint64 `json:"next_before"`
	}
	json.Unmarshal([]byte(r.Raw), &got)
	if r.Status != 200 || len(got.Messages) != 2 || got.Messages[0].Content != "again" || got.Messages[0].Cursor != "5" || got.Messages[0].Status != "delivered" || got.NextBefore != 2 {
		t.Fatalf("conversation page: %d %s", r.Status, r.Raw)
	}
	r = n.do("GET", path+"?before=2", alice, nil)
	json.Unmarshal([]byte(r.Raw), &got)
	if len(got.Messages) != 1 || got.Messages[0].Content != "hello bob" || got.NextBefore != 0 {
		t.Fatalf("older page: %s", r.Raw)
	}

	if r := n.do("POST", "/api/conversations/"+url.PathEscape("bob@"+d)+"/read", alice, map[string]any{"cursor": 2}); r.Status != 204 {
		t.Fatalf("read: %d %s", r.Status, r.Raw)
	}
	if list, _ := convs(t, n, alice, ""); list[0]["unread"].(float64) != 1 {
		t.Fatalf("unread after reading up to 2: %v", list[0])
	}

	for _, c := range []struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		{"GET", "/api/conversations?limit=0", nil, 400, "invalid_parameter"},
		{"GET", "/api/conversations?limit=201", nil, 400, "invalid_parameter"},
		{"GET", "/api/conversations?before=x", nil, 400, "invalid_parameter"},
		{"GET", "/api/conversations/bob/messages", nil, 400, "invalid_address"},
		{"POST", "/api/conversations/" + url.PathEscape("nobody@"+d) + "/read", map[string]any{"cursor": 1}, 404, "not_found"},
		{"POST", "/api/conversations/" + url.PathEscape("bob@"+d) + "/read", map[string]any{}, 400, "missing_field"},
		{"POST", "/api/conversations/" + url.PathEscape("bob@"+d) + "/read", map[string]any{"cursor": "x"}, 400, "invalid_json"},
	} {
		if r := n.do(c.method, c.path, alice, c.body); r.Status != c.status || r.code() != c.code {
			t.Errorf("%s %s: %d %s; want %d %s", c.method, c.path, r.Status, r.Raw, c.status, c.code)
		}
	}
	if r := n.do("GET", "/api/conversations", "", nil); r.Status != 401 {
		t.Errorf("without a token: %d", r.Status)
	}
}

// TestBlocksAPI: a user blocks an address and a domain, lists and removes
// them; a blocked local sender is refused with recipient_refused, and
// the message does not say why.
func TestBlocksAPI(t *testing.T) {
	n := startNode(t)
	d := n.srv.Domain()
	alice, bob := n.user("alice"), n.user("bob")
	if r := n.do("POST", "/api/blocks", alice, map[string]string{"address": "BOB@" + d}); r.Status != 201 || r.Body["address"] != "bob@"+d {
		t.Fatalf("block: %d %s", r.Status, r.Raw)
	}
	if r := n.do("POST", "/api/blocks", alice, map[string]string{"domain": "Spam.Example"}); r.Status != 201 || r.Body["domain"] != "spam.example" {
		t.Fatalf("block a domain: %d %s", r.Status, r.Raw)
	}
	r := n.do("GET", "/api/blocks", alice, nil)
	blocks := r.Body["blocks"].([]any)
	if r.Status != 200 || len(blocks) != 2 || blocks[0].(map[string]any)["created_at"] == "" {
		t.Fatalf("blocks: %s", r.Raw)
	}
	r = n.do("POST", "/api/messages", bob, map[string]string{"to": "alice", "content": "hi"})
	if r.Status != 422 || r.code() != "recipient_refused" || strings.Contains(strings.ToLower(r.Raw), "block") {
		t.Fatalf("blocked send: %d %s", r.Status, r.Raw)
	}
	n.send(alice, "bob", "alice can still write")
	for _, c := range []struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		{"POST", "/api/blocks", map[string]string{}, 400, "missing_field"},
		{"POST", "/api/blocks", map[string]string{"address": "a@b.example", "domain": "b.example"}, 400, "invalid_request"},
		{"POST", "/api/blocks", map[string]string{"address": "not an address"}, 400, "invalid_address"},
		{"POST", "/api/blocks", map[string]string{"domain": "bad domain"}, 400, "invalid_address"},
		{"DELETE", "/api/blocks?domain=other.example", nil, 404, "not_found"},
	} {
		if r := n.do(c.method, c.path, alice, c.body); r.Status != c.status || r.code() != c.code {
			t.Errorf("%s %s: %d %s; want %d %s", c.method, c.path, r.Status, r.Raw, c.status, c.code)
		}
	}
	if r := n.do("DELETE", "/api/blocks?address="+url.QueryEscape("bob@"+d), alice, nil); r.Status != 204 {
		t.Fatalf("unblock: %d %s", r.Status, r.Raw)
	}
	n.send(bob, "alice", "unblocked")
	for _, ev := range []string{`"msg":"block.added","user":"alice"`, `"msg":"block.removed","user":"alice"`} {
		if !strings.Contains(n.audit.String(), ev) {
			t.Errorf("audit stream lacks %s", ev)
		}
	}
}

// TestBlockedRemoteSenderRefused: a user's block of a remote address is
// the inbox's per-message refusal recipient_refused, and the sending node
// fails the message at once as a dead letter with that reason.
func TestBlockedRemoteSenderRefused(t *testing.T) {
	a, b := startNode(t), startNode(t)
	bob := b.user("bob")
	admin := a.admin("admin")
	alice := a.user("alice")
	if r := b.do("POST", "/api/blocks", bob, map[string]string{"address": "alice@" + a.srv.Domain()}); r.Status != 201 {
		t.Fatal(r.Raw)
	}
	id := a.send(alice, "bob@"+b.srv.Domain(), "let me in")
	m := waitStatus(t, a, alice, id, "failed")
	if m["reason_code"] != "recipient_refused" {
		t.Fatalf("failed message: %v", m)
	}
	dead := a.do("GET", "/api/admin/outbox/dead", admin, nil)
	if !strings.Contains(dead.Raw, id) || !strings.Contains(dead.Raw, "recipient_refused") {
		t.Fatalf("dead letters: %s", dead.Raw)
	}
	if got := b.mailbox(bob); len(got) != 0 {
		t.Fatalf("bob received %v", got)
	}
}

// TestDeleteMessageAPI: a user deletes a message from their mailbox and
// conversation; the other party keeps it; another user's or an unknown id
// is 404.
func TestDeleteMessageAPI(t *testing.T) {
	n := startNode(t)
	alice, bob, carol := n.user("alice"), n.user("bob"), n.user("carol")
	id := n.send(alice, "bob", "delete me")
	keep := n.send(alice, "bob", "keep me")
	if r := n.do("DELETE", "/api/messages/"+id, carol, nil); r.Status != 404 || r.code() != "not_found" {
		t.Fatalf("carol's delete: %d %s", r.Status, r.Raw)
	}
	if r := n.do("DELETE", "/api/messages/"+id, alice, nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	if got := contents(n.mailbox(alice)); !slices.Equal(got, []string{"keep me"}) {
		t.Fatalf("alice's mailbox: %v", got)
	}
	if got := contents(n.mailbox(bob)); len(got) != 2 {
		t.Fatalf("bob's mailbox: %v", got)
	}
	for _, bad := range []string{id, "nope", keep[:25] + "0"} {
		if r := n.do("DELETE", "/api/messages/"+bad, alice, nil); r.Status != 404 || r.code() != "not_found" {
			t.Errorf("delete %s: %d %s", bad, r.Status, r.Raw)
		}
	}
	if !strings.Contains(n.audit.String(), `"msg":"message.deleted","user":"alice","message":"`+id) {
		t.Error("delete must be audited")
	}
}

// TestLogoutAllAPI: every session of the caller ends; other users' stay.
func TestLogoutAllAPI(t *testing.T) {
	n := startNode(t)
	a1 := n.user("alice")
	a2 := n.login("alice", "password-alice")
	bob := n.user("bob")
	if r := n.do("POST", "/api/auth/logout-all", a1, nil); r.Status != 204 {
		t.Fatalf("logout-all: %d %s", r.Status, r.Raw)
	}
	for _, tok := range []string{a1, a2} {
		if r := n.do("GET", "/api/me", tok, nil); r.Status != 401 {
			t.Fatalf("a session survived: %d", r.Status)
		}
	}
	if r := n.do("GET", "/api/me", bob, nil); r.Status != 200 {
		t.Fatalf("bob's session: %d", r.Status)
	}
	if !strings.Contains(n.audit.String(), `"msg":"sessions.revoked_self","user":"alice"`) {
		t.Error("logout-all must be audited")
	}
}

// TestDeleteAccountAPI: the right password deletes the account and its
// sessions and reserves the name; a wrong one is 401; the last admin is 409.
func TestDeleteAccountAPI(t *testing.T) {
	n := startNode(t)
	root := n.admin("root")
	alice, bob := n.user("alice"), n.user("bob")
	n.send(alice, "alice", "mine alone")
	n.send(alice, "bob", "shared")
	if r := n.do("DELETE", "/api/me", alice, map[string]string{"password": "wrong"}); r.Status != 401 || r.code() != "invalid_credentials" {
		t.Fatalf("wrong password: %d %s", r.Status, r.Raw)
	}
	if r := n.do("DELETE", "/api/me", alice, map[string]string{}); r.Status != 400 {
		t.Fatalf("no password: %d %s", r.Status, r.Raw)
	}
	if r := n.do("DELETE", "/api/me", root, map[string]string{"password": "password-root"}); r.Status != 409 || r.code() != "conflict" {
		t.Fatalf("last admin: %d %s", r.Status, r.Raw)
	}
	r := n.do("DELETE", "/api/me", alice, map[string]string{"password": "password-alice"})
	if r.Status != 200 || r.Body["username"] != "alice" || r.Body["messages_deleted"].(float64) != 1 || r.Body["sessions_revoked"].(float64) != 1 {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	if r := n.do("GET", "/api/me", alice, nil); r.Status != 401 {
		t.Fatalf("the session survived: %d", r.Status)
	}
	if got := contents(n.mailbox(bob)); !slices.Equal(got, []string{"shared"}) {
		t.Fatalf("bob's mailbox: %v", got)
	}
	if r := n.do("POST", "/api/auth/register", "", map[string]string{"username": "alice", "password": "password-alice2"}); r.Status != 409 {
		t.Fatalf("the name must stay reserved: %d %s", r.Status, r.Raw)
	}
	if !strings.Contains(n.audit.String(), `"msg":"account.deleted","user":"alice"`) {
		t.Error("delete must be audited")
	}
}

// TestExportAPI: the export is one JSON document with the account, every
// message oldest first (more than one page), blocks and conversations.
func TestExportAPI(t *testing.T) {
	n := startNode(t)
	alice := n.user("alice")
	n.user("bob")
	const total = 205 // more than one page of the mailbox
	for i := range total {
		n.send(alice, "bob", "m"+strings.Repeat("x", i%3))
	}
	n.do("POST", "/api/blocks", alice, map[string]string{"domain": "spam.example"})
	r := n.do("GET", "/api/me/export", alice, nil)
	if r.Status != 200 || r.Header.Get("Content-Disposition") != `attachment; filename="fednode-export-alice.json"` {
		t.Fatalf("export: %d %v", r.Status, r.Header)
	}
	var doc struct {
		ExportedAt string `json:"exported_at"`
		Account    struct {
			Username, Address, Role string
			CreatedAt               string `json:"created_at"`
		} `json:"account"`
		Messages []struct {
			Cursor string `json:"cursor"`
		} `json:"messages"`
		Blocks        []map[string]any `json:"blocks"`
		Conversations []map[string]any `json:"conversations"`
	}
	if err := json.Unmarshal([]byte(r.Raw), &doc); err != nil {
		t.Fatalf("export is not JSON: %v", err)
	}
	if doc.Account.Username != "alice" || doc.Account.Address != "alice@"+n.srv.Domain() || doc.Account.Role != "user" || doc.ExportedAt == "" {
		t.Fatalf("account: %+v", doc)
	}
	if len(doc.Messages) != total || doc.Messages[0].Cursor != "1" || doc.Messages[total-1].Cursor != "205" {
		t.Fatalf("%d messages", len(doc.Messages))
	}
	if len(doc.Blocks) != 1 || len(doc.Conversations) != 1 {
		t.Fatalf("blocks %v conversations %v", doc.Blocks, doc.Conversations)
	}
	if !strings.Contains(n.audit.String(), `"msg":"account.exported","user":"alice"`) {
		t.Error("export must be audited")
	}
}

// TestCORSPreflightCoversTheWebClient: an allowed origin's preflight
// allows every method and header the web client uses, DELETE included.
func TestCORSPreflightCoversTheWebClient(t *testing.T) {
	n := startNode(t, func(c *daemon.Config) { c.AllowedOrigins = []string{"https://app.example"} })
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		req, _ := http.NewRequest("OPTIONS", n.url+"/api/messages/x", nil)
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", m)
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), m) || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") {
			t.Fatalf("preflight for %s: %d %v", m, resp.StatusCode, h)
		}
	}
}
