package outbox_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
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

// fakePeers resolves every domain to one scripted inbox.
type fakePeers struct{ peer *federation.Peer }

func (f fakePeers) Peer(context.Context, string) (*federation.Peer, error) { return f.peer, nil }
func (f fakePeers) RefreshTrusted(context.Context, string) (*federation.Peer, bool, error) {
	return f.peer, false, nil
}

var _ outbox.Peers = fakePeers{}

// store is the bolt store as the outbox sees it; messages, when set,
// replaces its batch read, so a test can lose a message or fail the read.
type store struct {
	*bolt.Store
	messages func(ctx context.Context, ids []string) (map[string]fednode.Message, error)
}

var _ outbox.Store = store{}

func (s store) Messages(ctx context.Context, ids []string) (map[string]fednode.Message, error) {
	if s.messages != nil {
		return s.messages(ctx, ids)
	}
	return s.Store.Messages(ctx, ids)
}

// scripted is an inbox that answers each request with the next scripted
// status, recording when requests came.
type scripted struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter, ids []string)
	times   []time.Time
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ids := envelopeIDs(r)
	s.mu.Lock()
	s.times = append(s.times, time.Now())
	answer := s.answers[min(len(s.times)-1, len(s.answers)-1)]
	s.mu.Unlock()
	answer(w, ids)
}

func accepted(w http.ResponseWriter, ids []string) {
	var res []map[string]string
	for _, id := range ids {
		res = append(res, map[string]string{"id": id, "status": "accepted"})
	}
	json.NewEncoder(w).Encode(map[string]any{"results": res})
}

func setup(t *testing.T, answers ...func(http.ResponseWriter, []string)) (*bolt.Store, *scripted, *outbox.Outbox, string) {
	t.Helper()
	return setupWith(t, nil, answers...)
}

// setupWith is setup with the outbox's configuration and store adjusted by
// tweak before it starts.
func setupWith(t *testing.T, tweak func(*outbox.Config, *store), answers ...func(http.ResponseWriter, []string)) (*bolt.Store, *scripted, *outbox.Outbox, string) {
	t.Helper()
	db, err := bolt.Open(context.Background(), bolt.Options{Dir: t.TempDir(), Timeout: time.Second, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sc := &scripted{answers: answers}
	srv := httptest.NewServer(sc)
	t.Cleanup(srv.Close)
	inbox, _ := url.Parse(srv.URL + federation.InboxPath)
	domain := strings.TrimPrefix(srv.URL, "http://")
	peer := &federation.Peer{Domain: domain, Inbox: inbox, Enc: federation.Recipient{Domain: domain, EncKeyID: domain + "#enc-" + strings.Repeat("0", 32), EncKey: &testkeys.Key(1).PublicKey}}
	n := 0
	kr, err := keys.OpenLocal(t.TempDir(), keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) { n++; return testkeys.Key(n + 1), nil }})
	if err != nil {
		t.Fatal(err)
	}
	cfg := outbox.Config{Domain: "a.example", Lanes: 1, BatchSize: 16, RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, GiveUpAfter: time.Hour}
	st := store{Store: db}
	if tweak != nil {
		tweak(&cfg, &st)
	}
	ob := outbox.New(cfg, st, fakePeers{peer}, kr, federation.NewHTTPClient(federation.ClientOptions{AllowPrivate: true}), slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ob.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return db, sc, ob, domain
}

func enqueue(t *testing.T, db *bolt.Store, ob *outbox.Outbox, domain string) string {
	t.Helper()
	return enqueueID(t, db, ob, domain, fednode.NewID(time.Now()))
}

func enqueueID(t *testing.T, db *bolt.Store, ob *outbox.Outbox, domain, id string) string {
	t.Helper()
	m := fednode.Message{ID: id, From: fednode.Address{User: "alice", Domain: "a.example"}, To: fednode.Address{User: "bob", Domain: domain},
		Content: "hi", Tags: []string{}, CreatedAt: time.Now(), Status: fednode.StatusQueued}
	if _, err := db.AppendOutgoing(context.Background(), m, "alice"); err != nil {
		t.Fatal(err)
	}
	ob.Notify()
	return m.ID
}

func waitStatus(t *testing.T, db *bolt.Store, id, want string) fednode.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, _ := db.Message(context.Background(), id)
		if m.Status == want {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %q (%s), want %q", m.Status, m.Reason, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	db, sc, ob, domain := setup(t,
		func(w http.ResponseWriter, _ []string) { w.Header().Set("Retry-After", "1"); w.WriteHeader(503) },
		accepted)
	id := enqueue(t, db, ob, domain)
	waitStatus(t, db, id, fednode.StatusDelivered)
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(sc.times) != 2 {
		t.Fatalf("%d attempts, want 2", len(sc.times))
	}
	if gap := sc.times[1].Sub(sc.times[0]); gap < time.Second {
		t.Fatalf("retried after %v despite Retry-After: 1 (the backoff alone is 10ms)", gap)
	}
}

