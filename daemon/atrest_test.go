package daemon_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/internal/syncbuf"
	"github.com/fednode/fednode/internal/vaulttest"
	"github.com/fednode/fednode/keys"
)

// TestDamagedMessageIsReportedNotServed: a sealed message changed on disk
// is answered with the JSON 503 of a failed store, logged with its id,
// and its text never appears; the node's file holds no text of any
// message.
func TestDamagedMessageIsReportedNotServed(t *testing.T) {
	logs := &syncbuf.Buffer{}
	n := startNode(t, logTo{logs})
	alice, bob := n.user("alice"), n.user("bob")
	id := n.send(alice, "bob", "a secret for bob only")
	if got := n.do("GET", "/api/messages/"+id, bob, nil); got.Status != 200 || !strings.Contains(got.Raw, "a secret for bob only") {
		t.Fatalf("before: %d %s", got.Status, got.Raw)
	}
	n.srv.Close()
	n.srv = nil
	path := filepath.Join(n.cfg.DataDir, "fednode.db")
	if raw, err := os.ReadFile(path); err != nil || bytes.Contains(raw, []byte("secret for bob")) {
		t.Fatalf("the message's text is in the store file (%v)", err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("messages"))
		v := bytes.Clone(b.Get([]byte(id)))
		i := bytes.Index(v, []byte(`\"c\":\"`)) + 8
		v[i] ^= 1 // a base64 letter stays one: the record still decodes
		return b.Put([]byte(id), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	n.open()
	got := n.do("GET", "/api/messages/"+id, bob, nil)
	if got.Status != 503 || !strings.Contains(got.Raw, `"unavailable"`) || strings.Contains(got.Raw, "secret") {
		t.Fatalf("a damaged message: %d %s", got.Status, got.Raw)
	}
	if !strings.Contains(logs.String(), "store.damaged_message") || !strings.Contains(logs.String(), id) {
		t.Fatalf("the damage is not logged with the message id:\n%s", logs.String())
	}
	if m := n.get("/metrics", ""); !strings.Contains(m.Raw, "\nfednode_store_damaged_records_total 1\n") {
		t.Fatalf("the damage is not counted in /metrics:\n%s", m.Raw)
	}
}

// TestVaultNodeWrapsDataKeysInTransit: on Vault keys, the data keys of
// messages at rest are wrapped by Transit, and no key file is made.
func TestVaultNodeWrapsDataKeysInTransit(t *testing.T) {
	v := vaulttest.Start(t)
	n := startNode(t, onVault(t, v, "atrest", false))
	alice, bob := n.user("alice"), n.user("bob")
	id := n.send(alice, "bob", "a secret kept by Vault")
	if got := n.do("GET", "/api/messages/"+id, bob, nil); got.Status != 200 || !strings.Contains(got.Raw, "a secret kept by Vault") {
		t.Fatalf("%d %s", got.Status, got.Raw)
	}
	n.srv.Close()
	n.srv = nil
	if _, err := os.Stat(filepath.Join(n.cfg.DataDir, keys.KEKFile)); !os.IsNotExist(err) {
		t.Fatalf("a node on Vault keys made %s: %v", keys.KEKFile, err)
	}
	raw, err := os.ReadFile(filepath.Join(n.cfg.DataDir, "fednode.db"))
	if err != nil || bytes.Contains(raw, []byte("kept by Vault")) || !bytes.Contains(raw, []byte("dmF1bHQ6djE6")) { // base64 of "vault:v1:"
		t.Fatalf("the store file: text there, or no Transit-wrapped data key (%v)", err)
	}
	n.open() // a restarted node unwraps through Transit
	if got := n.do("GET", "/api/messages/"+id, bob, nil); got.Status != 200 || !strings.Contains(got.Raw, "a secret kept by Vault") {
		t.Fatalf("after a restart: %d %s", got.Status, got.Raw)
	}
}

// TestReencryptCommand: `fednode admin reencrypt` on a stopped node seals
// every message again under a new data key, and the node reads them after.
func TestReencryptCommand(t *testing.T) {
	n := startNode(t)
	alice, bob := n.user("alice"), n.user("bob")
	ids := []string{n.send(alice, "bob", "first"), n.send(bob, "alice", "second")}
	n.srv.Close()
	n.srv = nil
	before, _ := os.ReadFile(filepath.Join(n.cfg.DataDir, "fednode.db"))
	if got, err := daemon.Reencrypt(context.Background(), n.cfg); err != nil || got != 2 {
		t.Fatalf("Reencrypt: %d, %v; want 2", got, err)
	}
	after, _ := os.ReadFile(filepath.Join(n.cfg.DataDir, "fednode.db"))
	if bytes.Equal(before, after) {
		t.Fatal("the store file did not change")
	}
	n.open()
	for i, id := range ids {
		if got := n.do("GET", "/api/messages/"+id, bob, nil); got.Status != 200 || !strings.Contains(got.Raw, []string{"first", "second"}[i]) {
			t.Fatalf("%s after reencrypt: %d %s", id, got.Status, got.Raw)
		}
	}
}
