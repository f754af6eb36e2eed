package bolt

import (
	"context"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// CreateUser stores a new user, refusing a name taken in any letter case.
func (d *Store) CreateUser(ctx context.Context, u fednode.User) error {
	key := []byte(fednode.CanonicalUsername(u.Username))
	err := d.update("create user", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bUsers)
		if b.Get(key) != nil || deletedName(tx, key) {
			return fednode.ErrTaken
		}
		return put(b, key, u)
	})
	return err
}

// User returns the user with that name in any letter case.
func (d *Store) User(ctx context.Context, username string) (fednode.User, error) {
	var u fednode.User
	err := d.view("user", func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bUsers), []byte(fednode.CanonicalUsername(username)), &u)
	})
	return u, err
}

// UpdateUser applies fn to the stored user in one transaction.
func (d *Store) UpdateUser(ctx context.Context, username string, fn func(*fednode.User) error) error {
	key := []byte(fednode.CanonicalUsername(username))
	return d.update("update user", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bUsers)
		var u fednode.User
		if err := get(b, key, &u); err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		return put(b, key, u)
	})
}
