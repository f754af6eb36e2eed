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
// order, a batch (one envelope) at a time. One reader per peer reads the
// queue forward from a cursor and deals the jobs to the lanes (round.go),
// so picking a batch costs the same however deep the queue is. A lane
// sends whatever it holds, up to BatchSize, at once: batches are small
// when the queue is shallow and grow while requests are in flight.
//
// The protocol's half of a request (signing, posting, reading the answer,
// and which refusals are for good) is federation.Deliver's; the outbox
// decides what happens next (reasons.go). A permanent cause fails the
// message at once: a refusal for good or a per-message refusal, a peer
// the federation policy refuses, a peer that resolves only to addresses
// the node may not reach, a peer whose node document does not validate. A temporary failure backs the whole peer off
// exponentially with jitter, never sooner than the peer's Retry-After; the
// schedule is in docs/PROTOCOL.md 2.5. After GiveUpAfter a message is failed
// and kept as a dead letter.
package outbox

import (
	"context"
	"hash/fnv"
	"log/slog"
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
	PeerJobs(ctx context.Context, peer string, after uint64, limit int) ([]fednode.Job, error)
	NoteAttempt(ctx context.Context, peer string, seqs []uint64, code, reason string) error
	FinishJobs(ctx context.Context, peer string, results []fednode.JobResult, now time.Time) error
	// Messages returns every stored message among ids, keyed by id; an
	// absent id is simply missing from the map.
	Messages(ctx context.Context, ids []string) (map[string]fednode.Message, error)
	// SetMeta keeps a peer's next attempt time (NextAttemptKey).
	SetMeta(ctx context.Context, key string, value []byte) error
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
	sealer  *federation.Sealer // reuses a data key per peer encryption key, within bounds
	client  *http.Client
	log     *slog.Logger
	now     func() time.Time
	notify  chan struct{}
	onEvent func(peer string, delivered, failed, retried int) // metrics hook; may be nil
	// onStatus is told of the messages whose status changed; may be nil.
	onStatus func([]StatusChange)

	mu      sync.Mutex
	states  map[string]*peerState
	pending map[string]bool // the peers with jobs queued at the last schedule
	wg      sync.WaitGroup
}

type peerState struct {
	running  bool
	dirty    bool   // new work arrived while running, since the last read
	round    *round // the round being served, while running
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
		sealer: federation.NewSealer(federation.SealerOptions{Now: now}),
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
	o.pending = make(map[string]bool, len(peers))
	for _, p := range peers {
		o.pending[p] = true
		st := o.states[p]
		if st == nil {
			st = &peerState{}
			o.states[p] = st
		}
		if st.running {
			st.dirty = true
			if st.round != nil {
				st.round.wake()
			}
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

// servePeer runs rounds of the peer's queue until it is empty or the peer
// backs off, renewing the peer's lease meanwhile; losing the lease stops
// the round. A round that ends while new jobs were announced is followed
// by another, which reads the queue from its head again.
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
		o.runRound(ctx, peer, st)
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

// laneOf maps a pair to its lane, always the same one. It scales FNV-1a's
// well-mixed high bits onto the lanes: its low bits are not (the lowest is
// the parity of the bytes' lowest bits), and taking them modulo a power of
// two sent all of "u01|r01", "u02|r02"… to one lane.
func laneOf(pair string, lanes int) int {
	h := fnv.New32a()
	h.Write([]byte(pair))
	return int(uint64(h.Sum32()) * uint64(lanes) >> 32)
}
