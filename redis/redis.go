// Package redis is the shared store for several replicas of one node, on
// Redis (github.com/redis/go-redis/v9). It passes the same conformance suite
// as the embedded bbolt store.
//
// Keys. Every key of a node starts with "{<namespace>}:" (REDIS_NAMESPACE,
// "fednode" by default). The braces are a Redis Cluster hash tag: all of one
// node's keys live in one slot, so the Lua scripts that must change several
// keys at once (a message, two mailboxes and an outbox job) stay atomic on a
// cluster; several nodes sharing a cluster spread over its slots. Every
// other part of a key is either a value of a strict alphabet
// ([A-Za-z0-9_.-], at most 128 bytes) or, for anything else (peer domains
// with ports, IPv6 addresses, odd ids), "h" + 32 hex of its SHA-256: no input
// reaches a key, let alone a key pattern, unescaped.
//
// Durability. Writes are acknowledged by Redis before the node answers; how
// much survives a Redis crash depends on its persistence, which the node
// checks at start (CheckPersistence): append-only with appendfsync always
// loses nothing, everysec up to a second.
//
// Time. Expiry of sessions and login failures is by explicit pruning over
// score-indexed sets, not Redis TTLs, so the node's clock (and a test's)
// decides, exactly as with the embedded store.
package redis

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode"
)

// Options select the Redis deployment.
type Options struct {
	URL       string // redis:// or rediss:// (TLS); for a cluster, redis://h1:p1?addr=h2:p2&addr=h3:p3
	Password  string // overrides the URL's password when set
	Cluster   bool
	Namespace string // default "fednode"
	CAFile    string // PEM CAs to trust for rediss:// (default: the system's)
}

// Store is the Redis store. It implements fednode.Store and passes the
// storetest conformance suite.
type Store struct {
	c      goredis.UniversalClient
	prefix string
	closed atomic.Bool
}

var _ fednode.Store = (*Store)(nil)

var safePart = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

