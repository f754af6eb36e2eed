package atomicfile

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	for _, data := range []string{"first", "second"} {
		if err := WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != data {
			t.Fatalf("read %q %v, want %q", b, err, data)
		}
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

// TestWriteFileDoesNotFollowSymlinks: a symlink at path (or at the old
// fixed temporary name) is replaced, never written through.
func TestWriteFileDoesNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("untouched"), 0o600)
	path := filepath.Join(dir, "pins.json")
	for _, link := range []string{path, path + ".tmp"} {
		if err := os.Symlink(victim, link); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteFile(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "untouched" {
		t.Fatalf("wrote through a symlink: victim holds %q", b)
	}
	if st, err := os.Lstat(path); err != nil || st.Mode()&os.ModeSymlink != 0 {
		t.Fatalf("path is still a symlink: %v %v", st, err)
	}
}

// TestLockExcludes: a second Lock waits for the first unlock.
func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.json")
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		u, err := Lock(path) // a new open file description: flock excludes it
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		got = true
		mu.Unlock()
		u()
	}()
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	early := got
	mu.Unlock()
	if early {
		t.Fatal("the second Lock did not wait")
	}
	unlock()
	<-done
	if !got {
		t.Fatal("the second Lock never got the lock")
	}
}
