// Package outbox delivers accepted messages to their recipients' nodes.
//
// Jobs wait in the store, written with their message in one transaction, and
// leave it only when the peer has answered for them (or the node gives up),
// so delivery is at-least-once across crashes; the receiving node
// deduplicates by message id.
//
// Each peer is served by its own workers: a dead or slow peer only holds its
// own lanes. A peer has up to Lanes requests in flight; the jobs of one
// sender–recipient pair always go to the same lane, which sends them in
// order, a batch (one envelope) at a time.
//
// The protocol's half of a request (signing, posting, reading the answer,
// and which refusals are for good) is federation.Deliver's; the outbox
// decides what happens next. A refusal for good, or a per-message refusal,
// fails the message at once. A temporary failure backs the whole peer off
// exponentially with jitter, never sooner than the peer's Retry-After; the
// schedule is in docs/PROTOCOL.md 2.5. After GiveUpAfter a message is failed
// and kept as a dead letter.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/keys"
)

// Store is what the outbox needs from storage.
type Store interface {
	PendingPeers(ctx context.Context) ([]string, error)
	PeerJobs(ctx context.Context, peer string, limit int) ([]fednode.Job, error)
	NoteAttempt(ctx context.Context, peer string, seqs []uint64, reason string) error
	FinishJobs(ctx context.Context, peer string, results []fednode.JobResult, now time.Time) error
	Message(ctx context.Context, id string) (fednode.Message, error)
}

// Peers resolves peer node documents.
type Peers interface {
	Peer(ctx context.Context, domain string) (*federation.Peer, error)
	// RefreshTrusted refetches a peer's document early, on the budget only
	// the peer's own answers can spend.
	RefreshTrusted(ctx context.Context, domain string) (*federation.Peer, bool, error)
}

// Config tunes delivery.
type Config struct {
	Domain      string        // this node's domain
	Lanes       int           // requests in flight per peer
	BatchSize   int           // messages per envelope
	RetryBase   time.Duration // first retry delay
	RetryMax    time.Duration // longest delay between retries
	GiveUpAfter time.Duration // how long a message is retried before it fails
	Allowed     func(domain string) bool
	// Lease, when set, must grant a peer before this replica serves it and
	// be renewed while it does (every LeaseTTL/3); Release gives it up. With
	// several replicas on one store this is what makes each job delivered by
	// exactly one of them, and a dead holder's peers are taken over when its
	// lease lapses.
	Lease    func(ctx context.Context, peer string) (bool, error)
	Release  func(ctx context.Context, peer string)
	LeaseTTL time.Duration
}

// Outbox is the delivery engine.
type Outbox struct {
	cfg     Config
	store   Store
	peers   Peers
	keyring keys.Keyring
	client  *http.Client
	log     *slog.Logger
	now     func() time.Time
	notify  chan struct{}
	onEvent func(peer string, delivered, failed, retried int) // metrics hook; may be nil

	mu     sync.Mutex
	states map[string]*peerState
	wg     sync.WaitGroup
}

type peerState struct {
	running  bool
	dirty    bool // new work arrived while running
	next     time.Time
	failures int
}