// Open connects and checks that Redis answers.
func Open(ctx context.Context, opt Options) (*Store, error) {
	c, err := NewClient(opt)
	if err != nil {
		return nil, err
	}
	ns := opt.Namespace
	if ns == "" {
		ns = "fednode"
	}
	if !safePart.MatchString(ns) {
		c.Close()
		return nil, fmt.Errorf("redis: namespace %q must match %s", ns, safePart)
	}
	s := &Store{c: c, prefix: "{" + ns + "}:"}
	if err := s.Ping(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

// NewClient builds a client (single server or cluster) from options, with
// timeouts short enough that a dead Redis fails a request in seconds, not
// minutes.
func NewClient(opt Options) (goredis.UniversalClient, error) {
	return newClient(opt, 2*time.Second, 3)
}

// NewFastClient is NewClient for decisions that have a fallback (the rate
// limiter): a dead Redis is noticed in a few hundred milliseconds and never
// retried within a request.
func NewFastClient(opt Options) (goredis.UniversalClient, error) {
	return newClient(opt, 300*time.Millisecond, -1)
}

func newClient(opt Options, timeout time.Duration, retries int) (goredis.UniversalClient, error) {
	if opt.Cluster {
		co, err := goredis.ParseClusterURL(opt.URL)
		if err != nil {
			return nil, fmt.Errorf("redis: REDIS_URL: %w", err)
		}
		if opt.Password != "" {
			co.Password = opt.Password
		}
		co.DialTimeout, co.ReadTimeout, co.WriteTimeout, co.PoolTimeout, co.MaxRetries = timeout, timeout, timeout, timeout+time.Second, retries
		if err := trust(co.TLSConfig, opt.CAFile); err != nil {
			return nil, err
		}
		return goredis.NewClusterClient(co), nil
	}
	o, err := goredis.ParseURL(opt.URL)
	if err != nil {
		return nil, fmt.Errorf("redis: REDIS_URL: %w", err)
	}
	if opt.Password != "" {
		o.Password = opt.Password
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.MaxRetries = timeout, timeout, timeout, timeout+time.Second, retries
	if err := trust(o.TLSConfig, opt.CAFile); err != nil {
		return nil, err
	}
	return goredis.NewClient(o), nil
}

// trust makes a rediss:// connection verify the server against caFile.
func trust(cfg *tls.Config, caFile string) error {
	if caFile == "" {
		return nil
	}
	if cfg == nil {
		return errors.New("redis: REDIS_TLS_CA_FILE needs a rediss:// URL")
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("redis: REDIS_TLS_CA_FILE: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return fmt.Errorf("redis: REDIS_TLS_CA_FILE %s holds no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	cfg.MinVersion = tls.VersionTLS12
	return nil
}

// Client is the underlying client, for the limiter and the broker.
func (s *Store) Client() goredis.UniversalClient { return s.c }

// Prefix is the node's key prefix, hash tag included.
func (s *Store) Prefix() string { return s.prefix }

// Close closes the connection pool. A second Close does nothing, on one
// server as on a cluster (whose client already behaves so).
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.c.Close()
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}

// Part makes a key part safe: itself if it is of the strict alphabet, else
// a hash of it.
func Part(v string) string {
	if safePart.MatchString(v) {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return "h" + hex.EncodeToString(sum[:16])
}

func (s *Store) key(kind string, parts ...string) string {
	k := s.prefix + kind
	for _, p := range parts {
		k += ":" + Part(p)
	}
	return k
}

func notFound(err error) error {
	if errors.Is(err, goredis.Nil) {
		return fednode.ErrNotFound
	}
	return err
}

func getJSON(ctx context.Context, c goredis.Cmdable, key string, v any) error {
	b, err := c.Get(ctx, key).Bytes()
	if err != nil {
		return notFound(err)
	}
	return json.Unmarshal(b, v)
}

// update does a read-modify-write of one JSON value under WATCH.
func (s *Store) update(ctx context.Context, key string, v any, fn func() error) error {
	for i := 0; i < 50; i++ {
		err := s.c.Watch(ctx, func(tx *goredis.Tx) error {
			if err := getJSON(ctx, tx, key, v); err != nil {
				return err
			}
			if err := fn(); err != nil {
				return err
			}
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error { return p.Set(ctx, key, b, 0).Err() })
			return err
		}, key)
		if !errors.Is(err, goredis.TxFailedErr) {
			return err
		}
	}
	return errors.New("redis: too much contention")
}

// ---- users ----

// CreateUser stores a new user, refusing a name taken in any letter case.
func (s *Store) CreateUser(ctx context.Context, u fednode.User) error {
	b, _ := json.Marshal(u)
	ok, err := s.c.SetNX(ctx, s.key("u", fednode.CanonicalUsername(u.Username)), b, 0).Result()
	if err != nil {
		return fmt.Errorf("redis: create user: %w", err)
	}
	if !ok {
		return fednode.ErrTaken
	}
	return nil
}

// User returns the user with that name in any letter case.
func (s *Store) User(ctx context.Context, username string) (fednode.User, error) {
	var u fednode.User
	err := getJSON(ctx, s.c, s.key("u", fednode.CanonicalUsername(username)), &u)
	return u, err
}

// UpdateUser applies fn to the stored user atomically.
func (s *Store) UpdateUser(ctx context.Context, username string, fn func(*fednode.User) error) error {
	var u fednode.User
	return s.update(ctx, s.key("u", fednode.CanonicalUsername(username)), &u, func() error { return fn(&u) })
}

// ---- sessions ----

// micros is a time as a ZSET score: microseconds fit a float64 exactly.
func micros(t time.Time) float64 { return float64(t.UnixMicro()) }

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
func (s *Store) CreateSession(ctx context.Context, sess fednode.Session, max int) ([]string, error) {
	if !safePart.MatchString(sess.ID) || !safePart.MatchString(sess.Username) {
		return nil, fmt.Errorf("redis: session %q of %q: ids and usernames must be of the key alphabet", sess.ID, sess.Username)
	}
	b, _ := json.Marshal(sess)
	res, err := createSession.Run(ctx, s.c,
		[]string{s.key("s", sess.ID), s.key("us", sess.Username), s.key("sall")},
		b, micros(sess.IssuedAt), sess.ID, max, micros(sess.ExpiresAt), sess.Username, s.key("s")+":").StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redis: create session: %w", err)
	}
	return res, nil
}

// Session returns the live session with that id.
func (s *Store) Session(ctx context.Context, id string) (fednode.Session, error) {
	var sess fednode.Session
	err := getJSON(ctx, s.c, s.key("s", id), &sess)
	return sess, err
}

// DeleteSession revokes one session; deleting an absent one is not an error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	sess, err := s.Session(ctx, id)
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
func (s *Store) DeleteUserSessions(ctx context.Context, username string) ([]string, error) {
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
func (s *Store) DeleteAllSessions(ctx context.Context) ([]string, error) {
	return deleteSessions.Run(ctx, s.c, []string{s.key("sall")}, "-inf", "+inf", s.key("s")+":", s.key("us")+":").StringSlice()
}

// PruneSessions deletes sessions that expired before now.
func (s *Store) PruneSessions(ctx context.Context, now time.Time) (int, error) {
	ids, err := deleteSessions.Run(ctx, s.c, []string{s.key("sall")}, "-inf", "("+strconv.FormatFloat(micros(now), 'f', 0, 64), s.key("s")+":", s.key("us")+":").StringSlice()
	return len(ids), err
}

// ---- login failures ----

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
func (s *Store) AddLoginFailure(ctx context.Context, key string, at, since time.Time) ([]time.Time, error) {
	m, err := addFailure.Run(ctx, s.c, []string{s.key("f", key), s.key("fidx"), s.key("fseq")},
		micros(at), micros(since), maxFailuresKept, key).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redis: login failure: %w", err)
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
func (s *Store) LoginFailures(ctx context.Context, key string, since time.Time) ([]time.Time, error) {
	m, err := s.c.ZRangeByScore(ctx, s.key("f", key), &goredis.ZRangeBy{Min: strconv.FormatFloat(micros(since), 'f', 0, 64), Max: "+inf"}).Result()
	if err != nil {
		return nil, err
	}
	return failureTimes(m), nil
}

// ClearLoginFailures forgets the failures of key.
func (s *Store) ClearLoginFailures(ctx context.Context, key string) error {
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, s.key("f", key))
		p.ZRem(ctx, s.key("fidx"), key)
		return nil
	})
	return err
}

// PruneLoginFailures deletes records whose newest failure is before since.
func (s *Store) PruneLoginFailures(ctx context.Context, since time.Time) (int, error) {
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

// ---- messages ----

var appendMessage = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
redis.call('SET', KEYS[1], ARGV[1])
local n = tonumber(ARGV[3])
local out = {}
for i = 1, n do
  local c = redis.call('INCR', KEYS[1 + 2 * i])
  redis.call('ZADD', KEYS[2 * i], c, ARGV[2])
  out[i] = c
end
if ARGV[4] == '1' then
  local b = 2 * n + 1
  local seq = redis.call('INCR', KEYS[b + 3])
  redis.call('ZADD', KEYS[b + 1], seq, seq)
  redis.call('HSET', KEYS[b + 2], seq, ARGV[5])
  redis.call('SADD', KEYS[b + 4], ARGV[6])
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
	b, _ := json.Marshal(m)
	keys := []string{s.key("m", m.ID)}
	for _, mb := range distinct {
		keys = append(keys, s.key("mb", mb), s.key("mbseq", mb))
	}
	jobFlag, jobJSON := "0", []byte{}
	if job {
		jobFlag = "1"
		jobJSON, _ = json.Marshal(fednode.Job{Peer: m.To.Domain, MessageID: m.ID, Pair: m.From.String() + "|" + m.To.String(), EnqueuedAt: m.CreatedAt})
		keys = append(keys, s.key("obq", m.To.Domain), s.key("obj", m.To.Domain), s.key("obseq", m.To.Domain), s.key("obpeers"))
	}
	res, err := appendMessage.Run(ctx, s.c, keys, b, m.ID, len(distinct), jobFlag, jobJSON, m.To.Domain).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: append message %s: %w", m.ID, err)
	}
	if n, ok := res.(int64); ok && n == -1 {
		return nil, fednode.ErrDuplicate
	}
	raw := res.([]any)
	out := make([]uint64, len(mailboxes))
	for i, mb := range mailboxes {
		out[i] = uint64(raw[index[fednode.CanonicalUsername(mb)]].(int64))
	}
	return out, nil
}

// AppendMessage stores m and appends it to each named mailbox, atomically.
func (s *Store) AppendMessage(ctx context.Context, m fednode.Message, mailboxes ...string) ([]uint64, error) {
	return s.appendMsg(ctx, m, mailboxes, false)
}

// AppendOutgoing stores m, appends it to the sender's mailbox and enqueues
// its delivery job, atomically.
func (s *Store) AppendOutgoing(ctx context.Context, m fednode.Message, senderMailbox string) (uint64, error) {
	c, err := s.appendMsg(ctx, m, []string{senderMailbox}, true)
	if err != nil {
		return 0, err
	}
	return c[0], nil
}

// Message returns the stored message with that id.
func (s *Store) Message(ctx context.Context, id string) (fednode.Message, error) {
	var m fednode.Message
	err := getJSON(ctx, s.c, s.key("m", id), &m)
	return m, err
}

// Mailbox returns up to limit entries after a cursor, oldest first.
func (s *Store) Mailbox(ctx context.Context, username string, after uint64, limit int) ([]fednode.Entry, error) {
	zs, err := s.c.ZRangeByScoreWithScores(ctx, s.key("mb", fednode.CanonicalUsername(username)),
		&goredis.ZRangeBy{Min: "(" + strconv.FormatUint(after, 10), Max: "+inf", Count: int64(limit)}).Result()
	if err != nil || len(zs) == 0 {
		return nil, err
	}
	keys := make([]string, len(zs))
	for i, z := range zs {
		keys[i] = s.key("m", z.Member.(string))
	}
	vals, err := s.mget(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]fednode.Entry, 0, len(zs))
	for i, v := range vals {
		if v == nil {
			return nil, fmt.Errorf("redis: mailbox entry %v has no message", zs[i].Member)
		}
		var m fednode.Message
		if err := json.Unmarshal([]byte(v.(string)), &m); err != nil {
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
func (s *Store) MailboxHead(ctx context.Context, username string) (uint64, error) {
	n, err := s.c.Get(ctx, s.key("mbseq", fednode.CanonicalUsername(username))).Uint64()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	return n, err
}

// ---- outbox ----

var dropEmptyPeer = goredis.NewScript(`
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 0`)

// PendingPeers returns the peers with jobs waiting.
func (s *Store) PendingPeers(ctx context.Context) ([]string, error) {
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

// PeerJobs returns up to limit of a peer's jobs, oldest first.
func (s *Store) PeerJobs(ctx context.Context, peer string, limit int) ([]fednode.Job, error) {
	seqs, err := s.c.ZRange(ctx, s.key("obq", peer), 0, int64(limit)-1).Result()
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
		if err := json.Unmarshal([]byte(v.(string)), &j); err != nil {
			return nil, err
		}
		j.Seq, _ = strconv.ParseUint(seqs[i], 10, 64)
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// NoteAttempt records a failed attempt on the given jobs.
func (s *Store) NoteAttempt(ctx context.Context, peer string, seqs []uint64, reason string) error {
	key := s.key("obj", peer)
	for i := 0; i < 50; i++ {
		err := s.c.Watch(ctx, func(tx *goredis.Tx) error {
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
				if err := json.Unmarshal([]byte(v.(string)), &j); err != nil {
					return err
				}
				j.Attempts++
				j.LastError = reason
				b, _ := json.Marshal(j)
				updates[fields[i]] = b
			}
			if len(updates) == 0 {
				return nil
			}
			_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error { return p.HSet(ctx, key, updates).Err() })
			return err
		}, key)
		if !errors.Is(err, goredis.TxFailedErr) {
			return err
		}
	}
	return errors.New("redis: too much contention")
}

// FinishJobs ends jobs atomically: removes them, sets their messages'
// status, records failed ones as dead letters.
func (s *Store) FinishJobs(ctx context.Context, peer string, results []fednode.JobResult, now time.Time) error {
	if len(results) == 0 {
		return nil
	}
	objKey, obqKey := s.key("obj", peer), s.key("obq", peer)
	watch := []string{objKey}
	for _, r := range results {
		watch = append(watch, s.key("m", r.MessageID))
	}
	for i := 0; i < 50; i++ {
		err := s.c.Watch(ctx, func(tx *goredis.Tx) error {
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
				m.Status, m.Reason = r.Status, r.Reason
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
					if c.r.Status == fednode.StatusFailed {
						dl, _ := json.Marshal(fednode.DeadLetter{MessageID: c.r.MessageID, Peer: peer, Reason: c.r.Reason, Attempts: c.job.Attempts + 1, FailedAt: now.UTC()})
						p.HSet(ctx, s.key("dead"), c.r.MessageID, dl)
						p.ZAdd(ctx, s.key("deadidx"), goredis.Z{Score: micros(now), Member: c.r.MessageID})
					}
				}
				return nil
			})
			return err
		}, watch...)
		if !errors.Is(err, goredis.TxFailedErr) {
			if err != nil {
				return fmt.Errorf("redis: finish jobs: %w", err)
			}
			return dropEmptyPeer.Run(ctx, s.c, []string{obqKey, s.key("obpeers")}, peer).Err()
		}
	}
	return errors.New("redis: too much contention")
}

