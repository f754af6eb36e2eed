package fednode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
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

	// SealRecord seals data, a record of kind (RecordKeyBackup) that
	// belongs to name (a canonical username), for a store to write;
	// OpenRecord opens it. The seal binds kind and name: a record that
	// does not open under them is an error wrapping ErrDamaged.
	SealRecord(ctx context.Context, kind, name string, data []byte) ([]byte, error)
	OpenRecord(ctx context.Context, kind, name string, sealed []byte) ([]byte, error)
}

// RecordKeyBackup is the kind of a user's sealed end-to-end key backup.
const RecordKeyBackup = "user_keys.backup"

// StoredUserKeys is UserKeys as both stores write them: the backup
// (ciphertext under the user's passphrase, which a thief of the store
// could try to guess offline) sealed at rest in SealedBackup. Backup in
// clear is written only by a store opened without a sealer (store unit
// tests); a store with one refuses it on read as damage.
type StoredUserKeys struct {
	Enc          []byte
	Sig          []byte
	CreatedAt    time.Time
	SealedBackup []byte     `json:",omitempty"`
	Backup       *KeyBackup `json:",omitempty"`
}

// SealUserKeys returns the record a store writes for name's keys k; s nil
// leaves the backup in clear.
func SealUserKeys(ctx context.Context, s MessageSealer, name string, k UserKeys) (StoredUserKeys, error) {
	r := StoredUserKeys{Enc: k.Enc, Sig: k.Sig, CreatedAt: k.CreatedAt}
	if k.Backup == nil || s == nil {
		r.Backup = k.Backup
		return r, nil
	}
	b, err := json.Marshal(k.Backup)
	if err == nil {
		r.SealedBackup, err = s.SealRecord(ctx, RecordKeyBackup, CanonicalUsername(name), b)
	}
	if err != nil {
		return StoredUserKeys{}, fmt.Errorf("seal the key backup of %s: %w", name, err)
	}
	return r, nil
}

// OpenUserKeys returns the keys of name that the stored record r holds.
// With a sealer, a backup in clear or one that does not open is damage.
func OpenUserKeys(ctx context.Context, s MessageSealer, name string, r StoredUserKeys) (UserKeys, error) {
	k := UserKeys{Enc: r.Enc, Sig: r.Sig, CreatedAt: r.CreatedAt, Backup: r.Backup}
	switch {
	case s == nil:
		return k, nil
	case r.Backup != nil:
		return UserKeys{}, fmt.Errorf("%w: %w: the key backup of %s is stored in clear", ErrStoreFailed, ErrDamaged, name)
	case r.SealedBackup == nil:
		return k, nil
	}
	b, err := s.OpenRecord(ctx, RecordKeyBackup, CanonicalUsername(name), r.SealedBackup)
	if err != nil {
		return UserKeys{}, err
	}
	k.Backup = new(KeyBackup)
	if err := json.Unmarshal(b, k.Backup); err != nil {
		return UserKeys{}, fmt.Errorf("%w: %w: the key backup of %s: %v", ErrStoreFailed, ErrDamaged, name, err)
	}
	return k, nil
}

// ErrDamaged is returned (wrapped in ErrStoreFailed) for a sealed record
// that does not open: damaged on disk, or tampered with. A key service that
// cannot answer now is not damage: that error wraps ErrUnavailable instead.
var ErrDamaged = errors.New("at rest: sealed record does not open")

// ErrNoSealer is returned by a store's ReencryptMessages when it was opened
// without a MessageSealer.
var ErrNoSealer = errors.New("the store was opened without an at-rest sealer")
