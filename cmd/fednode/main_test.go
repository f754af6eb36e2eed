package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fednode/fednode/client"
	"github.com/fednode/fednode/internal/syncbuf"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// binary builds cmd/fednode once per test run.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the real binary, for tens of seconds: the full suite runs it; -short skips it")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fednode-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "fednode")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *syncbuf.Buffer // every line the node logged
}

// generous are limits for tests in which every node and client shares
// 127.0.0.1: the defaults would (rightly) limit and ban it.
var generous = []string{
	"RATE_LIMIT_API_ANON=1000000/1m", "RATE_LIMIT_API_AUTH=1000000/1m", "RATE_LIMIT_AUTH=1000000/1m",
	"RATE_LIMIT_INBOX_IP=1000000/1m", "RATE_LIMIT_INBOX_PEER=1000000/1m", "BAN_AFTER_VIOLATIONS=1000000",
}

// start runs the binary with env (on top of generous limits), keeps its
// log lines, and waits for its "listening" line.
func start(t *testing.T, bin string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH")}, generous...), env...)
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	logs := &syncbuf.Buffer{}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteLine(sc.Text())
			var line struct{ Msg, URL string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.URL
			}
		}
	}()
	select {
	case u := <-addr:
		return &proc{cmd: cmd, url: u, logs: logs}
	case <-time.After(60 * time.Second): // a first start generates two RSA-4096 keys: seconds each on a loaded machine
		t.Fatalf("node did not start:\n%s", logs)
	}
	return nil
}

func (p *proc) post(t *testing.T, path, token string, body any) (int, map[string]any) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", p.url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// api is the public Go client (package client) for this node, as the user
// whose token it is. post stays for what the tests check of the protocol
// itself (statuses and error bodies).
func (p *proc) api(token string) *client.Client {
	return &client.Client{BaseURL: p.url, Token: token}
}

// login logs user in (password "password-<user>") and returns the token.
func (p *proc) login(t *testing.T, user string) string {
	t.Helper()
	c := p.api("")
	if _, err := c.Login(context.Background(), user, "password-"+user); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c.Token
}

// ids returns the ids of every message in the user's mailbox.
func (p *proc) ids(t *testing.T, token string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	after := ""
	for {
		page, err := p.api(token).Messages(context.Background(), after, 200)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			ids[m.ID] = true
		}
		if len(page.Messages) == 0 {
			return ids
		}
		after = page.Next
	}
}

// TestBinarySurvivesKill9UnderLoad runs the real binary on the embedded
// defaults, sends from several goroutines, kills the process with SIGKILL
// mid-load, restarts it on the same DATA_DIR, and checks that every message
// that was answered 202 is there, once.
func TestBinarySurvivesKill9UnderLoad(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	env := []string{"DATA_DIR=" + dir, "LISTEN_ADDR=127.0.0.1:0", "NODE_DOMAIN=node-a.test"}
	p := start(t, bin, env...)
	for _, u := range []string{"alice", "bob"} {
		if code, body := p.post(t, "/api/auth/register", "", map[string]string{"username": u, "password": "password-" + u}); code != 201 {
			t.Fatalf("register %s: %d %v", u, code, body)
		}
	}
	alice := p.login(t, "alice")
	bob := p.login(t, "bob")

	stop := make(chan struct{})
	wait := load(t, p, alice, "bob", stop)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(p.ids(t, bob)) < 200 {
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	close(stop)
	accepted := wait()
	if len(accepted) < 50 {
		t.Fatalf("only %d messages accepted before the kill; the test proves nothing", len(accepted))
	}

	p2 := start(t, bin, env...) // same DATA_DIR; tokens and secret survive too
	got := p2.ids(t, bob)
	for id := range accepted {
		if !got[id] {
			t.Fatalf("message %s was answered 202 but is gone after kill -9 (%d accepted, %d stored)", id, len(accepted), len(got))
		}
	}
	t.Logf("%d accepted before SIGKILL, %d stored after restart, none lost", len(accepted), len(got))
	if code, _ := p2.post(t, "/api/messages", alice, map[string]any{"to": "bob@node-a.test", "content": "after restart"}); code != 202 {
		t.Fatalf("send after restart: %d", code)
	}
	if got := p2.ids(t, alice); len(got) < len(accepted)+1 {
		t.Fatalf("alice sees %d messages", len(got))
	}
}

func TestBinaryRefusesUnsafeProduction(t *testing.T) {
	bin := binary(t)
	cmd := exec.Command(bin)
	cmd.Env = []string{"ENV=production", "ALLOWED_ORIGINS=*", "DATA_DIR=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("production with no secret, wildcard CORS and no TLS must not start")
	}
	for _, want := range []string{"JWT_SECRET", "ALLOWED_ORIGINS", "TLS_ENABLED", "NODE_DOMAIN"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not name %s:\n%s", want, out)
		}
	}
}