// DeadLetters returns up to limit dead letters, oldest first.
func (s *Store) DeadLetters(ctx context.Context, limit int) ([]fednode.DeadLetter, error) {
	ids, err := s.c.ZRange(ctx, s.key("deadidx"), 0, int64(limit)-1).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	vals, err := s.c.HMGet(ctx, s.key("dead"), ids...).Result()
	if err != nil {
		return nil, err
	}
	var out []fednode.DeadLetter
	for _, v := range vals {
		if v == nil {
			continue
		}
		var d fednode.DeadLetter
		if err := json.Unmarshal([]byte(v.(string)), &d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// ---- meta, bans, peer documents ----

// Meta returns a value the node keeps about itself.
func (s *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	b, err := s.c.Get(ctx, s.key("meta", key)).Bytes()
	return b, notFound(err)
}

// SetMeta stores a value the node keeps about itself.
func (s *Store) SetMeta(ctx context.Context, key string, value []byte) error {
	return s.c.Set(ctx, s.key("meta", key), value, 0).Err()
}

// SetBan stores (or replaces) a ban.
func (s *Store) SetBan(ctx context.Context, b fednode.Ban) error {
	v, _ := json.Marshal(b)
	return s.c.HSet(ctx, s.key("bans"), b.Key, v).Err()
}

// Ban returns the ban record of a key.
func (s *Store) Ban(ctx context.Context, key string) (fednode.Ban, error) {
	var b fednode.Ban
	v, err := s.c.HGet(ctx, s.key("bans"), key).Bytes()
	if err != nil {
		return b, notFound(err)
	}
	return b, json.Unmarshal(v, &b)
}

// DeleteBan lifts a ban.
func (s *Store) DeleteBan(ctx context.Context, key string) error {
	return s.c.HDel(ctx, s.key("bans"), key).Err()
}

// Bans returns every ban record.
func (s *Store) Bans(ctx context.Context) ([]fednode.Ban, error) {
	all, err := s.c.HGetAll(ctx, s.key("bans")).Result()
	if err != nil {
		return nil, err
	}
	out := make([]fednode.Ban, 0, len(all))
	for _, v := range all {
		var b fednode.Ban
		if err := json.Unmarshal([]byte(v), &b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// PruneBans deletes records whose ban ended before since.
func (s *Store) PruneBans(ctx context.Context, since time.Time) (int, error) {
	all, err := s.Bans(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, b := range all {
		if b.Until.Before(since) {
			if err := s.c.HDel(ctx, s.key("bans"), b.Key).Err(); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

type peerDoc struct {
	Doc       []byte
	FetchedAt time.Time
}

// PeerDocument returns a cached peer document.
func (s *Store) PeerDocument(ctx context.Context, domain string) ([]byte, time.Time, error) {
	v, err := s.c.HGet(ctx, s.key("peers"), domain).Bytes()
	if err != nil {
		return nil, time.Time{}, notFound(err)
	}
	var p peerDoc
	err = json.Unmarshal(v, &p)
	return p.Doc, p.FetchedAt, err
}

// SetPeerDocument caches a peer document for every replica.
func (s *Store) SetPeerDocument(ctx context.Context, domain string, doc []byte, fetchedAt time.Time) error {
	v, _ := json.Marshal(peerDoc{doc, fetchedAt})
	return s.c.HSet(ctx, s.key("peers"), domain, v).Err()
}

// ---- leases ----

var acquireLease = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`)

var releaseLease = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`)

// AcquireLease takes or renews the named lease for owner. Leases expire in
// Redis time, so a holder that dies is taken over after ttl.
func (s *Store) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	n, err := acquireLease.Run(ctx, s.c, []string{s.key("lease", name)}, owner, ttl.Milliseconds()).Int()
	return n == 1, err
}

// ReleaseLease gives the lease up if owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	return releaseLease.Run(ctx, s.c, []string{s.key("lease", name)}, owner).Err()
}

// ---- persistence check ----

// CheckPersistence reports, for each master, how much an accepted message
// could be lost in a Redis crash: "" when append-only with fsync always.
func (s *Store) CheckPersistence(ctx context.Context) ([]string, error) {
	var warnings []string
	check := func(ctx context.Context, c *goredis.Client) error {
		cfg, err := c.ConfigGet(ctx, "append*").Result()
		if err != nil {
			return err
		}
		addr := c.Options().Addr
		switch {
		case cfg["appendonly"] != "yes":
			warnings = append(warnings, addr+": appendonly is off: a Redis crash loses every message accepted since the last snapshot; set appendonly yes and appendfsync always")
		case cfg["appendfsync"] == "everysec":
			warnings = append(warnings, addr+": appendfsync everysec: a Redis crash can lose up to one second of accepted messages; set appendfsync always to lose none")
		case cfg["appendfsync"] == "no":
			warnings = append(warnings, addr+": appendfsync no: the OS decides when data reaches disk; a crash can lose accepted messages; set appendfsync always")
		}
		return nil
	}
	var err error
	switch c := s.c.(type) {
	case *goredis.ClusterClient:
		var mu sync.Mutex // ForEachMaster runs the masters concurrently
		err = c.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return check(ctx, m)
		})
	case *goredis.Client:
		err = check(ctx, c)
	}
	return warnings, err
}
