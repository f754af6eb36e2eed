package daemon_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fednode/fednode/bolt"
	"github.com/fednode/fednode/daemon"
)

// TestBackupWhileSendingRestoresEverything: a backup taken from a running
// node while users send, then the data directory destroyed and the backup
// restored: the node starts as the same node (same keys), every account
// logs in, every message accepted before the backup is back, and nothing
// that was never sent appears. The backup is audited, and a second one
// taken with the node stopped reads the file.
func TestBackupWhileSendingRestoresEverything(t *testing.T) {
	ctx := context.Background()
	n := startNode(t)
	alice := n.user("alice")
	n.user("bob")
	var before []string
	for i := range 20 {
		before = append(before, n.send(alice, "bob", "before "+string(rune('a'+i))))
	}
	var mu sync.Mutex
	var during []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				id, _, err := n.api(alice).Send(ctx, "bob", "during the backup", nil)
				if err == nil {
					mu.Lock()
					during = append(during, id)
					mu.Unlock()
				}
			}
		})
	}
	file := filepath.Join(t.TempDir(), "node.backup")
	res, err := daemon.Backup(ctx, n.cfg, file)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Online || res.Store.Damaged() || !slices.Contains(res.Files, "fednode.db") || !slices.Contains(res.Files, "keys/keyring.json") {
		t.Fatalf("backup: %+v\n%s", res, res)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the backup's mode: %v %v", st.Mode(), err)
	}
	if !strings.Contains(n.audit.String(), `"msg":"store.backup"`) {
		t.Fatalf("the backup is not in the audit stream:\n%s", n.audit.String())
	}
	if len(during) == 0 {
		t.Fatal("no message was sent during the backup")
	}
	keyring, _ := os.ReadFile(filepath.Join(n.cfg.DataDir, "keys", "keyring.json"))

	n.srv.Close()
	n.srv = nil
	if err := os.RemoveAll(n.cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	if _, err := daemon.Restore(ctx, n.cfg, file); err != nil {
		t.Fatal(err)
	}
	if _, err := daemon.Restore(ctx, n.cfg, file); err == nil || !strings.Contains(err.Error(), "never replaces") {
		t.Fatalf("a restore over a node's store: %v", err)
	}
	n.open()
	if got, _ := os.ReadFile(filepath.Join(n.cfg.DataDir, "keys", "keyring.json")); string(got) != string(keyring) {
		t.Fatal("the restored node has other keys")
	}
	alice, bob := n.login("alice", "password-alice"), n.login("bob", "password-bob")
	var restored []string
	for _, m := range n.mailbox(bob) {
		restored = append(restored, m["id"].(string))
	}
	for _, id := range before {
		if !slices.Contains(restored, id) {
			t.Fatalf("message %s, sent before the backup, is not back", id)
		}
	}
	for _, id := range restored {
		if !slices.Contains(before, id) && !slices.Contains(during, id) {
			t.Fatalf("message %s was never sent", id)
		}
	}
	if len(n.mailbox(alice)) != len(restored) {
		t.Fatalf("alice's mailbox has %d messages, bob's %d", len(n.mailbox(alice)), len(restored))
	}

	n.srv.Close() // a backup of a stopped node
	n.srv = nil
	res, err = daemon.Backup(ctx, n.cfg, file)
	if err != nil || res.Online || res.Store.Damaged() {
		t.Fatalf("an offline backup: %v\n%v", err, res)
	}
	n.open()
}

// TestBackupOnRedisSaysHow: on Redis the command backs nothing up and
// says how to back Redis up instead.
func TestBackupOnRedisSaysHow(t *testing.T) {
	cfg := daemon.DefaultConfig()
	cfg.DataDir, cfg.RedisURL = t.TempDir(), "redis://127.0.0.1:1"
	if _, err := daemon.Backup(context.Background(), cfg, filepath.Join(t.TempDir(), "b")); !errors.Is(err, daemon.ErrRedisBackup) || !strings.Contains(err.Error(), "RDB") {
		t.Fatalf("backup on Redis: %v", err)
	}
	if _, err := daemon.Restore(context.Background(), cfg, "b"); !errors.Is(err, daemon.ErrRedisBackup) {
		t.Fatalf("restore on Redis: %v", err)
	}
}

// TestBackupOfAStoreHeldWithoutItsSocket: a store another process holds,
// with no node answering on the admin socket, is refused with the hint
// that names the socket.
func TestBackupOfAStoreHeldWithoutItsSocket(t *testing.T) {
	cfg := daemon.DefaultConfig()
	cfg.DataDir = t.TempDir()
	db, err := bolt.Open(context.Background(), bolt.Options{Dir: cfg.DataDir, Timeout: time.Second, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = daemon.Backup(context.Background(), cfg, filepath.Join(t.TempDir(), "b.tar"))
	if err == nil || !strings.Contains(err.Error(), "does not answer on "+filepath.Join(cfg.DataDir, "admin.sock")) {
		t.Fatalf("backup of a held store: %v; want the admin socket hint", err)
	}
}
