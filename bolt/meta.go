package bolt

import (
	"bytes"
	"context"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// Meta returns a value the node keeps about itself, or ErrNotFound.
func (d *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := d.view("meta", func(tx *bbolt.Tx) error {
		v = bytes.Clone(tx.Bucket(bMeta).Get([]byte(key)))
		if v == nil {
			return fednode.ErrNotFound
		}
		return nil
	})
	return v, err
}

// SetMeta stores a value the node keeps about itself.
func (d *Store) SetMeta(ctx context.Context, key string, value []byte) error {
	return d.update("set meta", func(tx *bbolt.Tx) error { return tx.Bucket(bMeta).Put([]byte(key), value) })
}
