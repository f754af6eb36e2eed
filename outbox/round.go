package outbox

import (
	"context"
	"slices"
	"sync"

	"github.com/fednode/fednode"
)

// A round is one pass over a peer's queue. One reader reads the queue
// forward from a cursor (PeerJobs after the last Seq it got), so each
// pending job is read and decoded once per round, whatever the queue's
// depth, and hands each job to the in-memory queue of its pair's lane.
// Each lane sends its queue's head, a batch at a time: whatever it holds,
// up to BatchSize, at once. A lane never waits with work in hand, so a
// shallow queue goes out a message or two an envelope, and jobs that pile
// up while a request is in flight go out together in the next one.
//
// A job leaves its lane's queue only once its batch is finished; a batch
// that is retried stays at the head. A retry backs the whole peer off and
// ends the round; a lane that fails otherwise (a store error) stops and
// drops its queue, and the others go on. When a round ends everything it
// read is dropped, and the next round reads the queue from its head: what
// was not finished is read again then, in order.
type round struct {
	mu    sync.Mutex
	cond  sync.Cond
	lanes []laneQueue
	held  int  // jobs read and not yet finished with, over every lane
	atEnd bool // the last read found no more jobs
	more  bool // jobs were announced since the last read
	over  bool // no lane takes another batch, the reader reads no more
}

type laneQueue struct {
	jobs    []fednode.Job
	sending bool // a batch of its head is being delivered
	stopped bool // failed this round: it holds nothing and takes nothing
}

func newRound(lanes int) *round {
	r := &round{lanes: make([]laneQueue, lanes)}
	r.cond.L = &r.mu
	return r
}

// lookahead bounds the jobs a round holds (read but not yet finished):
// how far past the oldest unfinished job the lanes see. Memory stays
// bounded however deep the queue; a lane whose pairs are not among them
// waits for the others to make room, and one with few pairs among them
// sends short batches. Eight full batches a lane keep that rare.
func (o *Outbox) lookahead() int { return max(1024, 8*o.cfg.Lanes*o.cfg.BatchSize) }

// readSize is how many jobs one read asks for: enough to fill every lane's
// next batch.
func (o *Outbox) readSize() int { return max(256, o.cfg.Lanes*o.cfg.BatchSize) }

// runRound serves one round of peer's queue: the lanes, and the reader in
// this goroutine. It returns when the round is over and every lane has
// finished its request.
func (o *Outbox) runRound(ctx context.Context, peer string, st *peerState) {
	r := newRound(o.cfg.Lanes)
	o.mu.Lock()
	st.round = r
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		st.round = nil
		o.mu.Unlock()
	}()
	defer context.AfterFunc(ctx, r.stop)()
	var wg sync.WaitGroup
	for lane := range o.cfg.Lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.serveLane(ctx, peer, lane, st, r)
		}()
	}
	o.readQueue(ctx, peer, st, r)
	wg.Wait()
}

// readQueue reads the peer's queue forward and deals the jobs to the
// lanes, while they have room. At the end of the queue it waits: for jobs
// announced meanwhile (wake), which it reads from where it stopped, or for
// every lane to have sent everything, which ends the round.
func (o *Outbox) readQueue(ctx context.Context, peer string, st *peerState, r *round) {
	limit, size := o.lookahead(), o.readSize()
	var cursor uint64
	for {
		r.mu.Lock()
		for !r.over && (r.held >= limit || r.atEnd && !r.more && !r.quiet()) {
			r.cond.Wait()
		}
		if r.atEnd && !r.more {
			r.over = true // quiet: everything read was sent, and nothing is new
			r.cond.Broadcast()
		}
		if r.over {
			r.mu.Unlock()
			return
		}
		n := min(size, limit-r.held)
		r.more = false
		r.mu.Unlock()

		// Jobs enqueued from here on are announced again: dirty tells
		// servePeer about one announced too late for this round.
		o.mu.Lock()
		st.dirty = false
		o.mu.Unlock()
		jobs, err := o.store.PeerJobs(ctx, peer, cursor, n)

		r.mu.Lock()
		if err != nil {
			if ctx.Err() == nil {
				o.log.Error("outbox: read jobs", "peer", peer, "err", err)
			}
			// Read no more this round: the lanes send what they hold, and
			// a later round reads again.
			for !r.over && !r.quiet() {
				r.cond.Wait()
			}
			r.over = true
			r.cond.Broadcast()
			r.mu.Unlock()
			return
		}
		for _, j := range jobs {
			cursor = j.Seq
			if l := &r.lanes[laneOf(j.Pair, len(r.lanes))]; !l.stopped {
				l.jobs = append(l.jobs, j)
				r.held++
			}
		}
		r.atEnd = len(jobs) < n
		r.cond.Broadcast()
		r.mu.Unlock()
	}
}

// serveLane sends the lane's jobs, a batch at a time, until the round is
// over or the lane fails.
func (o *Outbox) serveLane(ctx context.Context, peer string, lane int, st *peerState, r *round) {
	for {
		batch, ok := r.take(lane, o.cfg.BatchSize)
		if !ok {
			return
		}
		if ctx.Err() != nil || o.backingOff(st) {
			r.stop()
			return
		}
		batch, msgs, err := o.fit(ctx, batch)
		goOn := false
		if err != nil {
			o.retry(ctx, peer, batch, internalFailure("read the messages", err), st, o.now())
		} else {
			goOn = o.deliver(ctx, peer, batch, msgs, st)
		}
		if !goOn {
			if ctx.Err() != nil || o.backingOff(st) {
				r.stop()
			} else {
				r.drop(lane)
			}
			return
		}
		r.done(lane, len(batch))
	}
}

func (o *Outbox) backingOff(st *peerState) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.now().Before(st.next)
}

// quiet reports whether no lane holds or sends anything. r.mu is held.
func (r *round) quiet() bool {
	for _, l := range r.lanes {
		if len(l.jobs) > 0 || l.sending {
			return false
		}
	}
	return true
}

// take waits for jobs in the lane's queue and returns up to max of them
// from its head, or reports that the round is over.
func (r *round) take(lane, max int) ([]fednode.Job, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := &r.lanes[lane]
	for !r.over && len(l.jobs) == 0 {
		r.cond.Wait()
	}
	if r.over {
		return nil, false
	}
	l.sending = true
	return slices.Clone(l.jobs[:min(len(l.jobs), max)]), true
}

// done removes the first n jobs of the lane's queue: their batch is
// finished.
func (r *round) done(lane, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := &r.lanes[lane]
	l.jobs = l.jobs[n:]
	l.sending = false
	r.held -= n
	r.cond.Broadcast()
}

// drop stops the lane for the rest of the round: its jobs, and those the
// reader would give it, wait for the next round. When no lane is left the
// round is over: reading on would only read jobs to drop them.
func (r *round) drop(lane int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := &r.lanes[lane]
	r.held -= len(l.jobs)
	*l = laneQueue{stopped: true}
	if !slices.ContainsFunc(r.lanes, func(l laneQueue) bool { return !l.stopped }) {
		r.over = true
	}
	r.cond.Broadcast()
}

// stop ends the round: lanes finish the request they are in and take no
// other batch.
func (r *round) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.over = true
	r.cond.Broadcast()
}

// wake tells the round that new jobs were enqueued.
func (r *round) wake() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.more = true
	r.cond.Broadcast()
}
