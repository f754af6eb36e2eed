package daemon_test

import (
	"net/http"

	"strings"
	"testing"

	"github.com/fednode/fednode/daemon"
)

// TestRefusals sends every kind of bad input and checks its status, code and
// field, and that nothing stored changed.
func TestRefusals(t *testing.T) {
	n := startNode(t, func(c *daemon.Config) { c.FederationBlocklist = []string{"other-node.example"} })
	alice := n.user("alice")
	n.user("bob")
	n.send(alice, "bob", "the only message")
	before := n.mailbox(alice)

	long := strings.Repeat("x", 10001)
	tests := []struct {
		name, method, path string
		token              bool
		body               any
		status             int
		code, field        string
	}{
		// Registration.
		{"register: taken, other case", "POST", "/api/auth/register", false, map[string]string{"username": "ALICE", "password": "password1"}, 409, "username_taken", "username"},
		{"register: bad username", "POST", "/api/auth/register", false, map[string]string{"username": "a b", "password": "password1"}, 400, "invalid_username", "username"},
		{"register: username too long", "POST", "/api/auth/register", false, map[string]string{"username": strings.Repeat("a", 65), "password": "password1"}, 400, "invalid_username", "username"},
		{"register: empty username", "POST", "/api/auth/register", false, map[string]string{"username": "", "password": "password1"}, 400, "invalid_username", "username"},
		{"register: short password", "POST", "/api/auth/register", false, map[string]string{"username": "zed", "password": "short"}, 400, "invalid_password", "password"},
		{"register: missing password", "POST", "/api/auth/register", false, map[string]string{"username": "zed"}, 400, "missing_field", "password"},
		{"register: unknown field", "POST", "/api/auth/register", false, map[string]any{"username": "zed", "password": "password1", "role": "admin"}, 400, "unknown_field", "role"},
		{"register: trailing data", "POST", "/api/auth/register", false, `{"username":"zed","password":"password1"} {}`, 400, "invalid_json", ""},
		{"register: not JSON", "POST", "/api/auth/register", false, `username=zed`, 400, "invalid_json", ""},
		{"register: wrong type", "POST", "/api/auth/register", false, `{"username":["zed"],"password":"password1"}`, 400, "invalid_json", "username"},
		// Login.
		{"login: wrong password", "POST", "/api/auth/login", false, map[string]string{"username": "alice", "password": "nope-nope"}, 401, "invalid_credentials", ""},
		{"login: unknown user", "POST", "/api/auth/login", false, map[string]string{"username": "nobody", "password": "nope-nope"}, 401, "invalid_credentials", ""},
		// Sending.
		{"send: no token", "POST", "/api/messages", false, map[string]any{"to": "bob", "content": "x"}, 401, "unauthorized", ""},
		{"send: missing to", "POST", "/api/messages", true, map[string]any{"content": "x"}, 400, "missing_field", "to"},
		{"send: missing content", "POST", "/api/messages", true, map[string]any{"to": "bob"}, 400, "missing_field", "content"},
		{"send: empty content", "POST", "/api/messages", true, map[string]any{"to": "bob", "content": ""}, 400, "invalid_content", "content"},
		{"send: only null bytes", "POST", "/api/messages", true, map[string]any{"to": "bob", "content": "\x00\x00"}, 400, "invalid_content", "content"},
		{"send: content too long", "POST", "/api/messages", true, map[string]any{"to": "bob", "content": long}, 400, "invalid_content", "content"},
		{"send: invalid UTF-8", "POST", "/api/messages", true, "{\"to\":\"bob\",\"content\":\"a\xffb\"}", 400, "invalid_encoding", "content"},
		{"send: eleven tags", "POST", "/api/messages", true, map[string]any{"to": "bob", "content": "x", "tags": strings.Split("a b c d e f g h i j k", " ")}, 400, "invalid_tags", "tags"},
		{"send: bad tag", "POST", "/api/messages", true, map[string]any{"to": "bob", "content": "x", "tags": []string{"no spaces"}}, 400, "invalid_tags", "tags"},
		{"send: duplicate tag", "POST", "/api/messages", true, map[string]any{"to": "bob", "content": "x", "tags": []string{"a", "a"}}, 400, "invalid_tags", "tags"},
		{"send: bad address", "POST", "/api/messages", true, map[string]any{"to": "bob@", "content": "x"}, 400, "invalid_address", "to"},
		{"send: bad domain", "POST", "/api/messages", true, map[string]any{"to": "bob@-bad-", "content": "x"}, 400, "invalid_address", "to"},
		{"send: unknown recipient", "POST", "/api/messages", true, map[string]any{"to": "nobody", "content": "x"}, 422, "unknown_recipient", "to"},
		{"send: to a blocked node", "POST", "/api/messages", true, map[string]any{"to": "bob@other-node.example", "content": "x"}, 422, "federation_disabled", "to"},
		{"send: unknown field", "POST", "/api/messages", true, map[string]any{"to": "bob", "content": "x", "from": "bob"}, 400, "unknown_field", "from"},
		{"send: body too large", "POST", "/api/messages", true, `{"to":"bob","content":"` + strings.Repeat("y", 200<<10) + `"}`, 413, "body_too_large", ""},
		// Reading.
		{"list: bad cursor", "GET", "/api/messages?after=abc", true, nil, 400, "invalid_parameter", "after"},
		{"list: negative cursor", "GET", "/api/messages?after=-1", true, nil, 400, "invalid_parameter", "after"},
		{"list: limit zero", "GET", "/api/messages?limit=0", true, nil, 400, "invalid_parameter", "limit"},
		{"list: limit too big", "GET", "/api/messages?limit=201", true, nil, 400, "invalid_parameter", "limit"},
		{"get: malformed id", "GET", "/api/messages/..%2f..", true, nil, 404, "not_found", ""},
		{"get: unknown id", "GET", "/api/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV", true, nil, 404, "not_found", ""},
		{"unknown endpoint", "GET", "/api/nothing", false, nil, 404, "not_found", ""},
		{"wrong method", "DELETE", "/api/messages", true, nil, 405, "method_not_allowed", ""},
		{"admin: not an admin", "POST", "/api/admin/sessions/revoke-all", true, nil, 403, "forbidden", ""},
		{"ws: no token", "GET", "/api/ws", false, nil, 401, "unauthorized", ""},
		{"ws: not an upgrade", "GET", "/api/ws", true, nil, 400, "invalid_request", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := ""
			if tt.token {
				tok = alice
			}
			r := n.do(tt.method, tt.path, tok, tt.body)
			if r.Status != tt.status || r.code() != tt.code || r.field() != tt.field {
				t.Fatalf("got %d %s (field %q), want %d %s (field %q): %s", r.Status, r.code(), r.field(), tt.status, tt.code, tt.field, r.Raw)
			}
			if msg, _ := r.Body["error"].(map[string]any)["message"].(string); msg == "" || strings.Contains(msg, "goroutine") {
				t.Fatalf("the error needs a human message and no internals: %q", msg)
			}
		})
	}
	if r := n.do("POST", "/api/messages", alice, map[string]any{"to": "bob", "content": "x"}); r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("content type %q", r.Header.Get("Content-Type"))
	}
	// Nothing refused was stored: the only change is the one good send above.
	after := n.mailbox(alice)
	if len(after) != len(before)+1 || after[0]["id"] != before[0]["id"] {
		t.Fatalf("refusals changed the store: before %d, after %d messages", len(before), len(after))
	}
	if r := n.do("POST", "/api/auth/login", "", map[string]string{"username": "alice", "password": "password-alice"}); r.Status != http.StatusOK {
		t.Fatalf("the taken-name registration must not have changed alice: %d %s", r.Status, r.Raw)
	}
	if r := n.do("POST", "/api/auth/login", "", map[string]string{"username": "zed", "password": "password1"}); r.Status != 401 {
		t.Fatalf("no refused registration may create an account: %d", r.Status)
	}
}

func TestContentRulesAtTheEdges(t *testing.T) {
	n := startNode(t)
	alice := n.user("alice")
	n.user("bob")
	exact := strings.Repeat("é", 10000)
	n.send(alice, "bob", exact+"\x00")
	r := n.do("POST", "/api/messages", alice, map[string]any{"to": "bob", "content": "a\x00b", "tags": []string{"t_1", "T-2"}})
	if r.Status != 202 {
		t.Fatalf("null bytes are removed, not refused: %d %s", r.Status, r.Raw)
	}
	box := n.mailbox(alice)
	if box[0]["content"] != exact || box[1]["content"] != "ab" {
		t.Fatalf("stored content wrong: %d chars / %q", len(box[0]["content"].(string)), box[1]["content"])
	}
}
