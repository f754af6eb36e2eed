package federation

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/fednode/fednode"
	fcrypto "github.com/fednode/fednode/crypto"
)

// Bounds on one data key, as a sender uses it (the package's crypto summary
// "reusing data keys" says why they are what they are).
const (
	// DataKeyMaxMessages is how many messages one data key seals at most:
	// 2^20, far below the 2^32 random 96-bit nonces NIST SP 800-38D allows
	// one GCM key.
	DataKeyMaxMessages = 1 << 20
	// DataKeyMaxAge is how long after it was made a data key seals at most.
	DataKeyMaxAge = time.Hour
	// maxSealerKeys bounds the sender's cache: one data key per recipient
	// node it currently seals to; the least recently made goes first.
	maxSealerKeys = 4096
)

// SealerOptions tune NewSealer; the zero value is right for production.
type SealerOptions struct {
	MaxMessages int           // per data key; 0 means DataKeyMaxMessages
	MaxAge      time.Duration // per data key; 0 means DataKeyMaxAge
	MaxKeys     int           // data keys kept; 0 means 4096
	Now         func() time.Time
}

// Sealer seals messages for peers, reusing one data key (with its one
// wrapped copy and its one id) for every message and request to the same
// recipient encryption key, until the key has sealed MaxMessages messages,
// is MaxAge old, or the recipient's current encryption key is another one.
// Then it makes a new data key. Each envelope carries the keys entry of
// every data key its messages name, so the receiver needs nothing else.
//
// A Sealer is safe for concurrent use: parallel lanes to one peer share its
// data key, and each message reserves its place under the key's count
// before it is sealed.
type Sealer struct {
	now         func() time.Time
	maxMessages int
	maxAge      time.Duration
	maxKeys     int

	mu    sync.Mutex
	keys  map[string]*sendKey // by recipient domain: the key for its current enc key
	swept time.Time
}

// sweepEvery is how often spent data keys are dropped from memory (on the
// next Seal after it).
const sweepEvery = time.Minute

// sendKey is one data key a sender seals with. Everything but used is
// immutable once made.
type sendKey struct {
	wrapped WrappedKey
	key     []byte
	encKey  *rsa.PublicKey // the key it is wrapped to, named by wrapped.EncKeyID
	created time.Time
	used    int // messages reserved under it
}

