package atrest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fednode/fednode"
)

// Prefix starts the Content of every sealed message record.
const Prefix = "\x00fednode-at-rest:"

// aadLabel starts the additional data of every seal; "v1" is the envelope
// version.
const aadLabel = "fednode at rest v1"

const (
	kindMessage = "message"
	version     = 1
	keySize     = 32 // AES-256
)

// Data key limits: a new data key after this many seals or this age.
const (
	MaxSeals = 1 << 24
	MaxAge   = 24 * time.Hour
)

// ErrDamaged is fednode.ErrDamaged, returned (wrapped in
// fednode.ErrStoreFailed) for a sealed record that does not open.
var ErrDamaged = fednode.ErrDamaged

// KeyWrapper protects data keys: the key-encryption key never leaves it.
type KeyWrapper interface {
	WrapDataKey(ctx context.Context, key []byte) ([]byte, error)
	UnwrapDataKey(ctx context.Context, wrapped []byte) ([]byte, error)
}

// envelope is the stored form of one seal.
type envelope struct {
	V int    `json:"v"`
	K string `json:"k"`
	W []byte `json:"w"`
	N []byte `json:"n"`
	C []byte `json:"c"`
}

// body is what is sealed: a message's content and tags, or its
// end-to-end payload (whose key ids and sender's signing key id, though
// public, say who talks with which device, so they are sealed too).
type body struct {
	Content string       `json:"content"`
	Tags    []string     `json:"tags"`
	E2E     *fednode.E2E `json:"e2e,omitempty"`
}

type dataKey struct {
	id      string
	wrapped []byte
	aead    cipher.AEAD
	made    time.Time
	seals   int
}

var _ fednode.MessageSealer = (*Sealer)(nil)

// Sealer seals and opens message records. It is safe for concurrent use.
type Sealer struct {
	w   KeyWrapper
	now func() time.Time
	// OnDamage, when set, is called for every record that fails to open,
	// with its message id and why (to log and count it); the error is
	// returned as well.
	OnDamage func(id string, err error)

	damaged atomic.Uint64 // records that failed to open, since start
	rot     sync.Mutex    // held while a new data key is made and wrapped, not mu
	mu      sync.Mutex
	cur     *dataKey
	cache   map[string]cipher.AEAD // unwrapped data keys by id
}

// Damaged returns how many records have failed to open since s was made
// (the fednode_store_damaged_records_total metric).
func (s *Sealer) Damaged() uint64 { return s.damaged.Load() }

// NewSealer returns a Sealer whose data keys w wraps; now nil means
// time.Now.
func NewSealer(w KeyWrapper, now func() time.Time) *Sealer {
	if now == nil {
		now = time.Now
	}
	return &Sealer{w: w, now: now, cache: map[string]cipher.AEAD{}}
}

// keyID names a data key by its wrapped form.
func keyID(wrapped []byte) string {
	h := sha256.Sum256(wrapped)
	return "dk-" + hex.EncodeToString(h[:8])
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// current returns the data key to seal with, making a new one when there is
// none or the current one is spent. The wrap (a Vault round trip with
// Transit) runs outside mu, so seals under a live key and opens of cached
// keys never wait for it; rot makes one caller wrap while the others wait.
func (s *Sealer) current(ctx context.Context) (*dataKey, error) {
	if k := s.take(); k != nil {
		return k, nil
	}
	s.rot.Lock()
	defer s.rot.Unlock()
	if k := s.take(); k != nil { // made while this caller waited
		return k, nil
	}
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	wrapped, err := s.w.WrapDataKey(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("at rest: wrap a new data key: %w", err)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	k := &dataKey{id: keyID(wrapped), wrapped: wrapped, aead: aead, made: s.now(), seals: 1}
	s.mu.Lock()
	s.cur, s.cache[k.id] = k, aead
	s.mu.Unlock()
	return k, nil
}

// take counts one seal on the current data key and returns it, or nil
// when there is none or it is spent.
func (s *Sealer) take() *dataKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.cur; k != nil && k.seals < MaxSeals && s.now().Sub(k.made) < MaxAge {
		k.seals++
		return k
	}
	return nil
}

// Rotate makes the next seal use a new data key. Records sealed under
// older keys stay readable: each envelope carries its wrapped key.
func (s *Sealer) Rotate() {
	s.mu.Lock()
	s.cur = nil
	s.mu.Unlock()
}

// CurrentKeyID returns the id of the data key new seals use, "" before the
// first seal.
func (s *Sealer) CurrentKeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return ""
	}
	return s.cur.id
}

func (s *Sealer) open(ctx context.Context, e envelope) (cipher.AEAD, error) {
	s.mu.Lock()
	aead, ok := s.cache[e.K]
	s.mu.Unlock()
	if ok { // cached under its id, which the AAD binds: W is not read
		return aead, nil
	}
	if keyID(e.W) != e.K { // before a key is cached under the id
		return nil, fmt.Errorf("key id %q does not name its wrapped key", e.K)
	}
	key, err := s.w.UnwrapDataKey(ctx, e.W)
	if err != nil {
		return nil, fmt.Errorf("unwrap data key %s: %w", e.K, err)
	}
	if aead, err = newAEAD(key); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.cache[e.K] = aead
	s.mu.Unlock()
	return aead, nil
}

