// Package bolt is the embedded store of a single node, on go.etcd.io/bbolt.
//
// Every write is one bbolt transaction that is fsynced before it returns, so
// whatever a caller was told is stored survives kill -9 and power loss.
// Concurrent message writes share one fsync through a group committer. The
// layout of buckets is private to this package; values are JSON.
//
// A damaged file is refused at open with a *DamageError, not served and
// not crashed on (check.go); a store that fails while running refuses
// writes with fednode.ErrStoreFailed and says why in Ping (health.go).
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

var (
	bUsers        = []byte("users")          // canonical username -> User
	bSessions     = []byte("sessions")       // session id -> Session
	bUserSessions = []byte("user_sessions")  // canonical username -> {issued(8)|id -> nil}
	bMessages     = []byte("messages")       // message id -> Message
	bMailboxes    = []byte("mailboxes")      // canonical username -> {cursor(8) -> message id}
	bFailures     = []byte("login_failures") // canonical username -> []unix nanos
	bOutbox       = []byte("outbox")         // peer domain -> {seq(8) -> Job}
	bDead         = []byte("dead_letters")   // message id -> DeadLetter
	bBans         = []byte("bans")           // client key -> Ban
	bPeers        = []byte("peer_documents") // peer domain -> peerDoc
	bMeta         = []byte("meta")
)

var _ fednode.Store = (*Store)(nil)

// fileName is the store's file inside the data directory.
const fileName = "fednode.db"

// Store is the embedded store. It implements fednode.Store and passes the
// storetest conformance suite.
type Store struct {
	db            *bbolt.DB
	path          string
	leases        leases
	appends       chan *appendReq
	committerDone chan struct{}
	closeMu       sync.RWMutex
	closed        bool

	health   health
	gate     sync.RWMutex // writers share it; the check after a failure takes it alone
	bg       sync.WaitGroup
	bgMu     sync.Mutex
	bgClosed bool
	bgCtx    context.Context
	stopBg   context.CancelFunc
}

// DefaultFullCheckMaxBytes is the largest store Open checks in full before
// serving it: every reachable page, bbolt's own Tx.Check, and the records
// of every bucket but messages and mailboxes. That costs about 2 s per GiB
// with the file in the page cache and 3.3 s per GiB without
// (BenchmarkCheck; docs/OPERATIONS.md), so a start waits a few seconds at
// most. A larger store gets only the checks that cost nothing (meta pages,
// length, freelist, root page). Decoding every record as well costs about
// 11 s per GiB, so only Check does it (fednode admin check-store).
const DefaultFullCheckMaxBytes = 1 << 30

// Options are Open's settings.
type Options struct {
	// Dir is the data directory; the store is the file fednode.db in it.
	Dir string
	// Timeout is how long Open waits for the file lock. A second process on
	// the same directory fails after it, which is how the offline admin
	// commands detect a running node.
	Timeout time.Duration
	// Create lets Open make a new, empty store when the file is missing
	// (and the directory with it). Without it a missing file is ErrNoStore:
	// the caller decides whether a data directory may start empty. An
	// existing file of 0 bytes is always damage, never a fresh start.
	Create bool
	// FullCheckMaxBytes: see DefaultFullCheckMaxBytes, which 0 means; a
	// negative value turns the full check off.
	FullCheckMaxBytes int64
	// Log receives the store's failures (once, at Error level) and
	// recoveries. Nil discards them.
	Log *slog.Logger
}

