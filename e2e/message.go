package e2e

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/fednode/fednode"
	fcrypto "github.com/fednode/fednode/crypto"
	"github.com/fednode/fednode/internal/strictjson"
)

// The classes of failure. Every error of this package wraps exactly one,
// so a caller can say what went wrong without parsing text.
var (
	ErrBadKeys         = errors.New("e2e: the keys are not valid")
	ErrInvalid         = errors.New("e2e: the message breaks the e2e structure rules")
	ErrNotForMe        = errors.New("e2e: not encrypted to this device's key")
	ErrWrongSigner     = errors.New("e2e: signed by another key than the sender's published signing key")
	ErrBadSignature    = errors.New("e2e: the signature does not verify")
	ErrCannotOpen      = errors.New("e2e: the message does not decrypt")
	ErrBadPlaintext    = errors.New("e2e: the decrypted message breaks the content rules")
	ErrWrongPassphrase = errors.New("e2e: wrong passphrase")
	ErrBadBackup       = errors.New("e2e: the backup is not valid")
)

const (
	dataKeySize = 32
	sigHalf     = 32 // bytes of r and of s in a P-256 signature
)

// plaintext is what an E2E ciphertext seals.
type plaintext struct {
	Content string   `json:"content" strictjson:"required"`
	Tags    []string `json:"tags"` // absent or null: no tags, as in PROTOCOL §2.2
}

// Seal encrypts content and tags from one user to another (PROTOCOL §5):
// a fresh data key seals the JSON {"content","tags"} with AES-256-GCM,
// bound by the AAD to id, from, to and the key ids; the data key is
// wrapped to each of recipients' encryption keys and then to own's (once
// when sending to oneself); own's signing key signs it all. Content and
// tags must pass fednode.NormalizeContent and fednode.ValidateTags.
func Seal(id string, from, to fednode.Address, content string, tags []string, recipients []*PublicKeys, own *Keys) (*fednode.E2E, error) {
	dataKey, err := fcrypto.NewDataKey()
	if err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	nonce := make([]byte, fednode.E2ENonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("e2e: nonce: %w", err)
	}
	return sealWith(dataKey, nonce, id, from, to, content, tags, recipients, own)
}

// sealWith is Seal with a given data key and nonce: for known answers only.
func sealWith(dataKey, nonce []byte, id string, from, to fednode.Address, content string, tags []string, recipients []*PublicKeys, own *Keys) (*fednode.E2E, error) {
	pt, err := encodePlaintext(content, tags)
	if err != nil {
		return nil, err
	}
	me := own.Public()
	e := &fednode.E2E{V: fednode.E2EVersion, SigKey: me.SigKeyID(), Nonce: nonce}
	var ids []string
	for _, r := range append(append([]*PublicKeys{}, recipients...), me) {
		kid := r.EncKeyID()
		if slices.Contains(ids, kid) {
			continue
		}
		w, err := fcrypto.WrapKey(r.Enc, dataKey)
		if err != nil {
			return nil, fmt.Errorf("e2e: wrap to %s: %w", kid, err)
		}
		ids = append(ids, kid)
		e.Keys = append(e.Keys, fednode.E2EKey{KeyID: kid, Wrapped: w})
	}
	aead, err := newGCM(dataKey)
	if err != nil {
		return nil, err
	}
	e.Ciphertext = aead.Seal(nil, nonce, pt, fednode.E2EAAD(id, from, to, e.SigKey, ids))
	e.Signature = make([]byte, 2*sigHalf) // filled below
	if err := e.Validate(); err != nil {  // too many recipients, content too long
		return nil, fmt.Errorf("%w: %s", ErrInvalid, fednode.ErrorMessage(err))
	}
	if err := Sign(id, from, to, e, own.Sig); err != nil {
		return nil, err
	}
	return e, nil
}

// Sign sets e's signature: key's ECDSA P-256 SHA-256 signature over
// fednode.E2ESignedBytes(id, from, to, e), as r||s (PROTOCOL §5.3).
func Sign(id string, from, to fednode.Address, e *fednode.E2E, key *ecdsa.PrivateKey) error {
	digest := sha256.Sum256(fednode.E2ESignedBytes(id, from, to, e))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return fmt.Errorf("e2e: sign: %w", err)
	}
	e.Signature = make([]byte, 2*sigHalf)
	r.FillBytes(e.Signature[:sigHalf])
	s.FillBytes(e.Signature[sigHalf:])
	return nil
}

