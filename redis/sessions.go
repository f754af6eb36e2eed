package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode"
)

var createSession = goredis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6] .. '/' .. ARGV[3])
local max = tonumber(ARGV[4])
local n = redis.call('ZCARD', KEYS[2])
local evicted = {}
if max > 0 and n > max then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, n - max - 1)) do
    redis.call('ZREM', KEYS[2], id)
    redis.call('DEL', ARGV[7] .. id)
    redis.call('ZREM', KEYS[3], ARGV[6] .. '/' .. id)
    table.insert(evicted, id)
  end
end
return evicted`)

// CreateSession stores sess and evicts the user's oldest beyond max.
func (s *Store) CreateSession(ctx context.Context, sess fednode.Session, max int) (_ []string, err error) {
	defer wrap(&err, "create session")
	if !safePart.MatchString(sess.ID) || !safePart.MatchString(sess.Username) {
		return nil, fmt.Errorf("session %q of %q: ids and usernames must be of the key alphabet", sess.ID, sess.Username)
	}
	b, _ := json.Marshal(sess)
	res, err := createSession.Run(ctx, s.c,
		[]string{s.key("s", sess.ID), s.key("us", sess.Username), s.key("sall")},
		b, micros(sess.IssuedAt), sess.ID, max, micros(sess.ExpiresAt), sess.Username, s.key("s")+":").StringSlice()
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Session returns the live session with that id.
func (s *Store) Session(ctx context.Context, id string) (_ fednode.Session, err error) {
	defer wrap(&err, "session")
	var sess fednode.Session
	err = getJSON(ctx, s.c, s.key("s", id), &sess)
	return sess, err
}

// DeleteSession revokes one session; deleting an absent one is not an error.
func (s *Store) DeleteSession(ctx context.Context, id string) (err error) {
	defer wrap(&err, "delete session")
	var sess fednode.Session
	err = getJSON(ctx, s.c, s.key("s", id), &sess)
	if errors.Is(err, fednode.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	_, err = s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, s.key("s", id))
		p.ZRem(ctx, s.key("us", sess.Username), id)
		p.ZRem(ctx, s.key("sall"), sess.Username+"/"+id)
		return nil
	})
	return err
}

var deleteUserSessions = goredis.NewScript(`
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do
  redis.call('DEL', ARGV[1] .. id)
  redis.call('ZREM', KEYS[2], ARGV[2] .. '/' .. id)
end
redis.call('DEL', KEYS[1])
return ids`)

// DeleteUserSessions revokes every session of one user.
func (s *Store) DeleteUserSessions(ctx context.Context, username string) (_ []string, err error) {
	defer wrap(&err, "delete user sessions")
	u := fednode.CanonicalUsername(username)
	return deleteUserSessions.Run(ctx, s.c, []string{s.key("us", u), s.key("sall")}, s.key("s")+":", u).StringSlice()
}

// deleteSessions removes the sessions in sall scored between min and max.
var deleteSessions = goredis.NewScript(`
local members = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2])
local ids = {}
for _, m in ipairs(members) do
  local slash = string.find(m, '/', 1, true)
  local user, id = string.sub(m, 1, slash - 1), string.sub(m, slash + 1)
  redis.call('DEL', ARGV[3] .. id)
  redis.call('ZREM', ARGV[4] .. user, id)
  redis.call('ZREM', KEYS[1], m)
  table.insert(ids, id)
end
return ids`)

// DeleteAllSessions revokes every session of every user.
func (s *Store) DeleteAllSessions(ctx context.Context) (_ []string, err error) {
	defer wrap(&err, "delete all sessions")
	return deleteSessions.Run(ctx, s.c, []string{s.key("sall")}, "-inf", "+inf", s.key("s")+":", s.key("us")+":").StringSlice()
}

// PruneSessions deletes sessions that expired before now.
func (s *Store) PruneSessions(ctx context.Context, now time.Time) (_ int, err error) {
	defer wrap(&err, "prune sessions")
	ids, err := deleteSessions.Run(ctx, s.c, []string{s.key("sall")}, "-inf", "("+strconv.FormatFloat(micros(now), 'f', 0, 64), s.key("s")+":", s.key("us")+":").StringSlice()
	return len(ids), err
}
