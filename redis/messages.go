package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode"
)

// enqueueJobLua queues a delivery job at the tail of its peer's queue and
// indexes it by message id: the one way a job enters a queue, shared by
// the scripts that append and redrive.
const enqueueJobLua = `
local function enqueue(q, jobs, seqk, peers, idx, job, peer, id)
  local seq = redis.call('INCR', seqk)
  redis.call('ZADD', q, seq, seq)
  redis.call('HSET', jobs, seq, job)
  redis.call('SADD', peers, peer)
  redis.call('HSET', idx, id, seq)
end
`

// appendMessage stores a message (KEYS[1]) and appends it to n mailboxes,
// each with its conversation index (convKeys: six keys a mailbox, three
// arguments), and enqueues its job when ARGV[4] is '1'.
var appendMessage = goredis.NewScript(enqueueJobLua + `
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
redis.call('SET', KEYS[1], ARGV[1])
local n = tonumber(ARGV[3])
local out = {}
for i = 1, n do
  local k, a = 1 + 6 * (i - 1), 6 + 3 * (i - 1)
  local c = redis.call('INCR', KEYS[k + 2])
  redis.call('ZADD', KEYS[k + 1], c, ARGV[2])
  redis.call('HSET', KEYS[k + 3], ARGV[a + 1], ARGV[a + 2])
  redis.call('ZADD', KEYS[k + 4], c, ARGV[a + 1])
  redis.call('ZADD', KEYS[k + 5], c, ARGV[2])
  if ARGV[a + 3] == '1' then redis.call('ZADD', KEYS[k + 6], c, ARGV[2]) end
  out[i] = c
end
if ARGV[4] == '1' then
  local b = 6 * n + 1
  enqueue(KEYS[b + 1], KEYS[b + 2], KEYS[b + 3], KEYS[b + 4], KEYS[b + 5], ARGV[5], ARGV[6], ARGV[2])
end
return out`)

func (s *Store) appendMsg(ctx context.Context, m fednode.Message, mailboxes []string, job bool) ([]uint64, error) {
	var distinct []string
	index := map[string]int{}
	for _, mb := range mailboxes {
		mb = fednode.CanonicalUsername(mb)
		if _, ok := index[mb]; !ok {
			index[mb] = len(distinct)
			distinct = append(distinct, mb)
		}
	}
	stored, err := s.seal(ctx, m)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(stored)
	keys := []string{s.key("m", m.ID)}
	var convArgs []any
	for _, mb := range distinct {
		with, fromMe := fednode.ConversationOf(m, mb, job)
		keys = append(keys, s.key("mb", mb), s.key("mbseq", mb))
		keys = append(keys, s.convKeys(mb, with)...)
		received := "1"
		if fromMe {
			received = "0"
		}
		convArgs = append(convArgs, with, lastOf(m, fromMe), received)
	}
	jobFlag, jobJSON := "0", []byte{}
	if job {
		jobFlag = "1"
		jobJSON, _ = json.Marshal(fednode.Job{Peer: m.To.Domain, MessageID: m.ID, Pair: m.From.String() + "|" + m.To.String(), EnqueuedAt: m.CreatedAt})
		keys = append(keys, s.jobKeys(m.To.Domain)...)
	}
	args := append([]any{b, m.ID, len(distinct), jobFlag, jobJSON, m.To.Domain}, convArgs...)
	res, err := appendMessage.Run(ctx, s.c, keys, args...).Result()
	if err != nil {
		return nil, err
	}
	if n, ok := res.(int64); ok && n == -1 {
		return nil, fednode.ErrDuplicate
	}
	raw, ok := res.([]any)
	if !ok || len(raw) != len(distinct) {
		return nil, fmt.Errorf("the append script answered %v", res)
	}
	out := make([]uint64, len(mailboxes))
	for i, mb := range mailboxes {
		c, ok := raw[index[fednode.CanonicalUsername(mb)]].(int64)
		if !ok {
			return nil, fmt.Errorf("the append script answered %v", res)
		}
		out[i] = uint64(c)
	}
	return out, nil
}

