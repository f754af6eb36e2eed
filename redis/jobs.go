package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode"
)

var dropEmptyPeer = goredis.NewScript(`
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 0`)

// PendingPeers returns the peers with jobs waiting.
func (s *Store) PendingPeers(ctx context.Context) (_ []string, err error) {
	defer wrap(&err, "pending peers")
	peers, err := s.c.SMembers(ctx, s.key("obpeers")).Result()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range peers {
		n, err := s.c.ZCard(ctx, s.key("obq", p)).Result()
		if err != nil {
			return nil, err
		}
		if n > 0 {
			out = append(out, p)
		} else if err := dropEmptyPeer.Run(ctx, s.c, []string{s.key("obq", p), s.key("obpeers")}, p).Err(); err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// PeerJobs returns up to limit of a peer's jobs with Seq greater than
// after, oldest first. The queue is a sorted set of Seqs scored by
// themselves, so the read starts at the cursor (an exclusive minimum)
// instead of counting from the head. A job's Seq is taken and the job
// queued in one script, so a later job always has a greater Seq.
func (s *Store) PeerJobs(ctx context.Context, peer string, after uint64, limit int) (_ []fednode.Job, err error) {
	defer wrap(&err, "peer jobs")
	if limit <= 0 {
		return nil, nil
	}
	seqs, err := s.c.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: s.key("obq", peer), ByScore: true,
		Start: "(" + strconv.FormatUint(after, 10), Stop: "+inf", Count: int64(limit)}).Result()
	if err != nil || len(seqs) == 0 {
		return nil, err
	}
	vals, err := s.c.HMGet(ctx, s.key("obj", peer), seqs...).Result()
	if err != nil {
		return nil, err
	}
	var jobs []fednode.Job
	for i, v := range vals {
		if v == nil {
			continue // finished concurrently
		}
		var j fednode.Job
		if err := decodeReply(v, &j); err != nil {
			return nil, fmt.Errorf("job %s: %w", seqs[i], err)
		}
		j.Seq, _ = strconv.ParseUint(seqs[i], 10, 64)
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// NoteAttempt records a failed attempt on the given jobs.
func (s *Store) NoteAttempt(ctx context.Context, peer string, seqs []uint64, code, reason string) (err error) {
	defer wrap(&err, "note attempt")
	key := s.key("obj", peer)
	return s.watch(ctx, func(tx *goredis.Tx) error {
		fields := make([]string, len(seqs))
		for i, sq := range seqs {
			fields[i] = strconv.FormatUint(sq, 10)
		}
		if len(fields) == 0 {
			return nil
		}
		vals, err := tx.HMGet(ctx, key, fields...).Result()
		if err != nil {
			return err
		}
		updates := map[string]any{}
		for i, v := range vals {
			if v == nil {
				continue
			}
			var j fednode.Job
			if err := decodeReply(v, &j); err != nil {
				return fmt.Errorf("job %s: %w", fields[i], err)
			}
			j.Attempts++
			j.LastError, j.LastCode = reason, code
			b, _ := json.Marshal(j)
			updates[fields[i]] = b
		}
		if len(updates) == 0 {
			return nil
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error { return p.HSet(ctx, key, updates).Err() })
		return err
	}, key)
}

// FinishJobs ends jobs atomically: removes them, sets their messages'
// status, records failed ones as dead letters.
func (s *Store) FinishJobs(ctx context.Context, peer string, results []fednode.JobResult, now time.Time) (err error) {
	defer wrap(&err, "finish jobs")
	if len(results) == 0 {
		return nil
	}
	objKey, obqKey := s.key("obj", peer), s.key("obq", peer)
	watch := []string{objKey}
	for _, r := range results {
		watch = append(watch, s.key("m", r.MessageID))
	}
	err = s.watch(ctx, func(tx *goredis.Tx) error {
		type change struct {
			r   fednode.JobResult
			msg []byte
			job fednode.Job
		}
		var changes []change
		for _, r := range results {
			var m fednode.Message
			if err := getJSON(ctx, tx, s.key("m", r.MessageID), &m); err != nil {
				return fmt.Errorf("message %s: %w", r.MessageID, err)
			}
			m.Status, m.Reason, m.ReasonCode = r.Status, r.Reason, r.Code
			b, _ := json.Marshal(m)
			var j fednode.Job
			if v, err := tx.HGet(ctx, objKey, strconv.FormatUint(r.Seq, 10)).Bytes(); err == nil {
				json.Unmarshal(v, &j)
			}
			changes = append(changes, change{r, b, j})
		}
		_, err := tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			for _, c := range changes {
				seq := strconv.FormatUint(c.r.Seq, 10)
				p.HDel(ctx, objKey, seq)
				p.ZRem(ctx, obqKey, seq)
				p.Set(ctx, s.key("m", c.r.MessageID), c.msg, 0)
				p.HDel(ctx, s.key("obidx", peer), c.r.MessageID)
				if c.r.Status == fednode.StatusFailed {
					dl, _ := json.Marshal(fednode.DeadLetter{MessageID: c.r.MessageID, Peer: peer, Reason: c.r.Reason, Code: c.r.Code, Attempts: c.job.Attempts + 1, FailedAt: now.UTC()})
					p.HSet(ctx, s.key("dead"), c.r.MessageID, dl)
					p.ZAdd(ctx, s.key("deadidx"), goredis.Z{Score: micros(now), Member: c.r.MessageID})
				}
			}
			return nil
		})
		return err
	}, watch...)
	if err != nil {
		return err
	}
	return dropEmptyPeer.Run(ctx, s.c, []string{obqKey, s.key("obpeers")}, peer).Err()
}

// DeadLetters returns up to limit dead letters, oldest first.
func (s *Store) DeadLetters(ctx context.Context, limit int) (_ []fednode.DeadLetter, err error) {
	defer wrap(&err, "dead letters")
	ids, err := s.c.ZRange(ctx, s.key("deadidx"), 0, int64(limit)-1).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	vals, err := s.c.HMGet(ctx, s.key("dead"), ids...).Result()
	if err != nil {
		return nil, err
	}
	var out []fednode.DeadLetter
	for i, v := range vals {
		if v == nil {
			continue
		}
		var d fednode.DeadLetter
		if err := decodeReply(v, &d); err != nil {
			return nil, fmt.Errorf("dead letter %s: %w", ids[i], err)
		}
		out = append(out, d)
	}
	return out, nil
}