// New returns an outbox; Run starts it.
func New(cfg Config, store Store, peers Peers, kr keys.Keyring, client *http.Client, log *slog.Logger, now func() time.Time) *Outbox {
	if cfg.Lanes < 1 {
		cfg.Lanes = 1
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > federation.MaxEnvelopeMsgs {
		cfg.BatchSize = 16
	}
	if cfg.Allowed == nil {
		cfg.Allowed = func(string) bool { return true }
	}
	return &Outbox{cfg: cfg, store: store, peers: peers, keyring: kr, client: client, log: log, now: now,
		notify: make(chan struct{}, 1), states: map[string]*peerState{}}
}

// OnEvent sets a hook called after each request with its outcome counts.
func (o *Outbox) OnEvent(fn func(peer string, delivered, failed, retried int)) { o.onEvent = fn }

// Notify tells the outbox new jobs were enqueued.
func (o *Outbox) Notify() {
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// Run schedules deliveries until ctx ends, then waits for in-flight
// requests to finish.
func (o *Outbox) Run(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	defer o.wg.Wait()
	for {
		o.schedule(ctx)
		select {
		case <-ctx.Done():
			return
		case <-o.notify:
		case <-tick.C:
		}
	}
}

func (o *Outbox) schedule(ctx context.Context) {
	peers, err := o.store.PendingPeers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("outbox: pending peers", "err", err)
		}
		return
	}
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range peers {
		st := o.states[p]
		if st == nil {
			st = &peerState{}
			o.states[p] = st
		}
		if st.running {
			st.dirty = true
			continue
		}
		if now.Before(st.next) {
			continue
		}
		if o.cfg.Lease != nil {
			held, err := o.cfg.Lease(ctx, p)
			if err != nil || !held {
				continue // another replica serves this peer, or the store is down
			}
		}
		st.running = true
		o.wg.Add(1)
		go o.servePeer(ctx, p, st)
	}
}

// servePeer runs the peer's lanes until its queue is empty or it backs off,
// renewing the peer's lease meanwhile; losing the lease stops the lanes.
func (o *Outbox) servePeer(parent context.Context, peer string, st *peerState) {
	defer o.wg.Done()
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	if o.cfg.Lease != nil {
		defer o.cfg.Release(context.WithoutCancel(parent), peer)
		go func() {
			t := time.NewTicker(o.cfg.LeaseTTL / 3)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if held, err := o.cfg.Lease(ctx, peer); err != nil || !held {
						o.log.Warn("outbox: lost the lease of a peer; stopping", "peer", peer, "err", err)
						cancel()
						return
					}
				}
			}
		}()
	}
	for {
		var wg sync.WaitGroup
		for lane := 0; lane < o.cfg.Lanes; lane++ {
			wg.Add(1)
			go func(lane int) {
				defer wg.Done()
				o.serveLane(ctx, peer, lane, st)
			}(lane)
		}
		wg.Wait()
		o.mu.Lock()
		again := st.dirty && !o.now().Before(st.next) && ctx.Err() == nil
		st.dirty = false
		if !again {
			st.running = false
			o.mu.Unlock()
			return
		}
		o.mu.Unlock()
	}
}

func laneOf(pair string, lanes int) int {
	h := fnv.New32a()
	h.Write([]byte(pair))
	return int(h.Sum32() % uint32(lanes))
}

// scanLimit bounds how far into a peer's queue a lane looks for its jobs.
const scanLimit = 1024

func (o *Outbox) serveLane(ctx context.Context, peer string, lane int, st *peerState) {
	for ctx.Err() == nil {
		o.mu.Lock()
		backingOff := o.now().Before(st.next)
		o.mu.Unlock()
		if backingOff {
			return
		}
		jobs, err := o.store.PeerJobs(ctx, peer, scanLimit)
		if err != nil {
			o.log.Error("outbox: read jobs", "peer", peer, "err", err)
			return
		}
		var batch []fednode.Job
		for _, j := range jobs {
			if laneOf(j.Pair, o.cfg.Lanes) == lane {
				batch = append(batch, j)
				if len(batch) == o.cfg.BatchSize {
					break
				}
			}
		}
		if len(batch) == 0 {
			return
		}
		batch, msgs, err := o.fit(ctx, batch)
		if err != nil {
			o.retry(ctx, peer, batch, &attemptError{reason: err.Error()}, st, o.now())
			return
		}
		if !o.deliver(ctx, peer, batch, msgs, st) {
			return
		}
	}
}

// worstCaseBytes bounds one message's share of an envelope: content
// JSON-escaped at up to 6 bytes a character, base64 (4/3), plus metadata, a
// wrapped key and tags.
func worstCaseBytes(m fednode.Message) int {
	return len(m.Content)*6*4/3 + 2048
}

