package atrest

import (
	"context"
	"errors"
	"fmt"
)

// Records other than messages: a user's end-to-end key backup
// (fednode.RecordKeyBackup) is sealed like a message body, in the same
// envelope under the same data keys, with the additional data
//
//	"fednode at rest v1" || lp(kind) || lp(name) || lp(key id)
//
// where kind names the record ("user_keys.backup", never "message", so no
// record's additional data is a message's) and name its owner (the
// canonical username). Moving a sealed backup to another user, or to
// another kind of record, makes it fail to open. A backup is already
// sealed under the user's passphrase; sealing it again keeps a thief of
// the store alone from guessing that passphrase offline.

// recordAAD binds a sealed record to its kind and owner.
func recordAAD(kind, name, keyID string) []byte {
	b := []byte(aadLabel)
	for _, f := range []string{kind, name, keyID} {
		b = lp(b, f)
	}
	return b
}

// SealRecord seals data, the record of kind that belongs to name, and
// returns the envelope to store.
func (s *Sealer) SealRecord(ctx context.Context, kind, name string, data []byte) ([]byte, error) {
	if kind == kindMessage || kind == "" {
		return nil, fmt.Errorf("at rest: seal a record of kind %q", kind)
	}
	return s.seal(ctx, data, func(keyID string) []byte { return recordAAD(kind, name, keyID) })
}

// OpenRecord opens an envelope SealRecord made for the record of kind that
// belongs to name. One that does not open is an error wrapping
// fednode.ErrStoreFailed and ErrDamaged, counted and reported as for a
// message; one whose data key cannot be unwrapped now wraps the key
// service's error and is not damage.
func (s *Sealer) OpenRecord(ctx context.Context, kind, name string, sealed []byte) ([]byte, error) {
	var out []byte
	err := errors.New("a message is not a record")
	if kind != kindMessage {
		out, err = s.unseal(ctx, sealed, func(keyID string) []byte { return recordAAD(kind, name, keyID) })
	}
	if err != nil {
		return nil, s.failed(kind+":"+name, kind+" of "+name, err)
	}
	return out, nil
}
