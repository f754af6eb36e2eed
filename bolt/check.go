package bolt

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// Checking a store file without trusting it.
//
// bbolt reads its file through a memory map and follows the page ids and
// offsets it finds there. On a damaged file that means reading past the end
// of the file (SIGBUS), outside the map (SIGSEGV), or recursing forever
// through a cycle of pages; none of those can be recovered from in the
// goroutine that bbolt's own Tx.Check starts. So the file is first walked
// here with plain reads (ReadAt, which can only return an error): the meta
// pages, the file's length, the freelist and every page reachable from the
// root, checking that every id, offset and length stays inside its page and
// inside the file, and that no page is reached twice. Only a file that passes
// this walk is handed to bbolt, whose own check (key order, freed pages,
// unreachable pages) then cannot fault, and then every record is decoded.
//
// check.go has the entry points (Check, RepairMeta) and what they report;
// checkfile.go reads bbolt's file format, the meta pages and the length;
// checkpages.go walks the pages; checkrecords.go runs bbolt's own check and
// decodes the records.

// Report is what a check of the store file found.
type Report struct {
	Path     string
	Size     int64
	PageSize int
	Txid     uint64 // the transaction the store is at (the newest valid meta page)
	Pages    uint64 // the high-water mark: pages in use or free
	Reached  int    // pages reachable from the root
	Records  map[string]int
	Full     bool // every page and record was checked, not only the meta pages and the length
	Took     time.Duration

	// MetaProblems lists damage to one of the two meta pages. bbolt keeps
	// two so that it can fall back to the older one; the fallback loses the
	// transaction the damaged page recorded if that was the newer.
	MetaProblems []string
	// OtherTxid is the transaction the damaged meta page claims (not to be
	// trusted: the page is damaged).
	OtherTxid uint64
	// Problems lists every other kind of damage found.
	Problems []string
	more     int
}

func (r *Report) add(format string, args ...any) {
	if len(r.Problems) >= maxProblems {
		r.more++
		return
	}
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Damaged reports whether the check found anything wrong.
func (r *Report) Damaged() bool { return len(r.Problems) > 0 || len(r.MetaProblems) > 0 }

// Err returns the report as a *DamageError, or nil when it found nothing.
func (r *Report) Err() error {
	if !r.Damaged() {
		return nil
	}
	e := &DamageError{Path: r.Path, Size: r.Size, Problems: append(append([]string(nil), r.MetaProblems...), r.Problems...), More: r.more}
	if len(r.Problems) == 0 {
		e.MetaOnly, e.Txid, e.LostTxid = true, r.Txid, r.OtherTxid > r.Txid
	}
	if r.Size == 0 {
		e.Empty = true
	}
	return e
}

// String is the report for an operator.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "store: %s (%s", r.Path, sizeString(r.Size))
	if r.PageSize > 0 {
		fmt.Fprintf(&b, ", page size %d, %d pages, transaction %d", r.PageSize, r.Pages, r.Txid)
	}
	b.WriteString(")\n")
	if len(r.MetaProblems) == 0 && r.PageSize > 0 {
		b.WriteString("meta pages: both valid\n")
	}
	for _, p := range r.MetaProblems {
		fmt.Fprintf(&b, "meta pages: %s\n", p)
	}
	if r.Full && r.Reached > 0 {
		fmt.Fprintf(&b, "pages: %d of %d reached from the meta pages, all within the file\n", r.Reached, r.Pages)
	}
	if len(r.Records) > 0 {
		names := make([]string, 0, len(r.Records))
		for _, name := range recordBuckets {
			if n, ok := r.Records[name]; ok {
				names = append(names, fmt.Sprintf("%d %s", n, name))
			}
		}
		fmt.Fprintf(&b, "records: %s\n", strings.Join(names, ", "))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	if r.more > 0 {
		fmt.Fprintf(&b, "problem: … and %d more\n", r.more)
	}
	switch {
	case r.Damaged():
		fmt.Fprintf(&b, "result: DAMAGED (checked in %v)\n", r.Took.Round(time.Millisecond))
	case r.Full && r.Records != nil:
		fmt.Fprintf(&b, "result: ok, every page and record checked (in %v)\n", r.Took.Round(time.Millisecond))
	case r.Full:
		fmt.Fprintf(&b, "result: ok, every page checked (in %v)\n", r.Took.Round(time.Millisecond))
	default:
		fmt.Fprintf(&b, "result: ok, meta pages and length only (in %v)\n", r.Took.Round(time.Millisecond))
	}
	return b.String()
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// DamageError is a store file that failed a check. The node refuses to open
// it: serving it would answer "not found" for data that exists, or crash.
type DamageError struct {
	Path     string
	Size     int64
	Problems []string
	More     int
	// Empty: the file has no bytes at all (lost, or its creation was cut
	// short).
	Empty bool
	// MetaOnly: the only damage is one of the two meta pages; the store is
	// consistent as of transaction Txid, and RepairMeta can make the file
	// whole again at that transaction. LostTxid: the damaged page claims a
	// newer transaction, whose writes the fallback loses.
	MetaOnly bool
	Txid     uint64
	LostTxid bool
}

// Error names the file and the first few problems: enough to act on, short
// enough for one log line. The check (Report) lists them all.
func (e *DamageError) Error() string {
	const shown = 3
	s := fmt.Sprintf("bolt: %s is damaged: %s", e.Path, strings.Join(e.Problems[:min(shown, len(e.Problems))], "; "))
	if more := e.More + max(0, len(e.Problems)-shown); more > 0 {
		s += fmt.Sprintf("; and %d more problems", more)
	}
	return s
}

// Check checks the store file at path, which need not be in a data
// directory (a backup, say): everything inspect and checkTx do. It takes a
// shared lock, so it waits up to timeout for a running node to stop, and
// fails clearly if it does not. The report says what was found; the error
// is for a file that could not be checked at all.
func Check(ctx context.Context, path string, timeout time.Duration) (*Report, error) {
	return check(ctx, path, timeout, allRecords)
}

func check(ctx context.Context, path string, timeout time.Duration, scope recordScope) (*Report, error) {
	start := time.Now()
	f, _, err := openLocked(path, false, false, timeout)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("bolt: check %s: %w", path, err)
	}
	rep := inspect(ctx, f, path, st.Size(), true)
	if err := ctx.Err(); err != nil {
		f.Close()
		return nil, fmt.Errorf("bolt: check %s: interrupted: %w", path, err)
	}
	if len(rep.Problems) > 0 {
		f.Close()
		rep.Took = time.Since(start)
		return rep, nil
	}
	err = viewLocked(f, path, timeout, func(tx *bbolt.Tx) error {
		checkTx(ctx, tx, rep, scope)
		return nil
	})
	if err != nil {
		rep.add("reading the store: %v", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: check %s: interrupted: %w", path, err)
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// viewLocked runs fn in a read transaction of the store file f, opened and
// locked by openLocked, safe from faults, and closes f.
func viewLocked(f *os.File, path string, timeout time.Duration, fn func(*bbolt.Tx) error) error {
	err := faultSafe(func() error {
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: timeout, OpenFile: handOver(f)})
		if err != nil {
			return err
		}
		defer db.Close()
		return db.View(fn)
	})
	if err != nil {
		f.Close() // if bbolt did not get as far as closing it
	}
	return err
}

// handOver gives bbolt the file already opened and locked, so no other
// process can slip in between the check and the open.
func handOver(f *os.File) func(string, int, os.FileMode) (*os.File, error) {
	return func(string, int, os.FileMode) (*os.File, error) { return f, nil }
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
