package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/fednode/fednode"
)

// Offline admin actions work on the configured store directly: on the
// embedded store they need the node stopped (it locks the file, and they say
// so); on Redis they work while replicas run. They exist for making the
// first admin, and for revoking every session when no admin can log in
// (incident response).

func openForAdmin(ctx context.Context, cfg Config) (backend, error) {
	return openBackend(ctx, cfg, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// Promote gives an existing user the admin role.
func Promote(ctx context.Context, cfg Config, username string) error {
	be, err := openForAdmin(ctx, cfg)
	if err != nil {
		return err
	}
	defer be.close()
	err = be.store.UpdateUser(ctx, username, func(u *fednode.User) error { u.Role = fednode.RoleAdmin; return nil })
	if errors.Is(err, fednode.ErrNotFound) {
		return fmt.Errorf("promote: no user %q; register it first", username)
	}
	return err
}

// RevokeAllOffline deletes every session and returns how many there were.
// Running replicas on Redis refuse the tokens at once; their open sockets
// close at the next event or when their clients reconnect.
func RevokeAllOffline(ctx context.Context, cfg Config) (int, error) {
	be, err := openForAdmin(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer be.close()
	ids, err := be.store.DeleteAllSessions(ctx)
	if err == nil && len(ids) > 0 {
		be.broker.Publish(ctx, topicRevoke, ids)
	}
	return len(ids), err
}
