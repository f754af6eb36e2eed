package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// Sealer encrypts message records at rest (package atrest): Open takes one
// in Options. Only the message record's content and tags are sealed; a
// conversation keeps no preview, which is derived from its last message
// when served.
type Sealer = fednode.MessageSealer

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
	d.noteDamage(op, "record", err) // damage, or the key service away (fednode.ErrUnavailable): not served either way
	return out, err
}

// noteDamage fails the store when err says a sealed record (what) did not
// open: it logs it once, and readiness reports it.
func (d *Store) noteDamage(op, what string, err error) {
	if errors.Is(err, fednode.ErrDamaged) {
		d.fail(op, "a read found a damaged "+what+": "+err.Error(), nil)
	}
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

// ReencryptMessages seals every message record under the sealer's current
// data key (`fednode admin reencrypt`), batch records a transaction so a
// large store never holds one long write, and returns how many it
// rewrote. A record that does not open stops it with that error: damage is
// reported, never skipped.
func (d *Store) ReencryptMessages(ctx context.Context, batch int) (int, error) {
	if d.sealer == nil {
		return 0, fmt.Errorf("bolt: reencrypt: %w", fednode.ErrNoSealer)
	}
	var after []byte
	total := 0
	for {
		done, n := false, 0
		var last []byte
		err := d.update("reencrypt messages", func(tx *bbolt.Tx) error {
			msgs := tx.Bucket(bMessages)
			c := msgs.Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			type rec struct {
				k []byte
				m fednode.Message
			}
			var todo []rec
			for ; k != nil && len(todo) < batch; k, v = c.Next() {
				var m fednode.Message
				if err := decode(k, v, &m); err != nil {
					return err
				}
				todo = append(todo, rec{bytes.Clone(k), m})
			}
			done = k == nil
			for _, r := range todo {
				sealed, changed, err := d.sealer.Reseal(ctx, r.m)
				if err != nil {
					return err
				}
				if changed {
					if err := put(msgs, r.k, sealed); err != nil {
						return err
					}
					n++
				}
				last = r.k
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total, after = total+n, last
		if done || after == nil {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}
