package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/node"
)

// OfflineInviteIssuer is the CreatedBy of an invite made with CreateInvite.
const OfflineInviteIssuer = "(operator)"

// CreateInvite issues one invite code valid for ttl on the configured
// store, without a running node's admin API: for the first account of a
// node in REGISTRATION_MODE=invite, which has no admin yet. On the embedded
// store the node must be stopped; on Redis it works while replicas run.
func CreateInvite(ctx context.Context, cfg Config, ttl time.Duration) (fednode.Invite, error) {
	inv, err := node.NewInvite(OfflineInviteIssuer, time.Now(), ttl)
	if err != nil {
		return fednode.Invite{}, fmt.Errorf("invite: %w", err)
	}
	be, err := openForAdmin(ctx, cfg)
	if err != nil {
		return fednode.Invite{}, err
	}
	defer be.close()
	if err := be.store.CreateInvite(ctx, inv); err != nil {
		return fednode.Invite{}, fmt.Errorf("invite: %w", err)
	}
	return inv, nil
}
