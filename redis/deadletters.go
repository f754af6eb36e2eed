package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode"
)

// jobKeys are the keys a job of peer is queued under, in the order
// enqueueJobLua takes them: the queue, the jobs, the queue's sequence, the
// set of peers with a queue, and the index by message id.
func (s *Store) jobKeys(peer string) []string {
	return []string{s.key("obq", peer), s.key("obj", peer), s.key("obseq", peer), s.key("obpeers"), s.key("obidx", peer)}
}

// OutgoingJob returns the queued job of a message to peer, found through
// the peer's index by message id.
func (s *Store) OutgoingJob(ctx context.Context, peer, messageID string) (_ fednode.Job, err error) {
	defer wrap(&err, "outgoing job")
	seq, err := s.c.HGet(ctx, s.key("obidx", peer), messageID).Result()
	if err != nil {
		return fednode.Job{}, notFound(err)
	}
	var j fednode.Job
	v, err := s.c.HGet(ctx, s.key("obj", peer), seq).Bytes()
	if err != nil {
		return fednode.Job{}, notFound(err)
	}
	if err := json.Unmarshal(v, &j); err != nil {
		return fednode.Job{}, fmt.Errorf("job %s: %w", seq, err)
	}
	j.Seq, _ = strconv.ParseUint(seq, 10, 64)
	if j.MessageID != messageID {
		return fednode.Job{}, fednode.ErrNotFound
	}
	return j, nil
}

// redrive moves one dead letter back to its peer's queue, if it is still
// dead: KEYS are the dead letters, their index, the message, then jobKeys.
var redrive = goredis.NewScript(enqueueJobLua + `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[2])
enqueue(KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[3], ARGV[4], ARGV[1])
return 1`)

// RedriveDeadLetters requeues the dead letters f picks, in message id
// order, each atomically with its message's status and its job.
func (s *Store) RedriveDeadLetters(ctx context.Context, f fednode.DeadLetterFilter, now time.Time) (_ []fednode.DeadLetter, err error) {
	defer wrap(&err, "redrive dead letters")
	picked, err := s.pickDead(ctx, f)
	if err != nil {
		return nil, err
	}
	var out []fednode.DeadLetter
	for _, dl := range picked {
		var m fednode.Message
		if err := getJSON(ctx, s.c, s.key("m", dl.MessageID), &m); err != nil {
			return out, fmt.Errorf("message %s: %w", dl.MessageID, err)
		}
		m.Status, m.Reason, m.ReasonCode = fednode.StatusQueued, "", ""
		msg, _ := json.Marshal(m)
		job, _ := json.Marshal(fednode.Job{Peer: m.To.Domain, MessageID: m.ID, Pair: m.From.String() + "|" + m.To.String(), EnqueuedAt: now.UTC()})
		keys := append([]string{s.key("dead"), s.key("deadidx"), s.key("m", m.ID)}, s.jobKeys(m.To.Domain)...)
		n, err := redrive.Run(ctx, s.c, keys, m.ID, msg, job, m.To.Domain).Int()
		if err != nil {
			return out, err
		}
		if n == 1 {
			out = append(out, dl)
		}
	}
	return out, nil
}

// PurgeDeadLetters deletes the dead letters f picks.
func (s *Store) PurgeDeadLetters(ctx context.Context, f fednode.DeadLetterFilter) (_ []fednode.DeadLetter, err error) {
	defer wrap(&err, "purge dead letters")
	picked, err := s.pickDead(ctx, f)
	if err != nil || len(picked) == 0 {
		return nil, err
	}
	_, err = s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		for _, dl := range picked {
			p.HDel(ctx, s.key("dead"), dl.MessageID)
			p.ZRem(ctx, s.key("deadidx"), dl.MessageID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return picked, nil
}

// pickDead returns the dead letters f picks, in message id order.
func (s *Store) pickDead(ctx context.Context, f fednode.DeadLetterFilter) ([]fednode.DeadLetter, error) {
	var raw map[string]string
	if f.MessageID != "" {
		v, err := s.c.HGet(ctx, s.key("dead"), f.MessageID).Result()
		if errors.Is(err, goredis.Nil) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		raw = map[string]string{f.MessageID: v}
	} else {
		var err error
		if raw, err = s.c.HGetAll(ctx, s.key("dead")).Result(); err != nil {
			return nil, err
		}
	}
	var out []fednode.DeadLetter
	for id, v := range raw {
		var dl fednode.DeadLetter
		if err := json.Unmarshal([]byte(v), &dl); err != nil {
			return nil, fmt.Errorf("dead letter %s: %w", id, err)
		}
		if f.Matches(dl) {
			out = append(out, dl)
		}
	}
	slices.SortFunc(out, func(a, b fednode.DeadLetter) int { return strings.Compare(a.MessageID, b.MessageID) })
	return out, nil
}
