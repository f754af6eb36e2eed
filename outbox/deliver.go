package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/federation"
)

// worstCaseBytes bounds one message's share of an envelope: content
// JSON-escaped at up to 6 bytes a character, base64 (4/3), plus metadata, a
// wrapped key and tags. An end-to-end payload's byte strings are base64 in
// the plaintext (4/3), which is base64 again in the envelope (4/3).
func worstCaseBytes(m fednode.Message) int {
	n := len(m.Content)*6*4/3 + 2048
	if e := m.E2E; e != nil {
		raw := len(e.Nonce) + len(e.Ciphertext) + len(e.Signature) + 256
		for _, k := range e.Keys {
			raw += len(k.Wrapped) + 128
		}
		n += raw * 16 / 9
	}
	return n
}

// fit loads a batch's messages in one read, shortening the batch so that
// its envelope stays under the inbox's cap. A job whose message is not
// stored ends the batch there: the batch up to and including it is returned
// with an error, for retrying (and, after GiveUpAfter, failing). On a store
// error the whole batch is returned, for retrying.
func (o *Outbox) fit(ctx context.Context, batch []fednode.Job) ([]fednode.Job, []fednode.Message, error) {
	ids := make([]string, len(batch))
	for i, j := range batch {
		ids[i] = j.MessageID
	}
	stored, err := o.store.Messages(ctx, ids)
	if err != nil {
		return batch, nil, fmt.Errorf("outbox: messages: %w", err)
	}
	total := 1024
	msgs := make([]fednode.Message, 0, len(batch))
	for i, j := range batch {
		m, ok := stored[j.MessageID]
		if !ok {
			return batch[:i+1], nil, fmt.Errorf("outbox: message %s: %w", j.MessageID, fednode.ErrNotFound)
		}
		total += worstCaseBytes(m)
		if total > federation.MaxEnvelopeBytes && i > 0 {
			return batch[:i], msgs, nil
		}
		msgs = append(msgs, m)
	}
	return batch, msgs, nil
}

// deliver sends one batch and records the outcome. It reports whether the
// lane may go on (false after a retryable failure).
func (o *Outbox) deliver(ctx context.Context, peer string, batch []fednode.Job, msgs []fednode.Message, st *peerState) bool {
	now := o.now()
	if !o.cfg.Allowed(peer) {
		o.fail(ctx, peer, batch, policyRefused(peer))
		return true
	}
	results, err := o.send(ctx, peer, msgs)
	if ctx.Err() != nil {
		return false
	}
	var ae *attemptError
	if err != nil && !errors.As(err, &ae) {
		ae = internalFailure("deliver", err)
	}
	if ae != nil && ae.permanent {
		o.fail(ctx, peer, batch, ae)
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
			code, reason := messageRefused(peer, r)
			done = append(done, fednode.JobResult{Seq: j.Seq, MessageID: j.MessageID, Status: fednode.StatusFailed, Reason: reason, Code: code})
			failed++
		default: // retry, an unknown status, or no answer for it
			again = append(again, j)
		}
	}
	if err := o.store.FinishJobs(ctx, peer, done, now); err != nil {
		o.log.Error("outbox: finish jobs", "peer", peer, "err", err)
		return false
	}
	o.statusChanged(batch, done)
	o.answered(ctx, peer, st)
	if len(again) > 0 {
		ae := &attemptError{code: fednode.DeliveryDeferred, reason: fmt.Sprintf("%s asked to send %d messages again later", peer, len(again))}
		if unwrapFailed > 0 {
			// The peer could not unwrap: our copy of its keys is stale.
			o.peers.RefreshTrusted(ctx, peer)
			ae = &attemptError{code: fednode.DeliveryUnwrapFailed, reason: fmt.Sprintf("%s could not unwrap %d of %d messages; its keys were refetched", peer, unwrapFailed, len(again))}
		}
		o.event(peer, delivered, failed, 0)
		o.retry(ctx, peer, again, ae, st, now) // counts what it retries (and fails)
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

// fail fails a batch for good with ae's reason.
func (o *Outbox) fail(ctx context.Context, peer string, batch []fednode.Job, ae *attemptError) {
	res := make([]fednode.JobResult, len(batch))
	for i, j := range batch {
		res[i] = fednode.JobResult{Seq: j.Seq, MessageID: j.MessageID, Status: fednode.StatusFailed, Reason: ae.reason, Code: ae.code}
	}
	if err := o.store.FinishJobs(ctx, peer, res, o.now()); err != nil {
		o.log.Error("outbox: finish jobs", "peer", peer, "err", err)
		return
	}
	o.log.Warn("outbox: delivery failed", "peer", peer, "messages", len(batch), "code", ae.code, "reason", ae.reason)
	o.statusChanged(batch, res)
	o.event(peer, 0, len(batch), 0)
}

// requestTimeout bounds one delivery: signing, the request and its answer.
const requestTimeout = 30 * time.Second

// send seals and delivers one envelope and returns the peer's per-message
// results. Messages are sealed under the data key the outbox keeps for the
// peer's current encryption key (federation.Sealer), so the peer unwraps
// once per data key, not once per message.
func (o *Outbox) send(ctx context.Context, peer string, msgs []fednode.Message) (map[string]federation.Result, error) {
	p, err := o.peers.Peer(ctx, peer)
	if err != nil {
		return nil, documentFailure(peer, err)
	}
	env, err := o.sealer.Seal(o.cfg.Domain, p.Enc, msgs)
	if err != nil {
		return nil, internalFailure("seal the messages", err)
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
		if r.Status == federation.StatusRefused && r.Code == federation.CodeUnwrapFailed {
			// Whatever the cause, never send that wrapped key again.
			o.sealer.Forget(p.Enc.EncKeyID)
		}
	}
	return m, nil
}