// Open opens the store file under o.Dir. Before bbolt reads it, the file
// is checked (check.go): a damaged file is refused with a *DamageError that
// names it and says what is wrong, never a crash. The file is locked from
// the check on, so what was checked is what is served. The check is not cut
// short when ctx ends: its size is bounded by FullCheckMaxBytes, and a half
// check would prove nothing.
func Open(ctx context.Context, o Options) (*Store, error) {
	ctx = context.WithoutCancel(ctx)
	path := filepath.Join(o.Dir, fileName)
	if o.Create {
		if err := os.MkdirAll(o.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("bolt: create data dir: %w", err)
		}
	}
	f, created, err := openLocked(path, true, o.Create, o.Timeout)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	limit := o.FullCheckMaxBytes
	if limit == 0 {
		limit = DefaultFullCheckMaxBytes
	}
	full := !created && st.Size() <= limit
	var rep *Report
	if !created {
		rep = inspect(ctx, f, path, st.Size(), full)
		if rep.Damaged() {
			f.Close()
			return nil, rep.Err()
		}
	}
	var db *bbolt.DB
	err = faultSafe(func() error {
		var err error
		if db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: o.Timeout, OpenFile: handOver(f)}); err != nil {
			return err
		}
		if full {
			db.View(func(tx *bbolt.Tx) error { checkTx(ctx, tx, rep, smallRecords); return nil })
			if rep.Damaged() {
				return rep.Err()
			}
		}
		return db.Update(func(tx *bbolt.Tx) error {
			for _, b := range [][]byte{bUsers, bSessions, bUserSessions, bMessages, bMailboxes, bFailures, bOutbox, bDead, bBans, bPeers, bMeta} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		if db != nil {
			db.Close()
		} else {
			f.Close()
		}
		if errors.As(err, new(*DamageError)) {
			return nil, err
		}
		if errors.As(err, new(crashError)) { // what the quick check of a large file cannot see
			return nil, &DamageError{Path: path, Size: st.Size(), Problems: []string{err.Error()}}
		}
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Store{db: db, path: path, appends: make(chan *appendReq, maxGroup), committerDone: make(chan struct{}), health: health{log: log, path: path}}
	d.bgCtx, d.stopBg = context.WithCancel(context.Background())
	go d.committer()
	return d, nil
}

// RepairMeta makes a store whose only damage is one of its two meta pages
// whole again, at the transaction the intact page records: it checks the
// whole file first and refuses if anything else is wrong, then commits an
// empty transaction, which bbolt writes over the damaged page. It is the
// operator's explicit acceptance that the damaged page's transaction, if it
// was the newer, is lost.
func RepairMeta(ctx context.Context, dir string, timeout time.Duration) (*Report, error) {
	path := filepath.Join(dir, fileName)
	f, _, err := openLocked(path, true, false, timeout)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("bolt: repair %s: %w", path, err)
	}
	start := time.Now()
	rep := inspect(ctx, f, path, st.Size(), true)
	defer func() { rep.Took = time.Since(start) }()
	if len(rep.Problems) > 0 {
		f.Close()
		return rep, nil
	}
	err = faultSafe(func() error {
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout, OpenFile: handOver(f)})
		if err != nil {
			return err
		}
		defer db.Close()
		db.View(func(tx *bbolt.Tx) error { checkTx(ctx, tx, rep, allRecords); return nil })
		if len(rep.Problems) > 0 || len(rep.MetaProblems) == 0 {
			return nil
		}
		return db.Update(func(*bbolt.Tx) error { return nil })
	})
	if err != nil {
		f.Close()
		return rep, fmt.Errorf("bolt: repair %s: %w", path, err)
	}
	if len(rep.Problems) > 0 {
		return rep, nil
	}
	g, err := os.Open(path)
	if err != nil {
		return rep, fmt.Errorf("bolt: repair %s: %w", path, err)
	}
	defer g.Close()
	if !metasValid(g, int64(rep.PageSize)) {
		return rep, fmt.Errorf("bolt: repair %s: a meta page is still damaged after the repair", path)
	}
	rep.MetaProblems = nil
	return rep, nil
}

// Close waits for queued appends to commit, then closes the store. A store
// that failed may be held by a transaction that never ended; then Close
// gives up after a while rather than hang the shutdown.
func (d *Store) Close() error {
	d.closeMu.Lock()
	if !d.closed {
		d.closed = true
		close(d.appends)
	}
	d.closeMu.Unlock()
	done := make(chan error, 1)
	go func() {
		<-d.committerDone
		d.bgMu.Lock()
		d.bgClosed = true
		d.bgMu.Unlock()
		d.stopBg()
		d.bg.Wait()
		done <- d.db.Close()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			return err
		case <-time.After(100 * time.Millisecond):
			if d.health.failure() != nil && time.Now().After(deadline) {
				return fmt.Errorf("bolt: close %s: a failed transaction still holds the store; its lock goes with the process", d.path)
			}
		}
	}
}

