package bolt_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/bolt"
	"github.com/fednode/fednode/internal/syncbuf"
)

// openFixture opens a copy of the fixture with a log the test can read.
func openFixture(t *testing.T) (*fixture, *bolt.Store, *syncbuf.Buffer) {
	t.Helper()
	fx := fill(t)
	logs := &syncbuf.Buffer{}
	db, err := bolt.Open(context.Background(), bolt.Options{Dir: fx.dir, Timeout: time.Second, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return fx, db, logs
}

// bucketRoot returns the page of a top-level bucket's root, read before
// the store is opened.
func bucketRoot(t *testing.T, path, name string) int64 {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var root int64
	db.View(func(tx *bbolt.Tx) error { root = int64(tx.Bucket([]byte(name)).Root()); return nil })
	if root == 0 {
		t.Fatalf("bucket %s is inline", name)
	}
	return root
}

// waitLogged waits for the background check to log its finding.
func waitLogged(t *testing.T, logs *syncbuf.Buffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", want, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTruncatedWhileRunning truncates the file under a running store (a
// mistaken cp or restore, a full disk that lost the file's end): reading
// the lost pages is a memory fault on the map, which must become an error
// and a failed store, not a crash of the process.
func TestTruncatedWhileRunning(t *testing.T) {
	ctx := context.Background()
	fx, db, logs := openFixture(t)
	if err := os.Truncate(fx.path, 8<<10); err != nil {
		t.Fatal(err)
	}
	var readErr error
	for id := range fx.messages {
		if _, readErr = db.Message(ctx, id); readErr != nil {
			break
		}
	}
	if !errors.Is(readErr, fednode.ErrStoreFailed) || !strings.Contains(readErr.Error(), "memory fault") {
		t.Fatalf("reading a page cut off the file: %v, want a memory fault failing the store", readErr)
	}
	if err := db.SetMeta(ctx, "k", []byte("v")); !errors.Is(err, fednode.ErrStoreFailed) {
		t.Fatalf("a write after the fault: %v", err)
	}
	if _, err := db.AppendMessage(ctx, fednode.Message{ID: "new"}, "user001"); !errors.Is(err, fednode.ErrStoreFailed) {
		t.Fatalf("an append after the fault: %v", err)
	}
	if err := db.Ping(ctx); !errors.Is(err, fednode.ErrStoreFailed) {
		t.Fatalf("Ping after the fault: %v", err)
	}
	waitLogged(t, logs, "the check after the failure found damage")
	if !strings.Contains(logs.String(), "truncated") {
		t.Fatalf("the check does not say the file is truncated:\n%s", logs)
	}
	if err := db.Ping(ctx); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("Ping after the check: %v", err)
	}
	if n := strings.Count(logs.String(), "store: failed"); n != 1 {
		t.Fatalf("the failure was logged %d times, want once:\n%s", n, logs)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestCommitterCrashFailsClosed damages the page the group committer
// reads first (the messages bucket's root) while the store runs: bbolt
// panics inside the committer's transaction. Every append must get an
// error, the store must refuse writes from then on, reads elsewhere must
// go on, and the process must live.
func TestCommitterCrashFailsClosed(t *testing.T) {
	ctx := context.Background()
	fx := fill(t)
	root := bucketRoot(t, fx.path, "messages")
	logs := &syncbuf.Buffer{}
	db, err := bolt.Open(ctx, bolt.Options{Dir: fx.dir, Timeout: time.Second, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	writeAt(t, fx.path, root*4096, []byte{0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0})

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = db.AppendMessage(ctx, fednode.Message{ID: fmt.Sprint("after-", i)}, "user001")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, fednode.ErrStoreFailed) {
			t.Fatalf("append %d through a crashing committer: %v", i, err)
		}
	}
	if _, err := db.AppendMessage(ctx, fednode.Message{ID: "later"}, "user002"); !errors.Is(err, fednode.ErrStoreFailed) {
		t.Fatalf("an append after the committer failed: %v", err)
	}
	if err := db.CreateUser(ctx, fednode.User{Username: "newcomer"}); !errors.Is(err, fednode.ErrStoreFailed) {
		t.Fatalf("another write after the committer failed: %v", err)
	}
	if u, err := db.User(ctx, "user001"); err != nil || u.Username != "user001" {
		t.Fatalf("a read of an intact part: %+v, %v", u, err)
	}
	if err := db.Ping(ctx); !errors.Is(err, fednode.ErrStoreFailed) {
		t.Fatalf("Ping: %v", err)
	}
	waitLogged(t, logs, "found damage")
	if n := strings.Count(logs.String(), "store: failed"); n != 1 {
		t.Fatalf("the failure was logged %d times, want once:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), "goroutine ") {
		t.Fatalf("a stack trace at the default level:\n%s", logs)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// And at the next start the damage is found before anything is served.
	if _, err := bolt.Open(context.Background(), bolt.Options{Dir: fx.dir, Timeout: time.Second, Create: true}); err == nil || !strings.Contains(err.Error(), "bucket messages") {
		t.Fatalf("reopen: %v", err)
	}
}

// TestDamagedRecordIsNotANotFound: a record that no longer decodes, met by
// a read, is a failed store and a 503, never a 404.
func TestDamagedRecordIsNotANotFound(t *testing.T) {
	ctx := context.Background()
	fx, db, _ := openFixture(t)
	b, err := os.ReadFile(fx.path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(`user042{"Username":"user042"`))
	writeAt(t, fx.path, int64(i+7), []byte("["))
	_, err = db.User(ctx, "user042")
	if !errors.Is(err, fednode.ErrStoreFailed) || fednode.ErrorCode(err) != fednode.EUnavailable {
		t.Fatalf("User on a damaged record: %v", err)
	}
}

// TestLargeStoreGetsTheQuickCheck: above FullCheckMaxBytes a start checks
// only what costs nothing (here forced with a negative limit). Truncation
// and a damaged meta page are still refused; a damaged data page deep in
// the tree is served until a read meets it, which fails the store instead
// of answering "not found".
func TestLargeStoreGetsTheQuickCheck(t *testing.T) {
	ctx := context.Background()
	quick := func(dir string) bolt.Options {
		return bolt.Options{Dir: dir, Timeout: time.Second, FullCheckMaxBytes: -1}
	}
	t.Run("truncated", func(t *testing.T) {
		fx := fill(t)
		os.Truncate(fx.path, 1<<20)
		if _, err := bolt.Open(ctx, quick(fx.dir)); !errors.As(err, new(*bolt.DamageError)) || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("Open: %v", err)
		}
	})
	t.Run("a meta page", func(t *testing.T) {
		fx := fill(t)
		flipBit(t, fx.path, 4096+16+40, 0)
		if _, err := bolt.Open(ctx, quick(fx.dir)); !errors.As(err, new(*bolt.DamageError)) || !strings.Contains(err.Error(), "meta page 1") {
			t.Fatalf("Open: %v", err)
		}
	})
	t.Run("the root page's elements", func(t *testing.T) {
		// The quick check reads the root page's header, not its elements:
		// bbolt meets the damage while opening, and the fault it makes is
		// refused as damage like any other.
		fx := fill(t)
		b, _ := os.ReadFile(fx.path)
		m := 0
		if metaTxids(t, fx.path, 4096)[1] > metaTxids(t, fx.path, 4096)[0] {
			m = 1
		}
		root := int64(binary.LittleEndian.Uint64(b[m*4096+16+16:]))
		writeAt(t, fx.path, root*4096+16+4, []byte{0xf0, 0xff, 0xff, 0xff})
		_, err := bolt.Open(ctx, quick(fx.dir))
		if !errors.As(err, new(*bolt.DamageError)) || !strings.Contains(err.Error(), fx.path) {
			t.Fatalf("Open: %v", err)
		}
		t.Log(err)
	})
	t.Run("a data page", func(t *testing.T) {
		fx := fill(t)
		_, leaf, _, ps := pages(t, fx.path)
		for _, id := range leaf[len(leaf)/4 : len(leaf)/2] {
			writeAt(t, fx.path, int64(id*ps)+8, []byte{0, 0})
		}
		db, err := bolt.Open(ctx, quick(fx.dir))
		if err != nil {
			t.Fatalf("the quick check read a data page: %v", err)
		}
		defer db.Close()
		missing, failed, _ := fx.readBack(t, db)
		if len(missing) > 0 || failed == 0 {
			t.Fatalf("%d reads answered not found, %d failed", len(missing), failed)
		}
		if err := db.Ping(ctx); !errors.Is(err, fednode.ErrStoreFailed) {
			t.Fatalf("Ping after reads met damage: %v", err)
		}
	})
}
