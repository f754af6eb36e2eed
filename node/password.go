package node

// Crypto summary: passwords.
//
// What it protects: users' passwords if the store leaks.
// Against whom: an offline attacker with the store file, guessing passwords.
// Construction: argon2id (RFC 9106) with a fresh 16-byte random salt per
// hash and a 32-byte tag, stored in the PHC string format
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash> (unpadded
// standard base64). The default parameters, m=19456 KiB, t=2, p=1, are
// OWASP's minimum for argon2id (Password Storage Cheat Sheet). Parameters are
// read back from each stored hash, so raising them later only affects new
// hashes. Tags are compared in constant time. A login for an unknown user
// runs the same computation against a dummy hash, so timing does not tell
// whether an account exists.

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are argon2id cost parameters.
type PasswordParams struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

// DefaultPasswordParams is OWASP's minimum recommendation for argon2id.
var DefaultPasswordParams = PasswordParams{MemoryKiB: 19456, Time: 2, Threads: 1}

const (
	saltLen = 16
	tagLen  = 32
)

// Validate refuses parameters argon2id cannot use.
func (p PasswordParams) Validate() error {
	if p.MemoryKiB < 8*uint32(p.Threads) || p.Time < 1 || p.Threads < 1 {
		return errors.New("argon2id parameters out of range")
	}
	return nil
}

var b64 = base64.RawStdEncoding

// hashPassword returns the PHC string for password under p.
func hashPassword(password string, p PasswordParams) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: salt: %w", err)
	}
	tag := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, tagLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(tag)), nil
}

// errBadHash means a stored hash is not one this code wrote.
var errBadHash = errors.New("password: stored hash is malformed")

// checkPassword reports whether password matches the PHC string encoded.
func checkPassword(password, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var p PasswordParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil || p.Validate() != nil {
		return false, errBadHash
	}
	// Refuse absurd costs so a tampered store cannot make logins hang.
	if p.MemoryKiB > 4<<20 || p.Time > 64 {
		return false, errBadHash
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
