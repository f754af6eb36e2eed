package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// orderedInbox is a peer that checks the protocol's ordering promises as
// it receives (docs/PROTOCOL.md 2.5): each message of a pair arrives only
// after every earlier one of that pair was accepted, none arrives again
// once accepted, and no two requests in flight carry the same pair. Its
// answers are scripted: every fifth request is refused whole (503), and
// every third answers retry for the messages from the middle of the batch
// on, so that retried messages must go out again, first.
type orderedInbox struct {
	t *testing.T

	mu       sync.Mutex
	index    map[string]int    // message id -> its place in its pair's order
	pairOf   map[string]string // message id -> pair
	queued   map[string]int    // pair -> messages expected
	accepted map[string]int    // pair -> messages accepted so far
	inFlight map[string]bool   // pairs in a request being answered
	got      map[string]int    // message id -> times accepted
	requests int
}

func newOrderedInbox(t *testing.T) *orderedInbox {
	return &orderedInbox{t: t, index: map[string]int{}, pairOf: map[string]string{}, queued: map[string]int{},
		accepted: map[string]int{}, inFlight: map[string]bool{}, got: map[string]int{}}
}

// expect records m as the next message of its pair.
func (p *orderedInbox) expect(m fednode.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pair := m.From.String() + "|" + m.To.String()
	p.index[m.ID], p.pairOf[m.ID] = p.queued[pair], pair
	p.queued[pair]++
}

func (p *orderedInbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var env federation.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		p.t.Errorf("envelope: %v", err)
		w.WriteHeader(400)
		return
	}
	p.mu.Lock()
	p.requests++
	n := p.requests
	pairs := map[string]bool{}
	for _, m := range env.Messages {
		pair := p.pairOf[m.ID]
		if p.inFlight[pair] && !pairs[pair] {
			p.t.Errorf("pair %s is in two requests at once", pair)
		}
		pairs[pair] = true
	}
	for pair := range pairs {
		p.inFlight[pair] = true
	}
	p.mu.Unlock()
	time.Sleep(time.Millisecond) // let other lanes' requests overlap this one
	p.mu.Lock()
	defer p.mu.Unlock()
	for pair := range pairs {
		delete(p.inFlight, pair)
	}
	if n%5 == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	cut := len(env.Messages)
	if n%3 == 0 {
		cut = len(env.Messages) / 2
	}
	var res []federation.Result
	for i, m := range env.Messages {
		pair := p.pairOf[m.ID]
		if p.got[m.ID] > 0 {
			p.t.Errorf("message %s (#%d of %s) sent again after it was accepted", m.ID, p.index[m.ID], pair)
		}
		if want := p.accepted[pair]; p.index[m.ID] != want && i < cut {
			p.t.Errorf("pair %s: got its message #%d, want #%d next", pair, p.index[m.ID], want)
		}
		if i >= cut {
			res = append(res, federation.Result{ID: m.ID, Status: federation.StatusRetry})
			continue
		}
		p.got[m.ID]++
		p.accepted[pair]++
		res = append(res, federation.Result{ID: m.ID, Status: federation.StatusAccepted})
	}
	json.NewEncoder(w).Encode(federation.Answer{Results: res})
}

