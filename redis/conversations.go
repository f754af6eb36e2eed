package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode"
)

// The conversation index of each user, kept by the append script:
//
//	cv:<user>          hash: with -> lastRecord of its newest message
//	cvi:<user>         sorted set: with, scored by its newest cursor
//	cvr:<user>         hash: with -> read mark
//	cm:<user>:<with>   sorted set: message id by cursor, every message
//	cr:<user>:<with>   sorted set: message id by cursor, received only
//
// Unread is counted at read time: ZCOUNT of cr after the read mark.

// lastRecord is what a conversation keeps of its newest message; the
// cursor is its score in cvi.
type lastRecord struct {
	At string `json:"at"`
	// ID is the last message's id: its preview is read from it when
	// served, as the message is sealed at rest. Preview is what stores of
	// schema 2 kept instead, in clear; the upgrade to 3 replaces it.
	ID      string `json:"id,omitempty"`
	Preview string `json:"preview,omitempty"`
	FromMe  bool   `json:"from_me"`
}

func lastOf(m fednode.Message, fromMe bool) []byte {
	b, _ := json.Marshal(lastRecord{At: m.CreatedAt.UTC().Format(timeLayout), ID: m.ID, FromMe: fromMe})
	return b
}

const timeLayout = "2006-01-02T15:04:05.999999999Z07:00"

// convKeys are the keys of one conversation, in the order the append
// script takes them: cv, cvi, cm, cr.
func (s *Store) convKeys(user, with string) []string {
	return []string{s.key("cv", user), s.key("cvi", user), s.key("cm", user, with), s.key("cr", user, with)}
}

func bound(before uint64) string {
	if before == 0 {
		return "+inf"
	}
	return "(" + strconv.FormatUint(before, 10)
}

// Conversations returns a page of a user's conversations, newest first.
func (s *Store) Conversations(ctx context.Context, username string, before uint64, limit int) (_ []fednode.Conversation, err error) {
	defer wrap(&err, "conversations")
	user := fednode.CanonicalUsername(username)
	zs, err := s.c.ZRevRangeByScoreWithScores(ctx, s.key("cvi", user), &goredis.ZRangeBy{Max: bound(before), Min: "-inf", Count: int64(limit)}).Result()
	if err != nil || len(zs) == 0 {
		return nil, err
	}
	withs := make([]string, len(zs))
	for i, z := range zs {
		withs[i], _ = z.Member.(string)
	}
	lasts, err := s.c.HMGet(ctx, s.key("cv", user), withs...).Result()
	if err != nil {
		return nil, err
	}
	reads, err := s.c.HMGet(ctx, s.key("cvr", user), withs...).Result()
	if err != nil {
		return nil, err
	}
	counts := make([]*goredis.IntCmd, len(zs))
	if _, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, w := range withs {
			read, _ := reads[i].(string)
			if read == "" {
				read = "0"
			}
			counts[i] = p.ZCount(ctx, s.key("cr", user, w), "("+read, "+inf")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]fednode.Conversation, 0, len(zs))
	var ids []string
	recs := make([]lastRecord, len(zs))
	for i, z := range zs {
		last := &recs[i]
		if err := decodeReply(lasts[i], last); err != nil {
			return nil, fmt.Errorf("conversation %s: %w", withs[i], err)
		}
		c := fednode.Conversation{With: withs[i], LastCursor: uint64(z.Score), LastPreview: last.Preview, LastFromMe: last.FromMe, Unread: int(counts[i].Val())}
		if c.LastAt, err = parseTime(last.At); err != nil {
			return nil, fmt.Errorf("conversation %s: %w", withs[i], err)
		}
		if last.ID != "" {
			ids = append(ids, last.ID)
		}
		out = append(out, c)
	}
	msgs, err := s.Messages(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if m, ok := msgs[recs[i].ID]; ok {
			out[i].LastPreview, out[i].LastE2E = fednode.Preview(m.Content), m.E2E != nil
		}
	}
	return out, nil
}

