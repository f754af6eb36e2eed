package bolt

import (
	"context"
	"sync"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// queueCounts are the outbox's depth per peer and the number of dead
// letters, kept in memory so that QueueStats (read on every metrics
// scrape) never walks a deep queue: bbolt keeps no count of a bucket's
// keys. They are counted once at Open, before any write, and then moved
// by every committed write that adds or removes a job or a dead letter
// (the group committer, FinishJobs, RedriveDeadLetters, PurgeDeadLetters).
// A write that does so elsewhere must move them too, in tx.OnCommit.
type queueCounts struct {
	mu    sync.Mutex
	depth map[string]int
	dead  int
}

// loadQueueCounts counts the jobs of every peer and the dead letters, from
// bbolt's page headers (Bucket.Stats), not the records. Damage it meets
// fails the store as any read's does (a large store's quick check at Open
// has not read these pages).
func (d *Store) loadQueueCounts() error {
	q := &d.queue
	return d.view("count the outbox", func(tx *bbolt.Tx) error {
		depth := map[string]int{}
		err := tx.Bucket(bOutbox).ForEachBucket(func(k []byte) error {
			if n := tx.Bucket(bOutbox).Bucket(k).Stats().KeyN; n > 0 {
				depth[string(k)] = n
			}
			return nil
		})
		if err != nil {
			return err
		}
		q.mu.Lock()
		q.depth, q.dead = depth, tx.Bucket(bDead).Stats().KeyN
		q.mu.Unlock()
		return nil
	})
}

// add moves a peer's depth and the dead letters by the changes of one
// committed write.
func (q *queueCounts) add(peer string, jobs, dead int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.depth == nil {
		q.depth = map[string]int{}
	}
	if jobs != 0 {
		q.depth[peer] += jobs
		if q.depth[peer] <= 0 {
			delete(q.depth, peer)
		}
	}
	q.dead += dead
}

// QueueStats returns each waiting peer's depth (counted in memory) and the
// enqueue time of its first job (one cursor seek per peer), and the
// number of dead letters. A peer whose queue turns out empty is dropped
// from the counts, whatever they said.
func (d *Store) QueueStats(ctx context.Context) (fednode.QueueStats, error) {
	d.queue.mu.Lock()
	depth := make(map[string]int, len(d.queue.depth))
	for p, n := range d.queue.depth {
		depth[p] = n
	}
	st := fednode.QueueStats{DeadLetters: d.queue.dead}
	d.queue.mu.Unlock()
	var empty []string
	err := d.view("queue stats", func(tx *bbolt.Tx) error {
		for peer, n := range depth {
			var k, v []byte
			if q := tx.Bucket(bOutbox).Bucket([]byte(peer)); q != nil {
				k, v = q.Cursor().First()
			}
			if k == nil {
				empty = append(empty, peer)
				continue
			}
			var j fednode.Job
			if err := decode(k, v, &j); err != nil {
				return err
			}
			st.Peers = append(st.Peers, fednode.PeerQueue{Peer: peer, Depth: n, Oldest: j.EnqueuedAt})
		}
		return nil
	})
	if err != nil {
		return fednode.QueueStats{}, err
	}
	if len(empty) > 0 {
		d.queue.mu.Lock()
		for _, p := range empty {
			if d.queue.depth[p] == depth[p] { // no write moved it since the snapshot
				delete(d.queue.depth, p)
			}
		}
		d.queue.mu.Unlock()
	}
	return st, nil
}
