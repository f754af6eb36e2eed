package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode/ratelimit"
)

// Limiter is the sliding-window limiter shared by replicas: a sorted set of
// event times per key, trimmed, counted and appended by one Lua script, on
// Redis's own clock (TIME), so that replicas with skewed clocks agree. Each
// key is a hash tag of its own, so buckets spread over a cluster.
type Limiter struct {
	c      goredis.UniversalClient
	prefix string
}

// NewLimiter returns a limiter on c under namespace ns.
func NewLimiter(c goredis.UniversalClient, ns string) *Limiter {
	if ns == "" {
		ns = "fednode"
	}
	return &Limiter{c: c, prefix: Part(ns) + ":rl:"}
}

var slidingWindow = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, limit - n - 1, 0, tonumber(first[2]) + window - now}
end
local edge = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
return {0, 0, tonumber(edge[2]) + window - now, tonumber(last[2]) + window - now}`)

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, r ratelimit.Rule) (ratelimit.Decision, error) {
	var id [8]byte
	rand.Read(id[:])
	res, err := slidingWindow.Run(ctx, l.c, []string{l.prefix + "{" + Part(key) + "}"},
		r.Window.Microseconds(), r.Limit, hex.EncodeToString(id[:])).Int64Slice()
	if err != nil {
		wrap(&err, "limiter")
		return ratelimit.Decision{}, err
	}
	return ratelimit.Decision{
		Allowed:    res[0] == 1,
		Limit:      r.Limit,
		Remaining:  int(res[1]),
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
		Reset:      time.Duration(res[3]) * time.Microsecond,
	}, nil
}

var _ ratelimit.Limiter = (*Limiter)(nil)