// ConversationMessages returns a page of one conversation, newest first.
func (s *Store) ConversationMessages(ctx context.Context, username, with string, before uint64, limit int) (_ []fednode.Entry, err error) {
	defer wrap(&err, "conversation messages")
	user := fednode.CanonicalUsername(username)
	zs, err := s.c.ZRevRangeByScoreWithScores(ctx, s.key("cm", user, with), &goredis.ZRangeBy{Max: bound(before), Min: "-inf", Count: int64(limit)}).Result()
	if err != nil || len(zs) == 0 {
		return nil, err
	}
	ids := make([]string, len(zs))
	for i, z := range zs {
		ids[i], _ = z.Member.(string)
	}
	msgs, err := s.Messages(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]fednode.Entry, 0, len(zs))
	for i, z := range zs {
		m, ok := msgs[ids[i]]
		if !ok {
			return nil, fmt.Errorf("conversation entry %s has no message", ids[i])
		}
		out = append(out, fednode.Entry{Cursor: uint64(z.Score), Message: m})
	}
	return out, nil
}

// markRead moves a read mark up (KEYS: cv, cvr; ARGV: with, cursor).
var markRead = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
return 1`)

// MarkConversationRead moves a conversation's read mark up to cursor.
func (s *Store) MarkConversationRead(ctx context.Context, username, with string, cursor uint64) (err error) {
	defer wrap(&err, "mark conversation read")
	user := fednode.CanonicalUsername(username)
	n, err := markRead.Run(ctx, s.c, []string{s.key("cv", user), s.key("cvr", user)}, with, strconv.FormatUint(cursor, 10)).Int()
	if err != nil {
		return err
	}
	if n == -1 {
		return fednode.ErrNotFound
	}
	return nil
}

// unindexMessage removes a message from a mailbox and its conversation
// (KEYS: mb, cv, cvi, cm, cr, cvr; ARGV: id, with). It answers -1 when the
// message is not in the mailbox, 0 when the conversation is left as it
// was or emptied, and {id, cursor} of the message that is now the
// conversation's newest, whose record the caller rewrites.
var unindexMessage = goredis.NewScript(`
local c = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not c then return -1 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
if redis.call('ZSCORE', KEYS[3], ARGV[2]) ~= c then return 0 end
local prev = redis.call('ZREVRANGE', KEYS[4], 0, 0, 'WITHSCORES')
if #prev == 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
  redis.call('HDEL', KEYS[6], ARGV[2])
  return 0
