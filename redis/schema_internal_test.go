package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/internal/syncbuf"
	"github.com/fednode/fednode/storetest"
)

func openSchema(t *testing.T, url, ns string, steps []migration, log *slog.Logger) (*Store, error) {
	t.Helper()
	s, err := Open(context.Background(), Options{URL: url, Password: redistest.Password, Namespace: ns, Log: log, migrations: steps})
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func TestMigrationsReachTheSchemaVersion(t *testing.T) {
	if len(migrations) != fednode.SchemaVersion {
		t.Fatalf("%d steps, but fednode.SchemaVersion is %d", len(migrations), fednode.SchemaVersion)
	}
}

// TestSchemaOnRedis: a never-used namespace gets the current version with
// no upgrade logged; a namespace with data and no version (today's format)
// is upgraded from 0, logged; one of a newer version is refused naming
// both versions.
func TestSchemaOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	var logs syncbuf.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	s, err := openSchema(t, srv.URL(), "fresh", nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if storetest.StoredSchemaVersion(t, s) != fmt.Sprint(fednode.SchemaVersion) || strings.Contains(logs.String(), "upgraded") {
		t.Fatalf("a fresh namespace: version %s, log %s", storetest.StoredSchemaVersion(t, s), logs.String())
	}

	s.CreateUser(ctx, fednode.User{Username: "alice"})
	s.c.Del(ctx, s.key("meta", fednode.SchemaKey)) // today's format: data, no version
	if _, err := openSchema(t, srv.URL(), "fresh", nil, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "store schema upgraded from 0 to 1") || storetest.StoredSchemaVersion(t, s) != fmt.Sprint(fednode.SchemaVersion) {
		t.Fatalf("an unversioned namespace with data: version %s, log %s", storetest.StoredSchemaVersion(t, s), logs.String())
	}

	s.SetMeta(ctx, fednode.SchemaKey, fednode.FormatSchemaVersion(fednode.SchemaVersion+1))
	_, err = openSchema(t, srv.URL(), "fresh", nil, log)
	var tooNew *fednode.SchemaTooNewError
	if !errors.As(err, &tooNew) || !strings.Contains(err.Error(), fmt.Sprintf(`"fresh" has store schema version %d, newer than this fednode's %d`, fednode.SchemaVersion+1, fednode.SchemaVersion)) {
		t.Fatalf("a newer namespace: %v", err)
	}
}

// TestSchemaUpgradeRunsOnceAcrossReplicas: replicas that start together on
// an older store run each step once, not once each: one holds the lease
// and upgrades, the others wait for it and then start on the new version.
func TestSchemaUpgradeRunsOnceAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	if _, err := openSchema(t, srv.URL(), "replicas", migrations[:1], nil); err != nil {
		t.Fatal(err)
	}
	var runs, running atomic.Int32
	slow := migration{"slow", func(ctx context.Context, s *Store) error {
		if running.Add(1) > 1 {
			return errors.New("two replicas run the step at once")
		}
		defer running.Add(-1)
		runs.Add(1)
		time.Sleep(500 * time.Millisecond)
		return nil
	}}
	steps := []migration{migrations[0], slow}
	var logs syncbuf.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { _, errs[i] = openSchema(t, srv.URL(), "replicas", steps, log) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	s, _ := openSchema(t, srv.URL(), "replicas", steps, nil)
	if runs.Load() != 1 || storetest.StoredSchemaVersion(t, s) != "2" || strings.Count(logs.String(), "store schema upgraded from 1 to 2") != 1 {
		t.Fatalf("runs %d, version %s, log:\n%s", runs.Load(), storetest.StoredSchemaVersion(t, s), logs.String())
	}
	if !strings.Contains(logs.String(), "another replica is upgrading") {
		t.Fatalf("no replica waited:\n%s", logs.String())
	}
}

// TestFailedStepOnRedisKeepsTheVersion: a step that fails leaves the
// version where it was, says which step, and runs again at the next open.
func TestFailedStepOnRedisKeepsTheVersion(t *testing.T) {
	srv := redistest.Start(t)
	if _, err := openSchema(t, srv.URL(), "failing", migrations[:1], nil); err != nil {
		t.Fatal(err)
	}
	fail := true
	steps := []migration{migrations[0], {"flaky", func(context.Context, *Store) error {
		if fail {
			return errors.New("disk on fire")
		}
		return nil
	}}}
	if _, err := openSchema(t, srv.URL(), "failing", steps, nil); err == nil || !strings.Contains(err.Error(), "flaky") || !strings.Contains(err.Error(), "still at version 1") {
		t.Fatalf("a failing step: %v", err)
	}
	fail = false
	s, err := openSchema(t, srv.URL(), "failing", steps, nil)
	if err != nil || storetest.StoredSchemaVersion(t, s) != "2" {
		t.Fatalf("the step again: %v", err)
	}
}

// TestUpgradeIndexesQueuedJobsOnRedis: the jobs a version-0 store queued
// without the index by message id are found by it after the upgrade.
func TestUpgradeIndexesQueuedJobsOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s, err := openSchema(t, srv.URL(), "old", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := fednode.Message{ID: "m-old", From: fednode.Address{User: "alice", Domain: "a.example"},
		To: fednode.Address{User: "bob", Domain: "b.example"}, Content: "queued before the upgrade",
		Status: fednode.StatusQueued, CreatedAt: time.Unix(1e9, 0).UTC()}
	if _, err := s.AppendOutgoing(ctx, m, "alice"); err != nil {
		t.Fatal(err)
	}
	s.c.Del(ctx, s.key("obidx", "b.example"), s.key("meta", fednode.SchemaKey)) // version 0
	if _, err := s.OutgoingJob(ctx, "b.example", "m-old"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("without the index the job must not be found (the test's premise): %v", err)
	}
	s2, err := openSchema(t, srv.URL(), "old", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	j, err := s2.OutgoingJob(ctx, "b.example", "m-old")
	if err != nil || j.MessageID != "m-old" {
		t.Fatalf("the job queued before the upgrade, by message id: %+v, %v", j, err)
	}
}
