// Package crypto is fednode's hybrid encryption of message content between
// nodes, and the parsing of the RSA keys it uses. It does no I/O and imports
// nothing of ours; private keys stay in package keys, which calls DecryptOAEP.
//
// Crypto summary: message content between nodes.
//
// What it protects: the confidentiality and integrity of each message's
// content and tags on the way from the sender's node to the recipient's node,
// and the binding of that content to its metadata.
// Against whom: anyone on the network path, a TLS-terminating proxy, a third
// node that receives or replays the ciphertext, and a peer that tries to move
// a ciphertext to another message, sender, recipient or node.
// Construction:
//   - a data key: 32 random bytes (AES-256). A sender may reuse one for
//     many messages and requests to the same recipient encryption key, at
//     most 2^20 messages and 1 hour in fednode (protocol limit 2^32), and
//     the receiver may keep it unwrapped: package federation's summary
//     "reusing data keys" gives the bounds, the reasons and the cost;
//   - the data key is wrapped with RSA-OAEP (RFC 8017) to the recipient
//     node's encryption key: RSA-4096, SHA-256 for both the label hash and
//     MGF1, and an EMPTY label, because Vault Transit, which unwraps when
//     the node's keys live there, supports exactly that; all binding is in
//     the GCM AAD;
//   - the content is sealed with AES-256-GCM under a 96-bit random nonce
//     (NIST SP 800-38D's recommended size; it allows 2^32 random nonces per
//     key, and a data key seals at most 2^20 here, where the chance of two
//     alike is about 2^-57) and a 128-bit tag;
//   - the associated data is Binding.AAD(): a fixed label and, each prefixed
//     by its 4-byte big-endian length so that no two field lists encode
//     alike, the protocol version, message id, sender address, recipient
//     address, creation time, the recipient encryption key id and the data
//     key id. Changing any of them makes Open fail.
//
// Signing keys are a separate RSA-4096 pair per node (never the encryption
// pair); the signature itself is HTTP Signatures, in package federation.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Sizes and versions fixed by protocol v1.
const (
	Version     = 1
	DataKeySize = 32 // AES-256
	NonceSize   = 12 // 96-bit GCM nonce
	TagSize     = 16 // 128-bit GCM tag
	RSABits     = 4096
	aadLabel    = "fednode envelope v1"
)

// ErrOpen is returned for every failure to open: wrong key, wrong nonce,
// wrong binding, tampered ciphertext. Callers learn nothing more.
var ErrOpen = errors.New("crypto: message authentication failed")

// Binding is what a ciphertext is bound to through the GCM associated data.
type Binding struct {
	Version   int
	MessageID string
	From      string // sender address, user@domain
	To        string // recipient address, user@domain
	CreatedAt string // as sent on the wire (RFC 3339)
	EncKeyID  string // the recipient node's encryption key id
	DataKeyID string // the envelope's id for the data key
}

// AAD encodes b unambiguously.
func (b Binding) AAD() []byte {
	fields := []string{strconv.Itoa(b.Version), b.MessageID, b.From, b.To, b.CreatedAt, b.EncKeyID, b.DataKeyID}
	out := []byte(aadLabel)
	for _, f := range fields {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}

// NewDataKey returns a fresh random AES-256 key.
func NewDataKey() ([]byte, error) {
	k := make([]byte, DataKeySize)
	if _, err := io.ReadFull(rand.Reader, k); err != nil {
		return nil, fmt.Errorf("crypto: data key: %w", err)
	}
	return k, nil
}

// WrapKey encrypts a data key to pub: RSA-OAEP, SHA-256, MGF1-SHA-256, no label.
func WrapKey(pub *rsa.PublicKey, dataKey []byte) ([]byte, error) {
	if len(dataKey) != DataKeySize {
		return nil, errors.New("crypto: data key must be 32 bytes")
	}
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, dataKey, nil)
	if err != nil {
		return nil, fmt.Errorf("crypto: wrap: %w", err)
	}
	return ct, nil
}

// DecryptOAEP is the private-key half of WrapKey, for package keys. It
// returns whatever the OAEP block holds; Open checks it is a data key.
func DecryptOAEP(priv *rsa.PrivateKey, ciphertext []byte) ([]byte, error) {
	pt, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ciphertext, nil)
	if err != nil {
		return nil, errors.New("crypto: unwrap failed")
	}
	return pt, nil
}

func gcm(dataKey []byte) (cipher.AEAD, error) {
	if len(dataKey) != DataKeySize {
		return nil, ErrOpen
	}
	block, err := aes.NewCipher(dataKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block) // 12-byte nonce, 16-byte tag
}

// Seal encrypts plaintext under dataKey with a fresh random nonce, bound to b.
func Seal(dataKey []byte, b Binding, plaintext []byte) (nonce, ciphertext []byte, err error) {
	nonce = make([]byte, NonceSize)
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, nil, fmt.Errorf("crypto: nonce: %w", err)
	}
	ct, err := SealWithNonce(dataKey, nonce, b, plaintext)
	return nonce, ct, err
}

// SealWithNonce is Seal with a given nonce, for known-answer tests only: a
// nonce must never repeat under one key.
func SealWithNonce(dataKey, nonce []byte, b Binding, plaintext []byte) ([]byte, error) {
	aead, err := gcm(dataKey)
	if err != nil {
		return nil, errors.New("crypto: data key must be 32 bytes")
	}
	if len(nonce) != NonceSize {
		return nil, errors.New("crypto: nonce must be 12 bytes")
	}
	return aead.Seal(nil, nonce, plaintext, b.AAD()), nil
}

// Open decrypts and authenticates ciphertext (with its tag appended).
func Open(dataKey, nonce []byte, b Binding, ciphertext []byte) ([]byte, error) {
	if len(nonce) != NonceSize || len(ciphertext) < TagSize {
		return nil, ErrOpen
	}
	aead, err := gcm(dataKey)
	if err != nil {
		return nil, ErrOpen
	}
	pt, err := aead.Open(nil, nonce, ciphertext, b.AAD())
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// ParsePublicKeyPEM parses a PEM "PUBLIC KEY" (SPKI) block holding an
// RSA-4096 key with public exponent 65537, the only kind protocol v1 uses.
func ParsePublicKeyPEM(s string) (*rsa.PublicKey, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil || block.Type != "PUBLIC KEY" || len(rest) > 0 && len(trimSpace(rest)) > 0 {
		return nil, errors.New("crypto: not one PEM PUBLIC KEY block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("crypto: public key: %w", err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("crypto: public key is not RSA")
	}
	if pub.N.BitLen() != RSABits || pub.E != 65537 {
		return nil, errors.New("crypto: public key must be RSA-4096 with e=65537")
	}
	return pub, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// MarshalPublicKeyPEM encodes pub as a PEM "PUBLIC KEY" block.
func MarshalPublicKeyPEM(pub *rsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic("crypto: marshal RSA public key: " + err.Error()) // cannot fail for RSA
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// Fingerprint is the first 16 bytes of SHA-256 over the key's SPKI DER, in
// hex: what key ids are made of.
func Fingerprint(pub *rsa.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:16])
}
