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
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode"
)

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

// micros is a time as a ZSET score: microseconds fit a float64 exactly.
func micros(t time.Time) float64 { return float64(t.UnixMicro()) }
