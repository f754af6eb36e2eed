package daemon_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode/client"
	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/internal/syncbuf"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/node"
	"github.com/fednode/fednode/ratelimit"
)

// clock is real time plus an offset a test can move forward (or back) to
// cross windows, shared by a test and its node.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.offset) }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.offset += d; c.mu.Unlock() }

var keyCounter atomic.Int32

// nextTestKey hands out the fixed test keys in turn, so that up to four
// nodes of one test have distinct keys without generating any.
func nextTestKey() (*rsa.PrivateKey, error) {
	return testkeys.Key(int(keyCounter.Add(1)-1) % testkeys.Count), nil
}

type testNode struct {
	t     testing.TB
	cfg   daemon.Config
	gen   keysFrom // the node's key generator
	srv   *daemon.Daemon
	url   string
	audit *syncbuf.Buffer
	clock *clock
	log   io.Writer // the node's JSON log; nil discards it (see logTo)
}

const testSecret = "test-secret-that-is-long-enough-0123456789"

// keysFrom is a startNode option: the node's keys come from it.
type keysFrom func() (*rsa.PrivateKey, error)

// logTo is a startNode option: the node's JSON log goes to w.
type logTo struct{ w io.Writer }

// nodeOption is a startNode option that sets both.
type nodeOption func(*daemon.Config, *keysFrom)

// startNode runs a node through daemon.Open on a random loopback port with a
// temporary DATA_DIR and cheap password hashing (the production parameters
// are pinned by their own test). Each option is a func(*daemon.Config), a
// keysFrom, a nodeOption or a logTo.
func startNode(t testing.TB, opts ...any) *testNode {
	t.Helper()
	cfg := daemon.DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.JWTSecret = testSecret
	cfg.Password = node.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}
	cfg.WSPingPeriod = 200 * time.Millisecond
	cfg.WSPongWait = time.Second
	cfg.WSWriteWait = time.Second
	c := &clock{}
	gen := keysFrom(nextTestKey)
	var logW io.Writer
	cfg.FederationAllowPrivate, cfg.FederationPlainHTTP = true, true
	// Tests make many requests from 127.0.0.1: generous limits unless a test
	// of limits and bans sets its own.
	for _, class := range node.Classes {
		cfg.RateLimits[class] = ratelimit.Rule{Limit: 1 << 20, Window: time.Minute}
	}
	cfg.BanAfterViolations, cfg.BanAfterAuthFailures, cfg.BanAfterSigFailures = 1<<20, 1<<20, 1<<20
	// No proof of work either, unless a test of it sets its own thresholds.
	cfg.ChallengeAfterLoginFailures, cfg.ChallengeAfterRegistrations = 1<<20, 1<<20
	for _, o := range opts {
		switch o := o.(type) {
		case func(*daemon.Config):
			o(&cfg)
		case keysFrom:
			gen = o
		case nodeOption:
			o(&cfg, &gen)
		case logTo:
			logW = o.w
		default:
			t.Fatalf("startNode: option of type %T", o)
		}
	}
	n := &testNode{t: t, cfg: cfg, gen: gen, audit: &syncbuf.Buffer{}, clock: c, log: logW}
	n.open()
	t.Cleanup(func() {
		if n.srv != nil {
			n.srv.Close()
		}
	})
	return n
}

func (n *testNode) open() {
	n.t.Helper()
	// A restarted node reuses its port: connections pooled to the old
	// process are dead, and Go does not retry a POST on one.
	http.DefaultClient.CloseIdleConnections()
	var logOut io.Writer = io.Discard
	if os.Getenv("FEDNODE_TEST_LOG") != "" { // see what a failing node did
		logOut = os.Stderr
	}
	if n.log != nil {
		logOut = n.log
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
	audit := slog.New(slog.NewJSONHandler(n.audit, nil))
	srv, err := daemon.Open(context.Background(), n.cfg, daemon.Options{Log: log, Audit: audit, Clock: n.clock.Now, GenerateKey: n.gen})
	if err != nil {
		n.t.Fatalf("daemon.Open: %v", err)
	}
	n.srv, n.url = srv, srv.URL()
	if n.cfg.ListenAddr == "127.0.0.1:0" { // keep the port (and so the domain) across restarts
		n.cfg.ListenAddr = strings.TrimPrefix(n.url, "http://")
	}
}

// restart closes the node and opens it again on the same DATA_DIR and port.
func (n *testNode) restart() {
	n.t.Helper()
	if err := n.srv.Close(); err != nil {
		n.t.Fatalf("Close: %v", err)
	}
	n.srv = nil
	n.open()
}

type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (r response) code() string {
	e, _ := r.Body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (r response) field() string {
	e, _ := r.Body["error"].(map[string]any)
	f, _ := e["field"].(string)
	return f
}

// do sends a raw request, for what the tests check of the protocol itself
// (statuses, headers, error bodies, the JSON's exact shape); body is
// marshalled unless it is a string, sent as is.
func (n *testNode) do(method, path, token string, body any) response {
	n.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, _ := json.Marshal(b)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, n.url+path, rd)
	if err != nil {
		n.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			n.t.Fatalf("%s %s: body is not a JSON object: %q", method, path, raw)
		}
	}
	return out
}

// api is the public Go client (package client) for this node, as the user
// whose token it is: the helpers below use it as any program would.
func (n *testNode) api(token string) *client.Client {
	return &client.Client{BaseURL: n.url, Token: token}
}

func (n *testNode) register(user, pw string) {
	n.t.Helper()
	if err := n.api("").Register(context.Background(), user, pw); err != nil {
		n.t.Fatalf("register %s: %v", user, err)
	}
}

func (n *testNode) login(user, pw string) string {
	n.t.Helper()
	c := n.api("")
	if _, err := c.Login(context.Background(), user, pw); err != nil {
		n.t.Fatalf("login %s: %v", user, err)
	}
	return c.Token
}

// user registers and logs in, returning a token.
func (n *testNode) user(name string) string {
	n.t.Helper()
	n.register(name, "password-"+name)
	return n.login(name, "password-"+name)
}

func (n *testNode) send(token, to, content string) string {
	n.t.Helper()
	id, _, err := n.api(token).Send(context.Background(), to, content, nil)
	if err != nil {
		n.t.Fatalf("send to %s: %v", to, err)
	}
	return id
}

// mailbox returns all of a user's messages.
func (n *testNode) mailbox(token string) []map[string]any {
	n.t.Helper()
	r := n.do("GET", "/api/messages?limit=200", token, nil)
	if r.Status != http.StatusOK {
		n.t.Fatalf("list: %d %s", r.Status, r.Raw)
	}
	var out []map[string]any
	for _, m := range r.Body["messages"].([]any) {
		out = append(out, m.(map[string]any))
	}
	return out
}

// admin registers a user, makes them an admin the way an operator does
// (offline), and returns their token.
func (n *testNode) admin(name string) string {
	n.t.Helper()
	n.register(name, "password-"+name)
	n.promote(name)
	return n.login(name, "password-"+name)
}

// promote makes user an admin the way an operator does: offline.
func (n *testNode) promote(user string) {
	n.t.Helper()
	if err := n.srv.Close(); err != nil {
		n.t.Fatal(err)
	}
	if err := daemon.Promote(context.Background(), n.cfg, user); err != nil {
		n.t.Fatal(err)
	}
	n.srv = nil
	n.open()
}

func quietLog() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }
