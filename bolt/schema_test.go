package bolt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/syncbuf"
	"github.com/fednode/fednode/storetest"
)

func openSchema(t *testing.T, dir string, steps []migration, log *slog.Logger) (*Store, error) {
	t.Helper()
	return Open(context.Background(), Options{Dir: dir, Timeout: time.Second, Create: true, Log: log, migrations: steps})
}

// TestMigrationsReachTheSchemaVersion: the list of steps and the version
// the code claims agree, so a step cannot be added without the version.
func TestMigrationsReachTheSchemaVersion(t *testing.T) {
	if len(migrations) != fednode.SchemaVersion {
		t.Fatalf("%d steps, but fednode.SchemaVersion is %d", len(migrations), fednode.SchemaVersion)
	}
}

// TestSchemaUpgradesStepByStep: a store of version 1 opened by code of
// version 3 runs steps 1→2 and 2→3, in order, each logged, and records 3;
// a fresh store gets 3 at once and logs nothing.
func TestSchemaUpgradesStepByStep(t *testing.T) {
	dir := t.TempDir()
	one := []migration{migrations[0]}
	d, err := openSchema(t, dir, one, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.SetMeta(context.Background(), "k", []byte("old"))
	d.Close()
	var ran []string
	three := append(append([]migration(nil), one...),
		migration{name: "rename k", apply: func(tx *bbolt.Tx) error {
			ran = append(ran, "2")
			m := tx.Bucket(bMeta)
			v := m.Get([]byte("k"))
			if err := m.Put([]byte("k2"), append([]byte(nil), v...)); err != nil {
				return err
			}
			return m.Delete([]byte("k"))
		}},
		migration{name: "third", apply: func(tx *bbolt.Tx) error { ran = append(ran, "3"); return nil }})
	var logs syncbuf.Buffer
	d, err = openSchema(t, dir, three, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if strings.Join(ran, ",") != "2,3" || storetest.StoredSchemaVersion(t, d) != "3" {
		t.Fatalf("ran %v, version %s", ran, storetest.StoredSchemaVersion(t, d))
	}
	if v, err := d.Meta(context.Background(), "k2"); err != nil || string(v) != "old" {
		t.Fatalf("the step's change: %q %v", v, err)
	}
	for _, want := range []string{"store schema upgraded from 1 to 2", "store schema upgraded from 2 to 3"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("no %q in the log:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "from 0 to 1") {
		t.Fatalf("a step that had run ran again:\n%s", logs.String())
	}

	var fresh syncbuf.Buffer
	f, err := openSchema(t, t.TempDir(), three, slog.New(slog.NewJSONHandler(&fresh, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if storetest.StoredSchemaVersion(t, f) != "3" || strings.Contains(fresh.String(), "upgraded") {
		t.Fatalf("a fresh store: version %s, log %s", storetest.StoredSchemaVersion(t, f), fresh.String())
	}
}

// TestFailedStepChangesNothing: a step that fails rolls back with its
// transaction: what it wrote is gone, the version stays, the open fails
// naming the step, and the next open runs it again.
func TestFailedStepChangesNothing(t *testing.T) {
	dir := t.TempDir()
	d, err := openSchema(t, dir, migrations[:1], nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	fail := true
	steps := []migration{migrations[0], {name: "half done", apply: func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bMeta).Put([]byte("half"), []byte("x")); err != nil {
			return err
		}
		if fail {
			return errors.New("disk on fire")
		}
		return nil
	}}}
	_, err = openSchema(t, dir, steps, nil)
	if err == nil || !strings.Contains(err.Error(), "half done") || !strings.Contains(err.Error(), "still at version 1") {
		t.Fatalf("a failing step: %v", err)
	}
	d, err = openSchema(t, dir, migrations[:1], nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Meta(context.Background(), "half"); !errors.Is(err, fednode.ErrNotFound) || storetest.StoredSchemaVersion(t, d) != "1" {
		t.Fatalf("after the failed step: %v, version %s", err, storetest.StoredSchemaVersion(t, d))
	}
	d.Close()
	fail = false
	if d, err = openSchema(t, dir, steps, nil); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if storetest.StoredSchemaVersion(t, d) != "2" {
		t.Fatalf("version %s after the step ran", storetest.StoredSchemaVersion(t, d))
	}
}

// TestNewerSchemaRefused: a store of a newer version is refused with both
// versions named, and not written to.
func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	d, err := openSchema(t, dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.SetMeta(context.Background(), fednode.SchemaKey, fednode.FormatSchemaVersion(fednode.SchemaVersion+1))
	d.Close()
	_, err = openSchema(t, dir, nil, nil)
	var tooNew *fednode.SchemaTooNewError
	if !errors.As(err, &tooNew) || tooNew.Found != fednode.SchemaVersion+1 || tooNew.Supported != fednode.SchemaVersion {
		t.Fatalf("a newer store: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "fednode.db") || !strings.Contains(msg, fmt.Sprintf("version %d, newer than this fednode's %d", fednode.SchemaVersion+1, fednode.SchemaVersion)) {
		t.Fatalf("the refusal does not name the file and both versions: %s", msg)
	}
}

// TestUpgradeIndexesQueuedJobs: a store of version 0 queued jobs without
// the index by message id; the upgrade builds it, so the jobs queued
// before it are found by message id (GET /api/messages/{id}, redrive).
func TestUpgradeIndexesQueuedJobs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := openSchema(t, dir, migrations, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := fednode.Message{ID: "m-old", From: fednode.Address{User: "alice", Domain: "a.example"},
		To: fednode.Address{User: "bob", Domain: "b.example"}, Content: "queued before the upgrade",
		Status: fednode.StatusQueued, CreatedAt: time.Unix(1e9, 0).UTC()}
	if _, err := d.AppendOutgoing(ctx, m, "alice"); err != nil {
		t.Fatal(err)
	}
	err = d.db.Update(func(tx *bbolt.Tx) error { // back to version 0: no index, no version
		if err := tx.DeleteBucket(bOutboxIndex); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Delete([]byte(fednode.SchemaKey))
	})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = openSchema(t, dir, migrations, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	j, err := d.OutgoingJob(ctx, "b.example", "m-old")
	if err != nil || j.MessageID != "m-old" {
		t.Fatalf("the job queued before the upgrade, by message id: %+v, %v", j, err)
	}
}
