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
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

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
	bOutboxIndex  = []byte("outbox_index")   // message id -> seq(8) of its queued job (in the queue of its To.Domain)
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
	appends       chan []*appendReq
	committerDone chan struct{}
	closeMu       sync.RWMutex
	closed        bool

	queue    queueCounts // the outbox's depths and dead letters, for QueueStats
	health   health
	gate     sync.RWMutex // writers share it; the check after a failure takes it alone
	bg       sync.WaitGroup
	bgMu     sync.Mutex
	bgClosed bool
	bgCtx    context.Context
	stopBg   context.CancelFunc
	sealer   Sealer
}

// DefaultFullCheckMaxBytes is the largest store Open checks in full before
// serving it: every reachable page, bbolt's own Tx.Check, and the records
// of every bucket but messages and mailboxes. That costs about 2 s per GiB
// with the file in the page cache and 3.3 s per GiB without
// (BenchmarkCheck; docs/OPERATIONS.md), so a start waits a few seconds at
// most. A larger store gets only the checks that cost nothing (meta pages,
// length, freelist, root page). Decoding every record as well costs about
// 11 s per GiB, so Open does it only for a store of up to
// AllRecordsCheckMaxBytes, and Check (fednode admin check-store) always.
const DefaultFullCheckMaxBytes = 1 << 30

// AllRecordsCheckMaxBytes is the largest store whose every record Open
// decodes and checks against its key (messages and mailboxes included)
// before serving it: under a second. In a small store a message whose key
// a flipped bit renamed is so found at start, not later as a silent 404.
const AllRecordsCheckMaxBytes = 64 << 20

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
	// recoveries, and each step of a schema upgrade (schema.go). Nil
	// discards them.
	Log *slog.Logger
	// Sealer encrypts message content and tags at rest (atrest.go). The
	// daemon always sets it; nil stores them in clear (store unit tests).
	Sealer Sealer

	migrations []migration // tests only: the schema steps instead of migrations
}

// Open opens the store file under o.Dir, refuses it with a
// *fednode.SchemaTooNewError if a newer fednode wrote it, and upgrades it
// if an older one did (schema.go). Before bbolt reads it, the file
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
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var db *bbolt.DB
	var version int // the store's schema version
	steps := migrations
	if o.migrations != nil {
		steps = o.migrations
	}
	err = faultSafe(func() error {
		var err error
		if db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: o.Timeout, OpenFile: handOver(f)}); err != nil {
			return err
		}
		if full {
			scope := smallRecords
			if st.Size() <= AllRecordsCheckMaxBytes {
				scope = allRecords
			}
			db.View(func(tx *bbolt.Tx) error { checkTx(ctx, tx, rep, scope); return nil })
			if rep.Damaged() {
				return rep.Err()
			}
		}
		// The version first: a store of a newer fednode is refused before
		// anything is written to it.
		if err := db.View(func(tx *bbolt.Tx) (err error) { version, err = schemaVersion(tx); return err }); err != nil {
			return err
		}
		if version > len(steps) {
			return &fednode.SchemaTooNewError{Store: path, Found: version, Supported: len(steps)}
		}
		err = db.Update(func(tx *bbolt.Tx) error {
			for _, b := range [][]byte{bUsers, bSessions, bUserSessions, bMessages, bMailboxes, bFailures, bOutbox, bOutboxIndex, bDead, bBans, bPeers, bMeta, bInvites, bDeleted, bConversations, bConvOrder, bConvMessages, bMailboxIDs, bBlocks, bUserKeys} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			if created { // a new store is of the current version from the start
				version = len(steps)
				return setSchemaVersion(tx, version)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return upgrade(ctx, db, path, version, steps, o.Sealer, log)
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
		if errors.As(err, new(*fednode.SchemaTooNewError)) {
			return nil, err // it names the file
		}
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	d := &Store{db: db, path: path, appends: make(chan []*appendReq, maxGroup), committerDone: make(chan struct{}), health: health{log: log, path: path}, sealer: o.Sealer}
	d.bgCtx, d.stopBg = context.WithCancel(context.Background())
	d.loadQueueCounts() // an error has failed the store, which says why (Ping)
	go d.committer()
	return d, nil
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
			if err != nil {
				return fmt.Errorf("bolt: close %s: %w", d.path, err)
			}
			return nil
		case <-time.After(100 * time.Millisecond):
			if d.health.failure() != nil && time.Now().After(deadline) {
				return fmt.Errorf("bolt: close %s: a failed transaction still holds the store; its lock goes with the process", d.path)
			}
		}
	}
}

func (d *Store) isClosed() bool {
	d.closeMu.RLock()
	defer d.closeMu.RUnlock()
	return d.closed
}

// Ping reports whether the store can serve: the reason it failed, or the
// error of the last write while writes fail, or whether a read works.
func (d *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: ping: %w", err)
	}
	if err := d.health.failure(); err != nil {
		return fmt.Errorf("bolt: ping: %w", err)
	}
	if err := d.health.lastWriteErr(); err != nil {
		return fmt.Errorf("bolt: ping: %w", &fednode.Error{Code: fednode.EUnavailable, Message: "the store cannot take writes: " + writeTrouble(err), RetryAfter: 5, Err: err})
	}
	return d.view("ping", func(tx *bbolt.Tx) error {
		if tx.Bucket(bMeta) == nil {
			return corrupt("the meta bucket is missing")
		}
		return nil
	})
}

// wrap names the operation that failed in *err: every error of an exported
// method says which one it was.
func wrap(err *error, op string) {
	if *err != nil {
		*err = fmt.Errorf("bolt: %s: %w", op, *err)
	}
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
	case *fednode.Invite:
		own = r.Code
	default:
		return nil
	}
	if own != string(k) {
		return corrupt("the record %q holds %q", keyString(k), own)
	}
	return nil
}

// pruneWhere deletes, in one transaction, the records of a bucket for which
// stale says so.
func pruneWhere[T any](d *Store, op string, bucket []byte, stale func(T) bool) (int, error) {
	n := 0
	err := d.update(op, func(tx *bbolt.Tx) error {
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

// openLocked opens path for reading, or for writing when write is set,
// creating it when create is set and it is missing (created reports that),
// and takes bbolt's lock on it (exclusive for writing, shared for reading),
// waiting up to timeout for another process to let go.
func openLocked(path string, write, create bool, timeout time.Duration) (f *os.File, created bool, err error) {
	flag, how := os.O_RDONLY, syscall.LOCK_SH
	if write {
		flag, how = os.O_RDWR, syscall.LOCK_EX
	}
	f, err = os.OpenFile(path, flag, 0o600)
	if errors.Is(err, os.ErrNotExist) && create {
		f, err = os.OpenFile(path, flag|os.O_CREATE|os.O_EXCL, 0o600)
		created = err == nil
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, false, fmt.Errorf("bolt: %s: %w", path, ErrNoStore)
		}
		return nil, false, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return f, created, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, false, fmt.Errorf("bolt: %s is in use by another process (is the node running?): %w", path, berrors.ErrTimeout)
			}
			return nil, false, fmt.Errorf("bolt: lock %s: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ErrNoStore is returned by Open for a missing store file that it was not
// told to create.
var ErrNoStore = errors.New("no store file")
