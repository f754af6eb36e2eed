package bolt

import (
	"context"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// OutgoingJob returns the queued job of a message to peer, found through
// the outbox index, or fednode.ErrNotFound.
func (d *Store) OutgoingJob(ctx context.Context, peer, messageID string) (fednode.Job, error) {
	var j fednode.Job
	err := d.view("outgoing job", func(tx *bbolt.Tx) error {
		seq := tx.Bucket(bOutboxIndex).Get([]byte(messageID))
		q := tx.Bucket(bOutbox).Bucket([]byte(peer))
		if len(seq) != 8 || q == nil {
			return fednode.ErrNotFound
		}
		if err := get(q, seq, &j); err != nil {
			return err
		}
		if j.MessageID != messageID {
			return fednode.ErrNotFound
		}
		return nil
	})
	return j, err
}

// RedriveDeadLetters requeues the dead letters f picks in one transaction,
// in message id order.
func (d *Store) RedriveDeadLetters(ctx context.Context, f fednode.DeadLetterFilter, now time.Time) ([]fednode.DeadLetter, error) {
	var out []fednode.DeadLetter
	err := d.update("redrive dead letters", func(tx *bbolt.Tx) error {
		out = nil // a retried transaction starts over
		picked, err := pickDead(tx, f)
		if err != nil {
			return err
		}
		msgs, dead := tx.Bucket(bMessages), tx.Bucket(bDead)
		requeued := map[string]int{} // per peer, for the queue counts
		tx.OnCommit(func() {
			for peer, n := range requeued {
				d.queue.add(peer, n, 0)
			}
			d.queue.add("", 0, -len(picked))
		})
		for _, dl := range picked {
			var m fednode.Message
			if err := get(msgs, []byte(dl.MessageID), &m); err != nil {
				return err
			}
			m.Status, m.Reason, m.ReasonCode = fednode.StatusQueued, "", ""
			if err := put(msgs, []byte(m.ID), m); err != nil {
				return err
			}
			if err := enqueueJob(tx, m, now.UTC()); err != nil {
				return err
			}
			requeued[m.To.Domain]++
			if err := dead.Delete([]byte(dl.MessageID)); err != nil {
				return err
			}
			out = append(out, dl)
		}
		return nil
	})
	return out, err
}

// PurgeDeadLetters deletes the dead letters f picks in one transaction.
func (d *Store) PurgeDeadLetters(ctx context.Context, f fednode.DeadLetterFilter) ([]fednode.DeadLetter, error) {
	var out []fednode.DeadLetter
	err := d.update("purge dead letters", func(tx *bbolt.Tx) error {
		picked, err := pickDead(tx, f)
		if err != nil {
			return err
		}
		for _, dl := range picked {
			if err := tx.Bucket(bDead).Delete([]byte(dl.MessageID)); err != nil {
				return err
			}
		}
		tx.OnCommit(func() { d.queue.add("", 0, -len(picked)) })
		out = picked
		return nil
	})
	return out, err
}

// pickDead returns the dead letters f picks, in message id order (the
// bucket's key order).
func pickDead(tx *bbolt.Tx, f fednode.DeadLetterFilter) ([]fednode.DeadLetter, error) {
	b := tx.Bucket(bDead)
	if f.MessageID != "" {
		var dl fednode.DeadLetter
		if v := b.Get([]byte(f.MessageID)); v == nil {
			return nil, nil
		} else if err := decode([]byte(f.MessageID), v, &dl); err != nil {
			return nil, err
		}
		if !f.Matches(dl) {
			return nil, nil
		}
		return []fednode.DeadLetter{dl}, nil
	}
	var out []fednode.DeadLetter
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var dl fednode.DeadLetter
		if err := decode(k, v, &dl); err != nil {
			return nil, err
		}
		if f.Matches(dl) {
			out = append(out, dl)
		}
	}
	return out, nil
}

// deleteDeadLetters deletes the dead letters of those ids that have one,
// and moves the dead-letter count (queuestats.go) when tx commits: a
// delete of a dead letter made elsewhere than here or PurgeDeadLetters
// would leave QueueStats counting it until a restart.
func (d *Store) deleteDeadLetters(tx *bbolt.Tx, ids ...[]byte) error {
	dead, n := tx.Bucket(bDead), 0
	for _, id := range ids {
		if dead.Get(id) == nil {
			continue
		}
		if err := dead.Delete(id); err != nil {
			return err
		}
		n++
	}
	if n > 0 {
		tx.OnCommit(func() { d.queue.add("", 0, -n) })
	}
	return nil
}
