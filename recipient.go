package fednode

import (
	"context"
	"errors"
	"fmt"
)

// RecipientStore is what CheckRecipient reads.
type RecipientStore interface {
	User(ctx context.Context, username string) (User, error)
	Blocked(ctx context.Context, username string, from Address) (bool, error)
}

// CheckRecipient decides whether the local user to takes a message from
// from: nil, or an *Error with ERecipient (no such user),
// ERecipientSuspended or ERecipientRefused (the user blocks the sender or
// its node). Any other error is the store's, wrapped. It is the one rule
// for a local send and for a delivery from a peer.
func CheckRecipient(ctx context.Context, s RecipientStore, to, from Address) error {
	u, err := s.User(ctx, to.User)
	switch {
	case errors.Is(err, ErrNotFound):
		return Errorf(ERecipient, "there is no user %s", to)
	case err != nil:
		return fmt.Errorf("recipient: %w", err)
	case u.Suspended():
		return Errorf(ERecipientSuspended, "%s is suspended and receives nothing", to)
	}
	blocked, err := s.Blocked(ctx, to.User, from)
	if err != nil {
		return fmt.Errorf("recipient: blocks: %w", err)
	}
	if blocked {
		return Errorf(ERecipientRefused, "%s", RecipientRefusedMessage)
	}
	return nil
}
