package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/internal/syncbuf"
	"github.com/fednode/fednode/node"
)

// TestFedctlSignup: against a real node in invite mode with challenges
// after one failure, at the default difficulty: the operator's first
// invite, invites made, listed and revoked through fedctl, registration
// with one, and logins that pass the challenge without being told.
func TestFedctlSignup(t *testing.T) {
	cfg := daemon.DefaultConfig()
	cfg.ListenAddr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Password = node.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}
	cfg.RegistrationMode = node.RegistrationInvite
	cfg.ChallengeAfterLoginFailures = 1
	var audit syncbuf.Buffer
	open := func() *daemon.Daemon {
		quiet := slog.New(slog.DiscardHandler)
		s, err := daemon.Open(context.Background(), cfg, daemon.Options{Log: quiet, Audit: slog.New(slog.NewJSONHandler(&audit, nil)), GenerateKey: testKeys})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	srv := open()
	cfg.ListenAddr = strings.TrimPrefix(srv.URL(), "http://")
	srv.Close()
	first, err := daemon.CreateInvite(context.Background(), cfg, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv = open()
	defer func() { srv.Close() }()

	dir := t.TempDir()
	fedctl := func(user, stdin string, args ...string) (string, error) {
		var out, errb bytes.Buffer
		env := func(k string) string {
			switch k {
			case "FEDNODE_URL":
				return srv.URL()
			case "FEDCTL_TOKEN_FILE":
				return filepath.Join(dir, user+".token")
			}
			return ""
		}
		err := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, env)
		return out.String(), err
	}
	if _, err := fedctl("root", "password-root\n", "register", "root"); err == nil || !strings.Contains(err.Error(), "invite_required") {
		t.Fatalf("register without an invite: %v", err)
	}
	if _, err := fedctl("root", "password-root\n", "register", "--invite", first.Code, "root"); err != nil {
		t.Fatalf("register --invite: %v", err)
	}
	srv.Close()
	if err := daemon.Promote(context.Background(), cfg, "root"); err != nil {
		t.Fatal(err)
	}
	srv = open()

	// A failed login, then the right one: the node asks for a proof of
	// work, and fedctl gives it.
	if _, err := fedctl("root", "wrong-password\n", "login", "root"); err == nil || !strings.Contains(err.Error(), "invalid_credentials") {
		t.Fatalf("a wrong password: %v", err)
	}
	if out, err := fedctl("root", "password-root\n", "login", "root"); err != nil || !strings.Contains(out, "logged in") {
		t.Fatalf("login with a challenge required: %q %v", out, err)
	}
	if !strings.Contains(audit.String(), `"msg":"challenge.required"`) {
		t.Fatal("the node did not ask for a challenge: the test proves nothing")
	}

	out, err := fedctl("root", "", "admin", "invites", "create", "-n", "2", "-expires", "48h")
	if err != nil {
		t.Fatalf("invites create: %v", err)
	}
	var codes []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var inv struct{ Code, State string }
		if err := json.Unmarshal([]byte(line), &inv); err != nil || inv.State != "unused" {
			t.Fatalf("invites create printed %q", line)
		}
		codes = append(codes, inv.Code)
	}
	if len(codes) != 2 {
		t.Fatalf("invites create -n 2 printed %q", out)
	}
	if _, err := fedctl("bob", "password-bob\n", "register", "bob", "-invite="+codes[0]); err != nil {
		t.Fatalf("register NAME -invite=CODE: %v", err)
	}
	if _, err := fedctl("root", "", "admin", "invites", "revoke", codes[1]); err != nil {
		t.Fatalf("invites revoke: %v", err)
	}
	if _, err := fedctl("carol", "password-carol\n", "register", "--invite", codes[1], "carol"); err == nil || !strings.Contains(err.Error(), "invite_invalid") {
		t.Fatalf("register with a revoked invite: %v", err)
	}
	out, err = fedctl("root", "", "admin", "invites", "list")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, `"used_by":"bob"`) || !strings.Contains(out, `"used_by":"root"`) {
		t.Fatalf("invites list: %q %v", out, err)
	}
	if _, err := fedctl("root", "", "admin", "invites", "frobnicate"); err == nil {
		t.Fatal("an unknown invites command was accepted")
	}
}
