package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode"
)

// Users. Each user is the JSON value "u:<canonical name>"; "uidx" is a
// sorted set of every canonical name (all scored 0, so read in lexical
// order), which CreateUser and DeleteUser keep; "ud:<canonical name>"
// holds the fednode.DeletedUser of a deleted name, which CreateUser
// refuses. A store written before uidx existed gets it built from a SCAN
// the first time users are listed ("uidxdone" marks that done).

var createUser = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[2])
return 1`)

// userPage is how many names Users reads from the index at a time.
const userPage = 256

// Users returns a page of users matching q, in order of canonical name.
func (s *Store) Users(ctx context.Context, q fednode.UserQuery) (_ []fednode.User, err error) {
	defer wrap(&err, "users")
	if err := s.indexUsers(ctx); err != nil {
		return nil, err
	}
	prefix := fednode.CanonicalUsername(q.Prefix)
	lo, hi := "-", "+"
	if prefix != "" {
		lo, hi = "["+prefix, "["+prefix+"\xff" // names are ASCII
	}
	if after := fednode.CanonicalUsername(q.After); after != "" && after >= prefix {
		lo = "(" + after
	}
	var out []fednode.User
	for len(out) < q.Limit {
		names, err := s.c.ZRangeByLex(ctx, s.key("uidx"), &goredis.ZRangeBy{Min: lo, Max: hi, Count: userPage}).Result()
		if err != nil || len(names) == 0 {
			return out, err
		}
		keys := make([]string, len(names))
		for i, n := range names {
			keys[i] = s.key("u", n)
		}
		vals, err := s.mget(ctx, keys)
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			if v == nil {
				continue // deleted since it was indexed
			}
			var u fednode.User
			if err := decodeReply(v, &u); err != nil {
				return nil, fmt.Errorf("user %s: %w", names[i], err)
			}
			if q.Matches(u) && len(out) < q.Limit {
				out = append(out, u)
			}
		}
		if len(names) < userPage {
			break
		}
		lo = "(" + names[len(names)-1]
	}
	return out, nil
}

// indexUsers builds uidx from the user keys once, for a store written
// before it existed.
func (s *Store) indexUsers(ctx context.Context) error {
	if s.usersIndexed.Load() {
		return nil
	}
	if n, err := s.c.Exists(ctx, s.key("uidxdone")).Result(); err != nil {
		return err
	} else if n == 1 {
		s.usersIndexed.Store(true)
		return nil
	}
	names, err := s.scanKeys(ctx, s.key("u")+":") // every key of the namespace is in one slot
	if err != nil {
		return fmt.Errorf("index users: %w", err)
	}
	for len(names) > 0 {
		n := min(len(names), 1000)
		zs := make([]goredis.Z, n)
		for i, name := range names[:n] {
			zs[i] = goredis.Z{Member: name}
		}
		if err := s.c.ZAdd(ctx, s.key("uidx"), zs...).Err(); err != nil {
			return fmt.Errorf("index users: %w", err)
		}
		names = names[n:]
	}
	if err := s.c.Set(ctx, s.key("uidxdone"), "1", 0).Err(); err != nil {
		return err
	}
	s.usersIndexed.Store(true)
	return nil
}

// deleteAccount deletes a user's record, sessions, login failures and
// end-to-end keys and keeps its tomb, atomically. It answers {0} for no
// such user and no tomb, {1} for a name already deleted, and
// {2, session ids...} when it deleted.
var deleteAccount = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('EXISTS', KEYS[2]) == 1 then return {1} end
  return {0}
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[5], ARGV[2])
local out = {2}
for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  redis.call('DEL', ARGV[3] .. id)
  redis.call('ZREM', KEYS[4], ARGV[2] .. '/' .. id)
  table.insert(out, id)
end
redis.call('DEL', KEYS[3], KEYS[6], KEYS[8])
redis.call('ZREM', KEYS[7], ARGV[2])
return out`)

// DeleteUser deletes the account and its sessions atomically, then the
// messages only it holds and its mailbox. Deleting a name already deleted
// finishes that work (after an interruption) and answers ErrNotFound.
func (s *Store) DeleteUser(ctx context.Context, tomb fednode.DeletedUser, domain string) (_ fednode.UserDeletion, err error) {
	defer wrap(&err, "delete user")
	name := fednode.CanonicalUsername(tomb.Username)
	if !safePart.MatchString(name) {
		return fednode.UserDeletion{}, fednode.ErrNotFound
	}
	var u fednode.User
	if err := getJSON(ctx, s.c, s.key("u", name), &u); err == nil {
		tomb.Username = u.Username
	}
	b, _ := json.Marshal(tomb)
	res, err := deleteAccount.Run(ctx, s.c,
		[]string{s.key("u", name), s.key("ud", name), s.key("us", name), s.key("sall"), s.key("uidx"), s.key("f", name), s.key("fidx"), s.key("uk", name)},
		b, name, s.key("s")+":").Slice()
	if err != nil {
		return fednode.UserDeletion{}, err
	}
	state, _ := res[0].(int64)
	if state == 0 {
		return fednode.UserDeletion{}, fednode.ErrNotFound
	}
	var del fednode.UserDeletion
	for _, id := range res[1:] {
		if id, ok := id.(string); ok {
			del.Sessions = append(del.Sessions, id)
		}
	}
	if del.Messages, err = s.purgeMailbox(ctx, name, domain); err != nil {
		return del, err
	}
	if err := s.dropConversations(ctx, name); err != nil {
		return del, err
	}
	if state == 1 {
		return del, fednode.ErrNotFound
	}
	return del, nil
}

// purgeMailbox deletes the messages of a deleted user's mailbox that no
// other local user holds, with their dead letters, then the mailbox.
func (s *Store) purgeMailbox(ctx context.Context, name, domain string) (int, error) {
	known := map[string]bool{}
	exists := func(other string) bool {
		if v, ok := known[other]; ok {
			return v
		}
		n, err := s.c.Exists(ctx, s.key("u", other)).Result()
		known[other] = err != nil || n == 1 // when unsure, keep the message
		return known[other]
	}
	deleted, after := 0, "-inf"
	for {
		zs, err := s.c.ZRangeByScoreWithScores(ctx, s.key("mb", name), &goredis.ZRangeBy{Min: after, Max: "+inf", Count: userPage}).Result()
		if err != nil {
			return deleted, err
		}
		if len(zs) == 0 {
			break
		}
		ids := make([]string, 0, len(zs))
		for _, z := range zs {
			if id, ok := z.Member.(string); ok {
				ids = append(ids, id)
			}
		}
		msgs, err := s.records(ctx, ids) // addresses only: nothing sealed
		if err != nil {
			return deleted, err
		}
		var doomed []string
		for _, id := range ids {
			if m, ok := msgs[id]; ok && fednode.HeldOnlyBy(m, name, domain, exists) {
				doomed = append(doomed, id)
			}
		}
		if len(doomed) > 0 {
			if err := s.deleteMessages(ctx, doomed); err != nil {
				return deleted, err
			}
		}
		deleted += len(doomed)
		after = "(" + strconv.FormatFloat(zs[len(zs)-1].Score, 'f', 0, 64)
	}
	return deleted, s.c.Del(ctx, s.key("mb", name), s.key("mbseq", name)).Err()
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
