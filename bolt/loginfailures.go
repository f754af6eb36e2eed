package bolt

import (
	"context"
	"errors"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// maxFailuresKept bounds the record per name; lockout needs only the count
// inside the window, which never usefully exceeds this.
const maxFailuresKept = 64

// AddLoginFailure records a failed login for key at time at, forgets those
// before since, and returns the failures that remain, oldest first.
func (d *Store) AddLoginFailure(ctx context.Context, key string, at, since time.Time) ([]time.Time, error) {
	var out []time.Time
	err := d.update("add login failure", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bFailures)
		var ns []int64
		if err := get(b, []byte(key), &ns); err != nil && !errors.Is(err, fednode.ErrNotFound) {
			return err
		}
		ns = append(keepSince(ns, since), at.UnixNano())
		if len(ns) > maxFailuresKept {
			ns = ns[len(ns)-maxFailuresKept:]
		}
		out = toTimes(ns)
		return put(b, []byte(key), ns)
	})
	return out, err
}

// LoginFailures returns the failures for key at or after since, oldest first.
func (d *Store) LoginFailures(ctx context.Context, key string, since time.Time) ([]time.Time, error) {
	var ns []int64
	err := d.view("login failures", func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bFailures), []byte(key), &ns)
	})
	if errors.Is(err, fednode.ErrNotFound) {
		return nil, nil
	}
	return toTimes(keepSince(ns, since)), err
}

// ClearLoginFailures forgets the failures for key (after a good login).
func (d *Store) ClearLoginFailures(ctx context.Context, key string) error {
	return d.update("clear login failures", func(tx *bbolt.Tx) error {
		return tx.Bucket(bFailures).Delete([]byte(key))
	})
}

// PruneLoginFailures deletes records whose every failure is before since.
func (d *Store) PruneLoginFailures(ctx context.Context, since time.Time) (int, error) {
	return pruneWhere(d, "prune login failures", bFailures, func(ns []int64) bool { return len(keepSince(ns, since)) == 0 })
}

func keepSince(ns []int64, since time.Time) []int64 {
	cut := since.UnixNano()
	out := ns[:0]
	for _, n := range ns {
		if n >= cut {
			out = append(out, n)
		}
	}
	return out
}

func toTimes(ns []int64) []time.Time {
	out := make([]time.Time, len(ns))
	for i, n := range ns {
		out[i] = time.Unix(0, n).UTC()
	}
	return out
}
