package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/fednode/fednode"
)

// SetBan stores (or replaces) a ban.
func (s *Store) SetBan(ctx context.Context, b fednode.Ban) (err error) {
	defer wrap(&err, "set ban")
	v, _ := json.Marshal(b)
	return s.c.HSet(ctx, s.key("bans"), b.Key, v).Err()
}

// Ban returns the ban record of a key.
func (s *Store) Ban(ctx context.Context, key string) (_ fednode.Ban, err error) {
	defer wrap(&err, "ban")
	var b fednode.Ban
	v, err := s.c.HGet(ctx, s.key("bans"), key).Bytes()
	if err != nil {
		return b, notFound(err)
	}
	return b, json.Unmarshal(v, &b)
}

// DeleteBan lifts a ban.
func (s *Store) DeleteBan(ctx context.Context, key string) (err error) {
	defer wrap(&err, "delete ban")
	return s.c.HDel(ctx, s.key("bans"), key).Err()
}

// Bans returns every ban record.
func (s *Store) Bans(ctx context.Context) (_ []fednode.Ban, err error) {
	defer wrap(&err, "bans")
	return s.bans(ctx)
}

func (s *Store) bans(ctx context.Context) ([]fednode.Ban, error) {
	all, err := s.c.HGetAll(ctx, s.key("bans")).Result()
	if err != nil {
		return nil, err
	}
	out := make([]fednode.Ban, 0, len(all))
	for k, v := range all {
		var b fednode.Ban
		if err := json.Unmarshal([]byte(v), &b); err != nil {
			return nil, fmt.Errorf("ban %s: %w", k, err)
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// PruneBans deletes records whose ban ended before since.
func (s *Store) PruneBans(ctx context.Context, since time.Time) (_ int, err error) {
	defer wrap(&err, "prune bans")
	all, err := s.bans(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, b := range all {
		if b.Until.Before(since) {
			if err := s.c.HDel(ctx, s.key("bans"), b.Key).Err(); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
