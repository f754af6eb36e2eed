package bolt

import (
	"context"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// SetBan stores (or replaces) the ban of b.Key.
func (d *Store) SetBan(ctx context.Context, b fednode.Ban) error {
	return d.update("set ban", func(tx *bbolt.Tx) error { return put(tx.Bucket(bBans), []byte(b.Key), b) })
}

// Ban returns the ban record of a key, active or not, or ErrNotFound.
func (d *Store) Ban(ctx context.Context, key string) (fednode.Ban, error) {
	var b fednode.Ban
	err := d.view("ban", func(tx *bbolt.Tx) error { return get(tx.Bucket(bBans), []byte(key), &b) })
	return b, err
}

// DeleteBan lifts a ban and forgets its level.
func (d *Store) DeleteBan(ctx context.Context, key string) error {
	return d.update("delete ban", func(tx *bbolt.Tx) error { return tx.Bucket(bBans).Delete([]byte(key)) })
}

// Bans returns every ban record (active or expired but not yet pruned).
func (d *Store) Bans(ctx context.Context) ([]fednode.Ban, error) {
	var out []fednode.Ban
	err := d.view("bans", func(tx *bbolt.Tx) error {
		return tx.Bucket(bBans).ForEach(func(k, v []byte) error {
			var b fednode.Ban
			if err := decode(k, v, &b); err != nil {
				return err
			}
			out = append(out, b)
			return nil
		})
	})
	return out, err
}

// PruneBans deletes records whose ban ended before since.
func (d *Store) PruneBans(ctx context.Context, since time.Time) (int, error) {
	return pruneWhere(d, "prune bans", bBans, func(b fednode.Ban) bool { return b.Until.Before(since) })
}
