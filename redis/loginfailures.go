package redis

import (
	"context"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

var addFailure = goredis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
local n = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1] .. ':' .. n)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[4])
return redis.call('ZRANGE', KEYS[1], 0, -1)`)

const maxFailuresKept = 64

// AddLoginFailure records a failure at `at`, forgets those before since,
// and returns the remaining ones, oldest first.
func (s *Store) AddLoginFailure(ctx context.Context, key string, at, since time.Time) (_ []time.Time, err error) {
	defer wrap(&err, "add login failure")
	m, err := addFailure.Run(ctx, s.c, []string{s.key("f", key), s.key("fidx"), s.key("fseq")},
		micros(at), micros(since), maxFailuresKept, key).StringSlice()
	if err != nil {
		return nil, err
	}
	return failureTimes(m), nil
}

func failureTimes(members []string) []time.Time {
	out := make([]time.Time, 0, len(members))
	for _, m := range members {
		us, _, _ := strings.Cut(m, ":")
		n, _ := strconv.ParseInt(us, 10, 64)
		out = append(out, time.UnixMicro(n).UTC())
	}
	return out
}

// LoginFailures returns the failures at or after since.
func (s *Store) LoginFailures(ctx context.Context, key string, since time.Time) (_ []time.Time, err error) {
	defer wrap(&err, "login failures")
	m, err := s.c.ZRangeByScore(ctx, s.key("f", key), &goredis.ZRangeBy{Min: strconv.FormatFloat(micros(since), 'f', 0, 64), Max: "+inf"}).Result()
	if err != nil {
		return nil, err
	}
	return failureTimes(m), nil
}

// ClearLoginFailures forgets the failures of key.
func (s *Store) ClearLoginFailures(ctx context.Context, key string) (err error) {
	defer wrap(&err, "clear login failures")
	_, err = s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, s.key("f", key))
		p.ZRem(ctx, s.key("fidx"), key)
		return nil
	})
	return err
}

// PruneLoginFailures deletes records whose newest failure is before since.
func (s *Store) PruneLoginFailures(ctx context.Context, since time.Time) (_ int, err error) {
	defer wrap(&err, "prune login failures")
	// Record keys are built with Part, which Lua cannot do, so prune here.
	keys, err := s.c.ZRangeByScore(ctx, s.key("fidx"), &goredis.ZRangeBy{Min: "-inf", Max: "(" + strconv.FormatFloat(micros(since), 'f', 0, 64)}).Result()
	if err != nil {
		return 0, err
	}
	_, err = s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, s.key("f", k))
			p.ZRem(ctx, s.key("fidx"), k)
		}
		return nil
	})
	return len(keys), err
}