func TestPermanentRefusalIsNotRetried(t *testing.T) {
	db, sc, ob, domain := setup(t, func(w http.ResponseWriter, _ []string) {
		w.WriteHeader(400)
		w.Write([]byte(`{"error":{"code":"invalid_envelope","message":"no"}}`))
	})
	id := enqueue(t, db, ob, domain)
	m := waitStatus(t, db, id, fednode.StatusFailed)
	if !strings.Contains(m.Reason, "400") || !strings.Contains(m.Reason, "invalid_envelope") {
		t.Fatalf("reason %q", m.Reason)
	}
	time.Sleep(100 * time.Millisecond)
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(sc.times) != 1 {
		t.Fatalf("a 400 was retried: %d attempts", len(sc.times))
	}
	if dead, _ := db.DeadLetters(context.Background(), 10); len(dead) != 1 || dead[0].MessageID != id {
		t.Fatalf("dead letters: %+v", dead)
	}
}

func TestRedirectIsRetriedNotFollowed(t *testing.T) {
	followed := make(chan struct{}, 1)
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed <- struct{}{} }))
	defer target.Close()
	db, sc, ob, domain := setup(t,
		func(w http.ResponseWriter, _ []string) { w.Header().Set("Location", target.URL); w.WriteHeader(302) },
		func(w http.ResponseWriter, _ []string) { w.WriteHeader(408) },
		func(w http.ResponseWriter, _ []string) { w.WriteHeader(401) },
		func(w http.ResponseWriter, _ []string) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(403)
			w.Write([]byte(`{"error":{"code":"banned","message":"for a while"}}`))
		},
		accepted)
	id := enqueue(t, db, ob, domain)
	waitStatus(t, db, id, fednode.StatusDelivered)
	select {
	case <-followed:
		t.Fatal("a redirect was followed")
	default:
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(sc.times) != 5 {
		t.Fatalf("302, 408, 401 and a 403 ban must each be retried: %d attempts", len(sc.times))
	}
	if gap := sc.times[4].Sub(sc.times[3]); gap < time.Second {
		t.Fatalf("a ban's Retry-After was not honoured: %v", gap)
	}
}

func TestPerMessageRefusalFailsOnlyThatMessage(t *testing.T) {
	refuse := fednode.NewID(time.Now())
	db, _, ob, domain := setup(t, func(w http.ResponseWriter, ids []string) {
		var res []map[string]string
		for _, id := range ids {
			if id == refuse {
				res = append(res, map[string]string{"id": id, "status": "refused", "code": "unknown_recipient"})
			} else {
				res = append(res, map[string]string{"id": id, "status": "duplicate"})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"results": res})
	})
	enqueueID(t, db, ob, domain, refuse)
	other := enqueue(t, db, ob, domain)
	if m := waitStatus(t, db, refuse, fednode.StatusFailed); !strings.Contains(m.Reason, "unknown_recipient") {
		t.Fatalf("reason %q", m.Reason)
	}
	waitStatus(t, db, other, fednode.StatusDelivered) // a duplicate answer means delivered
}

