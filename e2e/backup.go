package e2e

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/fednode/fednode"
	"golang.org/x/text/unicode/norm"
)

// BackupSaltLen is the salt WrapBackup draws (fednode.BackupMinSalt).
const BackupSaltLen = 16

// BackupAAD binds a backup to its owner's address and key ids
// (PROTOCOL §5.7): a node cannot hand one user's backup to another, nor
// pair it with other public keys.
func BackupAAD(address fednode.Address, encKeyID, sigKeyID string) []byte {
	return []byte("fednode-e2e-backup/1\n" + address.String() + "\n" + encKeyID + "\n" + sigKeyID)
}

// WrapBackup seals k under passphrase for address: PBKDF2-HMAC-SHA256
// with a random 16-byte salt and fednode.BackupMinIter iterations makes
// the AES-256-GCM key that seals MarshalPrivate(k).
func WrapBackup(passphrase string, address fednode.Address, k *Keys) (*fednode.KeyBackup, error) {
	salt := make([]byte, BackupSaltLen)
	nonce := make([]byte, fednode.E2ENonceLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("e2e: backup salt: %w", err)
	}
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("e2e: backup nonce: %w", err)
	}
	return wrapBackupWith(salt, nonce, fednode.BackupMinIter, passphrase, address, k)
}

// wrapBackupWith is WrapBackup with given randomness: known answers only.
func wrapBackupWith(salt, nonce []byte, iterations int, passphrase string, address fednode.Address, k *Keys) (*fednode.KeyBackup, error) {
	if passphrase == "" {
		return nil, fmt.Errorf("%w: the passphrase is empty", ErrBadBackup)
	}
	pt, err := MarshalPrivate(k)
	if err != nil {
		return nil, err
	}
	kek, err := pbkdf2Key(passphrase, salt, iterations)
	if err != nil {
		return nil, fmt.Errorf("e2e: pbkdf2: %w", err)
	}
	aead, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	pub := k.Public()
	return &fednode.KeyBackup{
		V: fednode.E2EVersion, KDF: fednode.BackupKDF, Iterations: iterations, Salt: salt, Nonce: nonce,
		Ciphertext: aead.Seal(nil, nonce, pt, BackupAAD(address, pub.EncKeyID(), pub.SigKeyID())),
	}, nil
}

// UnwrapBackup opens b with passphrase. encKeyID and sigKeyID are the
// published keys' ids (the AAD binds them); the keys found must be those.
// A wrong passphrase gives ErrWrongPassphrase and no key at all; a backup
// with fewer than fednode.BackupMinIter iterations is refused unopened, so
// a node cannot weaken the passphrase's protection by rewriting the count.
func UnwrapBackup(passphrase string, address fednode.Address, encKeyID, sigKeyID string, b *fednode.KeyBackup) (*Keys, error) {
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadBackup, fednode.ErrorMessage(err))
	}
	return unwrapBackup(passphrase, address, encKeyID, sigKeyID, b)
}

// unwrapBackup is UnwrapBackup without the structure check, which holds
// the iteration floor: the fuzz test calls it with cheap counts.
func unwrapBackup(passphrase string, address fednode.Address, encKeyID, sigKeyID string, b *fednode.KeyBackup) (*Keys, error) {
	if b.Iterations < 1 || len(b.Nonce) != fednode.E2ENonceLen {
		return nil, fmt.Errorf("%w: bad parameters", ErrBadBackup)
	}
	kek, err := pbkdf2Key(passphrase, b.Salt, b.Iterations)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBackup, err)
	}
	aead, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, b.Nonce, b.Ciphertext, BackupAAD(address, encKeyID, sigKeyID))
	if err != nil {
		// GCM cannot tell a wrong passphrase from a backup altered or
		// moved to other keys; a wrong passphrase is by far the likelier.
		return nil, ErrWrongPassphrase
	}
	k, err := ParsePrivate(pt)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBackup, err)
	}
	if pub := k.Public(); pub.EncKeyID() != encKeyID || pub.SigKeyID() != sigKeyID {
		return nil, fmt.Errorf("%w: it holds other keys than the published ones", ErrBadBackup)
	}
	return k, nil
}

// pbkdf2Key derives the backup's AES-256 key: PBKDF2-HMAC-SHA256 of the
// UTF-8 passphrase in Unicode Normalization Form C (PROTOCOL §5.7), so a
// passphrase typed as "é" on one device and as "e" + U+0301 on another
// (keyboards and input methods differ) opens the same backup.
func pbkdf2Key(passphrase string, salt []byte, iterations int) ([]byte, error) {
	return pbkdf2.Key(sha256.New, norm.NFC.String(passphrase), salt, iterations, 32)
}
