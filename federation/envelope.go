package federation

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/fednode/fednode"
	fcrypto "github.com/fednode/fednode/crypto"
	"github.com/fednode/fednode/keys"
)

// Envelope is the body of a delivery: one or more messages from one node to
// another, each sealed under a data key that the envelope carries wrapped to
// the recipient node's encryption key. []byte members are standard base64 in
// JSON.
type Envelope struct {
	Version  int                `json:"version" strictjson:"required"`
	FromNode string             `json:"from_node" strictjson:"required"`
	ToNode   string             `json:"to_node" strictjson:"required"`
	Keys     []WrappedKey       `json:"keys" strictjson:"required"`
	Messages []EncryptedMessage `json:"messages" strictjson:"required"`
}

// WrappedKey is a data key wrapped to one of the recipient's encryption keys.
type WrappedKey struct {
	ID       string `json:"id" strictjson:"required"`         // the data key's id, unique per sender; bound into each AAD
	EncKeyID string `json:"enc_key_id" strictjson:"required"` // full id of the recipient encryption key that wraps it
	Wrapped  []byte `json:"wrapped" strictjson:"required"`    // RSA-OAEP-SHA256 ciphertext, 512 bytes
}

// EncryptedMessage is one message's metadata in clear and its content sealed.
type EncryptedMessage struct {
	ID         string `json:"id" strictjson:"required"`
	From       string `json:"from" strictjson:"required"`
	To         string `json:"to" strictjson:"required"`
	CreatedAt  string `json:"created_at" strictjson:"required"`
	KeyID      string `json:"key_id" strictjson:"required"`
	Nonce      []byte `json:"nonce" strictjson:"required"`
	Ciphertext []byte `json:"ciphertext" strictjson:"required"`
}

// Plaintext is what a message's ciphertext holds. An end-to-end encrypted
// message has E2E, and then an empty Content and no Tags: they are inside
// E2E's ciphertext, which only the users' devices open.
type Plaintext struct {
	Content string       `json:"content" strictjson:"required"`
	Tags    []string     `json:"tags"`
	E2E     *fednode.E2E `json:"e2e,omitempty"`
}

// TimeFormat is how created_at is written: RFC 3339, UTC, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z"

var dataKeyIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// maxCiphertext bounds one sealed message: 10,000 code points of up to 4
// bytes, JSON-escaped at most 6 bytes each, tags, and the GCM tag (60 KiB);
// or an end-to-end payload (fednode.E2E) in JSON: a ciphertext of up to
// 64 KiB and up to 4 wrapped keys of 512 bytes, in base64 (about 90 KiB).
const maxCiphertext = 128 << 10

