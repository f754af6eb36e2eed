package bolt

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/fednode/fednode"
)

// How the store fails.
//
// A store that is damaged, or whose last commit may or may not be on disk,
// must not go on taking writes: each one could build on pages that are not
// what bbolt believes them to be, and the node would tell clients "stored"
// about data it may lose. Nor may it crash: a node that dies on every
// request, or on every restart, is worse than one that answers 503 and says
// why. So:
//
//   - every transaction runs with SetPanicOnFault, so that a read of a
//     damaged or truncated memory map is a panic, not a fatal signal; and a
//     panic inside a transaction (bbolt asserts a lot) is recovered;
//   - such a panic, a record that does not decode, or a commit that failed
//     after its meta page was written (its outcome is in doubt) marks the
//     store failed: every later write is refused with an error wrapping
//     fednode.ErrStoreFailed (503), reads go on where they can, Ping says
//     why, the log says it once at Error level, and a consistency check of
//     the file runs in the background and logs what it finds;
//   - a commit that failed before its meta page (no space, an I/O error, a
//     read-only file system) changed nothing on disk: the write is refused
//     with 503 and Ping reports it until a write succeeds again.
type health struct {
	mu       sync.Mutex
	failed   error // wraps fednode.ErrStoreFailed; set once, never cleared
	check    string
	writeErr error // the last commit's I/O error, nil after a success
	log      *slog.Logger
	path     string
}

// failure returns the reason the store failed, or nil.
func (h *health) failure() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed == nil {
		return nil
	}
	if h.check != "" {
		return fmt.Errorf("%w (%s)", h.failed, h.check)
	}
	return h.failed
}

// setFailed records the first failure and reports whether this was it.
func (h *health) setFailed(reason string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed != nil {
		return false
	}
	h.failed = fmt.Errorf("%s: %w", reason, fednode.ErrStoreFailed)
	return true
}

func (h *health) setCheck(s string) {
	h.mu.Lock()
	h.check = s
	h.mu.Unlock()
}

func (h *health) wrote() {
	h.mu.Lock()
	was := h.writeErr
	h.writeErr = nil
	h.mu.Unlock()
	if was != nil {
		h.log.Info("store: writes succeed again", "file", h.path, "after", was.Error())
	}
}

func (h *health) writeFailed(err error) {
	h.mu.Lock()
	first := h.writeErr == nil
	h.writeErr = err
	h.mu.Unlock()
	if first {
		h.log.Error("store: a write failed; writes are refused with 503 until one succeeds", "file", h.path, "err", err)
	}
}

func (h *health) lastWriteErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.writeErr
}

// corruptError is a read that found what the store never writes: a record
// that does not decode, an index entry that points to nothing.
type corruptError struct{ err error }

func (e corruptError) Error() string { return e.err.Error() }
func (e corruptError) Unwrap() error { return e.err }

func corrupt(format string, args ...any) error { return corruptError{fmt.Errorf(format, args...)} }

// faultAddr returns the address of the memory fault that r, a recovered
// value, is or wraps (SetPanicOnFault's runtime error has an Addr method).
func faultAddr(r any) (uintptr, bool) {
	var fault interface{ Addr() uintptr }
	if err, ok := r.(error); ok && errors.As(err, &fault) {
		return fault.Addr(), true
	}
	return 0, false
}

// panicked turns a recovered value into the reason the store failed.
func panicked(r any) string {
	if addr, ok := faultAddr(r); ok {
		return fmt.Sprintf("a memory fault reading the store file at %#x (%v): the file is damaged or was truncated underneath the node", addr, r)
	}
	return fmt.Sprintf("bbolt crashed on the store's data (%v): the file is probably damaged", r)
}

// crashedWhileRunning words a recovered panic of a running store, whose
// stack fail logs at Debug level.
func crashedWhileRunning(r any) string {
	s := panicked(r)
	if _, fault := faultAddr(r); !fault {
		s += " (if the check of the file finds nothing, it is a bug: the stack is logged at Debug level)"
	}
	return s
}

// faultSafe runs fn with memory faults turned into panics and recovers
// them as a crashError, for the code that opens and checks a file that may
// be damaged.
func faultSafe(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = crashError(panicked(r))
		}
	}()
	return fn()
}

// crashError is a fault or panic that faultSafe recovered.
type crashError string

func (e crashError) Error() string { return string(e) }

// fail marks the store failed (the first time: log it, check the file in
// the background) and returns the error for the operation that found it.
func (d *Store) fail(op, reason string, stack []byte) error {
	if d.health.setFailed(reason) {
		d.health.log.Error("store: failed; writes are refused until the operator acts (see Damage and recovery in docs/OPERATIONS.md)",
			"file", d.path, "op", op, "reason", reason)
		if stack != nil {
			d.health.log.Debug("store: where it failed", "stack", string(stack))
		}
		d.bgMu.Lock()
		if !d.bgClosed { // Close waits for what runs, and nothing may start after
			d.bg.Add(1)
			go d.checkAfterFailure()
		}
		d.bgMu.Unlock()
	}
	return d.health.failure()
}

