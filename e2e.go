package fednode

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// End-to-end encryption between users (docs/PROTOCOL.md §5). These are the
// wire shapes and the structural rules the nodes apply: a node never holds
// a user's private key, cannot open an E2E payload, and checks only what it
// still can (sizes, encodings, key ids). The cryptography is in package e2e.

// Error codes of end-to-end encryption.
const (
	EInvalidE2E      = "invalid_e2e"       // an e2e payload, or a message id given with it, breaks the structure rules
	EInvalidUserKeys = "invalid_user_keys" // published user keys or their backup break the rules
	EPeerKeysInvalid = "peer_keys_invalid" // a peer node answered user keys that do not verify
)

// E2E limits.
const (
	E2EVersion         = 1
	E2EMaxKeys         = 4        // wrapped copies of the data key: recipient's, sender's own, spare
	E2EWrappedLen      = 512      // RSA-OAEP-4096 ciphertext
	E2ENonceLen        = 12       // AES-GCM nonce
	E2EMaxCiphertext   = 64 << 10 // sealed {"content","tags"} JSON with its 16-byte tag
	E2ESignatureLen    = 64       // ECDSA P-256, r||s (IEEE P1363), as WebCrypto makes it
	E2EIDWindow        = 10 * time.Minute
	BackupKDF          = "PBKDF2-HMAC-SHA256"
	BackupMinIter      = 600_000
	BackupMaxIter      = 10_000_000
	BackupMaxSalt      = 64
	BackupMinSalt      = 16
	BackupMaxCiphertxt = 16 << 10
)

// E2E is an end-to-end encrypted message body. One AES-256-GCM data key
// seals the JSON {"content":..,"tags":[..]}; Keys carries that data key
// wrapped with RSA-OAEP-SHA256 to each of the recipient's and the sender's
// own encryption keys; the sender's ECDSA P-256 key signs it all.
// []byte members are standard base64 in JSON.
type E2E struct {
	V          int      `json:"v" strictjson:"required"`
	SigKey     string   `json:"sig_key" strictjson:"required"` // key id of the sender's signing key
	Keys       []E2EKey `json:"keys" strictjson:"required"`
	Nonce      []byte   `json:"nonce" strictjson:"required"`
	Ciphertext []byte   `json:"ciphertext" strictjson:"required"`
	Signature  []byte   `json:"signature" strictjson:"required"`
}

// E2EKey is the data key wrapped to one user encryption key.
type E2EKey struct {
	KeyID   string `json:"key_id" strictjson:"required"`
	Wrapped []byte `json:"wrapped" strictjson:"required"`
}

var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// ValidKeyID reports whether s has the form of a user key id (KeyID).
func ValidKeyID(s string) bool { return keyIDRE.MatchString(s) }

// KeyID is the id of a user public key: the SHA-256 of its DER
// SubjectPublicKeyInfo, base64url without padding (43 characters). An id
// names exactly one key, so a node cannot swap a key under a known id.
func KeyID(spki []byte) string {
	h := sha256.Sum256(spki)
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Fingerprint is what two people compare to trust each other's keys: the
// SHA-256 of "fednode-e2e-fingerprint/1\n" + encKeyID + "\n" + sigKeyID, as
// 64 hex digits in 16 groups of 4 separated by spaces.
func Fingerprint(encKeyID, sigKeyID string) string {
	h := sha256.Sum256([]byte("fednode-e2e-fingerprint/1\n" + encKeyID + "\n" + sigKeyID))
	x := hex.EncodeToString(h[:])
	var b strings.Builder
	for i := 0; i < len(x); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x[i : i+4])
	}
	return b.String()
}

