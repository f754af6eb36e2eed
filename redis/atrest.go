package redis

import (
	"context"
	"errors"
	"fmt"

	"github.com/fednode/fednode"
)

// Sealer encrypts message records at rest (package atrest): Open takes one
// in Options. Only the message record's content and tags are sealed; a
// conversation's last record keeps the last message's id, not a preview,
// which is read from that message when served.
type Sealer = fednode.MessageSealer

// seal returns the record to store for m.
func (s *Store) seal(ctx context.Context, m fednode.Message) (fednode.Message, error) {
	if s.sealer == nil {
		return m, nil
	}
	return s.sealer.SealMessage(ctx, m)
}

// open returns the message a stored record holds; a record that is not
// sealed or does not open is an error (atrest.ErrDamaged, which the sealer
// logs and counts), never served.
func (s *Store) open(ctx context.Context, m fednode.Message) (fednode.Message, error) {
	if s.sealer == nil {
		return m, nil
	}
	return s.sealer.OpenMessage(ctx, m)
}

// sealMessages seals every message record still in clear, then indexes the
// mailboxes again so that each conversation keeps its last message's id
// instead of a clear preview (schema 2 → 3). It is idempotent: a sealed
// record is left as it is. Without a sealer (store unit tests) it changes
// nothing.
func sealMessages(ctx context.Context, s *Store) error {
	if s.sealer == nil {
		return nil
	}
	ids, err := s.scanKeys(ctx, s.key("m")+":")
	if err != nil {
		return err
	}
	for _, id := range ids {
		var m fednode.Message
		err := s.update(ctx, s.key("m")+":"+id, &m, func() (err error) {
			m, err = s.sealer.SealMessage(ctx, m)
			return err
		})
		if err != nil && !errors.Is(err, fednode.ErrNotFound) {
			return fmt.Errorf("seal message %s: %w", id, err)
		}
	}
	return indexMailboxes(ctx, s)
}

// ReencryptMessages seals every message record under the sealer's current
// data key (`fednode admin reencrypt`), one record at a time under WATCH,
// while replicas run, and returns how many it rewrote. A record that does
// not open stops it with that error: damage is reported, never skipped.
func (s *Store) ReencryptMessages(ctx context.Context, batch int) (int, error) {
	if s.sealer == nil {
		return 0, fmt.Errorf("redis: reencrypt: %w", fednode.ErrNoSealer)
	}
	ids, err := s.scanKeys(ctx, s.key("m")+":")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		var m fednode.Message
		changed := false
		err := s.update(ctx, s.key("m")+":"+id, &m, func() (err error) {
			m, changed, err = s.sealer.Reseal(ctx, m)
			return err
		})
		switch {
		case errors.Is(err, fednode.ErrNotFound): // deleted meanwhile
		case err != nil:
			return n, fmt.Errorf("redis: reencrypt message %s: %w", id, err)
		case changed:
			n++
		}
	}
	return n, nil
}
