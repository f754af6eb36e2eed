package outbox

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/fednode/fednode"
)

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
		o.fail(ctx, peer, expired, gaveUp(o.cfg.GiveUpAfter, ae))
	}
	if err := o.store.NoteAttempt(ctx, peer, keep, ae.code, ae.reason); err != nil {
		o.log.Error("outbox: note attempt", "peer", peer, "err", err)
	}
	o.mu.Lock()
	st.failures++
	delay := Backoff(o.cfg.RetryBase, o.cfg.RetryMax, st.failures)
	// Never sooner than the peer's Retry-After (which federation caps),
	// counted from the answer, not the attempt, as Retry-After is.
	delay = max(delay, ae.retryAfter)
	st.next = o.now().Add(delay)
	next := st.next
	o.mu.Unlock()
	o.saveNextAttempt(ctx, peer, next)
	o.log.Info("outbox: will retry", "peer", peer, "messages", len(keep), "in", delay.Round(time.Millisecond).String(), "code", ae.code, "reason", ae.reason)
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