// fit loads a batch's messages, shortening the batch so that its envelope
// stays under the inbox's cap. On a store error it returns the batch up to
// the message that failed, for retrying.
func (o *Outbox) fit(ctx context.Context, batch []fednode.Job) ([]fednode.Job, []fednode.Message, error) {
	total := 1024
	msgs := make([]fednode.Message, 0, len(batch))
	for i, j := range batch {
		m, err := o.store.Message(ctx, j.MessageID)
		if err != nil {
			return batch[:i+1], nil, fmt.Errorf("outbox: message %s: %w", j.MessageID, err)
		}
		total += worstCaseBytes(m)
		if total > federation.MaxEnvelopeBytes && i > 0 {
			return batch[:i], msgs, nil
		}
		msgs = append(msgs, m)
	}
	return batch, msgs, nil
}

// attemptError is the outcome of a request that delivered nothing, as the
// outbox's retry policy sees it.
type attemptError struct {
	reason     string
	retryAfter time.Duration
	permanent  bool
}

func (e *attemptError) Error() string { return e.reason }

// deliver sends one batch and records the outcome. It reports whether the
// lane may go on (false after a retryable failure).
func (o *Outbox) deliver(ctx context.Context, peer string, batch []fednode.Job, msgs []fednode.Message, st *peerState) bool {
	now := o.now()
	if !o.cfg.Allowed(peer) {
		o.finish(ctx, peer, batch, fednode.StatusFailed, "this node does not federate with "+peer)
		return true
	}
	results, err := o.send(ctx, peer, msgs)
	if ctx.Err() != nil {
		return false
	}
	var ae *attemptError
	if err != nil && !errors.As(err, &ae) {
		ae = &attemptError{reason: err.Error()}
	}
	if ae != nil && ae.permanent {
		o.finish(ctx, peer, batch, fednode.StatusFailed, ae.reason)
		return true
	}
	if ae != nil {
		o.retry(ctx, peer, batch, ae, st, now)
		return false
	}
	// Per-message answers.
	var done []fednode.JobResult
	var again []fednode.Job
	delivered, failed, unwrapFailed := 0, 0, 0
	for _, j := range batch {
		r, ok := results[j.MessageID]
		switch {
		case ok && (r.Status == federation.StatusAccepted || r.Status == federation.StatusDuplicate):
			done = append(done, fednode.JobResult{Seq: j.Seq, MessageID: j.MessageID, Status: fednode.StatusDelivered})
			delivered++
		case ok && r.Status == federation.StatusRefused && r.Code == federation.CodeUnwrapFailed:
			again = append(again, j)
			unwrapFailed++
		case ok && r.Status == federation.StatusRefused:
			done = append(done, fednode.JobResult{Seq: j.Seq, MessageID: j.MessageID, Status: fednode.StatusFailed, Reason: "refused by " + peer + ": " + r.Code})
			failed++
		default: // retry, an unknown status, or no answer for it
			again = append(again, j)
		}
	}
	if err := o.store.FinishJobs(ctx, peer, done, now); err != nil {
		o.log.Error("outbox: finish jobs", "peer", peer, "err", err)
		return false
	}
	o.mu.Lock()
	st.failures = 0
	o.mu.Unlock()
	if len(again) > 0 {
		reason := fmt.Sprintf("%s asked to retry %d messages later", peer, len(again))
		if unwrapFailed > 0 {
			// The peer could not unwrap: our copy of its keys is stale.
			o.peers.RefreshTrusted(ctx, peer)
			reason = fmt.Sprintf("%s could not unwrap %d of %d messages; its keys were refetched", peer, unwrapFailed, len(again))
		}
		o.retry(ctx, peer, again, &attemptError{reason: reason}, st, now)
		o.event(peer, delivered, failed, len(again))
		return false
	}
	o.event(peer, delivered, failed, 0)
	return true
}