// Validate checks e's structure: version, a well-formed signing key id,
// 1 to E2EMaxKeys wrapped keys with distinct well-formed ids, each exactly
// E2EWrappedLen bytes, a 12-byte nonce, a ciphertext of 17 to
// E2EMaxCiphertext bytes and a 64-byte signature. It does no cryptography.
func (e *E2E) Validate() error {
	bad := func(format string, args ...any) error {
		return FieldError(EInvalidE2E, "e2e", format, args...)
	}
	switch {
	case e.V != E2EVersion:
		return bad("e2e.v must be %d", E2EVersion)
	case !ValidKeyID(e.SigKey):
		return bad("e2e.sig_key must be a key id (43 characters of base64url)")
	case len(e.Keys) < 1 || len(e.Keys) > E2EMaxKeys:
		return bad("e2e.keys must hold 1 to %d wrapped keys", E2EMaxKeys)
	case len(e.Nonce) != E2ENonceLen:
		return bad("e2e.nonce must be %d bytes", E2ENonceLen)
	case len(e.Ciphertext) < 17 || len(e.Ciphertext) > E2EMaxCiphertext:
		return bad("e2e.ciphertext must be 17 to %d bytes", E2EMaxCiphertext)
	case len(e.Signature) != E2ESignatureLen:
		return bad("e2e.signature must be %d bytes", E2ESignatureLen)
	}
	seen := make(map[string]bool, len(e.Keys))
	for i, k := range e.Keys {
		switch {
		case !ValidKeyID(k.KeyID):
			return bad("e2e.keys[%d].key_id must be a key id", i)
		case seen[k.KeyID]:
			return bad("e2e.keys[%d].key_id appears twice", i)
		case len(k.Wrapped) != E2EWrappedLen:
			return bad("e2e.keys[%d].wrapped must be %d bytes", i, E2EWrappedLen)
		}
		seen[k.KeyID] = true
	}
	return nil
}

// CheckE2EID checks the id a client chose for an E2E message, which its
// AAD binds: the form of NewID, made within E2EIDWindow of now.
func CheckE2EID(id string, now time.Time) error {
	if !ValidID(id) {
		return FieldError(EInvalidE2E, "id", "id must be a message id (26 characters of Crockford base32)")
	}
	t, _ := IDTime(id)
	if d := now.Sub(t); d > E2EIDWindow || d < -E2EIDWindow {
		return FieldError(EInvalidE2E, "id", "id must have been made within %v of now", E2EIDWindow)
	}
	return nil
}

// IDTime returns the time NewID wrote into id.
func IDTime(id string) (time.Time, bool) {
	if !ValidID(id) {
		return time.Time{}, false
	}
	var ms uint64
	for _, c := range id[:10] { // 3 + 9×5 = 48 bits: the milliseconds
		ms = ms<<5 | uint64(strings.IndexRune(crockford, c))
	}
	return time.UnixMilli(int64(ms)).UTC(), true
}

// UserKeys are one user's published end-to-end keys, made on the user's
// device. Enc and Sig are DER SubjectPublicKeyInfo. Backup, when set, is the
// user's private keys wrapped under a passphrase the node never sees.
type UserKeys struct {
	Enc       []byte
	Sig       []byte
	CreatedAt time.Time
	Backup    *KeyBackup `json:",omitempty"`
}

// EncKeyID and SigKeyID are the keys' ids.
func (k UserKeys) EncKeyID() string { return KeyID(k.Enc) }
func (k UserKeys) SigKeyID() string { return KeyID(k.Sig) }

// KeyBackup is a user's private keys sealed with AES-256-GCM under a key
// derived from a passphrase with PBKDF2-HMAC-SHA256 (package e2e).
type KeyBackup struct {
	V          int    `json:"v" strictjson:"required"`
	KDF        string `json:"kdf" strictjson:"required"`
	Iterations int    `json:"iterations" strictjson:"required"`
	Salt       []byte `json:"salt" strictjson:"required"`
	Nonce      []byte `json:"nonce" strictjson:"required"`
	Ciphertext []byte `json:"ciphertext" strictjson:"required"`
}

// Validate checks b's structure; it cannot check the passphrase.
func (b *KeyBackup) Validate() error {
	bad := func(format string, args ...any) error {
		return FieldError(EInvalidUserKeys, "backup", format, args...)
	}
	switch {
	case b.V != E2EVersion:
		return bad("backup.v must be %d", E2EVersion)
	case b.KDF != BackupKDF:
		return bad("backup.kdf must be %q", BackupKDF)
	case b.Iterations < BackupMinIter || b.Iterations > BackupMaxIter:
		return bad("backup.iterations must be %d to %d", BackupMinIter, BackupMaxIter)
	case len(b.Salt) < BackupMinSalt || len(b.Salt) > BackupMaxSalt:
		return bad("backup.salt must be %d to %d bytes", BackupMinSalt, BackupMaxSalt)
	case len(b.Nonce) != E2ENonceLen:
		return bad("backup.nonce must be %d bytes", E2ENonceLen)
	case len(b.Ciphertext) < 17 || len(b.Ciphertext) > BackupMaxCiphertxt:
		return bad("backup.ciphertext must be 17 to %d bytes", BackupMaxCiphertxt)
	}
	return nil
}

