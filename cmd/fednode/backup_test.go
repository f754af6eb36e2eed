package main_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/bolt"
)

// TestBinaryBackupAndRestore: `fednode admin backup FILE` against a
// running node says OK after checking the copy; `fednode admin restore`
// puts it into an empty DATA_DIR, and the node starts there with its
// users. On Redis the command says how to back Redis up instead.
func TestBinaryBackupAndRestore(t *testing.T) {
	n := newStoreNode(t)
	n.start()
	n.fillStore()
	file := filepath.Join(t.TempDir(), "node.backup")
	code, out := n.run("admin", "backup", file)
	if code != 0 || !strings.Contains(out, "OK: backup written and checked") || !strings.Contains(out, "admin socket") || !strings.Contains(out, "keys/keyring.json") {
		t.Fatalf("backup of a running node: exit %d\n%s", code, out)
	}
	n.stop()
	n.dir = t.TempDir() + "/restored"
	n.env[0] = "DATA_DIR=" + n.dir
	if code, out := n.run("admin", "restore", file); code != 0 || !strings.Contains(out, "OK: restored") {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	n.start()
	n.p.login(t, "alice")
	n.stop()

	n.env = append(n.env, "REDIS_URL=redis://127.0.0.1:1")
	code, out = n.run("admin", "backup", file)
	noCrash(t, out)
	if code != 1 || !strings.Contains(out, "RDB") {
		t.Fatalf("backup on Redis: exit %d\n%s", code, out)
	}
}

// TestBinaryRefusesNewerStore: a store a newer fednode upgraded is refused
// at start with both versions named, exit 1 and no stack trace.
func TestBinaryRefusesNewerStore(t *testing.T) {
	n := newStoreNode(t)
	db, err := bolt.Open(context.Background(), bolt.Options{Dir: n.dir, Timeout: time.Second, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	db.SetMeta(context.Background(), fednode.SchemaKey, []byte("7"))
	db.Close()
	code, out := n.run()
	noCrash(t, out)
	if want := fmt.Sprintf("has store schema version 7, newer than this fednode's %d", fednode.SchemaVersion); code != 1 || !strings.Contains(out, want) || !strings.Contains(out, n.file()) {
		t.Fatalf("exit %d, want 1 and %q:\n%s", code, want, out)
	}
}