// AppendMessage stores m and appends it to each named mailbox, atomically.
func (s *Store) AppendMessage(ctx context.Context, m fednode.Message, mailboxes ...string) (_ []uint64, err error) {
	defer wrap(&err, "append message "+m.ID)
	return s.appendMsg(ctx, m, mailboxes, false)
}

// AppendOutgoing stores m, appends it to the sender's mailbox and enqueues
// its delivery job, atomically.
func (s *Store) AppendOutgoing(ctx context.Context, m fednode.Message, senderMailbox string) (_ uint64, err error) {
	defer wrap(&err, "append outgoing message "+m.ID)
	c, err := s.appendMsg(ctx, m, []string{senderMailbox}, true)
	if err != nil {
		return 0, err
	}
	return c[0], nil
}

// Message returns the stored message with that id.
func (s *Store) Message(ctx context.Context, id string) (_ fednode.Message, err error) {
	defer wrap(&err, "message")
	var m fednode.Message
	if err = getJSON(ctx, s.c, s.key("m", id), &m); err != nil {
		return m, err
	}
	return s.open(ctx, m)
}

// Messages returns every stored message among ids, keyed by id, in one
// round trip: one MGET, which a cluster serves because every key of the
// node shares its hash tag, so its slot. Ids not stored are absent.
func (s *Store) Messages(ctx context.Context, ids []string) (_ map[string]fednode.Message, err error) {
	defer wrap(&err, "messages")
	out, err := s.records(ctx, ids)
	if err != nil {
		return nil, err
	}
	for id, m := range out {
		if out[id], err = s.open(ctx, m); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// records returns the stored records of the messages with the given ids,
// as stored (sealed): for what reads only a record's id, addresses, time
// and status, which are never sealed (indexing, deleting a user).
func (s *Store) records(ctx context.Context, ids []string) (map[string]fednode.Message, error) {
	out := make(map[string]fednode.Message, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.key("m", id)
	}
	vals, err := s.mget(ctx, keys)
	if err != nil {
		return nil, err
	}
	for i, v := range vals {
		if v == nil {
			continue // not stored
		}
		var m fednode.Message
		if err := decodeReply(v, &m); err != nil {
			return nil, fmt.Errorf("message %s: %w", ids[i], err)
		}
		out[ids[i]] = m
	}
	return out, nil
}

// Mailbox returns up to limit entries after a cursor, oldest first.
func (s *Store) Mailbox(ctx context.Context, username string, after uint64, limit int) (_ []fednode.Entry, err error) {
	defer wrap(&err, "mailbox")
	zs, err := s.c.ZRangeByScoreWithScores(ctx, s.key("mb", fednode.CanonicalUsername(username)),
		&goredis.ZRangeBy{Min: "(" + strconv.FormatUint(after, 10), Max: "+inf", Count: int64(limit)}).Result()
	if err != nil || len(zs) == 0 {
		return nil, err
	}
	keys := make([]string, len(zs))
	for i, z := range zs {
		id, ok := z.Member.(string)
		if !ok {
			return nil, fmt.Errorf("mailbox entry %v is not a message id", z.Member)
		}
		keys[i] = s.key("m", id)
	}
	vals, err := s.mget(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]fednode.Entry, 0, len(zs))
	for i, v := range vals {
		if v == nil {
			return nil, fmt.Errorf("mailbox entry %v has no message", zs[i].Member)
		}
		var m fednode.Message
		if err := decodeReply(v, &m); err != nil {
			return nil, fmt.Errorf("message %v: %w", zs[i].Member, err)
		}
		if m, err = s.open(ctx, m); err != nil {
			return nil, err
		}
		out = append(out, fednode.Entry{Cursor: uint64(zs[i].Score), Message: m})
	}
	return out, nil
}

// mget reads several keys of this node's slot (one round trip).
func (s *Store) mget(ctx context.Context, keys []string) ([]any, error) {
	return s.c.MGet(ctx, keys...).Result()
}

// MailboxHead returns the newest cursor of a mailbox.
func (s *Store) MailboxHead(ctx context.Context, username string) (_ uint64, err error) {
	defer wrap(&err, "mailbox head")
	n, err := s.c.Get(ctx, s.key("mbseq", fednode.CanonicalUsername(username))).Uint64()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	return n, err
}