// checkAfterFailure checks the file while no write runs, and logs what it
// found: the operator learns whether the file is damaged before deciding.
func (d *Store) checkAfterFailure() {
	defer d.bg.Done()
	d.gate.Lock() // no writer may run under bbolt's check
	defer d.gate.Unlock()
	if d.bgCtx.Err() != nil {
		return
	}
	f, err := os.Open(d.path)
	if err != nil {
		d.health.log.Error("store: cannot check the file after the failure", "file", d.path, "err", err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return
	}
	start := time.Now()
	rep := inspect(d.bgCtx, f, d.path, st.Size(), true)
	if d.bgCtx.Err() != nil {
		return // closing: the next start checks the file
	}
	if !rep.Damaged() {
		err = faultSafe(func() error {
			return d.db.View(func(tx *bbolt.Tx) error {
				checkTx(d.bgCtx, tx, rep, allRecords)
				return nil
			})
		})
		if err != nil {
			rep.add("reading the store: %v", err)
		}
		if d.bgCtx.Err() != nil {
			return
		}
	}
	if rep.Damaged() {
		derr := rep.Err()
		d.health.setCheck("the check of the file found damage: " + derr.Error())
		d.health.log.Error("store: the check after the failure found damage; restore from a backup", "file", d.path, "problems", derr.Error(), "took", time.Since(start))
		return
	}
	d.health.setCheck("the check of the file found no damage")
	d.health.log.Warn("store: the check after the failure found no damage in the file; restart the node to take writes again", "file", d.path, "took", time.Since(start))
}

// view runs fn in a read transaction, turning a fault, a panic or a
// corrupt record into a failed store and an error. Its error names op.
func (d *Store) view(op string, fn func(*bbolt.Tx) error) (err error) {
	defer wrap(&err, op) // deferred first, so it runs last
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = d.fail(op, crashedWhileRunning(r), debug.Stack())
		}
	}()
	err = d.db.View(fn)
	if errors.As(err, new(corruptError)) {
		return d.fail(op, "a read found a damaged record: "+err.Error(), nil)
	}
	return err
}

// update runs fn in one fsynced write transaction, refused once the store
// has failed. See the comment on health for what each failure does. Its
// error names op.
func (d *Store) update(op string, fn func(*bbolt.Tx) error) (err error) {
	defer wrap(&err, op)
	return d.write(op, fn)
}

// write is update with an error that does not name op yet, for the group
// committer, whose callers each name their own.
func (d *Store) write(op string, fn func(*bbolt.Tx) error) (err error) {
	if f := d.health.failure(); f != nil {
		return f
	}
	d.gate.RLock()
	defer d.gate.RUnlock()
	if f := d.health.failure(); f != nil { // failed while this write waited
		return f
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = d.fail(op, crashedWhileRunning(r), debug.Stack())
		}
	}()
	var txid uint64
	fnDone := false
	err = d.db.Update(func(tx *bbolt.Tx) error {
		if f := d.health.failure(); f != nil { // failed while this write waited for bbolt
			return f
		}
		txid = uint64(tx.ID())
		if err := fn(tx); err != nil {
			return err
		}
		fnDone = true
		return nil
	})
	switch {
	case err == nil:
		d.health.wrote()
		return nil
	case errors.As(err, new(corruptError)):
		return d.fail(op, "a write found a damaged record: "+err.Error(), nil)
	case errors.Is(err, fednode.ErrStoreFailed):
		return err
	case !fnDone:
		return err // the caller's own refusal (taken, not found, …): nothing was written
	}
	return d.commitFailed(op, txid, err)
}

// commitFailed handles a commit that bbolt could not finish. bbolt writes
// the data pages, fsyncs, then writes and fsyncs the meta page that makes
// the transaction real. If the meta page never reached the file, the store
// is as it was: refuse this write, report it, and let the next one try. If
// it did (the store's transaction id moved), the failure came at or after
// the fsync that was to make it durable: whether the write is on disk is
// unknown, and the store fails closed.
func (d *Store) commitFailed(op string, txid uint64, cerr error) error {
	var now uint64
	if err := d.db.View(func(tx *bbolt.Tx) error { now = uint64(tx.ID()); return nil }); err != nil || now >= txid {
		return d.fail(op, fmt.Sprintf("the commit of transaction %d failed after its meta page was written (%v): whether it is on disk is unknown", txid, cerr), nil)
	}
	d.health.writeFailed(cerr)
	return &fednode.Error{Code: fednode.EUnavailable, Message: "the store cannot take writes now; try again later", RetryAfter: 30, Err: cerr}
}

// writeTrouble words the last commit's I/O error for Ping: the errno's
// text when there is one (no space left on device, input/output error).
func writeTrouble(err error) string {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		return errno.Error()
	case errors.Is(err, berrors.ErrMaxSizeReached):
		return "the store reached its maximum size"
	}
	return err.Error()
}
