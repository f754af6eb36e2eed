package outbox_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/outbox"
)

// slowRetries never retries within a test: a message that fails in one
// failed at once.
func slowRetries() outbox.Config {
	return outbox.Config{Domain: "a.example", Lanes: 2, BatchSize: 16, RetryBase: time.Hour, RetryMax: time.Hour, GiveUpAfter: 120 * time.Hour}
}

// statuses records what the outbox's status hook is told.
type statuses struct {
	mu  sync.Mutex
	got []outbox.StatusChange
}

func (s *statuses) hook(c []outbox.StatusChange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, c...)
}

func (s *statuses) of(id string) (outbox.StatusChange, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.got {
		if c.MessageID == id {
			return c, true
		}
	}
	return outbox.StatusChange{}, false
}

func refusedAs(code string) func(http.ResponseWriter, []string) {
	return func(w http.ResponseWriter, ids []string) {
		var res []federation.Result
		for _, id := range ids {
			res = append(res, federation.Result{ID: id, Status: federation.StatusRefused, Code: code})
		}
		json.NewEncoder(w).Encode(federation.Answer{Results: res})
	}
}

// TestPermanentCausesFailAtOnce: a peer the policy refuses, a peer that
// resolves only to private addresses (not allowed), a peer whose node
// document does not validate, and a peer with no such recipient fail the
// message at once with their reason code, though retries are an hour apart
// and give up after five days; the sender is told through the status hook.
func TestPermanentCausesFailAtOnce(t *testing.T) {
	inbox := &scripted{answers: []func(http.ResponseWriter, []string){refusedAs(fednode.ERecipient)}}
	srv := httptest.NewServer(inbox)
	t.Cleanup(srv.Close)
	domain := strings.TrimPrefix(srv.URL, "http://")
	badDoc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", federation.DocumentMediaType)
		io.WriteString(w, `{"protocol":"not-fednode"}`)
	}))
	t.Cleanup(badDoc.Close)
	badDomain := strings.TrimPrefix(badDoc.URL, "http://")
	open := federation.NewHTTPClient(federation.ClientOptions{AllowPrivate: true})
	for _, tc := range []struct {
		name     string
		code     string
		domain   string
		allowed  bool
		client   *http.Client
		peers    outbox.Peers
		inReason string
	}{
		{"policy refuses the peer", fednode.DeliveryPolicyRefused, domain, false, open, peerMap{domain: peerAt(domain, srv.URL, cheapKey())}, "federation policy"},
		{"peer resolves to a private address", fednode.DeliveryPrivateAddress, domain, true,
			federation.NewHTTPClient(federation.ClientOptions{}), peerMap{domain: peerAt(domain, srv.URL, cheapKey())}, "private"},
		{"peer publishes an invalid node document", fednode.DeliveryInvalidDocument, badDomain, true, open,
			federation.NewDirectory(open, "http", time.Hour, time.Minute, time.Now, nil), "valid node document"},
		{"peer has no such recipient", fednode.DeliveryUnknownRecipient, domain, true, open, peerMap{domain: peerAt(domain, srv.URL, cheapKey())}, "unknown_recipient"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openBolt(t)
			cfg := slowRetries()
			cfg.Allowed = func(string) bool { return tc.allowed }
			seen := &statuses{}
			ob := startOutboxWith(t, cfg, db, tc.peers, freeKeyring{}, tc.client, seen.hook)
			id := enqueue(t, db, ob, tc.domain)
			m := waitStatus(t, db, id, fednode.StatusFailed)
			if m.ReasonCode != tc.code || !strings.Contains(m.Reason, tc.inReason) {
				t.Fatalf("failed with %s (%q), want %s naming %q", m.ReasonCode, m.Reason, tc.code, tc.inReason)
			}
			if dead, _ := db.DeadLetters(context.Background(), 10); len(dead) != 1 || dead[0].Code != tc.code {
				t.Fatalf("dead letters: %+v", dead)
			}
			waitFor(t, 5*time.Second, "the status hook", func() bool { _, ok := seen.of(id); return ok })
			if c, _ := seen.of(id); c.Sender != "alice" || c.Status != fednode.StatusFailed || c.Code != tc.code || c.Reason != m.Reason {
				t.Fatalf("status hook told %+v", c)
			}
		})
	}
}

