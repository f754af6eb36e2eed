package node_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/keys"
	"github.com/fednode/fednode/node"
	"github.com/fednode/fednode/ratelimit"
)

// fakeStore is a node.Store where a test states only what it needs: each
// method it sets answers; any other method panics, so a test fails loudly
// if the node touches the store where it should not. (New reads the ban
// list and the saved federation policy: both are empty here unless set.)
type fakeStore struct {
	fednode.Store // nil: methods not set below panic

	PingFn       func(ctx context.Context) error
	CreateUserFn func(ctx context.Context, u fednode.User) error
	touched      atomic.Int32
}

func (f *fakeStore) Bans(context.Context) ([]fednode.Ban, error) { return nil, nil }
func (f *fakeStore) Meta(context.Context, string) ([]byte, error) {
	return nil, fednode.ErrNotFound
}
func (f *fakeStore) Ping(ctx context.Context) error {
	f.touched.Add(1)
	return f.PingFn(ctx)
}
func (f *fakeStore) CreateUser(ctx context.Context, u fednode.User) error {
	f.touched.Add(1)
	return f.CreateUserFn(ctx, u)
}

// mustOpenServer builds a node on fakes, in the manner of WTF Dial's
// MustOpenServer: a real service, with a fake store and in-process limiter,
// broker and keys.
func mustOpenServer(tb testing.TB, store fednode.Store, ready map[string]func(context.Context) error) http.Handler {
	tb.Helper()
	return openServer(tb, store, ready, nil).Handler()
}

// openServer is mustOpenServer's node itself, with set (when not nil)
// changing its configuration first.
func openServer(tb testing.TB, store fednode.Store, ready map[string]func(context.Context) error, set func(*node.Config)) *node.Server {
	tb.Helper()
	cfg := node.DefaultConfig()
	cfg.NodeDomain, cfg.PublicURL = "a.test", "http://a.test"
	cfg.Password = node.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}
	if set != nil {
		set(&cfg)
	}
	i := 0
	kr, err := keys.OpenLocal(tb.TempDir(), keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) { i++; return testkeys.Key(i - 1), nil }})
	if err != nil {
		tb.Fatal(err)
	}
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	s, err := node.New(context.Background(), cfg, node.Deps{
		Store: store, Limiter: ratelimit.NewMemory(time.Now), Broker: node.NewLocalBroker(),
		Keyring: kr, Secrets: node.StaticSecret(strings.Repeat("s", node.MinSecretLen)), Ready: ready,
		Log: quiet, Audit: quiet,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func serve(h http.Handler, method, path, body string) (*httptest.ResponseRecorder, map[string]any) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	h.ServeHTTP(rec, req)
	var out map[string]any
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec, out
}

func errorOf(body map[string]any) (code, message string) {
	e, _ := body["error"].(map[string]any)
	code, _ = e["code"].(string)
	message, _ = e["message"].(string)
	return code, message
}

// TestLivenessTouchesNothing: /healthz answers from the process alone,
// whatever the store would say.
func TestLivenessTouchesNothing(t *testing.T) {
	store := &fakeStore{}
	h := mustOpenServer(t, store, nil)
	if rec, body := serve(h, "GET", "/healthz", ""); rec.Code != 200 || body["status"] != "ok" {
		t.Fatalf("%d %v", rec.Code, body)
	}
	if n := store.touched.Load(); n != 0 {
		t.Fatalf("liveness touched the store %d times", n)
	}
}

// TestReadinessNamesEveryReason: a failed store and a failing dependency
// are both named, with the store's own safe words and not its internals.
func TestReadinessNamesEveryReason(t *testing.T) {
	store := &fakeStore{PingFn: func(context.Context) error {
		return errors.Join(fednode.ErrStoreFailed, errors.New("page 42 at /secret/path is corrupt"))
	}}
	h := mustOpenServer(t, store, map[string]func(context.Context) error{
		"vault": func(context.Context) error { return errors.New("sealed") },
	})
	rec, body := serve(h, "GET", "/readyz", "")
	code, msg := errorOf(body)
	if rec.Code != 503 || code != fednode.EUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("%d %v", rec.Code, body)
	}
	for _, want := range []string{"store: " + fednode.ErrStoreFailed.Message, "vault: sealed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the reason does not say %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "/secret/path") {
		t.Errorf("the reason leaks the store's internals: %s", msg)
	}

	healthy := mustOpenServer(t, &fakeStore{PingFn: func(context.Context) error { return nil }}, map[string]func(context.Context) error{
		"vault": func(context.Context) error { return nil },
	})
	if rec, body := serve(healthy, "GET", "/readyz", ""); rec.Code != 200 || body["store"] != "ok" || body["vault"] != "ok" {
		t.Fatalf("ready: %d %v", rec.Code, body)
	}
}

// TestBadInputNeverReachesTheStore: a registration that breaks the JSON or
// the username rules is refused before any store call.
func TestBadInputNeverReachesTheStore(t *testing.T) {
	store := &fakeStore{}
	h := mustOpenServer(t, store, nil)
	for _, tt := range []struct{ body, code string }{
		{`{"username":"alice","password":"long enough","Username":"eve"}`, fednode.EUnknownField},
		{`{"username":"al ice","password":"long enough"}`, fednode.EInvalidUsername},
		{`{"username":"alice"}`, fednode.EMissingField},
		{`{"username":"alice","password":"short"}`, fednode.EInvalidPassword},
	} {
		rec, body := serve(h, "POST", "/api/auth/register", tt.body)
		if code, _ := errorOf(body); rec.Code != 400 || code != tt.code {
			t.Errorf("%s: %d %v, want 400 %s", tt.body, rec.Code, body, tt.code)
		}
	}
	if n := store.touched.Load(); n != 0 {
		t.Fatalf("refused input touched the store %d times", n)
	}
}

// TestStoreTroubleIsAnswered: a store that cannot answer makes a 503 with
// Retry-After; an unexpected store error a 500 that says nothing of it.
func TestStoreTroubleIsAnswered(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		status int
	}{
		{"failed store", fednode.ErrStoreFailed, 503},
		{"unexpected", errors.New("bolt: page 7: something only the log may say"), 500},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := mustOpenServer(t, &fakeStore{CreateUserFn: func(context.Context, fednode.User) error { return tt.err }}, nil)
			rec, body := serve(h, "POST", "/api/auth/register", `{"username":"alice","password":"long enough"}`)
			if rec.Code != tt.status || strings.Contains(rec.Body.String(), "page 7") {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if tt.status == 503 && rec.Header().Get("Retry-After") == "" {
				t.Fatalf("503 without Retry-After: %v", body)
			}
		})
	}
}

// TestCloseTwice: a second Close (a test's cleanup after a failed start,
// say) waits and returns instead of panicking on a closed channel.
func TestCloseTwice(t *testing.T) {
	srv := openServer(t, &fakeStore{}, nil, nil)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
}
