package bolt

import (
	"context"

	"github.com/fednode/fednode"
)

// Sealer encrypts message records at rest (package atrest): Open takes one
// in Options. Only the message record's content and tags are sealed; a
// conversation keeps no preview, which is derived from its last message
// when served.
type Sealer interface {
	SealMessage(ctx context.Context, m fednode.Message) (fednode.Message, error)
	OpenMessage(ctx context.Context, m fednode.Message) (fednode.Message, error)
}

// seal returns the record to store for m.
func (d *Store) seal(ctx context.Context, m fednode.Message) (fednode.Message, error) {
	if d.sealer == nil {
		return m, nil
	}
	return d.sealer.SealMessage(ctx, m)
}

// open returns the message a stored record holds. A sealed record that
// does not open is damage: the store fails (health.go), as for any record
// that does not decode, and the record is never served.
func (d *Store) open(ctx context.Context, op string, m fednode.Message) (fednode.Message, error) {
	if d.sealer == nil {
		return m, nil
	}
	out, err := d.sealer.OpenMessage(ctx, m)
	if err != nil {
		d.fail(op, "a read found a damaged record: "+err.Error(), nil) // logs it once; readiness reports it
		return out, err                                                // wraps fednode.ErrStoreFailed and atrest.ErrDamaged
	}
	return out, nil
}

// openEntries opens every message of es in place.
func (d *Store) openEntries(ctx context.Context, op string, es []fednode.Entry) error {
	for i := range es {
		m, err := d.open(ctx, op, es[i].Message)
		if err != nil {
			return err
		}
		es[i].Message = m
	}
	return nil
}