// Ping reports whether the store can serve: the reason it failed, or the
// error of the last write while writes fail, or whether a read works.
func (d *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.health.failure(); err != nil {
		return fmt.Errorf("bolt: %w", err)
	}
	if err := d.health.lastWriteErr(); err != nil {
		return &fednode.Error{Code: fednode.EUnavailable, Message: "the store cannot take writes: " + writeTrouble(err), RetryAfter: 5, Err: err}
	}
	return d.view("ping", func(tx *bbolt.Tx) error {
		if tx.Bucket(bMeta) == nil {
			return corrupt("the meta bucket is missing")
		}
		return nil
	})
}

func u64(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}

func put(b *bbolt.Bucket, k []byte, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, buf)
}

func get(b *bbolt.Bucket, k []byte, v any) error {
	buf := b.Get(k)
	if buf == nil {
		return fednode.ErrNotFound
	}
	return decode(k, buf, v)
}

// decode reads a stored JSON value. One that does not decode, or that names
// another key than the one it is stored under, was damaged on disk: the
// store never writes such a thing, and serving it would show a message
// under the wrong id or a user under the wrong name.
func decode(k, buf []byte, v any) error {
	if err := json.Unmarshal(buf, v); err != nil {
		return corrupt("the record %q does not decode: %v", keyString(k), err)
	}
	var own string
	switch r := v.(type) {
	case *fednode.User:
		own = fednode.CanonicalUsername(r.Username)
	case *fednode.Message:
		own = r.ID
	case *fednode.Session:
		own = r.ID
	case *fednode.Ban:
		own = r.Key
	case *fednode.DeadLetter:
		own = r.MessageID
	default:
		return nil
	}
	if own != string(k) {
		return corrupt("the record %q holds %q", keyString(k), own)
	}
	return nil
}

// ---- users ----

// CreateUser stores a new user, refusing a name taken in any letter case.
func (d *Store) CreateUser(ctx context.Context, u fednode.User) error {
	key := []byte(fednode.CanonicalUsername(u.Username))
	err := d.update("create user", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bUsers)
		if b.Get(key) != nil {
			return fednode.ErrTaken
		}
		return put(b, key, u)
	})
	if err != nil && !errors.Is(err, fednode.ErrTaken) {
		return fmt.Errorf("bolt: create user: %w", err)
	}
	return err
}

// User returns the user with that name in any letter case.
func (d *Store) User(ctx context.Context, username string) (fednode.User, error) {
	var u fednode.User
	err := d.view("user", func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bUsers), []byte(fednode.CanonicalUsername(username)), &u)
	})
	return u, err
}

// UpdateUser applies fn to the stored user in one transaction.
func (d *Store) UpdateUser(ctx context.Context, username string, fn func(*fednode.User) error) error {
	key := []byte(fednode.CanonicalUsername(username))
	return d.update("update user", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bUsers)
		var u fednode.User
		if err := get(b, key, &u); err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		return put(b, key, u)
	})
}

// ---- sessions ----

func sessionIndexKey(s fednode.Session) []byte {
	return append(u64(uint64(s.IssuedAt.UnixNano())), s.ID...)
}

// CreateSession stores s. When its user then has more than max sessions, the
// oldest are deleted and their ids returned.
func (d *Store) CreateSession(ctx context.Context, s fednode.Session, max int) ([]string, error) {
	var evicted []string
	err := d.update("create session", func(tx *bbolt.Tx) error {
		idx, err := tx.Bucket(bUserSessions).CreateBucketIfNotExists([]byte(s.Username))
		if err != nil {
			return err
		}
		if err := put(tx.Bucket(bSessions), []byte(s.ID), s); err != nil {
			return err
		}
		if err := idx.Put(sessionIndexKey(s), nil); err != nil {
			return err
		}
		if max <= 0 {
			return nil
		}
		var all [][]byte
		c := idx.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			all = append(all, bytes.Clone(k))
		}
		if len(all) <= max {
			return nil
		}
		old := all[:len(all)-max]
		for _, k := range old {
			id := string(k[8:])
			evicted = append(evicted, id)
			if err := idx.Delete(k); err != nil {
				return err
			}
			if err := tx.Bucket(bSessions).Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: create session: %w", err)
	}
	return evicted, nil
}

// Session returns the live session with that id.
func (d *Store) Session(ctx context.Context, id string) (fednode.Session, error) {
	var s fednode.Session
	err := d.view("session", func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bSessions), []byte(id), &s)
	})
	return s, err
}

