package redis

import (
	"context"

	"github.com/fednode/fednode"
)

// Sealer encrypts message records at rest (package atrest): Open takes one
// in Options. Only the message record's content and tags are sealed; a
// conversation's last record keeps the last message's id, not a preview,
// which is read from that message when served.
type Sealer interface {
	SealMessage(ctx context.Context, m fednode.Message) (fednode.Message, error)
	OpenMessage(ctx context.Context, m fednode.Message) (fednode.Message, error)
}

// seal returns the record to store for m.
func (s *Store) seal(ctx context.Context, m fednode.Message) (fednode.Message, error) {
	if s.sealer == nil {
		return m, nil
	}
	return s.sealer.SealMessage(ctx, m)
}

// open returns the message a stored record holds; a sealed record that
// does not open is an error (atrest.ErrDamaged, which the sealer logs and
// counts), never served.
func (s *Store) open(ctx context.Context, m fednode.Message) (fednode.Message, error) {
	if s.sealer == nil {
		return m, nil
	}
	return s.sealer.OpenMessage(ctx, m)
}
