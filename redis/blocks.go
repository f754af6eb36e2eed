package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/fednode/fednode"
)

// Blocks. "bl:<user>" is a hash: Block.Key() -> Block.

// AddBlock stores (or replaces) b.
func (s *Store) AddBlock(ctx context.Context, b fednode.Block) (err error) {
	defer wrap(&err, "add block")
	v, _ := json.Marshal(b)
	return s.c.HSet(ctx, s.key("bl", fednode.CanonicalUsername(b.Username)), b.Key(), v).Err()
}

// DeleteBlock removes one block of a user.
func (s *Store) DeleteBlock(ctx context.Context, username string, b fednode.Block) (err error) {
	defer wrap(&err, "delete block")
	n, err := s.c.HDel(ctx, s.key("bl", fednode.CanonicalUsername(username)), b.Key()).Result()
	if err == nil && n == 0 {
		return fednode.ErrNotFound
	}
	return err
}

// Blocks returns a user's blocks in order of key.
func (s *Store) Blocks(ctx context.Context, username string) (_ []fednode.Block, err error) {
	defer wrap(&err, "blocks")
	all, err := s.c.HGetAll(ctx, s.key("bl", fednode.CanonicalUsername(username))).Result()
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]fednode.Block, 0, len(keys))
	for _, k := range keys {
		var b fednode.Block
		if err := json.Unmarshal([]byte(all[k]), &b); err != nil {
			return nil, fmt.Errorf("block %s: %w", k, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// Blocked reports whether a user blocks from's address or domain.
func (s *Store) Blocked(ctx context.Context, username string, from fednode.Address) (_ bool, err error) {
	defer wrap(&err, "blocked")
	k := fednode.BlockKeys(from)
	vals, err := s.c.HMGet(ctx, s.key("bl", fednode.CanonicalUsername(username)), k[0], k[1]).Result()
	if err != nil {
		return false, err
	}
	return vals[0] != nil || vals[1] != nil, nil
}
