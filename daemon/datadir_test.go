package daemon

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDataDirError: the message names the path, the uid the node runs as,
// the cause, and the fix that fits the cause.
func TestDataDirError(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"permission denied: chown, or a named volume", &fs.PathError{Op: "open", Path: "/data/x", Err: syscall.EACCES},
			[]string{"DATA_DIR /data/none", "uid 4242", "permission denied", "chown -R 4242 /data/none", "named volume", "uid 65532"}},
		{"read-only: mount a volume", &fs.PathError{Op: "mkdir", Path: "/data", Err: syscall.EROFS},
			[]string{"DATA_DIR /data/none", "uid 4242", "read-only file system", "Mount a writable volume at /data/none"}},
		{"anything else: the cause", &fs.PathError{Op: "mkdir", Path: "/data", Err: syscall.ENOSPC},
			[]string{"DATA_DIR /data/none", "uid 4242", "no space left"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := dataDirError("/data/none", 4242, tc.err).Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}

// TestCheckDataDir: a missing DATA_DIR is made (0700) and left empty; one
// that cannot be written is refused with the message, and Open refuses to
// start on it before anything else.
func TestCheckDataDir(t *testing.T) {
	t.Run("missing: made, and left empty", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "data")
		if err := checkDataDir(dir); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(dir)
		if err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("%v %v", st, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("the check left %v behind", ents)
		}
	})
	t.Run("not writable: refused", func(t *testing.T) {
		// Root writes anywhere, so the directory is made unwritable for
		// everyone by being under a file; as another user, also by its mode.
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		dirs := []string{filepath.Join(file, "data")}
		if os.Getuid() != 0 {
			ro := filepath.Join(t.TempDir(), "ro")
			if err := os.Mkdir(ro, 0o555); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, ro)
		}
		for _, dir := range dirs {
			err := checkDataDir(dir)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("DATA_DIR %s", dir)) || !strings.Contains(err.Error(), fmt.Sprintf("uid %d", os.Getuid())) {
				t.Fatalf("%s: %v", dir, err)
			}
			cfg := DefaultConfig()
			cfg.DataDir = dir
			if _, err := Open(t.Context(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "is not writable") {
				t.Fatalf("Open on %s: %v", dir, err)
			}
		}
	})
}

// TestUsesDataDir: only a node on Redis with its keys and JWT secret in
// Vault keeps nothing in DATA_DIR.
func TestUsesDataDir(t *testing.T) {
	c := DefaultConfig()
	if !c.UsesDataDir() {
		t.Fatal("the embedded store lives in DATA_DIR")
	}
	c.RedisURL, c.JWTSecret = "redis://r:6379", strings.Repeat("s", 32)
	if !c.UsesDataDir() {
		t.Fatal("local keys live in DATA_DIR")
	}
	c.KeysBackend = "vault"
	if c.UsesDataDir() {
		t.Fatal("Redis, Vault keys and a JWT secret: nothing in DATA_DIR")
	}
	c.JWTSecret = ""
	if !c.UsesDataDir() {
		t.Fatal("the development JWT secret lives in DATA_DIR")
	}
}
