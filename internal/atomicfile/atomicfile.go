// Package atomicfile replaces small files (key files, pin files) so that
// a crash, a full disk or a concurrent writer never leaves half a file,
// and serialises read-modify-write cycles between processes.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile replaces path with data, with mode perm: it writes a fresh
// temporary file (an unpredictable name in path's directory, created
// exclusively, so a symlink planted there is never followed), syncs it,
// renames it over path (which replaces a symlink at path rather than
// writing through it) and syncs the directory, so that after a crash path
// holds either the old bytes or the new ones.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing is there
	defer tmp.Close()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	SyncDir(dir)
	return nil
}

// SyncDir makes a rename or a new file in dir durable; best effort (some
// file systems cannot sync a directory).
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Lock takes an exclusive lock for path, held until unlock is called, so
// that two processes (a running fedctl tail and a fedctl keys trust) do
// not both read, change and write path and lose one change. The lock is on
// path+".lock", not on path: WriteFile replaces path's inode, and a lock
// on the old one would not exclude the next reader. It blocks while
// another process holds the lock.
func Lock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("atomicfile: lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("atomicfile: lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
