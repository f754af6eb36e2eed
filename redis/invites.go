package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode"
)

// Invites are one hash, code -> Invite as JSON; codes are never part of a
// key. Using one is a WATCH transaction over that hash and the new user's
// key (both under the node's hash tag, so one slot on a cluster): of two
// replicas racing with one code, the second's EXEC fails, it reads again
// and sees the code used.

// CreateInvite stores a new invite, refusing a code already stored.
func (s *Store) CreateInvite(ctx context.Context, inv fednode.Invite) (err error) {
	defer wrap(&err, "create invite")
	b, _ := json.Marshal(inv)
	ok, err := s.c.HSetNX(ctx, s.key("invites"), inv.Code, b).Result()
	if err == nil && !ok {
		return fednode.ErrDuplicate
	}
	return err
}

// Invites returns every stored invite, by CreatedAt then Code.
func (s *Store) Invites(ctx context.Context) (_ []fednode.Invite, err error) {
	defer wrap(&err, "invites")
	return s.invites(ctx)
}

func (s *Store) invites(ctx context.Context) ([]fednode.Invite, error) {
	all, err := s.c.HGetAll(ctx, s.key("invites")).Result()
	if err != nil {
		return nil, err
	}
	out := make([]fednode.Invite, 0, len(all))
	for k, v := range all {
		var inv fednode.Invite
		if err := json.Unmarshal([]byte(v), &inv); err != nil {
			return nil, fmt.Errorf("invite %q: %w", k, err)
		}
		out = append(out, inv)
	}
	fednode.SortInvites(out)
	return out, nil
}

// DeleteInvite revokes an invite.
func (s *Store) DeleteInvite(ctx context.Context, code string) (err error) {
	defer wrap(&err, "delete invite")
	n, err := s.c.HDel(ctx, s.key("invites"), code).Result()
	if err == nil && n == 0 {
		return fednode.ErrNotFound
	}
	return err
}

// CreateUserWithInvite creates u and uses the invite in one MULTI/EXEC
// under WATCH of the invites and the user's key.
func (s *Store) CreateUserWithInvite(ctx context.Context, u fednode.User, code string, now time.Time) (err error) {
	defer wrap(&err, "create user with invite")
	invites, user := s.key("invites"), s.key("u", fednode.CanonicalUsername(u.Username))
	return s.watch(ctx, func(tx *goredis.Tx) error {
		raw, err := tx.HGet(ctx, invites, code).Bytes()
		if errors.Is(err, goredis.Nil) {
			return fednode.ErrInviteUnknown
		} else if err != nil {
			return err
		}
		var inv fednode.Invite
		if err := json.Unmarshal(raw, &inv); err != nil {
			return fmt.Errorf("invite %q: %w", code, err)
		}
		if err := inv.Usable(now); err != nil {
			return err
		}
		if n, err := tx.Exists(ctx, user).Result(); err != nil {
			return err
		} else if n > 0 {
			return fednode.ErrTaken
		}
		inv.UsedBy, inv.UsedAt = fednode.CanonicalUsername(u.Username), now.UTC()
		ub, _ := json.Marshal(u)
		ib, _ := json.Marshal(inv)
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Set(ctx, user, ub, 0)
			p.HSet(ctx, invites, code, ib)
			return nil
		})
		return err
	}, invites, user)
}

// PruneInvites deletes invites that expired before since.
func (s *Store) PruneInvites(ctx context.Context, since time.Time) (_ int, err error) {
	defer wrap(&err, "prune invites")
	all, err := s.invites(ctx)
	if err != nil {
		return 0, err
	}
	var doomed []string
	for _, inv := range all {
		if inv.ExpiresAt.Before(since) {
			doomed = append(doomed, inv.Code)
		}
	}
	if len(doomed) == 0 {
		return 0, nil
	}
	return len(doomed), s.c.HDel(ctx, s.key("invites"), doomed...).Err()
}
