package outbox

import (
	"context"
	"strings"
	"time"

	"github.com/fednode/fednode"
)

// StatusChange is a remote message whose status the outbox changed, for
// its local sender to see.
type StatusChange struct {
	MessageID string
	Sender    string // the sender's local username
	Status    string // fednode.StatusDelivered or fednode.StatusFailed
	Code      string // the reason code of a failure
	Reason    string
}

// OnStatus sets a hook called with the messages whose status the outbox
// changed, after the store has them.
func (o *Outbox) OnStatus(fn func([]StatusChange)) { o.onStatus = fn }

// statusChanged reports the results of finished jobs to the hook.
func (o *Outbox) statusChanged(jobs []fednode.Job, results []fednode.JobResult) {
	if o.onStatus == nil || len(results) == 0 {
		return
	}
	sender := make(map[string]string, len(jobs))
	for _, j := range jobs {
		from, _, _ := strings.Cut(j.Pair, "|")
		if a, err := fednode.ParseAddress(from, o.cfg.Domain); err == nil && a.Domain == o.cfg.Domain {
			sender[j.MessageID] = a.User
		}
	}
	changes := make([]StatusChange, 0, len(results))
	for _, r := range results {
		if u := sender[r.MessageID]; u != "" {
			changes = append(changes, StatusChange{MessageID: r.MessageID, Sender: u, Status: r.Status, Code: r.Code, Reason: r.Reason})
		}
	}
	if len(changes) > 0 {
		o.onStatus(changes)
	}
}

// NextAttemptKey is the store meta key under which the outbox keeps when
// it next tries a peer that is backing off (RFC 3339, empty when it is
// not), so that any replica can tell a sender.
func NextAttemptKey(peer string) string { return "outbox_next_attempt:" + peer }

// ParseNextAttempt reads a value kept under NextAttemptKey: the zero time
// when there is none.
func ParseNextAttempt(v []byte) time.Time {
	t, err := time.Parse(time.RFC3339Nano, string(v))
	if err != nil {
		return time.Time{}
	}
	return t
}

// saveNextAttempt keeps when the peer is tried next (zero: not backing off).
func (o *Outbox) saveNextAttempt(ctx context.Context, peer string, next time.Time) {
	v := ""
	if !next.IsZero() {
		v = next.UTC().Format(time.RFC3339Nano)
	}
	if err := o.store.SetMeta(ctx, NextAttemptKey(peer), []byte(v)); err != nil {
		o.log.Warn("outbox: keep the next attempt time", "peer", peer, "err", err)
	}
}

// answered records that the peer answered: its backoff starts over, and
// the next attempt time kept for it, if any, is cleared.
func (o *Outbox) answered(ctx context.Context, peer string, st *peerState) {
	o.mu.Lock()
	was := st.failures
	st.failures = 0
	o.mu.Unlock()
	if was > 0 {
		o.saveNextAttempt(ctx, peer, time.Time{})
	}
}

// Wake ends the peer's backoff and serves its queue now: the operator's
// "retry this peer now", and a delivery that just came from the peer (it
// is evidently up). It reports whether the peer was backing off here; only
// then does it do anything (a peer that is not backing off is served
// already), so calling it costs nothing otherwise.
func (o *Outbox) Wake(ctx context.Context, peer string) bool {
	o.mu.Lock()
	st := o.states[peer]
	backingOff := st != nil && (st.failures > 0 || o.now().Before(st.next))
	if backingOff {
		st.next, st.failures = time.Time{}, 0
		st.dirty = true
	}
	o.mu.Unlock()
	if backingOff {
		o.saveNextAttempt(ctx, peer, time.Time{})
		o.log.Info("outbox: peer woken; backoff reset", "peer", peer)
		o.Notify()
	}
	return backingOff
}

// Waiting reports whether the peer had jobs queued when the outbox last
// looked (every half second, on every replica): a check without I/O, for
// the inbox to call on every delivery.
func (o *Outbox) Waiting(peer string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pending[peer]
}