func (o *Outbox) event(peer string, delivered, failed, retried int) {
	if o.onEvent != nil {
		o.onEvent(peer, delivered, failed, retried)
	}
}

func (o *Outbox) finish(ctx context.Context, peer string, batch []fednode.Job, status, reason string) {
	res := make([]fednode.JobResult, len(batch))
	for i, j := range batch {
		res[i] = fednode.JobResult{Seq: j.Seq, MessageID: j.MessageID, Status: status, Reason: reason}
	}
	if err := o.store.FinishJobs(ctx, peer, res, o.now()); err != nil {
		o.log.Error("outbox: finish jobs", "peer", peer, "err", err)
		return
	}
	o.log.Warn("outbox: delivery failed", "peer", peer, "messages", len(batch), "reason", reason)
	o.event(peer, 0, len(batch), 0)
}

// retry records the failure, fails what is too old, and backs the peer off.
func (o *Outbox) retry(ctx context.Context, peer string, batch []fednode.Job, ae *attemptError, st *peerState, now time.Time) {
	var keep []uint64
	var expired []fednode.Job
	for _, j := range batch {
		if now.Sub(j.EnqueuedAt) >= o.cfg.GiveUpAfter {
			expired = append(expired, j)
		} else {
			keep = append(keep, j.Seq)
		}
	}
	if len(expired) > 0 {
		o.finish(ctx, peer, expired, fednode.StatusFailed, fmt.Sprintf("gave up after %s: %s", o.cfg.GiveUpAfter, ae.reason))
	}
	if err := o.store.NoteAttempt(ctx, peer, keep, ae.reason); err != nil {
		o.log.Error("outbox: note attempt", "peer", peer, "err", err)
	}
	o.mu.Lock()
	st.failures++
	delay := Backoff(o.cfg.RetryBase, o.cfg.RetryMax, st.failures)
	// Never sooner than the peer's Retry-After (which federation caps),
	// counted from the answer, not the attempt, as Retry-After is.
	delay = max(delay, ae.retryAfter)
	st.next = o.now().Add(delay)
	o.mu.Unlock()
	o.log.Info("outbox: will retry", "peer", peer, "messages", len(keep), "in", delay.Round(time.Millisecond).String(), "reason", ae.reason)
	o.event(peer, 0, 0, len(keep))
}

// Backoff is the delay before retry number n (1 for the first): base·2^(n-1)
// capped at max, then a uniformly random jitter of ±20%.
func Backoff(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return d + jitter
}

// requestTimeout bounds one delivery: signing, the request and its answer.
const requestTimeout = 30 * time.Second

// send seals and delivers one envelope and returns the peer's per-message
// results.
func (o *Outbox) send(ctx context.Context, peer string, msgs []fednode.Message) (map[string]federation.Result, error) {
	p, err := o.peers.Peer(ctx, peer)
	if err != nil {
		return nil, &attemptError{reason: "peer document: " + err.Error()}
	}
	env, err := federation.SealMessages(o.cfg.Domain, p.Enc, msgs)
	if err != nil {
		return nil, &attemptError{reason: "seal: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	answer, err := federation.Deliver(ctx, o.client, o.keyring, p.Inbox, env, o.now)
	if err != nil {
		return nil, attemptOf(peer, err)
	}
	m := make(map[string]federation.Result, len(answer.Results))
	for _, r := range answer.Results {
		m[r.ID] = r
	}
	return m, nil
}

// attemptOf maps a failed delivery onto the retry policy: the peer's
// verdict (temporary or for good, Retry-After) is federation's to read.
func attemptOf(peer string, err error) *attemptError {
	var de *federation.DeliveryError
	if !errors.As(err, &de) {
		return &attemptError{reason: err.Error()}
	}
	ae := &attemptError{reason: de.Reason, retryAfter: de.RetryAfter, permanent: !de.Temporary}
	if ae.permanent && de.Status != 0 {
		ae.reason = "refused by " + peer + ": " + de.Reason
	}
	return ae
}
