package bolt

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// PendingPeers returns the peers with jobs waiting.
func (d *Store) PendingPeers(ctx context.Context) ([]string, error) {
	var peers []string
	err := d.view("pending peers", func(tx *bbolt.Tx) error {
		return tx.Bucket(bOutbox).ForEachBucket(func(k []byte) error {
			if firstKey(tx.Bucket(bOutbox).Bucket(k)) != nil {
				peers = append(peers, string(k))
			}
			return nil
		})
	})
	return peers, err
}

func firstKey(b *bbolt.Bucket) []byte {
	k, _ := b.Cursor().First()
	return k
}

// PeerJobs returns up to limit of a peer's jobs with Seq greater than
// after, oldest first. The queue's keys are the big-endian Seqs, so the
// cursor seeks straight to the first job after it. Seqs come from the
// bucket's sequence inside the write that enqueues, so a later job always
// has a greater Seq.
func (d *Store) PeerJobs(ctx context.Context, peer string, after uint64, limit int) ([]fednode.Job, error) {
	var jobs []fednode.Job
	err := d.view("peer jobs", func(tx *bbolt.Tx) error {
		q := tx.Bucket(bOutbox).Bucket([]byte(peer))
		if q == nil || after == math.MaxUint64 {
			return nil
		}
		c := q.Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(jobs) < limit; k, v = c.Next() {
			var j fednode.Job
			if err := decode(k, v, &j); err != nil {
				return err
			}
			jobs = append(jobs, j)
		}
		return nil
	})
	return jobs, err
}

// NoteAttempt records a failed attempt on the given jobs.
func (d *Store) NoteAttempt(ctx context.Context, peer string, seqs []uint64, code, reason string) error {
	return d.update("note attempt", func(tx *bbolt.Tx) error {
		q := tx.Bucket(bOutbox).Bucket([]byte(peer))
		if q == nil {
			return nil
		}
		for _, s := range seqs {
			var j fednode.Job
			if err := get(q, u64(s), &j); err != nil {
				if errors.Is(err, fednode.ErrNotFound) {
					continue
				}
				return err
			}
			j.Attempts++
			j.LastError, j.LastCode = reason, code
			if err := put(q, u64(s), j); err != nil {
				return err
			}
		}
		return nil
	})
}

// FinishJobs ends jobs in one transaction: each job is removed, its
// message's status set, and a failed one recorded as a dead letter.
func (d *Store) FinishJobs(ctx context.Context, peer string, results []fednode.JobResult, now time.Time) error {
	return d.update("finish jobs", func(tx *bbolt.Tx) error {
		q := tx.Bucket(bOutbox).Bucket([]byte(peer))
		msgs := tx.Bucket(bMessages)
		removed, dead := 0, 0
		tx.OnCommit(func() { d.queue.add(peer, -removed, dead) })
		for _, r := range results {
			var j fednode.Job
			if q != nil {
				if err := get(q, u64(r.Seq), &j); err == nil {
					removed++
				} else if !errors.Is(err, fednode.ErrNotFound) {
					return err
				}
				if err := q.Delete(u64(r.Seq)); err != nil {
					return err
				}
			}
			if err := tx.Bucket(bOutboxIndex).Delete([]byte(r.MessageID)); err != nil {
				return err
			}
			var m fednode.Message
			if err := get(msgs, []byte(r.MessageID), &m); err != nil {
				return fmt.Errorf("message %s: %w", r.MessageID, err)
			}
			m.Status, m.Reason, m.ReasonCode = r.Status, r.Reason, r.Code
			if err := put(msgs, []byte(m.ID), m); err != nil {
				return err
			}
			if r.Status == fednode.StatusFailed {
				dl := fednode.DeadLetter{MessageID: m.ID, Peer: peer, Reason: r.Reason, Code: r.Code, Attempts: j.Attempts + 1, FailedAt: now.UTC()}
				if tx.Bucket(bDead).Get([]byte(m.ID)) == nil {
					dead++
				}
				if err := put(tx.Bucket(bDead), []byte(m.ID), dl); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// DeadLetters returns up to limit dead letters.
func (d *Store) DeadLetters(ctx context.Context, limit int) ([]fednode.DeadLetter, error) {
	var out []fednode.DeadLetter
	err := d.view("dead letters", func(tx *bbolt.Tx) error {
		c := tx.Bucket(bDead).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			var dl fednode.DeadLetter
			if err := decode(k, v, &dl); err != nil {
				return err
			}
			out = append(out, dl)
		}
		return nil
	})
	return out, err
}