func lp(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// aad binds a seal to its record: see the crypto summary.
func aad(m fednode.Message, keyID string) []byte {
	b := []byte(aadLabel)
	for _, f := range []string{kindMessage, m.ID, m.From.String(), m.To.String(), keyID} {
		b = lp(b, f)
	}
	return b
}

// IsSealed reports whether m is a sealed record.
func IsSealed(m fednode.Message) bool { return strings.HasPrefix(m.Content, Prefix) }

// SealMessage returns the record to store for m: m with its content, tags
// and end-to-end payload replaced by their envelope.
func (s *Sealer) SealMessage(ctx context.Context, m fednode.Message) (fednode.Message, error) {
	if IsSealed(m) {
		return m, nil
	}
	pt, err := json.Marshal(body{Content: m.Content, Tags: m.Tags, E2E: m.E2E})
	if err != nil {
		return fednode.Message{}, err
	}
	b, err := s.seal(ctx, pt, func(keyID string) []byte { return aad(m, keyID) })
	if err != nil {
		return fednode.Message{}, err
	}
	m.Content, m.Tags, m.E2E = Prefix+string(b), nil, nil
	return m, nil
}

// seal seals pt under the current data key with the additional data
// aadOf(its id) and returns the JSON envelope.
func (s *Sealer) seal(ctx context.Context, pt []byte, aadOf func(keyID string) []byte) ([]byte, error) {
	k, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	e := envelope{V: version, K: k.id, W: k.wrapped, N: make([]byte, k.aead.NonceSize())}
	if _, err := rand.Read(e.N); err != nil {
		return nil, err
	}
	e.C = k.aead.Seal(nil, e.N, pt, aadOf(k.id))
	return json.Marshal(e)
}

// unseal opens the JSON envelope raw with the additional data aadOf(its
// data key's id).
func (s *Sealer) unseal(ctx context.Context, raw []byte, aadOf func(keyID string) []byte) ([]byte, error) {
	var e envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("envelope: %v", err)
	}
	if e.V != version {
		return nil, fmt.Errorf("envelope version %d", e.V)
	}
	aead, err := s.open(ctx, e)
	if err != nil {
		return nil, err
	}
	if len(e.N) != aead.NonceSize() {
		return nil, fmt.Errorf("nonce of %d bytes", len(e.N))
	}
	return aead.Open(nil, e.N, e.C, aadOf(e.K))
}

// OpenMessage returns the message a stored record holds. A record that is
// not sealed, or does not open, is an error wrapping fednode.ErrStoreFailed
// and ErrDamaged: the schema upgrade to 3 sealed every record written
// before, so a record in clear was put there by someone else. One whose
// data key cannot be unwrapped now wraps the key service's error
// (fednode.ErrUnavailable, or the context's) and is not damage.
func (s *Sealer) OpenMessage(ctx context.Context, m fednode.Message) (fednode.Message, error) {
	out, err := s.openMessage(ctx, m)
	if err != nil {
		return fednode.Message{}, s.failed(m.ID, "message "+m.ID, err)
	}
	return out, nil
}

// failed classifies err, why the record id (what, for people) did not
// open: the key service away is not damage; anything else is damage,
// counted and reported, and wraps fednode.ErrStoreFailed and ErrDamaged.
func (s *Sealer) failed(id, what string, err error) error {
	if unavailable(err) { // the key service, not the record
		return fmt.Errorf("at rest: %s: %w", what, err)
	}
	s.damaged.Add(1)
	if s.OnDamage != nil {
		s.OnDamage(id, err)
	}
	return fmt.Errorf("%w: %w: %s: %v", fednode.ErrStoreFailed, ErrDamaged, what, err)
}

// unavailable reports whether err says the data key could not be unwrapped
// now (the key service is away, or the caller gave up), rather than that
// the record is bad.
func unavailable(err error) bool {
	return errors.Is(err, fednode.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func (s *Sealer) openMessage(ctx context.Context, m fednode.Message) (fednode.Message, error) {
	if !IsSealed(m) {
		return m, errors.New("the record is not sealed")
	}
	pt, err := s.unseal(ctx, []byte(m.Content[len(Prefix):]), func(keyID string) []byte { return aad(m, keyID) })
	if err != nil {
		return m, err
	}
	var b body
	if err := json.Unmarshal(pt, &b); err != nil {
		return m, fmt.Errorf("sealed body: %v", err)
	}
	m.Content, m.Tags, m.E2E = b.Content, b.Tags, b.E2E
	return m, nil
}

// KeyID returns the id of the data key a sealed record uses, "" for a
// plaintext or unreadable one (for re-encryption: records whose key is not
// the current one).
func KeyID(m fednode.Message) string {
	if !IsSealed(m) {
		return ""
	}
	var e envelope
	if json.Unmarshal([]byte(m.Content[len(Prefix):]), &e) != nil {
		return ""
	}
	return e.K
}

// Reseal returns a stored record sealed under the current data key, and
// whether that changed it: a record already sealed under it is returned as
// it is; an older one is opened and sealed again. A record that is not
// sealed, or does not open, is an error, as for OpenMessage: re-encryption
// never launders a record it cannot vouch for.
func (s *Sealer) Reseal(ctx context.Context, r fednode.Message) (fednode.Message, bool, error) {
	if cur := s.CurrentKeyID(); cur != "" && KeyID(r) == cur {
		return r, false, nil
	}
	m, err := s.OpenMessage(ctx, r)
	if err != nil {
		return fednode.Message{}, false, err
	}
	sealed, err := s.SealMessage(ctx, m)
	return sealed, err == nil, err
}
