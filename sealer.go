package fednode

import (
	"context"
	"errors"
)

// MessageSealer encrypts message records at rest (package atrest implements
// it): both stores take one and seal each message's content and tags
// before they write it, and open it when they read it. The contract is the
// stores' to keep, like Store's: a record is written only sealed, and a
// sealed record that does not open is an error, never served.
type MessageSealer interface {
	// SealMessage returns the record to store for m (a sealed record is
	// returned as it is).
	SealMessage(ctx context.Context, m Message) (Message, error)
	// OpenMessage returns the message a stored record holds.
	OpenMessage(ctx context.Context, r Message) (Message, error)
	// Reseal returns a stored record sealed under the current data key,
	// and whether that changed it.
	Reseal(ctx context.Context, r Message) (Message, bool, error)
}

// ErrDamaged is returned (wrapped in ErrStoreFailed) for a sealed record
// that does not open: damaged on disk, or tampered with. A key service that
// cannot answer now is not damage: that error wraps ErrUnavailable instead.
var ErrDamaged = errors.New("at rest: sealed record does not open")

// ErrNoSealer is returned by a store's ReencryptMessages when it was opened
// without a MessageSealer.
var ErrNoSealer = errors.New("the store was opened without an at-rest sealer")