// TestMissingMessageIsRetriedThenFailed: a job whose message the batch read
// does not return is retried with the jobs before it, holds its pair's lane
// (nothing after it is sent), and fails once GiveUpAfter has passed; then
// the lane goes on.
func TestMissingMessageIsRetriedThenFailed(t *testing.T) {
	lost := fednode.NewID(time.Now())
	var mu sync.Mutex
	var reads [][]string
	db, sc, ob, domain := setupWith(t, func(cfg *outbox.Config, st *store) {
		cfg.GiveUpAfter = 300 * time.Millisecond
		st.messages = func(ctx context.Context, ids []string) (map[string]fednode.Message, error) {
			mu.Lock()
			reads = append(reads, ids)
			mu.Unlock()
			got, err := st.Store.Messages(ctx, ids)
			delete(got, lost)
			return got, err
		}
	}, accepted)
	enqueueID(t, db, ob, domain, lost)
	next := enqueue(t, db, ob, domain)
	m := waitStatus(t, db, lost, fednode.StatusFailed)
	if want := "gave up after 300ms: this node could not read the messages: outbox: message " + lost + ": not_found: not found"; m.Reason != want || m.ReasonCode != fednode.DeliveryGaveUp {
		t.Fatalf("reason %q (%s), want %q (%s)", m.Reason, m.ReasonCode, want, fednode.DeliveryGaveUp)
	}
	waitStatus(t, db, next, fednode.StatusDelivered)
	dead, err := db.DeadLetters(context.Background(), 10)
	if err != nil || len(dead) != 1 || dead[0].MessageID != lost {
		t.Fatalf("dead letters: %+v %v", dead, err)
	}
	sc.mu.Lock()
	times := sc.times
	sc.mu.Unlock()
	if len(times) != 1 || times[0].Before(dead[0].FailedAt) {
		t.Fatalf("requests at %v, the lost message failed at %v; want one request, after it", times, dead[0].FailedAt)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ids := range reads {
		if len(ids) == 2 {
			return // both messages of the batch in one read
		}
	}
	t.Fatalf("the batch was never read at once: %v", reads)
}

// TestStoreErrorRetriesTheBatch: a failed batch read sends nothing and
// retries the batch later.
func TestStoreErrorRetriesTheBatch(t *testing.T) {
	var mu sync.Mutex
	failures := 2
	db, sc, ob, domain := setupWith(t, func(_ *outbox.Config, st *store) {
		st.messages = func(ctx context.Context, ids []string) (map[string]fednode.Message, error) {
			mu.Lock()
			defer mu.Unlock()
			if failures > 0 {
				failures--
				return nil, errors.New("store down")
			}
			return st.Store.Messages(ctx, ids)
		}
	}, accepted)
	id := enqueue(t, db, ob, domain)
	waitStatus(t, db, id, fednode.StatusDelivered)
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(sc.times) != 1 {
		t.Fatalf("%d requests, want 1", len(sc.times))
	}
}

// TestRetriedCountedOnce: messages a peer asks to have again are counted
// as retried once per attempt, by the retry itself, not again by the batch
// that asked.
func TestRetriedCountedOnce(t *testing.T) {
	db := openBolt(t)
	rec := &recorder{answer: func(int) (string, string) { return federation.StatusRetry, "" }}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	domain := strings.TrimPrefix(srv.URL, "http://")
	cfg := slowRetries() // one attempt within the test
	cfg.BatchSize = 4
	ob := outbox.New(cfg, db, peerMap{domain: peerAt(domain, srv.URL, cheapKey())}, freeKeyring{},
		federation.NewHTTPClient(federation.ClientOptions{AllowPrivate: true}), slog.New(slog.DiscardHandler), time.Now)
	var mu sync.Mutex
	var delivered, failed, retried int
	ob.OnEvent(func(_ string, d, f, r int) {
		mu.Lock()
		delivered, failed, retried = delivered+d, failed+f, retried+r
		mu.Unlock()
	})
	fill(t, db, domain, 4, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ob.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 10*time.Second, "the peer's answer", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return retried > 0
	})
	time.Sleep(100 * time.Millisecond) // room for a second count of the same answer
	mu.Lock()
	defer mu.Unlock()
	if len(rec.envelopes()) != 1 || retried != 4 || delivered != 0 || failed != 0 {
		t.Fatalf("%d requests; counted delivered %d, failed %d, retried %d; want one request and 4 retried", len(rec.envelopes()), delivered, failed, retried)
	}
}