func deleteSession(tx *bbolt.Tx, s fednode.Session) error {
	if idx := tx.Bucket(bUserSessions).Bucket([]byte(s.Username)); idx != nil {
		if err := idx.Delete(sessionIndexKey(s)); err != nil {
			return err
		}
	}
	return tx.Bucket(bSessions).Delete([]byte(s.ID))
}

// DeleteSession revokes one session. Deleting an absent session is not an
// error: revocation is idempotent.
func (d *Store) DeleteSession(ctx context.Context, id string) error {
	return d.update("delete session", func(tx *bbolt.Tx) error {
		var s fednode.Session
		if err := get(tx.Bucket(bSessions), []byte(id), &s); err != nil {
			if errors.Is(err, fednode.ErrNotFound) {
				return nil
			}
			return err
		}
		return deleteSession(tx, s)
	})
}

// DeleteUserSessions revokes every session of one user and returns their ids.
func (d *Store) DeleteUserSessions(ctx context.Context, username string) ([]string, error) {
	var ids []string
	err := d.update("delete user sessions", func(tx *bbolt.Tx) error {
		name := []byte(fednode.CanonicalUsername(username))
		idx := tx.Bucket(bUserSessions).Bucket(name)
		if idx == nil {
			return nil
		}
		sessions := tx.Bucket(bSessions)
		if err := idx.ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k[8:]))
			return sessions.Delete(k[8:])
		}); err != nil {
			return err
		}
		return tx.Bucket(bUserSessions).DeleteBucket(name)
	})
	return ids, err
}

// DeleteAllSessions revokes every session of every user and returns their
// ids: the operator's answer to a suspected breach.
func (d *Store) DeleteAllSessions(ctx context.Context) ([]string, error) {
	var ids []string
	err := d.update("delete all sessions", func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bSessions).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		}); err != nil {
			return err
		}
		for _, b := range [][]byte{bSessions, bUserSessions} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}