func encodePlaintext(content string, tags []string) ([]byte, error) {
	content, err := fednode.NormalizeContent(content)
	if err != nil {
		return nil, err
	}
	if err := fednode.ValidateTags(tags); err != nil {
		return nil, err
	}
	if tags == nil {
		tags = []string{}
	}
	return json.Marshal(plaintext{Content: content, Tags: tags})
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: bad key size", ErrCannotOpen)
	}
	return cipher.NewGCM(block)
}

// Open checks and decrypts an E2E message as its recipient (or its sender,
// on another device) does (PROTOCOL §5.6): e must be encrypted to own's
// encryption key, signed by sender's signing key (the one the sender's
// home node publishes; the caller compares it with the pinned one), and
// open under the AAD rebuilt from the message's own id, from and to;
// the plaintext must parse strictly and pass the content and tag rules.
// It never returns part of a message that fails any check.
func Open(id string, from, to fednode.Address, e *fednode.E2E, own *Keys, sender *PublicKeys) (content string, tags []string, err error) {
	if err := e.Validate(); err != nil {
		return "", nil, fmt.Errorf("%w: %s", ErrInvalid, fednode.ErrorMessage(err))
	}
	if e.SigKey != sender.SigKeyID() {
		return "", nil, fmt.Errorf("%w: %s, not %s", ErrWrongSigner, e.SigKey, sender.SigKeyID())
	}
	if !VerifySignature(id, from, to, e, sender.Sig) {
		return "", nil, ErrBadSignature
	}
	myID := own.Public().EncKeyID()
	var wrapped []byte
	ids := make([]string, len(e.Keys))
	for i, k := range e.Keys {
		ids[i] = k.KeyID
		if k.KeyID == myID {
			wrapped = k.Wrapped
		}
	}
	if wrapped == nil {
		return "", nil, ErrNotForMe
	}
	dataKey, err := fcrypto.DecryptOAEP(own.Enc, wrapped)
	if err != nil || len(dataKey) != dataKeySize {
		return "", nil, fmt.Errorf("%w: the data key does not unwrap", ErrCannotOpen)
	}
	aead, err := newGCM(dataKey)
	if err != nil {
		return "", nil, err
	}
	pt, err := aead.Open(nil, e.Nonce, e.Ciphertext, fednode.E2EAAD(id, from, to, e.SigKey, ids))
	if err != nil {
		return "", nil, fmt.Errorf("%w: authentication failed", ErrCannotOpen)
	}
	var p plaintext
	if err := strictjson.Decode(pt, &p); err != nil {
		return "", nil, fmt.Errorf("%w: %s", ErrBadPlaintext, fednode.ErrorMessage(err))
	}
	if p.Content, err = fednode.NormalizeContent(p.Content); err != nil {
		return "", nil, fmt.Errorf("%w: %s", ErrBadPlaintext, fednode.ErrorMessage(err))
	}
	if err := fednode.ValidateTags(p.Tags); err != nil {
		return "", nil, fmt.Errorf("%w: %s", ErrBadPlaintext, fednode.ErrorMessage(err))
	}
	if p.Tags == nil {
		p.Tags = []string{}
	}
	return p.Content, p.Tags, nil
}

// VerifySignature reports whether e's signature is pub's over
// fednode.E2ESignedBytes(id, from, to, e): ECDSA P-256, SHA-256, r||s.
func VerifySignature(id string, from, to fednode.Address, e *fednode.E2E, pub *ecdsa.PublicKey) bool {
	if len(e.Signature) != 2*sigHalf {
		return false
	}
	digest := sha256.Sum256(fednode.E2ESignedBytes(id, from, to, e))
	r := new(big.Int).SetBytes(e.Signature[:sigHalf])
	s := new(big.Int).SetBytes(e.Signature[sigHalf:])
	return ecdsa.Verify(pub, digest[:], r, s)
}