// DecodeEnvelope parses an envelope strictly and checks its shape: version
// 1; canonical node domains; 1 to 64 keys with unique ids, each naming a key
// of the receiving node, wrapped to exactly 512 bytes; 1 to 64 messages with
// unique well-formed ids, canonical addresses, RFC 3339 times, 12-byte
// nonces and bounded ciphertexts, each naming a key of the envelope. It does
// no cryptography and does not check who may send what: the inbox does.
func DecodeEnvelope(body []byte) (Envelope, error) {
	var e Envelope
	if err := decodeStrict(body, &e, "envelope"); err != nil {
		return Envelope{}, err
	}
	if e.Version != Version {
		return e, fmt.Errorf("envelope: version %d is not supported", e.Version)
	}
	for _, d := range []string{e.FromNode, e.ToNode} {
		if c, err := fednode.ParseDomain(d); err != nil || c != d {
			return e, fmt.Errorf("envelope: node %q is not a canonical domain", d)
		}
	}
	if len(e.Keys) == 0 || len(e.Keys) > MaxEnvelopeKeys || len(e.Messages) == 0 || len(e.Messages) > MaxEnvelopeMsgs {
		return e, fmt.Errorf("envelope: %d keys and %d messages; 1 to %d of each", len(e.Keys), len(e.Messages), MaxEnvelopeMsgs)
	}
	keyIDs := map[string]bool{}
	for _, k := range e.Keys {
		if !dataKeyIDRE.MatchString(k.ID) || keyIDs[k.ID] {
			return e, fmt.Errorf("envelope: bad or repeated key id %q", k.ID)
		}
		keyIDs[k.ID] = true
		if d, kid, err := ParseKeyID(k.EncKeyID); err != nil || d != e.ToNode || kid[:4] != "enc-" {
			return e, fmt.Errorf("envelope: key %q is not wrapped to an encryption key of %s", k.ID, e.ToNode)
		}
		if len(k.Wrapped) != fcrypto.RSABits/8 {
			return e, fmt.Errorf("envelope: key %q is not a %d-byte RSA-OAEP block", k.ID, fcrypto.RSABits/8)
		}
	}
	ids := map[string]bool{}
	for _, m := range e.Messages {
		if !fednode.ValidID(m.ID) || ids[m.ID] {
			return e, fmt.Errorf("envelope: bad or repeated message id %q", m.ID)
		}
		ids[m.ID] = true
		for _, a := range []string{m.From, m.To} {
			if p, err := fednode.ParseAddress(a, ""); err != nil || p.String() != a {
				return e, fmt.Errorf("envelope: message %s: %q is not a canonical address", m.ID, a)
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, m.CreatedAt); err != nil {
			return e, fmt.Errorf("envelope: message %s: created_at is not RFC 3339", m.ID)
		}
		if !keyIDs[m.KeyID] {
			return e, fmt.Errorf("envelope: message %s names no key of this envelope", m.ID)
		}
		if len(m.Nonce) != fcrypto.NonceSize || len(m.Ciphertext) < fcrypto.TagSize || len(m.Ciphertext) > maxCiphertext {
			return e, fmt.Errorf("envelope: message %s: bad nonce or ciphertext size", m.ID)
		}
	}
	return e, nil
}

// Recipient is what a sender needs of a peer to seal for it.
type Recipient struct {
	Domain   string
	EncKeyID string // full key id
	EncKey   *rsa.PublicKey
}

// newDataKeyID names a new data key: "k-" and 128 random bits in hex, so an
// id never names two data keys of one sender.
func newDataKeyID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "k-" + hex.EncodeToString(b), nil
}

func bindingOf(m EncryptedMessage, encKeyID string) fcrypto.Binding {
	return fcrypto.Binding{Version: Version, MessageID: m.ID, From: m.From, To: m.To, CreatedAt: m.CreatedAt, EncKeyID: encKeyID, DataKeyID: m.KeyID}
}

// ErrUnwrap and ErrOpen distinguish the two ways OpenMessage fails on crypto.
var (
	ErrUnwrap = errors.New("federation: data key does not unwrap")
	ErrOpen   = errors.New("federation: ciphertext does not open")
)

// Unwrapper is what opening a message needs of the node's keys: keys.Keyring
// satisfies it.
type Unwrapper interface {
	// Decrypt unwraps ciphertext with the encryption key keyID (a key id
	// of this node, without its domain), current or in its overlap.
	Decrypt(ctx context.Context, keyID string, ciphertext []byte) ([]byte, error)
	// PublicKeys lists the node's live keys.
	PublicKeys(ctx context.Context) ([]keys.PublicKey, error)
}

// OpenMessage unwraps m's data key with the keyring and opens m, unwrapping
// every time. The envelope must have been decoded by DecodeEnvelope.
func OpenMessage(ctx context.Context, kr Unwrapper, e Envelope, m EncryptedMessage) (Plaintext, error) {
	return (*UnwrapCache)(nil).OpenMessage(ctx, kr, e, m)
}

// OpenMessage is OpenMessage with m's data key taken from the cache when
// it was unwrapped before (see UnwrapCache). A nil cache unwraps every time.
func (c *UnwrapCache) OpenMessage(ctx context.Context, kr Unwrapper, e Envelope, m EncryptedMessage) (Plaintext, error) {
	var wk WrappedKey
	for _, k := range e.Keys {
		if k.ID == m.KeyID {
			wk = k
		}
	}
	dk, err := c.Unwrap(ctx, kr, wk.EncKeyID, wk.Wrapped)
	if err != nil {
		return Plaintext{}, err
	}
	raw, err := fcrypto.Open(dk, m.Nonce, bindingOf(m, wk.EncKeyID), m.Ciphertext)
	if err != nil {
		return Plaintext{}, ErrOpen
	}
	var pt Plaintext
	if err := decodeStrict(raw, &pt, "plaintext"); err != nil {
		return Plaintext{}, fmt.Errorf("%w: %w", ErrOpen, err)
	}
	return pt, nil
}