// TestDeepQueuePairOrderAndExactlyOnce: 2,000 jobs over 50 pairs and 4
// lanes, half queued before the outbox starts and half while it runs,
// through envelopes refused whole and messages answered retry: every
// message is accepted once, each pair's in the order they were queued,
// and no pair is ever in two requests at once.
func TestDeepQueuePairOrderAndExactlyOnce(t *testing.T) {
	db := openBolt(t)
	peer := newOrderedInbox(t)
	srv := httptest.NewServer(peer)
	t.Cleanup(srv.Close)
	domain := strings.TrimPrefix(srv.URL, "http://")
	var ids []string
	enqueue := func(i int) {
		t.Helper()
		m := outgoing(domain, i, 50)
		peer.expect(m)
		if _, err := db.AppendOutgoing(context.Background(), m, m.From.User); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	for i := range 1000 {
		enqueue(i)
	}
	cfg := outbox.Config{Domain: "a.example", Lanes: 4, BatchSize: 16, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond, GiveUpAfter: time.Hour}
	ob := startOutbox(t, cfg, db, peerMap{domain: peerAt(domain, srv.URL, cheapKey())}, freeKeyring{})
	for i := 1000; i < 2000; i++ {
		enqueue(i)
		ob.Notify()
	}
	for _, id := range ids {
		waitStatus(t, db, id, fednode.StatusDelivered)
	}
	peer.mu.Lock()
	defer peer.mu.Unlock()
	for _, id := range ids {
		if peer.got[id] != 1 {
			t.Fatalf("message %s accepted %d times", id, peer.got[id])
		}
	}
	if len(peer.accepted) != 50 {
		t.Fatalf("%d pairs accepted, want 50", len(peer.accepted))
	}
	if jobs, err := db.PeerJobs(context.Background(), domain, 0, 10); err != nil || len(jobs) != 0 {
		t.Fatalf("jobs left: %+v, %v", jobs, err)
	}
}

// TestRoundReadsEachJobOnce: draining a queue of 2,000 jobs over 4 lanes
// reads each job from the store once, not once per batch.
func TestRoundReadsEachJobOnce(t *testing.T) {
	db := openBolt(t)
	peer := &counter{}
	srv := httptest.NewServer(peer)
	t.Cleanup(srv.Close)
	domain := strings.TrimPrefix(srv.URL, "http://")
	fill(t, db, domain, 2000, 50)
	st := &readCounter{Store: db}
	cfg := outbox.Config{Domain: "a.example", Lanes: 4, BatchSize: 16, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond, GiveUpAfter: time.Hour}
	startOutbox(t, cfg, st, peerMap{domain: peerAt(domain, srv.URL, cheapKey())}, freeKeyring{})
	waitFor(t, time.Minute, "2,000 deliveries", func() bool { return peer.messages.Load() >= 2000 })
	waitFor(t, 10*time.Second, "the queue to empty", func() bool {
		jobs, err := db.PeerJobs(context.Background(), domain, 0, 1)
		return err == nil && len(jobs) == 0
	})
	if got := peer.messages.Load(); got != 2000 {
		t.Fatalf("%d messages delivered, want 2000", got)
	}
	if read := st.read.Load(); read != 2000 {
		t.Fatalf("the outbox read %d jobs from the store to deliver 2,000 (%d requests)", read, peer.requests.Load())
	}
}

// gatedInbox accepts everything, but holds each request until the test
// lets it go, and records how many messages each carried.
type gatedInbox struct {
	arrived chan int
	release chan struct{}
}

func (g *gatedInbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ids := envelopeIDs(r)
	g.arrived <- len(ids)
	<-g.release
	accepted(w, ids)
}

// TestBatchesGrowWhileARequestIsInFlight: a lane sends a lone job at once,
// without waiting for company; the jobs queued while that request is in
// flight go out together next, BatchSize at a time.
func TestBatchesGrowWhileARequestIsInFlight(t *testing.T) {
	db := openBolt(t)
	peer := &gatedInbox{arrived: make(chan int, 10), release: make(chan struct{})}
	srv := httptest.NewServer(peer)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(peer.release) })
	domain := strings.TrimPrefix(srv.URL, "http://")
	st := &readCounter{Store: db}
	cfg := outbox.Config{Domain: "a.example", Lanes: 1, BatchSize: 16, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond, GiveUpAfter: time.Hour}
	ob := startOutbox(t, cfg, st, peerMap{domain: peerAt(domain, srv.URL, cheapKey())}, freeKeyring{})
	send := func(i int) {
		m := outgoing(domain, i, 3)
		if _, err := db.AppendOutgoing(context.Background(), m, m.From.User); err != nil {
			t.Fatal(err)
		}
		ob.Notify()
	}
	send(0)
	if n := <-peer.arrived; n != 1 {
		t.Fatalf("the first request carried %d messages, want the one queued", n)
	}
	for i := 1; i <= 20; i++ {
		send(i)
	}
	waitFor(t, 10*time.Second, "the outbox to read the 20 new jobs", func() bool { return st.read.Load() >= 21 })
	var sizes []int
	for len(sizes) < 2 {
		peer.release <- struct{}{}
		sizes = append(sizes, <-peer.arrived)
	}
	if fmt.Sprint(sizes) != "[16 4]" {
		t.Fatalf("after the lone job, requests carried %v messages, want [16 4]", sizes)
	}
}

