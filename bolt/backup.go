package bolt

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// Online backup.
//
// A copy of the store is one read transaction written out whole
// (Tx.WriteTo): consistent, taken while writers go on (bbolt keeps the
// pages the transaction sees until it ends), and a valid store file with
// nothing newer than that transaction in it. The caller is told the
// copy's length before its first byte, so it can frame it (a tar header,
// a Content-Length).

// Backup writes a consistent copy of the running store to the writer
// start returns when given the copy's length.
func (d *Store) Backup(ctx context.Context, start func(size int64) (io.Writer, error)) error {
	if d.isClosed() {
		return fmt.Errorf("bolt: backup: store closed")
	}
	return d.view("backup", func(tx *bbolt.Tx) error { return writeCopy(ctx, tx, start) })
}

// BackupFile does what Backup does for the store of a stopped node, which
// it opens read-only under a shared lock, waiting up to timeout for a
// running node to let go, and failing clearly if it does not.
func BackupFile(ctx context.Context, dir string, timeout time.Duration, start func(size int64) (io.Writer, error)) error {
	path := filepath.Join(dir, fileName)
	f, _, err := openLocked(path, false, false, timeout)
	if err != nil {
		return err
	}
	if err := viewLocked(f, path, timeout, func(tx *bbolt.Tx) error { return writeCopy(ctx, tx, start) }); err != nil {
		return fmt.Errorf("bolt: backup %s: %w", path, err)
	}
	return nil
}

func writeCopy(ctx context.Context, tx *bbolt.Tx, start func(int64) (io.Writer, error)) error {
	w, err := start(tx.Size())
	if err != nil {
		return err
	}
	n, err := tx.WriteTo(ctxWriter{ctx, w})
	if err == nil && n != tx.Size() {
		err = fmt.Errorf("wrote %d bytes of %d", n, tx.Size())
	}
	return err
}

// ctxWriter stops a copy when ctx ends (the client went away).
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
