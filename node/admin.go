package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/bolt"
)

// Offline admin actions work on the store directly, so they need the node
// stopped (the embedded store is locked by a running node, and they say so).
// They exist for bootstrapping the first admin, and for an operator who must
// revoke every session while the node is down (incident response).

// Promote gives an existing user the admin role.
func Promote(ctx context.Context, cfg Config, username string) error {
	db, err := bolt.Open(cfg.DataDir, time.Second)
	if err != nil {
		return err
	}
	defer db.Close()
	err = db.UpdateUser(ctx, username, func(u *fednode.User) error { u.Role = fednode.RoleAdmin; return nil })
	if errors.Is(err, fednode.ErrNotFound) {
		return fmt.Errorf("promote: no user %q; register it first", username)
	}
	return err
}

// RevokeAllOffline deletes every session and returns how many there were.
func RevokeAllOffline(ctx context.Context, cfg Config) (int, error) {
	db, err := bolt.Open(cfg.DataDir, time.Second)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	ids, err := db.DeleteAllSessions(ctx)
	return len(ids), err
}
