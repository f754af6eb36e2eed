package bolt

import (
	"bytes"
	"context"

	bbolt "go.etcd.io/bbolt"

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

// sealMessages seals every message record still in clear and drops the
// clear previews of every conversation (schema 2 → 3), in the upgrade's
// one transaction. Sealing a sealed record leaves it as it is. Without a
// sealer (store unit tests) it changes nothing.
func sealMessages(ctx context.Context, tx *bbolt.Tx, s Sealer) error {
	msgs := tx.Bucket(bMessages)
	if s == nil || msgs == nil {
		return nil
	}
	type rec struct {
		k []byte
		m fednode.Message
	}
	var all []rec // a bucket is not written while it is iterated
	if err := msgs.ForEach(func(k, v []byte) error {
		var m fednode.Message
		if err := decode(k, v, &m); err != nil {
			return err
		}
		all = append(all, rec{bytes.Clone(k), m})
		return nil
	}); err != nil {
		return err
	}
	for _, r := range all {
		sealed, err := s.SealMessage(ctx, r.m)
		if err != nil {
			return err
		}
		if err := put(msgs, r.k, sealed); err != nil {
			return err
		}
	}
	convs := tx.Bucket(bConversations)
	if convs == nil {
		return nil
	}
	return convs.ForEachBucket(func(user []byte) error {
		b := convs.Bucket(user)
		var recs []convRecord
		if err := b.ForEach(func(k, v []byte) error {
			var c convRecord
			if err := decode(k, v, &c); err != nil {
				return err
			}
			recs = append(recs, c)
			return nil
		}); err != nil {
			return err
		}
		for _, c := range recs {
			c.LastPreview = ""
			if err := put(b, []byte(c.With), c); err != nil {
				return err
			}
		}
		return nil
	})
}