// CheckPublicKeys checks that enc is the DER SubjectPublicKeyInfo of an
// RSA-4096 key with exponent 65537, and sig that of an ECDSA P-256 key.
func CheckPublicKeys(enc, sig []byte) error {
	pk, err := x509.ParsePKIXPublicKey(enc)
	if r, ok := pk.(*rsa.PublicKey); err != nil || !ok || r.N.BitLen() != 4096 || r.E != 65537 {
		return FieldError(EInvalidUserKeys, "enc_key", "enc_key must be an RSA-4096 public key (exponent 65537) as DER SubjectPublicKeyInfo in base64")
	}
	pk, err = x509.ParsePKIXPublicKey(sig)
	if e, ok := pk.(*ecdsa.PublicKey); err != nil || !ok || e.Curve != elliptic.P256() {
		return FieldError(EInvalidUserKeys, "sig_key", "sig_key must be an ECDSA P-256 public key as DER SubjectPublicKeyInfo in base64")
	}
	return nil
}

// UserKeyDocument is a user's public keys as their home node publishes
// them, to its own users and to peers. The home node signs it with its
// node signing key (RSASSA-PKCS1-v1_5 SHA-256 over SignedBytes), the key
// its node document publishes, so a peer's answer relayed through another
// node can be checked against the home node's identity.
type UserKeyDocument struct {
	Address       string `json:"address" strictjson:"required"`
	EncKey        []byte `json:"enc_key" strictjson:"required"`
	EncKeyID      string `json:"enc_key_id" strictjson:"required"`
	SigKey        []byte `json:"sig_key" strictjson:"required"`
	SigKeyID      string `json:"sig_key_id" strictjson:"required"`
	Fingerprint   string `json:"fingerprint" strictjson:"required"`
	CreatedAt     string `json:"created_at" strictjson:"required"` // RFC 3339, UTC, milliseconds
	NodeKeyID     string `json:"node_key_id" strictjson:"required"`
	NodeSignature []byte `json:"node_signature" strictjson:"required"`
}

// SignedBytes is what the home node signs.
func (d *UserKeyDocument) SignedBytes() []byte {
	return []byte("fednode-user-keys/1\n" + d.Address + "\n" + d.EncKeyID + "\n" + d.SigKeyID + "\n" + d.CreatedAt)
}

// Check checks everything in d but the node signature: the keys' form,
// that the ids and fingerprint are the keys', and that it is for address.
func (d *UserKeyDocument) Check(address string) error {
	bad := func(format string, args ...any) error { return Errorf(EPeerKeysInvalid, format, args...) }
	if d.Address != address {
		return bad("the document is for %q, not %q", d.Address, address)
	}
	if err := CheckPublicKeys(d.EncKey, d.SigKey); err != nil {
		return bad("the document's keys are not valid: %s", ErrorMessage(err))
	}
	if d.EncKeyID != KeyID(d.EncKey) || d.SigKeyID != KeyID(d.SigKey) || d.Fingerprint != Fingerprint(d.EncKeyID, d.SigKeyID) {
		return bad("the document's key ids or fingerprint are not its keys'")
	}
	if _, err := time.Parse(time.RFC3339Nano, d.CreatedAt); err != nil {
		return bad("created_at is not an RFC 3339 time")
	}
	return nil
}

// E2EAAD is the AES-GCM associated data of an E2E message (PROTOCOL §5.3):
// lines joined by "\n", with no final newline.
func E2EAAD(id string, from, to Address, sigKey string, keyIDs []string) []byte {
	lines := append([]string{"fednode-e2e/1", id, from.String(), to.String(), sigKey}, keyIDs...)
	return []byte(strings.Join(lines, "\n"))
}

// E2ESignedBytes is what the sender's signing key signs (PROTOCOL §5.3):
// the AAD, then the nonce, the ciphertext and each wrapped key in standard
// base64, each on its own line.
func E2ESignedBytes(id string, from, to Address, e *E2E) []byte {
	ids := make([]string, len(e.Keys))
	for i, k := range e.Keys {
		ids[i] = k.KeyID
	}
	var b strings.Builder
	b.Write(E2EAAD(id, from, to, e.SigKey, ids))
	for _, p := range append([][]byte{e.Nonce, e.Ciphertext}, wrappedOf(e)...) {
		b.WriteByte('\n')
		b.WriteString(base64.StdEncoding.EncodeToString(p))
	}
	return []byte(b.String())
}

func wrappedOf(e *E2E) [][]byte {
	out := make([][]byte, len(e.Keys))
	for i, k := range e.Keys {
		out[i] = k.Wrapped
	}
	return out
}

// String describes e for logs without its ciphertext.
func (e *E2E) String() string {
	return fmt.Sprintf("e2e(v%d, %d keys, %d bytes)", e.V, len(e.Keys), len(e.Ciphertext))
}