// TestQueuedMessageShowsItsAttemptsAndWakeEndsTheBackoff: a peer that
// answers 503 leaves the message queued with its attempt, the last error
// and its code, and the peer's next attempt an hour away kept in the
// store; Wake (retry now, or the peer delivered to us) sends it at once
// and clears the next attempt; a second Wake does nothing.
func TestQueuedMessageShowsItsAttemptsAndWakeEndsTheBackoff(t *testing.T) {
	unavailable := func(w http.ResponseWriter, _ []string) {
		http.Error(w, `{"code":"unavailable"}`, http.StatusServiceUnavailable)
	}
	db, sc, ob, domain := setupWith(t, func(c *outbox.Config, _ *store) { c.RetryBase, c.RetryMax = time.Hour, time.Hour }, unavailable, accepted)
	ctx := context.Background()
	id := enqueue(t, db, ob, domain)
	var j fednode.Job
	waitFor(t, 10*time.Second, "the first attempt", func() bool {
		var err error
		j, err = db.OutgoingJob(ctx, domain, id)
		return err == nil && j.Attempts == 1
	})
	if j.LastCode != fednode.DeliveryUnavailable || !strings.Contains(j.LastError, "503") || !strings.Contains(j.LastError, domain) {
		t.Fatalf("last error %s %q", j.LastCode, j.LastError)
	}
	var next time.Time
	waitFor(t, 5*time.Second, "the next attempt time", func() bool {
		v, _ := db.Meta(ctx, outbox.NextAttemptKey(domain))
		next = outbox.ParseNextAttempt(v)
		return !next.IsZero()
	})
	if d := time.Until(next); d < 40*time.Minute || d > 80*time.Minute {
		t.Fatalf("next attempt in %s, want about an hour", d)
	}
	waitFor(t, 5*time.Second, "the outbox to see the queue", func() bool { return ob.Waiting(domain) })
	if !ob.Wake(ctx, domain) {
		t.Fatal("Wake: the peer was backing off")
	}
	waitStatus(t, db, id, fednode.StatusDelivered)
	if v, _ := db.Meta(ctx, outbox.NextAttemptKey(domain)); !outbox.ParseNextAttempt(v).IsZero() {
		t.Fatalf("the next attempt time stays %q after the peer answered", v)
	}
	if ob.Wake(ctx, domain) {
		t.Fatal("a second Wake: the peer was not backing off")
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(sc.times) != 2 {
		t.Fatalf("%d requests, want 2", len(sc.times))
	}
}

// arrivals is an inbox that accepts everything and records the order
// messages arrived in.
type arrivals struct {
	mu  sync.Mutex
	ids []string
}

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ids := envelopeIDs(r)
	a.mu.Lock()
	a.ids = append(a.ids, ids...)
	a.mu.Unlock()
	accepted(w, ids)
}

// TestRedrivenMessagesGoInOrder: messages of one conversation failed by
// the policy, redriven once the peer is allowed, reach it in the order
// they were written, each once.
func TestRedrivenMessagesGoInOrder(t *testing.T) {
	db := openBolt(t)
	peer := &arrivals{}
	srv := httptest.NewServer(peer)
	t.Cleanup(srv.Close)
	domain := strings.TrimPrefix(srv.URL, "http://")
	var allowed atomic.Bool
	cfg := slowRetries()
	cfg.Allowed = func(string) bool { return allowed.Load() }
	ob := startOutbox(t, cfg, db, peerMap{domain: peerAt(domain, srv.URL, cheapKey())}, freeKeyring{})
	var ids []string
	for range 20 {
		ids = append(ids, enqueue(t, db, ob, domain))
		time.Sleep(time.Millisecond) // ids a millisecond apart sort by time
	}
	for _, id := range ids {
		waitStatus(t, db, id, fednode.StatusFailed)
	}
	allowed.Store(true)
	got, err := db.RedriveDeadLetters(context.Background(), fednode.DeadLetterFilter{Peer: domain}, time.Now())
	if err != nil || len(got) != len(ids) {
		t.Fatalf("redrive: %d, %v", len(got), err)
	}
	ob.Notify()
	for _, id := range ids {
		waitStatus(t, db, id, fednode.StatusDelivered)
	}
	peer.mu.Lock()
	defer peer.mu.Unlock()
	if strings.Join(peer.ids, ",") != strings.Join(ids, ",") {
		t.Fatalf("arrived in order %v, want %v", peer.ids, ids)
	}
}