// NewSealer returns a sealer with the bounds of o.
func NewSealer(o SealerOptions) *Sealer {
	s := &Sealer{now: o.Now, maxMessages: o.MaxMessages, maxAge: o.MaxAge, maxKeys: o.MaxKeys, keys: map[string]*sendKey{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxMessages <= 0 || s.maxMessages > DataKeyMaxMessages {
		s.maxMessages = DataKeyMaxMessages
	}
	if s.maxAge <= 0 || s.maxAge > DataKeyMaxAge {
		s.maxAge = DataKeyMaxAge
	}
	if s.maxKeys <= 0 {
		s.maxKeys = maxSealerKeys
	}
	return s
}

// Seal builds an envelope from fromNode to r for msgs, all of which must be
// addressed to r.Domain, under r's current data key (made when there is
// none, or the last one is spent).
func (s *Sealer) Seal(fromNode string, r Recipient, msgs []fednode.Message) (Envelope, error) {
	for _, m := range msgs {
		if m.To.Domain != r.Domain || m.From.Domain != fromNode {
			return Envelope{}, fmt.Errorf("federation: message %s is not from %s to %s", m.ID, fromNode, r.Domain)
		}
	}
	// Reserve each message's place under a data key; seal outside the lock.
	assigned := make([]*sendKey, len(msgs))
	e := Envelope{Version: Version, FromNode: fromNode, ToNode: r.Domain}
	s.mu.Lock()
	if now := s.now(); now.Sub(s.swept) >= sweepEvery || now.Before(s.swept) {
		s.sweep(now)
	}
	for i := range msgs {
		k, err := s.current(r)
		if err != nil {
			s.mu.Unlock()
			return Envelope{}, err
		}
		k.used++
		assigned[i] = k
		if len(e.Keys) == 0 || e.Keys[len(e.Keys)-1].ID != k.wrapped.ID {
			e.Keys = append(e.Keys, k.wrapped)
		}
	}
	s.mu.Unlock()
	for i, m := range msgs {
		k := assigned[i]
		tags := m.Tags
		if tags == nil {
			tags = []string{}
		}
		pt, _ := json.Marshal(Plaintext{Content: m.Content, Tags: tags, E2E: m.E2E})
		em := EncryptedMessage{ID: m.ID, From: m.From.String(), To: m.To.String(), CreatedAt: m.CreatedAt.UTC().Format(TimeFormat), KeyID: k.wrapped.ID}
		var err error
		em.Nonce, em.Ciphertext, err = fcrypto.Seal(k.key, bindingOf(em, r.EncKeyID), pt)
		if err != nil {
			return Envelope{}, err
		}
		e.Messages = append(e.Messages, em)
	}
	return e, nil
}

// current returns the data key for r that may seal one more message,
// making a new one when needed. The caller holds s.mu.
//
// One data key is kept per recipient node, for the encryption key it was
// wrapped to: when r names another key (the peer rotated, or retired this
// one), the old data key is dropped and never used again.
func (s *Sealer) current(r Recipient) (*sendKey, error) {
	now := s.now()
	if k := s.keys[r.Domain]; k != nil && k.wrapped.EncKeyID == r.EncKeyID && k.encKey.Equal(r.EncKey) && s.usable(k, now) {
		return k, nil
	}
	delete(s.keys, r.Domain)
	if len(s.keys) >= s.maxKeys {
		s.evict(now)
	}
	dk, err := fcrypto.NewDataKey()
	if err != nil {
		return nil, err
	}
	wrapped, err := fcrypto.WrapKey(r.EncKey, dk)
	if err != nil {
		return nil, err
	}
	id, err := newDataKeyID()
	if err != nil {
		return nil, err
	}
	k := &sendKey{wrapped: WrappedKey{ID: id, EncKeyID: r.EncKeyID, Wrapped: wrapped}, key: dk, encKey: r.EncKey, created: now}
	s.keys[r.Domain] = k
	return k, nil
}

// usable reports whether k may seal one more message at now. A clock that
// went back also retires it: its age is then unknown.
func (s *Sealer) usable(k *sendKey, now time.Time) bool {
	age := now.Sub(k.created)
	return k.used < s.maxMessages && age >= 0 && age < s.maxAge
}

// sweep drops the data keys that may seal no more, so that a key does not
// stay in memory after its hour when its peer goes quiet.
func (s *Sealer) sweep(now time.Time) {
	for domain, k := range s.keys {
		if !s.usable(k, now) {
			delete(s.keys, domain)
		}
	}
	s.swept = now
}

// evict makes room: spent keys go first, then the oldest.
func (s *Sealer) evict(now time.Time) {
	s.sweep(now)
	var oldest string
	for domain, k := range s.keys {
		if oldest == "" || k.created.Before(s.keys[oldest].created) {
			oldest = domain
		}
	}
	if len(s.keys) >= s.maxKeys && oldest != "" {
		delete(s.keys, oldest)
	}
}

// Forget drops the data key kept for the recipient encryption key encKeyID
// (a full key id), so the next Seal to it makes a new one. The outbox calls
// it when the peer answers unwrap_failed: whatever the cause, no later
// request carries that wrapped key again.
func (s *Sealer) Forget(encKeyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for domain, k := range s.keys {
		if k.wrapped.EncKeyID == encKeyID {
			delete(s.keys, domain)
		}
	}
}

// SealMessages builds an envelope from fromNode to r for msgs, all of which
// must be addressed to r.Domain, with a fresh data key per message: a
// sealer whose data keys seal one message each, which is how fednode sent
// before it reused data keys (kept for tests, and to show that receivers
// still accept it).
func SealMessages(fromNode string, r Recipient, msgs []fednode.Message) (Envelope, error) {
	return NewSealer(SealerOptions{MaxMessages: 1}).Seal(fromNode, r, msgs)
}
