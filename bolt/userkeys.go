package bolt

import (
	"context"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// bUserKeys holds each user's published end-to-end keys: canonical
// username -> fednode.StoredUserKeys (the backup sealed at rest).
// DeleteUser removes the user's entry.
var bUserKeys = []byte("user_keys")

// PutUserKeys stores (or replaces) a user's end-to-end keys. The backup is
// sealed before the transaction, which never waits on the key service.
func (d *Store) PutUserKeys(ctx context.Context, username string, k fednode.UserKeys) error {
	name := []byte(fednode.CanonicalUsername(username))
	r, err := fednode.SealUserKeys(ctx, d.sealer, string(name), k)
	if err != nil {
		return err
	}
	return d.update("put user keys", func(tx *bbolt.Tx) error {
		if tx.Bucket(bUsers).Get(name) == nil {
			return fednode.ErrNotFound
		}
		return put(tx.Bucket(bUserKeys), name, r)
	})
}

// UserKeys returns a user's end-to-end keys. A backup that does not open
// is damage: the store fails, as for a message.
func (d *Store) UserKeys(ctx context.Context, username string) (fednode.UserKeys, error) {
	name := fednode.CanonicalUsername(username)
	var r fednode.StoredUserKeys
	if err := d.view("user keys", func(tx *bbolt.Tx) error {
		return get(tx.Bucket(bUserKeys), []byte(name), &r)
	}); err != nil {
		return fednode.UserKeys{}, err
	}
	k, err := fednode.OpenUserKeys(ctx, d.sealer, name, r)
	d.noteDamage("user keys", "key backup", err)
	return k, err
}

// DeleteUserKeys removes a user's end-to-end keys.
func (d *Store) DeleteUserKeys(ctx context.Context, username string) error {
	return d.update("delete user keys", func(tx *bbolt.Tx) error {
		return tx.Bucket(bUserKeys).Delete([]byte(fednode.CanonicalUsername(username)))
	})
}