end
redis.call('ZADD', KEYS[3], prev[2], ARGV[2])
return prev`)

// setLast rewrites a conversation's record if its newest cursor is still
// ARGV[3] (KEYS: cv, cvi; ARGV: with, record, cursor).
var setLast = goredis.NewScript(`
local c = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not c or tonumber(c) ~= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`)

// DeleteMailboxMessage removes a message from a user's mailbox and
// conversation index, then deletes it when nobody else holds it.
func (s *Store) DeleteMailboxMessage(ctx context.Context, username, id, domain string) (err error) {
	defer wrap(&err, "delete message "+id)
	user := fednode.CanonicalUsername(username)
	var m fednode.Message
	if err := getJSON(ctx, s.c, s.key("m", id), &m); err != nil {
		return err
	}
	fromMe := strings.EqualFold(m.From.Domain, domain) && fednode.CanonicalUsername(m.From.User) == user
	with, _ := fednode.ConversationOf(m, user, fromMe)
	cv := s.convKeys(user, with)
	res, err := unindexMessage.Run(ctx, s.c, []string{s.key("mb", user), cv[0], cv[1], cv[2], cv[3], s.key("cvr", user)}, id, with).Result()
	if err != nil {
		return err
	}
	if n, ok := res.(int64); ok && n == -1 {
		return fednode.ErrNotFound
	}
	if prev, ok := res.([]any); ok && len(prev) == 2 {
		pid, _ := prev[0].(string)
		pc, _ := prev[1].(string)
		var pm fednode.Message
		if err := getJSON(ctx, s.c, s.key("m", pid), &pm); err != nil {
			return fmt.Errorf("conversation %s: %w", with, err)
		}
		_, pFromMe := fednode.ConversationOf(pm, user, strings.EqualFold(pm.From.Domain, domain) && fednode.CanonicalUsername(pm.From.User) == user)
		if err := setLast.Run(ctx, s.c, []string{cv[0], cv[1]}, with, lastOf(pm, pFromMe), pc).Err(); err != nil {
			return err
		}
	}
	holds := func(other string) bool { // in another mailbox of this node
		_, err := s.c.ZScore(ctx, s.key("mb", other), id).Result()
		return !errors.Is(err, goredis.Nil) // when unsure, keep the message
	}
	if !fednode.HeldOnlyBy(m, user, domain, holds) {
		return nil
	}
	return s.deleteMessages(ctx, []string{id})
}

// deleteMessages deletes messages with their dead letters.
func (s *Store) deleteMessages(ctx context.Context, ids []string) error {
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		for _, id := range ids {
			p.Del(ctx, s.key("m", id))
		}
		p.HDel(ctx, s.key("dead"), ids...)
		p.ZRem(ctx, s.key("deadidx"), toAny(ids)...)
		return nil
	})
	return err
}

// dropConversations deletes a user's whole conversation index and blocks.
func (s *Store) dropConversations(ctx context.Context, user string) error {
	withs, err := s.c.ZRange(ctx, s.key("cvi", user), 0, -1).Result()
	if err != nil {
		return err
	}
	keys := []string{s.key("cv", user), s.key("cvi", user), s.key("cvr", user), s.key("bl", user)}
	for _, w := range withs {
		keys = append(keys, s.key("cm", user, w), s.key("cr", user, w))
	}
	for len(keys) > 0 {
		n := min(len(keys), userPage)
		if err := s.c.Del(ctx, keys[:n]...).Err(); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// indexMailboxes builds the conversation index of every mailbox, for a
// store written before it existed (schema 1 → 2). It is idempotent: it
// writes the same entries again, oldest first, so the newest wins.
func indexMailboxes(ctx context.Context, s *Store) error {
	owners, err := s.scanKeys(ctx, s.key("mb")+":")
	if err != nil {
		return err
	}
	for _, owner := range owners {
		if err := s.indexMailbox(ctx, owner); err != nil {
			return fmt.Errorf("mailbox %s: %w", owner, err)
		}
	}
	return nil
}

func (s *Store) indexMailbox(ctx context.Context, owner string) error {
	after := "-inf"
	for {
		zs, err := s.c.ZRangeByScoreWithScores(ctx, s.key("mb", owner), &goredis.ZRangeBy{Min: after, Max: "+inf", Count: userPage}).Result()
		if err != nil || len(zs) == 0 {
			return err
		}
		ids := make([]string, len(zs))
		for i, z := range zs {
			ids[i], _ = z.Member.(string)
		}
		msgs, err := s.records(ctx, ids) // addresses and time: nothing sealed
		if err != nil {
			return err
		}
		if _, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, z := range zs {
				m, ok := msgs[ids[i]]
				if !ok {
					continue
				}
				with, fromMe := fednode.ConversationOf(m, owner, fednode.SentCopy(m, owner))
				cv := s.convKeys(owner, with)
				p.HSet(ctx, cv[0], with, lastOf(m, fromMe))
				p.ZAdd(ctx, cv[1], goredis.Z{Score: z.Score, Member: with})
				p.ZAdd(ctx, cv[2], goredis.Z{Score: z.Score, Member: m.ID})
				if !fromMe {
					p.ZAdd(ctx, cv[3], goredis.Z{Score: z.Score, Member: m.ID})
				}
			}
			return nil
		}); err != nil {
			return err
		}
		after = "(" + strconv.FormatFloat(zs[len(zs)-1].Score, 'f', 0, 64)
	}
}

var errNoTime = errors.New("no time")

func parseTime(s string) (t time.Time, err error) {
	if s == "" {
		return t, errNoTime
	}
	return time.Parse(time.RFC3339Nano, s)
}

// scanKeys returns the rest of every key of the namespace that starts with
// pre. Every key of the namespace is in one hash slot, so on a cluster the
// master of that slot holds them all.
func (s *Store) scanKeys(ctx context.Context, pre string) ([]string, error) {
	c, err := s.slotClient(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	it := c.Scan(ctx, 0, pre+"*", 1000).Iterator()
	for it.Next(ctx) {
		out = append(out, strings.TrimPrefix(it.Val(), pre))
	}
	return out, it.Err()
}

// slotClient is the client that holds every key of the namespace (they
// share one hash slot): on a cluster, the master of that slot.
func (s *Store) slotClient(ctx context.Context) (goredis.Cmdable, error) {
	if cc, ok := s.c.(*goredis.ClusterClient); ok {
		return cc.MasterForKey(ctx, s.prefix)
	}
	return s.c, nil
}
