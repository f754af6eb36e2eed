// Package keys is the node's key custody. The rest of the node reaches its
// RSA keys only through Keyring's operations (Sign, Decrypt, PublicKeys) and
// never holds a private key: Local keeps them in files under DATA_DIR, and
// Transit keeps them in Vault Transit, where they never leave Vault.
//
// A node has two kinds of key, never one key for both: "sig" signs its
// federation requests, "enc" receives wrapped data keys. Each kind has one
// current key and may have older keys in an overlap window after a
// rotation: they stay published and usable (for verifying and decrypting)
// until their expiry, so peers holding a cached copy keep working while
// they pick up the new one.
package keys

import (
	"context"
	"crypto/rsa"
	"errors"
	"net/http"
	"time"
)

// Uses of a key.
const (
	UseSig = "sig"
	UseEnc = "enc"
)

// PublicKey is one published key.
type PublicKey struct {
	ID        string // "sig-<fingerprint>" or "enc-<fingerprint>"; unique within the node
	Use       string // UseSig or UseEnc
	Key       *rsa.PublicKey
	CreatedAt time.Time
	ExpiresAt time.Time // zero for a current key; set when a rotation retires it
}

// Current reports whether k is the key of its use that new work should use.
func (k PublicKey) Current() bool { return k.ExpiresAt.IsZero() }

// Keyring is the operations interface to the node's keys.
type Keyring interface {
	// Sign returns an RSASSA-PKCS1-v1_5 SHA-256 signature over data, made
	// with the current signing key, and that key's id.
	Sign(ctx context.Context, data []byte) (keyID string, sig []byte, err error)
	// Decrypt unwraps an RSA-OAEP (SHA-256, MGF1-SHA-256, empty label)
	// ciphertext with the encryption key keyID, current or in its overlap.
	Decrypt(ctx context.Context, keyID string, ciphertext []byte) ([]byte, error)
	// PublicKeys returns every key to publish, current and overlapping,
	// oldest first.
	PublicKeys(ctx context.Context) ([]PublicKey, error)
}

// HTTPSigner is implemented by keyrings that can sign an HTTP request with
// go-fed/httpsig directly (those that hold the key in memory). Others are
// signed through Sign by package federation, which builds the same signing
// string.
type HTTPSigner interface {
	// SignRequest adds a SHA-256 Digest of body and a Signature header
	// covering headers, made with the current signing key. The keyId
	// parameter is keyID(the key's id); it returns that keyId.
	SignRequest(ctx context.Context, r *http.Request, body []byte, headers []string, keyID func(id string) string) (string, error)
}

// ErrUnknownKey is returned for a key id the keyring does not have, or no
// longer has (expired).
var ErrUnknownKey = errors.New("keys: unknown or retired key")

// CurrentKey returns the current key of a use from a list.
func CurrentKey(all []PublicKey, use string) (PublicKey, bool) {
	var best PublicKey
	found := false
	for _, k := range all {
		if k.Use == use && k.Current() && (!found || k.CreatedAt.After(best.CreatedAt)) {
			best, found = k, true
		}
	}
	return best, found
}
