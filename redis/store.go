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
//
// Errors. Every error names its operation ("redis: create user: ..."), and
// one that means Redis cannot answer now (network, timeout, a closed
// client, a server loading or a cluster failing over) wraps
// fednode.ErrUnavailable: see transient.
package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
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

	usersIndexed atomic.Bool // uidx is known to be built (see useradmin.go)
	sealer       Sealer
}

var _ fednode.Store = (*Store)(nil)

var safePart = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

// Open connects, checks that Redis answers, refuses a store a newer
// fednode wrote (*fednode.SchemaTooNewError) and upgrades one an older
// fednode wrote (schema.go).
func Open(ctx context.Context, o Options) (*Store, error) {
	c, err := NewClient(o)
	if err != nil {
		return nil, err
	}
	ns := o.Namespace
	if ns == "" {
		ns = "fednode"
	}
	if !safePart.MatchString(ns) {
		c.Close()
		return nil, fmt.Errorf("redis: namespace %q must match %s", ns, safePart)
	}
	s := &Store{c: c, prefix: "{" + ns + "}:", sealer: o.Sealer}
	if err := s.Ping(ctx); err != nil {
		c.Close()
		return nil, err
	}
	log, steps := o.Log, o.migrations
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if steps == nil {
		steps = migrations
	}
	if err := s.upgrade(ctx, steps, log); err != nil {
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
func (s *Store) Ping(ctx context.Context) (err error) {
	defer wrap(&err, "ping")
	return s.c.Ping(ctx).Err()
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

// wrap names the operation that failed in *err, and marks with
// fednode.ErrUnavailable a failure that says Redis cannot answer now (see
// transient), so that callers can tell "try again shortly" from a bug with
// errors.Is. Every exported method of the adapter defers it.
func wrap(err *error, op string) {
	switch {
	case *err == nil:
	case transient(*err):
		*err = fmt.Errorf("redis: %s: %w: %w", op, fednode.ErrUnavailable, *err)
	default:
		*err = fmt.Errorf("redis: %s: %w", op, *err)
	}
}

// transient reports whether err means that Redis could not answer now and
// the same request may succeed shortly: the network (refused, reset, timed
// out), a client closed under the request (the node shutting down), a pool
// with no connection free in time, a server still loading its data, a
// cluster failing over or resharding (CLUSTERDOWN, TRYAGAIN, MASTERDOWN,
// READONLY, MOVED or ASK past the client's redirects), too many clients,
// or WATCH contention past our retries. A caller that gave up
// (context.Canceled) is not Redis's failure.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errContention) ||
		errors.Is(err, goredis.ErrClosed) || errors.Is(err, goredis.ErrPoolTimeout) || errors.Is(err, goredis.ErrPoolExhausted) {
		return true
	}
	if goredis.IsLoadingError(err) || goredis.IsClusterDownError(err) || goredis.IsTryAgainError(err) ||
		goredis.IsMasterDownError(err) || goredis.IsReadOnlyError(err) || goredis.IsMaxClientsError(err) ||
		goredis.IsNoReplicasError(err) {
		return true
	}
	if _, moved := goredis.IsMovedError(err); moved {
		return true
	}
	if _, ask := goredis.IsAskError(err); ask {
		return true
	}
	// go-redis does not export these; their text is all there is.
	msg := err.Error()
	return strings.Contains(msg, "redis: cluster has no nodes") || strings.Contains(msg, "redis: connection unusable") ||
		strings.Contains(msg, "redis: connection is not usable")
}

// errContention is a read-modify-write that lost its WATCH race every
// time it tried: the record is busy, not broken.
var errContention = errors.New("too much contention")

// decodeReply decodes one JSON value of an MGET or HMGET reply.
func decodeReply(v any, x any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("a reply of type %T where a JSON string belongs", v)
	}
	return json.Unmarshal([]byte(s), x)
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
	return s.watch(ctx, func(tx *goredis.Tx) error {
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
}

// watch runs fn under WATCH of keys, again while another client changes
// them first, up to 50 times. It answers success only when fn ran to the
// end: go-redis's cluster client returns nil from Watch without running fn
// at all when the node's client is closed under it on its last attempt (a
// closed store, or a node the cluster dropped), which would report a write
// that never happened.
func (s *Store) watch(ctx context.Context, fn func(*goredis.Tx) error, keys ...string) error {
	for range 50 {
		ran := false
		err := s.c.Watch(ctx, func(tx *goredis.Tx) error {
			if err := fn(tx); err != nil {
				return err
			}
			ran = true
			return nil
		}, keys...)
		switch {
		case errors.Is(err, goredis.TxFailedErr):
			continue
		case err == nil && !ran:
			return fmt.Errorf("the transaction did not run: %w", goredis.ErrClosed)
		}
		return err
	}
	return errContention
}

// micros is a time as a ZSET score: microseconds fit a float64 exactly.
func micros(t time.Time) float64 { return float64(t.UnixMicro()) }
