package outbox_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/bolt"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/keys"
	"github.com/fednode/fednode/outbox"
)

// recorder is an inbox that keeps every envelope and answers each message
// with the status its answer func gives (refused answers carry that code).
type recorder struct {
	mu     sync.Mutex
	envs   []federation.Envelope
	answer func(request int) (status, code string)
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var env federation.Envelope
	json.Unmarshal(body, &env)
	r.mu.Lock()
	r.envs = append(r.envs, env)
	status, code := r.answer(len(r.envs) - 1)
	r.mu.Unlock()
	var res []map[string]string
	for _, m := range env.Messages {
		res = append(res, map[string]string{"id": m.ID, "status": status, "code": code})
	}
	json.NewEncoder(w).Encode(map[string]any{"results": res})
}

func (r *recorder) envelopes() []federation.Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]federation.Envelope(nil), r.envs...)
}

// TestDataKeyReusedAcrossRequests: the outbox seals every request to a
// peer's encryption key under one data key, carried in each envelope's
// keys; after the peer answers unwrap_failed, the retry uses a new one.
func TestDataKeyReusedAcrossRequests(t *testing.T) {
	db, err := bolt.Open(context.Background(), bolt.Options{Dir: t.TempDir(), Timeout: time.Second, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var failNext bool
	rec := &recorder{answer: func(int) (string, string) {
		if failNext {
			failNext = false
			return federation.StatusRefused, federation.CodeUnwrapFailed
		}
		return federation.StatusAccepted, ""
	}}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	inbox, _ := url.Parse(srv.URL + federation.InboxPath)
	domain := strings.TrimPrefix(srv.URL, "http://")
	peer := &federation.Peer{Domain: domain, Inbox: inbox, Enc: federation.Recipient{Domain: domain, EncKeyID: domain + "#enc-" + strings.Repeat("0", 32), EncKey: &testkeys.Key(1).PublicKey}}
	n := 0
	kr, err := keys.OpenLocal(t.TempDir(), keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) { n++; return testkeys.Key(n + 1), nil }})
	if err != nil {
		t.Fatal(err)
	}
	cfg := outbox.Config{Domain: "a.example", Lanes: 1, BatchSize: 2, RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, GiveUpAfter: time.Hour}
	ob := outbox.New(cfg, store{Store: db}, fakePeers{peer}, kr, federation.NewHTTPClient(federation.ClientOptions{AllowPrivate: true}), slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ob.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	var ids []string
	for range 6 {
		ids = append(ids, enqueue(t, db, ob, domain))
	}
	for _, id := range ids {
		waitStatus(t, db, id, fednode.StatusDelivered)
	}
	envs := rec.envelopes()
	if len(envs) < 3 {
		t.Fatalf("%d requests for 6 messages in batches of 2", len(envs))
	}
	first := envs[0].Keys[0]
	for _, e := range envs {
		if len(e.Keys) != 1 || e.Keys[0].ID != first.ID || !bytes.Equal(e.Keys[0].Wrapped, first.Wrapped) {
			t.Fatalf("requests carry different data keys: %+v and %+v", first, e.Keys)
		}
	}

	rec.mu.Lock()
	failNext = true
	rec.mu.Unlock()
	id := enqueue(t, db, ob, domain)
	waitStatus(t, db, id, fednode.StatusDelivered)
	envs = rec.envelopes()
	refused, retried := envs[len(envs)-2], envs[len(envs)-1]
	if refused.Keys[0].ID != first.ID || retried.Messages[0].ID != id {
		t.Fatalf("want the refused request under the kept data key, then the retry: %+v", envs)
	}
	if retried.Keys[0].ID == first.ID || bytes.Equal(retried.Keys[0].Wrapped, first.Wrapped) {
		t.Fatal("after unwrap_failed the retry sent the same wrapped data key again")
	}
}
