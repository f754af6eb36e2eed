package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/internal/syncbuf"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/node"
)

// testKeys hands out the fixed test keys: generating RSA-4096 takes seconds.
func testKeys() (*rsa.PrivateKey, error) { return testkeys.Key(int(keyN.Add(1)) % testkeys.Count), nil }

func openNode(t *testing.T, cfg daemon.Config) *daemon.Daemon {
	t.Helper()
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	s, err := daemon.Open(context.Background(), cfg, daemon.Options{Log: quiet, Audit: quiet, GenerateKey: testKeys})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var keyN atomic.Int32

func TestFedctl(t *testing.T) {
	cfg := daemon.DefaultConfig()
	cfg.ListenAddr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Password = node.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}
	srv := openNode(t, cfg)
	cfg.ListenAddr = strings.TrimPrefix(srv.URL(), "http://")
	defer func() { srv.Close() }()

	dir := t.TempDir()
	envFor := func(user string) func(string) string {
		return func(k string) string {
			switch k {
			case "FEDNODE_URL":
				return srv.URL()
			case "FEDCTL_TOKEN_FILE":
				return filepath.Join(dir, user+".token")
			}
			return ""
		}
	}
	fedctl := func(user, stdin string, args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, envFor(user))
		return out.String(), err
	}
	for _, u := range []string{"alice", "bob"} {
		if _, err := fedctl(u, "password-"+u+"\n", "register", u); err != nil {
			t.Fatalf("register %s: %v", u, err)
		}
		if out, err := fedctl(u, "password-"+u+"\n", "login", u); err != nil || !strings.Contains(out, "logged in") {
			t.Fatalf("login %s: %q %v", u, out, err)
		}
	}
	st, err := os.Stat(filepath.Join(dir, "bob.token"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", st, err)
	}
	if _, err := fedctl("alice", "wrong-password\n", "login", "alice"); err == nil || !strings.Contains(err.Error(), "invalid_credentials") {
		t.Fatalf("bad login must report the API code: %v", err)
	}
	if _, err := fedctl("alice", "", "send", "nobody", "x"); err == nil || !strings.Contains(err.Error(), "unknown_recipient") {
		t.Fatalf("send to nobody: %v", err)
	}

	// tail as bob, across a node restart.
	var tailOut syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	tailDone := make(chan error, 1)
	go func() { tailDone <- run(ctx, []string{"tail"}, nil, &tailOut, io.Discard, envFor("bob")) }()
	waitFor := func(want int) []map[string]any {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var msgs []map[string]any
			for _, line := range strings.Split(strings.TrimSpace(tailOut.String()), "\n") {
				if line == "" {
					continue
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("tail printed %q", line)
				}
				msgs = append(msgs, m)
			}
			if len(msgs) >= want || time.Now().After(deadline) {
				return msgs
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond) // let tail connect; it starts from now
	if _, err := fedctl("alice", "", "send", "bob", "first", "tag1"); err != nil {
		t.Fatal(err)
	}
	if got := waitFor(1); len(got) != 1 || got[0]["content"] != "first" {
		t.Fatalf("tail before restart: %v", got)
	}
	srv.Close()
	srv = openNode(t, cfg)
	if _, err := fedctl("alice", "", "send", "bob", "second"); err != nil {
		t.Fatal(err)
	}
	waitFor(2)
	time.Sleep(300 * time.Millisecond) // room for a duplicate to show up
	got := waitFor(0)
	if len(got) != 2 || got[1]["content"] != "second" {
		t.Fatalf("tail after restart must resume from its cursor, once: %v", got)
	}
	cancel()
	<-tailDone

	out, err := fedctl("bob", "", "inbox")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, `"tag1"`) {
		t.Fatalf("inbox: %q %v", out, err)
	}
	// Admin commands, after the operator promotes alice offline.
	if _, err := fedctl("alice", "", "admin", "federation"); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("a non-admin ran an admin command: %v", err)
	}
	srv.Close()
	if err := daemon.Promote(context.Background(), cfg, "alice"); err != nil {
		t.Fatal(err)
	}
	srv = openNode(t, cfg)
	fedctl("alice", "password-alice\n", "login", "alice")
	if out, err := fedctl("alice", "", "admin", "federation", "allowlist", "-allow", "b.example,c.example", "-block", "d.example"); err != nil ||
		!strings.Contains(out, `"mode":"allowlist"`) || !strings.Contains(out, `"c.example"`) {
		t.Fatalf("set policy: %q %v", out, err)
	}
	if out, err := fedctl("alice", "", "admin", "federation"); err != nil || !strings.Contains(out, `"blocklist":["d.example"]`) {
		t.Fatalf("show policy: %q %v", out, err)
	}
	if out, err := fedctl("alice", "", "admin", "federation", "reset"); err != nil || !strings.Contains(out, `"mode":"open"`) {
		t.Fatalf("reset policy: %q %v", out, err)
	}
	if out, err := fedctl("alice", "", "admin", "rotate-keys", "enc", "1h"); err != nil || !strings.Contains(out, "#enc-") {
		t.Fatalf("rotate: %q %v", out, err)
	}
	if out, err := fedctl("alice", "", "admin", "dead-letters"); err != nil || out != "" {
		t.Fatalf("no dead letters expected: %q %v", out, err)
	}
	// A peer on a private address (not allowed here) fails at once: a dead
	// letter to redrive, purge, and a peer to retry now.
	fedctl("alice", "", "send", "bob@127.0.0.1:9", "to nowhere")
	var dl string
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(dl, `"code":"private_address"`); time.Sleep(20 * time.Millisecond) {
		if dl, _ = fedctl("alice", "", "admin", "dead-letters"); time.Now().After(deadline) {
			t.Fatalf("dead letters: %q", dl)
		}
	}
	if _, err := fedctl("alice", "", "admin", "dead-letters", "redrive"); err == nil || !strings.Contains(err.Error(), "invalid_request") {
		t.Fatalf("redrive without a selection: %v", err)
	}
	if out, err := fedctl("alice", "", "admin", "dead-letters", "redrive", "-peer", "127.0.0.1:9"); err != nil || !strings.Contains(out, `"redriven":1`) {
		t.Fatalf("redrive: %q %v", out, err)
	}
	if out, err := fedctl("alice", "", "admin", "retry-peer", "127.0.0.1:9"); err != nil || !strings.Contains(out, `"peer":"127.0.0.1:9"`) {
		t.Fatalf("retry-peer: %q %v", out, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, err := fedctl("alice", "", "admin", "dead-letters", "purge", "-all")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, `"purged":1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("purge: %q", out)
		}
	}
	if out, err := fedctl("alice", "", "admin", "ban", "203.0.113.77", "2h", "spam"); err != nil || !strings.Contains(out, `"key":"203.0.113.77"`) || !strings.Contains(out, `"reason":"spam"`) {
		t.Fatalf("ban: %q %v", out, err)
	}
	if _, err := fedctl("alice", "", "admin", "ban", "not-an-ip"); err == nil || !strings.Contains(err.Error(), "invalid_request") {
		t.Fatalf("a bad ban key must be refused with its code: %v", err)
	}
	if out, err := fedctl("alice", "", "admin", "bans"); err != nil || !strings.Contains(out, "203.0.113.77") || !strings.Contains(out, `"active":true`) {
		t.Fatalf("bans: %q %v", out, err)
	}
	if _, err := fedctl("alice", "", "admin", "unban", "203.0.113.77"); err != nil {
		t.Fatal(err)
	}
	if out, _ := fedctl("alice", "", "admin", "bans"); strings.Contains(out, "203.0.113.77") {
		t.Fatalf("still banned: %q", out)
	}
	if out, err := fedctl("alice", "", "admin", "revoke-sessions"); err != nil || !strings.Contains(out, `"revoked":`) {
		t.Fatalf("revoke: %q %v", out, err)
	}
	fedctl("bob", "password-bob\n", "login", "bob")
	if out, err := fedctl("bob", "", "logout"); err != nil || !strings.Contains(out, "logged out") {
		t.Fatalf("logout: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bob.token")); !os.IsNotExist(err) {
		t.Fatal("logout must remove the token file")
	}
}
