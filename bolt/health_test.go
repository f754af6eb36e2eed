package bolt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/syncbuf"
)

func openLogged(t *testing.T) (*Store, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	db, err := Open(context.Background(), Options{Dir: t.TempDir(), Timeout: time.Second, Create: true, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, logs
}

// TestFullDiskIsReportedUntilAWriteSucceeds makes commits fail the way a
// full disk does (before the meta page: nothing changes on disk), with
// bbolt's own size limit.
func TestFullDiskIsReportedUntilAWriteSucceeds(t *testing.T) {
	ctx := context.Background()
	db, logs := openLogged(t)
	big := fednode.Message{ID: "big", Content: strings.Repeat("x", 200<<10)}
	db.db.MaxSize = 64 << 10
	for range 2 {
		_, err := db.AppendMessage(ctx, big, "alice")
		if fednode.ErrorCode(err) != fednode.EUnavailable || errors.Is(err, fednode.ErrStoreFailed) {
			t.Fatalf("a write that did not fit: %v, want 503 that does not fail the store", err)
		}
	}
	if err := db.Ping(ctx); err == nil || !strings.Contains(err.Error(), "the store cannot take writes: the store reached its maximum size") {
		t.Fatalf("Ping while writes fail: %v", err)
	}
	if n := strings.Count(logs.String(), "a write failed"); n != 1 {
		t.Fatalf("the write failure was logged %d times, want once:\n%s", n, logs)
	}
	if err := db.SetMeta(ctx, "small", []byte("fits")); err != nil {
		t.Fatalf("a small write while the big one does not fit: %v", err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping after a write succeeded: %v", err)
	}
	db.db.MaxSize = 0
	if _, err := db.AppendMessage(ctx, big, "alice"); err != nil {
		t.Fatalf("once there is room: %v", err)
	}
	if !strings.Contains(logs.String(), "writes succeed again") {
		t.Fatalf("the recovery is not logged:\n%s", logs)
	}
}

// TestCommitInDoubtFailsClosed: when the commit failed but the store's
// transaction id moved, the meta page was written and the write may or may
// not be on disk. The store must stop taking writes.
func TestCommitInDoubtFailsClosed(t *testing.T) {
	ctx := context.Background()
	db, logs := openLogged(t)
	var now uint64
	db.db.View(func(tx *bbolt.Tx) error { now = uint64(tx.ID()); return nil })

	err := db.commitFailed("append message", now+1, syscall.EIO) // the meta page was not written
	if errors.Is(err, fednode.ErrStoreFailed) || !strings.Contains(db.Ping(ctx).Error(), "the store cannot take writes: input/output error") {
		t.Fatalf("a failure before the meta page: %v; Ping: %v", err, db.Ping(ctx))
	}
	err = db.commitFailed("append message", now, syscall.EIO) // it was
	if !errors.Is(err, fednode.ErrStoreFailed) || !errors.Is(db.Ping(ctx), fednode.ErrStoreFailed) {
		t.Fatalf("a commit in doubt: %v; Ping: %v", err, db.Ping(ctx))
	}
	if err := db.SetMeta(ctx, "k", []byte("v")); !errors.Is(err, fednode.ErrStoreFailed) {
		t.Fatalf("a write after the store failed: %v", err)
	}
	if _, err := db.Meta(ctx, "k"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("a read after the store failed: %v", err)
	}
	if n := strings.Count(logs.String(), "store: failed"); n != 1 {
		t.Fatalf("the failure was logged %d times, want once:\n%s", n, logs)
	}
}

// faultError is what SetPanicOnFault panics with: a runtime error with the
// faulting address.
type faultError struct{}

func (faultError) Error() string { return "unexpected fault address 0xdead" }
func (faultError) Addr() uintptr { return 0xdead }
func (faultError) RuntimeError() {}

func TestFaultsAreToldFromOtherPanics(t *testing.T) {
	for _, tt := range []struct {
		r     any
		fault bool
	}{
		{faultError{}, true},
		{fmt.Errorf("reading: %w", faultError{}), true},
		{errors.New("index out of range"), false},
		{"a string", false},
	} {
		addr, ok := faultAddr(tt.r)
		if ok != tt.fault || (ok && addr != 0xdead) {
			t.Errorf("faultAddr(%v) = %#x, %v", tt.r, addr, ok)
		}
		if got := strings.Contains(panicked(tt.r), "memory fault"); got != tt.fault {
			t.Errorf("panicked(%v) = %q", tt.r, panicked(tt.r))
		}
	}
}
