package bolt

import (
	"context"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// bUserKeys holds each user's published end-to-end keys: canonical
// username -> fednode.UserKeys. DeleteUser removes the user's entry.
var bUserKeys = []byte("user_keys")

// PutUserKeys stores (or replaces) a user's end-to-end keys.
func (d *Store) PutUserKeys(ctx context.Context, username string, k fednode.UserKeys) error {
	name := []byte(fednode.CanonicalUsername(username))
	return d.update("put user keys", func(tx *bbolt.Tx) error {
		if tx.Bucket(bUsers).Get(name) == nil {
			return fednode.ErrNotFound
		}
		return put(tx.Bucket(bUserKeys), name, k)
	})
}

// UserKeys returns a user's end-to-end keys.
func (d *Store) UserKeys(ctx context.Context, username string) (fednode.UserKeys, error) {
	var k fednode.UserKeys
	err := d.view("user keys", func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bUserKeys), []byte(fednode.CanonicalUsername(username)), &k)
	})
	return k, err
}

// DeleteUserKeys removes a user's end-to-end keys.
func (d *Store) DeleteUserKeys(ctx context.Context, username string) error {
	return d.update("delete user keys", func(tx *bbolt.Tx) error {
		return tx.Bucket(bUserKeys).Delete([]byte(fednode.CanonicalUsername(username)))
	})
}
