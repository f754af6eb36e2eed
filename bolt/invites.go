package bolt

import (
	"context"
	"errors"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// bInvites holds invite code -> Invite.
var bInvites = []byte("invites")

// CreateInvite stores a new invite, refusing a code already stored.
func (d *Store) CreateInvite(ctx context.Context, inv fednode.Invite) error {
	return d.update("create invite", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bInvites)
		if b.Get([]byte(inv.Code)) != nil {
			return fednode.ErrDuplicate
		}
		return put(b, []byte(inv.Code), inv)
	})
}

// Invites returns every stored invite, by CreatedAt then Code.
func (d *Store) Invites(ctx context.Context) ([]fednode.Invite, error) {
	var out []fednode.Invite
	err := d.view("invites", func(tx *bbolt.Tx) error {
		return tx.Bucket(bInvites).ForEach(func(k, v []byte) error {
			var inv fednode.Invite
			if err := decode(k, v, &inv); err != nil {
				return err
			}
			out = append(out, inv)
			return nil
		})
	})
	fednode.SortInvites(out)
	return out, err
}

// DeleteInvite revokes an invite.
func (d *Store) DeleteInvite(ctx context.Context, code string) error {
	return d.update("delete invite", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bInvites)
		if b.Get([]byte(code)) == nil {
			return fednode.ErrNotFound
		}
		return b.Delete([]byte(code))
	})
}

// CreateUserWithInvite creates u and uses the invite in one transaction:
// bbolt has one writer at a time, so two registrations with one code are
// serialised and the second sees the code used.
func (d *Store) CreateUserWithInvite(ctx context.Context, u fednode.User, code string, now time.Time) error {
	name := []byte(fednode.CanonicalUsername(u.Username))
	return d.update("create user with invite", func(tx *bbolt.Tx) error {
		var inv fednode.Invite
		if err := get(tx.Bucket(bInvites), []byte(code), &inv); err != nil {
			if errors.Is(err, fednode.ErrNotFound) {
				return fednode.ErrInviteUnknown
			}
			return err
		}
		if err := inv.Usable(now); err != nil {
			return err
		}
		users := tx.Bucket(bUsers)
		if users.Get(name) != nil {
			return fednode.ErrTaken
		}
		if err := put(users, name, u); err != nil {
			return err
		}
		inv.UsedBy, inv.UsedAt = string(name), now.UTC()
		return put(tx.Bucket(bInvites), []byte(code), inv)
	})
}

// PruneInvites deletes invites that expired before since.
func (d *Store) PruneInvites(ctx context.Context, since time.Time) (int, error) {
	return pruneWhere(d, "prune invites", bInvites, func(inv fednode.Invite) bool { return inv.ExpiresAt.Before(since) })
}
