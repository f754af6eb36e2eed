package bolt

import (
	"context"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// bBlocks holds each user's blocks: canonical username -> {Block.Key() -> Block}.
var bBlocks = []byte("blocks")

// AddBlock stores (or replaces) b.
func (d *Store) AddBlock(ctx context.Context, b fednode.Block) error {
	user := fednode.CanonicalUsername(b.Username)
	return d.update("add block", func(tx *bbolt.Tx) error {
		ub, err := userBucket(tx, bBlocks, user, true)
		if err != nil {
			return err
		}
		return put(ub, []byte(b.Key()), b)
	})
}

// DeleteBlock removes one block of a user.
func (d *Store) DeleteBlock(ctx context.Context, username string, b fednode.Block) error {
	return d.update("delete block", func(tx *bbolt.Tx) error {
		ub, _ := userBucket(tx, bBlocks, fednode.CanonicalUsername(username), false)
		if ub == nil || ub.Get([]byte(b.Key())) == nil {
			return fednode.ErrNotFound
		}
		return ub.Delete([]byte(b.Key()))
	})
}

// Blocks returns a user's blocks in order of key.
func (d *Store) Blocks(ctx context.Context, username string) ([]fednode.Block, error) {
	var out []fednode.Block
	err := d.view("blocks", func(tx *bbolt.Tx) error {
		ub, _ := userBucket(tx, bBlocks, fednode.CanonicalUsername(username), false)
		if ub == nil {
			return nil
		}
		return ub.ForEach(func(k, v []byte) error {
			var b fednode.Block
			if err := decode(k, v, &b); err != nil {
				return err
			}
			out = append(out, b)
			return nil
		})
	})
	return out, err
}

// Blocked reports whether a user blocks from's address or domain.
func (d *Store) Blocked(ctx context.Context, username string, from fednode.Address) (bool, error) {
	var blocked bool
	err := d.view("blocked", func(tx *bbolt.Tx) error {
		ub, _ := userBucket(tx, bBlocks, fednode.CanonicalUsername(username), false)
		if ub == nil {
			return nil
		}
		for _, k := range fednode.BlockKeys(from) {
			if ub.Get([]byte(k)) != nil {
				blocked = true
			}
		}
		return nil
	})
	return blocked, err
}