// PruneSessions deletes sessions that expired before now.
func (d *Store) PruneSessions(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := d.update("prune sessions", func(tx *bbolt.Tx) error {
		var expired []fednode.Session
		if err := tx.Bucket(bSessions).ForEach(func(k, v []byte) error {
			var s fednode.Session
			if err := decode(k, v, &s); err != nil {
				return err
			}
			if s.ExpiresAt.Before(now) {
				expired = append(expired, s)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, s := range expired {
			if err := deleteSession(tx, s); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	return n, err
}

// ---- login failures ----

// maxFailuresKept bounds the record per name; lockout needs only the count
// inside the window, which never usefully exceeds this.
const maxFailuresKept = 64

// AddLoginFailure records a failed login for key at time at, forgets those
// before since, and returns the failures that remain, oldest first.
func (d *Store) AddLoginFailure(ctx context.Context, key string, at, since time.Time) ([]time.Time, error) {
	var out []time.Time
	err := d.update("add login failure", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bFailures)
		var ns []int64
		if err := get(b, []byte(key), &ns); err != nil && !errors.Is(err, fednode.ErrNotFound) {
			return err
		}
		ns = append(keepSince(ns, since), at.UnixNano())
		if len(ns) > maxFailuresKept {
			ns = ns[len(ns)-maxFailuresKept:]
		}
		out = toTimes(ns)
		return put(b, []byte(key), ns)
	})
	return out, err
}

// LoginFailures returns the failures for key at or after since, oldest first.
func (d *Store) LoginFailures(ctx context.Context, key string, since time.Time) ([]time.Time, error) {
	var ns []int64
	err := d.view("login failures", func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bFailures), []byte(key), &ns)
	})
	if errors.Is(err, fednode.ErrNotFound) {
		return nil, nil
	}
	return toTimes(keepSince(ns, since)), err
}

// ClearLoginFailures forgets the failures for key (after a good login).
func (d *Store) ClearLoginFailures(ctx context.Context, key string) error {
	return d.update("clear login failures", func(tx *bbolt.Tx) error {
		return tx.Bucket(bFailures).Delete([]byte(key))
	})
}

// PruneLoginFailures deletes records whose every failure is before since.
func (d *Store) PruneLoginFailures(ctx context.Context, since time.Time) (int, error) {
	return pruneWhere(d, bFailures, func(ns []int64) bool { return len(keepSince(ns, since)) == 0 })
}

// pruneWhere deletes, in one transaction, the records of a bucket for which
// stale says so.
func pruneWhere[T any](d *Store, bucket []byte, stale func(T) bool) (int, error) {
	n := 0
	err := d.update("prune "+string(bucket), func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		var doomed [][]byte
		if err := b.ForEach(func(k, v []byte) error {
			var rec T
			if err := decode(k, v, &rec); err != nil {
				return err
			}
			if stale(rec) {
				doomed = append(doomed, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	return n, err
}

func keepSince(ns []int64, since time.Time) []int64 {
	cut := since.UnixNano()
	out := ns[:0]
	for _, n := range ns {
		if n >= cut {
			out = append(out, n)
		}
	}
	return out
}

func toTimes(ns []int64) []time.Time {
	out := make([]time.Time, len(ns))
	for i, n := range ns {
		out[i] = time.Unix(0, n).UTC()
	}
	return out
}

// ---- messages ----

// appendReq is one AppendMessage call waiting for the group committer.
type appendReq struct {
	m         fednode.Message
	mailboxes []string
	job       bool // also enqueue m for delivery to m.To.Domain
	cursors   []uint64
	err       error
	done      chan struct{}
}

// maxGroup bounds how many appends share one transaction.
const maxGroup = 256

// committer is the group commit loop: it takes the first waiting append,
// every other append already queued behind it (up to maxGroup), and commits
// them in one fsynced transaction. A lone writer is committed at once, with
// no timer to wait out; under load, the appends that arrive during one fsync
// share the next. It never dies: a panic inside a group fails the store
// (see health) and every later append is refused at once, so no appender
// waits forever and the process does not crash on every restart.
func (d *Store) committer() {
	defer close(d.committerDone)
	for first := range d.appends {
		group := []*appendReq{first}
	drain:
		for len(group) < maxGroup {
			select {
			case r, ok := <-d.appends:
				if !ok {
					break drain
				}
				group = append(group, r)
			default:
				break drain
			}
		}
		err := d.update("append messages", func(tx *bbolt.Tx) error {
			for _, r := range group {
				r.cursors, r.err = appendOne(tx, r.m, r.mailboxes, r.job)
				if r.err != nil && !errors.Is(r.err, fednode.ErrDuplicate) {
					return r.err // a storage failure fails the whole group
				}
			}
			return nil
		})
		for _, r := range group {
			if err != nil {
				r.cursors, r.err = nil, err
			}
			close(r.done)
		}
	}
}

// appendOne writes one message inside tx, and its outbox job when job is
// set. A duplicate id writes nothing.
func appendOne(tx *bbolt.Tx, m fednode.Message, mailboxes []string, job bool) ([]uint64, error) {
	msgs := tx.Bucket(bMessages)
	if msgs.Get([]byte(m.ID)) != nil {
		return nil, fednode.ErrDuplicate
	}
	if err := put(msgs, []byte(m.ID), m); err != nil {
		return nil, err
	}
	cursors := make([]uint64, len(mailboxes))
	done := map[string]uint64{}
	for i, name := range mailboxes {
		name = fednode.CanonicalUsername(name)
		if c, ok := done[name]; ok {
			cursors[i] = c
			continue
		}
		mb, err := tx.Bucket(bMailboxes).CreateBucketIfNotExists([]byte(name))
		if err != nil {
			return nil, err
		}
		seq, err := mb.NextSequence()
		if err != nil {
			return nil, err
		}
		if err := mb.Put(u64(seq), []byte(m.ID)); err != nil {
			return nil, err
		}
		cursors[i], done[name] = seq, seq
	}
	if job {
		q, err := tx.Bucket(bOutbox).CreateBucketIfNotExists([]byte(m.To.Domain))
		if err != nil {
			return nil, err
		}
		seq, err := q.NextSequence()
		if err != nil {
			return nil, err
		}
		j := fednode.Job{Seq: seq, Peer: m.To.Domain, MessageID: m.ID, Pair: m.From.String() + "|" + m.To.String(), EnqueuedAt: m.CreatedAt}
		if err := put(q, u64(seq), j); err != nil {
			return nil, err
		}
	}
	return cursors, nil
}

// AppendMessage stores m and appends it to each named mailbox (a name given
// twice is appended once) in one fsynced transaction, shared with whatever
// other appends are waiting (group commit). It returns the cursor m got in
// each mailbox, in the order the names were given. A message whose id is
// already stored is refused with fednode.ErrDuplicate and changes nothing.
func (d *Store) AppendMessage(ctx context.Context, m fednode.Message, mailboxes ...string) ([]uint64, error) {
	return d.append(&appendReq{m: m, mailboxes: mailboxes, done: make(chan struct{})})
}

// AppendOutgoing stores m (addressed to another node), appends it to the
// sender's mailbox and enqueues its delivery job for m.To.Domain, all in one
// fsynced transaction: a message is never accepted without its job, nor a
// job without its message.
func (d *Store) AppendOutgoing(ctx context.Context, m fednode.Message, senderMailbox string) (uint64, error) {
	c, err := d.append(&appendReq{m: m, mailboxes: []string{senderMailbox}, job: true, done: make(chan struct{})})
	if err != nil {
		return 0, err
	}
	return c[0], nil
}

func (d *Store) append(r *appendReq) ([]uint64, error) {
	m := r.m
	d.closeMu.RLock()
	if d.closed {
		d.closeMu.RUnlock()
		return nil, fmt.Errorf("bolt: append message %s: store closed", m.ID)
	}
	d.appends <- r
	d.closeMu.RUnlock()
	<-r.done // once queued, the write happens; do not abandon it halfway
	if r.err != nil {
		if errors.Is(r.err, fednode.ErrDuplicate) {
			return nil, r.err
		}
		return nil, fmt.Errorf("bolt: append message %s: %w", m.ID, r.err)
	}
	return r.cursors, nil
}

// Message returns the stored message with that id.
func (d *Store) Message(ctx context.Context, id string) (fednode.Message, error) {
	var m fednode.Message
	err := d.view("message", func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bMessages), []byte(id), &m)
	})
	return m, err
}

// Mailbox returns up to limit entries of one mailbox with cursors greater
// than after, oldest first.
func (d *Store) Mailbox(ctx context.Context, username string, after uint64, limit int) ([]fednode.Entry, error) {
	var out []fednode.Entry
	err := d.view("mailbox", func(tx *bbolt.Tx) error {
		mb := tx.Bucket(bMailboxes).Bucket([]byte(fednode.CanonicalUsername(username)))
		if mb == nil {
			return nil
		}
		msgs := tx.Bucket(bMessages)
		c := mb.Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			var m fednode.Message
			if err := get(msgs, v, &m); err != nil {
				if errors.Is(err, fednode.ErrNotFound) { // AppendMessage writes both in one transaction
					return corrupt("mailbox entry %x points to message %q, which is not stored", k, keyString(v))
				}
				return fmt.Errorf("mailbox entry %x: %w", k, err)
			}
			out = append(out, fednode.Entry{Cursor: binary.BigEndian.Uint64(k), Message: m})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: mailbox: %w", err)
	}
	return out, nil
}

// MailboxHead returns the newest cursor of a mailbox, 0 when it is empty.
func (d *Store) MailboxHead(ctx context.Context, username string) (uint64, error) {
	var head uint64
	err := d.view("mailbox head", func(tx *bbolt.Tx) error {
		if mb := tx.Bucket(bMailboxes).Bucket([]byte(fednode.CanonicalUsername(username))); mb != nil {
			head = mb.Sequence()
		}
		return nil
	})
	return head, err
}

// ---- outbox ----

// PendingPeers returns the peers with jobs waiting.
func (d *Store) PendingPeers(ctx context.Context) ([]string, error) {
	var peers []string
	err := d.view("pending peers", func(tx *bbolt.Tx) error {
		return tx.Bucket(bOutbox).ForEachBucket(func(k []byte) error {
			if firstKey(tx.Bucket(bOutbox).Bucket(k)) != nil {
				peers = append(peers, string(k))
			}
			return nil
		})
	})
	return peers, err
}

func firstKey(b *bbolt.Bucket) []byte {
	k, _ := b.Cursor().First()
	return k
}

// PeerJobs returns up to limit of a peer's jobs, oldest first.
func (d *Store) PeerJobs(ctx context.Context, peer string, limit int) ([]fednode.Job, error) {
	var jobs []fednode.Job
	err := d.view("peer jobs", func(tx *bbolt.Tx) error {
		q := tx.Bucket(bOutbox).Bucket([]byte(peer))
		if q == nil {
			return nil
		}
		c := q.Cursor()
		for k, v := c.First(); k != nil && len(jobs) < limit; k, v = c.Next() {
			var j fednode.Job
			if err := decode(k, v, &j); err != nil {
				return err
			}
			jobs = append(jobs, j)
		}
		return nil
	})
	return jobs, err
}

// NoteAttempt records a failed attempt on the given jobs.
func (d *Store) NoteAttempt(ctx context.Context, peer string, seqs []uint64, reason string) error {
	return d.update("note attempt", func(tx *bbolt.Tx) error {
		q := tx.Bucket(bOutbox).Bucket([]byte(peer))
		if q == nil {
			return nil
		}
		for _, s := range seqs {
			var j fednode.Job
			if err := get(q, u64(s), &j); err != nil {
				if errors.Is(err, fednode.ErrNotFound) {
					continue
				}
				return err
			}
			j.Attempts++
			j.LastError = reason
			if err := put(q, u64(s), j); err != nil {
				return err
			}
		}
		return nil
	})
}

// FinishJobs ends jobs in one transaction: each job is removed, its
// message's status set, and a failed one recorded as a dead letter.
func (d *Store) FinishJobs(ctx context.Context, peer string, results []fednode.JobResult, now time.Time) error {
	return d.update("finish jobs", func(tx *bbolt.Tx) error {
		q := tx.Bucket(bOutbox).Bucket([]byte(peer))
		msgs := tx.Bucket(bMessages)
		for _, r := range results {
			var j fednode.Job
			if q != nil {
				if err := get(q, u64(r.Seq), &j); err != nil && !errors.Is(err, fednode.ErrNotFound) {
					return err
				}
				if err := q.Delete(u64(r.Seq)); err != nil {
					return err
				}
			}
			var m fednode.Message
			if err := get(msgs, []byte(r.MessageID), &m); err != nil {
				return fmt.Errorf("message %s: %w", r.MessageID, err)
			}
			m.Status, m.Reason = r.Status, r.Reason
			if err := put(msgs, []byte(m.ID), m); err != nil {
				return err
			}
			if r.Status == fednode.StatusFailed {
				dl := fednode.DeadLetter{MessageID: m.ID, Peer: peer, Reason: r.Reason, Attempts: j.Attempts + 1, FailedAt: now.UTC()}
				if err := put(tx.Bucket(bDead), []byte(m.ID), dl); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// DeadLetters returns up to limit dead letters.
func (d *Store) DeadLetters(ctx context.Context, limit int) ([]fednode.DeadLetter, error) {
	var out []fednode.DeadLetter
	err := d.view("dead letters", func(tx *bbolt.Tx) error {
		c := tx.Bucket(bDead).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			var dl fednode.DeadLetter
			if err := decode(k, v, &dl); err != nil {
				return err
			}
			out = append(out, dl)
		}
		return nil
	})
	return out, err
}

// ---- meta ----

// Meta returns a value the node keeps about itself, or ErrNotFound.
func (d *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := d.view("meta", func(tx *bbolt.Tx) error {
		v = bytes.Clone(tx.Bucket(bMeta).Get([]byte(key)))
		if v == nil {
			return fednode.ErrNotFound
		}
		return nil
	})
	return v, err
}

// SetMeta stores a value the node keeps about itself.
func (d *Store) SetMeta(ctx context.Context, key string, value []byte) error {
	return d.update("set meta", func(tx *bbolt.Tx) error { return tx.Bucket(bMeta).Put([]byte(key), value) })
}

// ---- bans ----

// SetBan stores (or replaces) the ban of b.Key.
func (d *Store) SetBan(ctx context.Context, b fednode.Ban) error {
	return d.update("set ban", func(tx *bbolt.Tx) error { return put(tx.Bucket(bBans), []byte(b.Key), b) })
}

// Ban returns the ban record of a key, active or not, or ErrNotFound.
func (d *Store) Ban(ctx context.Context, key string) (fednode.Ban, error) {
	var b fednode.Ban
	err := d.view("ban", func(tx *bbolt.Tx) error { return get(tx.Bucket(bBans), []byte(key), &b) })
	return b, err
}

// DeleteBan lifts a ban and forgets its level.
func (d *Store) DeleteBan(ctx context.Context, key string) error {
	return d.update("delete ban", func(tx *bbolt.Tx) error { return tx.Bucket(bBans).Delete([]byte(key)) })
}

// Bans returns every ban record (active or expired but not yet pruned).
func (d *Store) Bans(ctx context.Context) ([]fednode.Ban, error) {
	var out []fednode.Ban
	err := d.view("bans", func(tx *bbolt.Tx) error {
		return tx.Bucket(bBans).ForEach(func(k, v []byte) error {
			var b fednode.Ban
			if err := decode(k, v, &b); err != nil {
				return err
			}
			out = append(out, b)
			return nil
		})
	})
	return out, err
}

// PruneBans deletes records whose ban ended before since.
func (d *Store) PruneBans(ctx context.Context, since time.Time) (int, error) {
	return pruneWhere(d, bBans, func(b fednode.Ban) bool { return b.Until.Before(since) })
}

// ---- peer documents ----

type peerDoc struct {
	Doc       []byte
	FetchedAt time.Time
}

// PeerDocument returns a cached peer document and when it was fetched.
func (d *Store) PeerDocument(ctx context.Context, domain string) ([]byte, time.Time, error) {
	var p peerDoc
	err := d.view("peer document", func(tx *bbolt.Tx) error { return get(tx.Bucket(bPeers), []byte(domain), &p) })
	return p.Doc, p.FetchedAt, err
}

// SetPeerDocument caches a peer document.
func (d *Store) SetPeerDocument(ctx context.Context, domain string, doc []byte, fetchedAt time.Time) error {
	return d.update("set peer document", func(tx *bbolt.Tx) error { return put(tx.Bucket(bPeers), []byte(domain), peerDoc{doc, fetchedAt}) })
}

// ---- leases ----

// AcquireLease takes the named lease for owner for ttl, or renews it if
// owner holds it. It reports whether owner holds the lease now. The embedded
// store serves one process, so its leases live in memory.
func (d *Store) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	return d.leases.acquire(name, owner, ttl), nil
}

// ReleaseLease gives the lease up if owner holds it.
func (d *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	d.leases.release(name, owner)
	return nil
}

type leases struct {
	mu sync.Mutex
	m  map[string]lease
}

type lease struct {
	owner string
	until time.Time
}

func (l *leases) acquire(name, owner string, ttl time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]lease{}
	}
	now := time.Now()
	if cur, ok := l.m[name]; ok && cur.owner != owner && now.Before(cur.until) {
		return false
	}
	l.m[name] = lease{owner: owner, until: now.Add(ttl)}
	return true
}

func (l *leases) release(name, owner string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.m[name]; ok && cur.owner == owner {
		delete(l.m, name)
	}
}
