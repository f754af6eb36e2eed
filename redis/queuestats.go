package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode"
)

// QueueStats reads each waiting peer's depth (ZCARD) and first job, and
// the number of dead letters (HLEN), in three pipelined round trips whose
// size grows with the peers, never with the jobs.
func (s *Store) QueueStats(ctx context.Context) (_ fednode.QueueStats, err error) {
	defer wrap(&err, "queue stats")
	peers, err := s.c.SMembers(ctx, s.key("obpeers")).Result()
	if err != nil {
		return fednode.QueueStats{}, err
	}
	var (
		cards = make([]*goredis.IntCmd, len(peers))
		heads = make([]*goredis.StringSliceCmd, len(peers))
		dead  *goredis.IntCmd
	)
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, peer := range peers {
			cards[i] = p.ZCard(ctx, s.key("obq", peer))
			heads[i] = p.ZRange(ctx, s.key("obq", peer), 0, 0)
		}
		dead = p.HLen(ctx, s.key("dead"))
		return nil
	})
	if err != nil {
		return fednode.QueueStats{}, err
	}
	st := fednode.QueueStats{DeadLetters: int(dead.Val())}
	jobs := make([]*goredis.StringCmd, len(peers))
	_, err = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, peer := range peers {
			if h := heads[i].Val(); cards[i].Val() > 0 && len(h) == 1 {
				jobs[i] = p.HGet(ctx, s.key("obj", peer), h[0])
			}
		}
		return nil
	})
	if err != nil && err != goredis.Nil {
		return fednode.QueueStats{}, err
	}
	for i, peer := range peers {
		if jobs[i] == nil {
			continue
		}
		var j fednode.Job
		if raw, err := jobs[i].Bytes(); err == nil { // a job finished meanwhile has no record: its time is unknown
			if err := decodeReply(string(raw), &j); err != nil {
				return fednode.QueueStats{}, fmt.Errorf("job %s of %s: %w", heads[i].Val()[0], peer, err)
			}
		}
		st.Peers = append(st.Peers, fednode.PeerQueue{Peer: peer, Depth: int(cards[i].Val()), Oldest: j.EnqueuedAt})
	}
	return st, nil
}