// TestDeadPeersDoNotHoldAHealthyOne: ten peers that never answer, each
// with jobs queued, hold only their own lanes: a healthy peer's messages
// are all delivered meanwhile.
func TestDeadPeersDoNotHoldAHealthyOne(t *testing.T) {
	db := openBolt(t)
	peer := &counter{}
	srv := httptest.NewServer(peer)
	t.Cleanup(srv.Close)
	domain := strings.TrimPrefix(srv.URL, "http://")
	peers := peerMap{domain: peerAt(domain, srv.URL, cheapKey())}
	for i := range 10 {
		d := fmt.Sprintf("dead%d.example", i)
		peers[d] = peerAt(d, deadInbox(t, true), cheapKey())
		fill(t, db, d, 100, 10)
	}
	cfg := outbox.Config{Domain: "a.example", Lanes: 4, BatchSize: 16, RetryBase: time.Second, RetryMax: time.Minute, GiveUpAfter: time.Hour}
	ob := startOutbox(t, cfg, db, peers, freeKeyring{})
	for i := range 300 {
		m := outgoing(domain, i, 20)
		if _, err := db.AppendOutgoing(context.Background(), m, m.From.User); err != nil {
			t.Fatal(err)
		}
		ob.Notify()
	}
	waitFor(t, 20*time.Second, "the healthy peer's 300 messages", func() bool { return peer.messages.Load() >= 300 })
}

// finishFails is the bolt store with its first FinishJobs failing.
type finishFails struct {
	*readCounter
	failed atomic.Bool
}

func (s *finishFails) FinishJobs(ctx context.Context, peer string, results []fednode.JobResult, now time.Time) error {
	if !s.failed.Swap(true) {
		return errors.New("disk full")
	}
	return s.readCounter.FinishJobs(ctx, peer, results, now)
}

// TestUnrecordedAnswerIsDeliveredAgain: when the peer's answer cannot be
// recorded, the lane stops and the next round sends the batch again (the
// peer answers duplicate); nothing is lost, and the lane is not stuck.
func TestUnrecordedAnswerIsDeliveredAgain(t *testing.T) {
	db := openBolt(t)
	peer := &counter{}
	srv := httptest.NewServer(peer)
	t.Cleanup(srv.Close)
	domain := strings.TrimPrefix(srv.URL, "http://")
	var ids []string
	for i := range 5 {
		m := outgoing(domain, i, 1)
		if _, err := db.AppendOutgoing(context.Background(), m, m.From.User); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	st := &finishFails{readCounter: &readCounter{Store: db}}
	cfg := outbox.Config{Domain: "a.example", Lanes: 2, BatchSize: 16, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond, GiveUpAfter: time.Hour}
	startOutbox(t, cfg, st, peerMap{domain: peerAt(domain, srv.URL, cheapKey())}, freeKeyring{})
	for _, id := range ids {
		waitStatus(t, db, id, fednode.StatusDelivered)
	}
	if got := peer.messages.Load(); got != 10 {
		t.Fatalf("the peer got %d messages, want the 5 twice", got)
	}
}
