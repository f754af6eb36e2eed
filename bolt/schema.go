package bolt

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// migration is one step of the embedded store's schema (see
// fednode.SchemaVersion): it runs in the one transaction that also records
// the new version, so a step that fails, or a crash during it, changes
// nothing, and the next start runs it again.
type migration struct {
	name  string
	apply func(tx *bbolt.Tx) error
	// sealed, set instead of apply, is a step that needs the store's
	// at-rest sealer (nil in store unit tests).
	sealed func(ctx context.Context, tx *bbolt.Tx, s Sealer) error
}

// migrations[v] upgrades a store of schema version v to v+1. Append a step
// to change the format; never edit or remove one that has shipped.
var migrations = []migration{
	// 0 → 1: the format of every fednode before versions were kept is
	// version 0. Stores of that time queued jobs without the index by
	// message id (outbox_index) that GET /api/messages/{id}, redrive and
	// purge read; this step builds it for the jobs already queued.
	{name: "index queued jobs by message id", apply: indexQueuedJobs},
	// 1 → 2: each user's conversation index (conversations.go), which
	// appends keep from version 2 on, built from the mailboxes.
	{name: "index conversations", apply: indexMailboxes},
	// 2 → 3: message content and tags sealed at rest (atrest.go), and the
	// conversation index's clear previews dropped.
	{name: "seal messages at rest", sealed: sealMessages},
}

// indexQueuedJobs writes the outbox_index entry of every queued job.
func indexQueuedJobs(tx *bbolt.Tx) error {
	idx, err := tx.CreateBucketIfNotExists(bOutboxIndex)
	if err != nil {
		return err
	}
	ob := tx.Bucket(bOutbox)
	if ob == nil {
		return nil
	}
	return ob.ForEachBucket(func(peer []byte) error {
		return ob.Bucket(peer).ForEach(func(k, v []byte) error {
			var j fednode.Job
			if err := decode(k, v, &j); err != nil {
				return err
			}
			return idx.Put([]byte(j.MessageID), append([]byte(nil), k...))
		})
	})
}

// schemaVersion reads the store's version: 0 when none is recorded.
func schemaVersion(tx *bbolt.Tx) (int, error) {
	b := tx.Bucket(bMeta)
	if b == nil {
		return 0, nil
	}
	v := b.Get([]byte(fednode.SchemaKey))
	if v == nil {
		return 0, nil
	}
	n, err := fednode.ParseSchemaVersion(v)
	if err != nil {
		return 0, corrupt("%v", err)
	}
	return n, nil
}

func setSchemaVersion(tx *bbolt.Tx, v int) error {
	b, err := tx.CreateBucketIfNotExists(bMeta)
	if err != nil {
		return err
	}
	return b.Put([]byte(fednode.SchemaKey), fednode.FormatSchemaVersion(v))
}

// upgrade runs steps[from:] in turn, each in a transaction of its own with
// the version it reaches, and logs each.
func upgrade(ctx context.Context, db *bbolt.DB, path string, from int, steps []migration, sealer Sealer, log *slog.Logger) error {
	for v := from; v < len(steps); v++ {
		start := time.Now()
		err := db.Update(func(tx *bbolt.Tx) error {
			var err error
			if steps[v].sealed != nil {
				err = steps[v].sealed(ctx, tx, sealer)
			} else {
				err = steps[v].apply(tx)
			}
			if err != nil {
				return err
			}
			return setSchemaVersion(tx, v+1)
		})
		if err != nil {
			return fmt.Errorf("store schema upgrade from %d to %d (%s): %w; the store is still at version %d", v, v+1, steps[v].name, err, v)
		}
		log.Info(fednode.SchemaUpgraded(v), "store", path, "from", v, "to", v+1, "step", steps[v].name, "took", time.Since(start))
	}
	return nil
}
