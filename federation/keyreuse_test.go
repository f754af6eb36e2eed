package federation

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode"
	fcrypto "github.com/fednode/fednode/crypto"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/keys"
)

// countingKeyring counts the unwraps (Decrypt calls) that reach a keyring.
type countingKeyring struct {
	keys.Keyring
	decrypts atomic.Int64
	fail     func() error // when set and non-nil, Decrypt fails with it
}

var _ Unwrapper = (*countingKeyring)(nil)

func (c *countingKeyring) Decrypt(ctx context.Context, keyID string, ciphertext []byte) ([]byte, error) {
	c.decrypts.Add(1)
	if c.fail != nil {
		if err := c.fail(); err != nil {
			return nil, err
		}
	}
	return c.Keyring.Decrypt(ctx, keyID, ciphertext)
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// receiverKeys is b.example's keyring: signing key sig, then the test keys
// of encs, one per enc key it ever makes (the first, then rotations).
func receiverKeys(t testing.TB, now func() time.Time, sig int, encs ...int) *countingKeyring {
	t.Helper()
	order := append([]int{sig}, encs...)
	kr, err := keys.OpenLocal(t.TempDir(), keys.LocalOptions{Now: now, Generate: func() (*rsa.PrivateKey, error) {
		if len(order) == 0 {
			return nil, errors.New("test: out of keys")
		}
		k := testkeys.Key(order[0])
		order = order[1:]
		return k, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &countingKeyring{Keyring: kr}
}

// recipientOf is what a sender reads from kr's node document: its current
// encryption key.
func recipientOf(t testing.TB, kr keys.Keyring) Recipient {
	t.Helper()
	pubs, err := kr.PublicKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	enc, ok := keys.CurrentKey(pubs, keys.UseEnc)
	if !ok {
		t.Fatal("no current encryption key")
	}
	return Recipient{Domain: "b.example", EncKeyID: KeyID("b.example", enc.ID), EncKey: enc.Key}
}

var msgSeq atomic.Int64

// messages returns n messages from alice@a.example to bob@b.example whose
// content names them.
func messages(n int) []fednode.Message {
	out := make([]fednode.Message, n)
	for i := range out {
		seq := msgSeq.Add(1)
		out[i] = fednode.Message{ID: fednode.NewID(time.Now()), From: fednode.Address{User: "alice", Domain: "a.example"},
			To: fednode.Address{User: "bob", Domain: "b.example"}, Content: fmt.Sprintf("message %d", seq), Tags: []string{"t"}, CreatedAt: time.Now()}
	}
	return out
}

// wire sends e through JSON and DecodeEnvelope, as an inbox receives it.
func wire(t testing.TB, e Envelope) Envelope {
	t.Helper()
	body, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeEnvelope(body)
	if err != nil {
		t.Fatal(err)
	}
	return dec
}

func seal(t testing.TB, s *Sealer, r Recipient, n int) Envelope {
	t.Helper()
	e, err := s.Seal("a.example", r, messages(n))
	if err != nil {
		t.Fatal(err)
	}
	return wire(t, e)
}

// openAll opens every message of envs with c (nil: no cache) and fails on
// any error.
func openAll(t testing.TB, c *UnwrapCache, kr Unwrapper, envs ...Envelope) {
	t.Helper()
	for _, e := range envs {
		for _, m := range e.Messages {
			pt, err := c.OpenMessage(context.Background(), kr, e, m)
			if err != nil || len(pt.Tags) != 1 || pt.Content == "" {
				t.Fatalf("open %s: %+v, %v", m.ID, pt, err)
			}
		}
	}
}

// keyIDs lists the data key id of each message, in order.
func keyIDs(envs ...Envelope) []string {
	var out []string
	for _, e := range envs {
		for _, m := range e.Messages {
			out = append(out, m.KeyID)
		}
	}
	return out
}

func distinct(ids []string) int {
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	return len(seen)
}

// TestReusedDataKeyUnwrapsOncePerKey: 40 messages in 5 requests to one
// recipient key share one data key, every envelope carries the same keys
// entry, and a receiver with the cache unwraps once; a receiver without it
// (an older node) opens them all too, unwrapping per message.
func TestReusedDataKeyUnwrapsOncePerKey(t *testing.T) {
	kr := receiverKeys(t, nil, 2, 5)
	r := recipientOf(t, kr)
	s := NewSealer(SealerOptions{})
	var envs []Envelope
	for range 5 {
		envs = append(envs, seal(t, s, r, 8))
	}
	for _, e := range envs {
		if len(e.Keys) != 1 || e.Keys[0].ID != envs[0].Keys[0].ID || !bytes.Equal(e.Keys[0].Wrapped, envs[0].Keys[0].Wrapped) || e.Keys[0].EncKeyID != r.EncKeyID {
			t.Fatalf("keys entry differs between requests: %+v vs %+v", e.Keys, envs[0].Keys)
		}
	}
	if ids := keyIDs(envs...); distinct(ids) != 1 {
		t.Fatalf("%d data keys for 40 messages, want 1", distinct(ids))
	}

	c := NewUnwrapCache(UnwrapCacheOptions{})
	openAll(t, c, kr, envs...)
	if n := kr.decrypts.Load(); n != 1 {
		t.Fatalf("a receiver with the cache unwrapped %d times for one data key, want 1", n)
	}

	old := &countingKeyring{Keyring: kr.Keyring}
	openAll(t, nil, old, envs...)
	if n := old.decrypts.Load(); n != 40 {
		t.Fatalf("a receiver without the cache unwrapped %d times, want one per message (40)", n)
	}
}

// TestSealerCountBound: a data key seals at most MaxMessages messages, then
// the sealer makes another, even within one envelope; the receiver unwraps
// once per data key. The production bound is 2^20.
func TestSealerCountBound(t *testing.T) {
	kr := receiverKeys(t, nil, 2, 5)
	r := recipientOf(t, kr)
	s := NewSealer(SealerOptions{MaxMessages: 5})
	envs := []Envelope{seal(t, s, r, 4), seal(t, s, r, 4), seal(t, s, r, 4)}
	ids := keyIDs(envs...)
	for i := range ids {
		if want := ids[i/5*5]; ids[i] != want {
			t.Fatalf("message %d under %s, want the data key of message %d (%s)", i, ids[i], i/5*5, want)
		}
	}
	if distinct(ids) != 3 || len(envs[1].Keys) != 2 {
		t.Fatalf("%d data keys for 12 messages at 5 each (want 3); the second envelope has %d keys entries (want 2)", distinct(ids), len(envs[1].Keys))
	}
	c := NewUnwrapCache(UnwrapCacheOptions{})
	openAll(t, c, kr, envs...)
	if n := kr.decrypts.Load(); n != 3 {
		t.Fatalf("%d unwraps for 3 data keys", n)
	}

	// The default bound, without sealing a million messages.
	d := NewSealer(SealerOptions{})
	first := seal(t, d, r, 1)
	d.mu.Lock()
	d.keys[r.Domain].used = DataKeyMaxMessages - 1
	d.mu.Unlock()
	next := seal(t, d, r, 2)
	if next.Messages[0].KeyID != first.Messages[0].KeyID || next.Messages[1].KeyID == first.Messages[0].KeyID {
		t.Fatalf("message 2^20 must be the last under a data key: %v then %v", keyIDs(first), keyIDs(next))
	}
}

// TestSealerAgeBound: a data key seals for at most MaxAge (1 hour) after it
// was made, and not at all once the clock has gone back.
func TestSealerAgeBound(t *testing.T) {
	kr := receiverKeys(t, nil, 2, 5)
	r := recipientOf(t, kr)
	clk := newClock()
	s := NewSealer(SealerOptions{Now: clk.Now})
	a := seal(t, s, r, 1)
	clk.Add(DataKeyMaxAge - time.Second)
	b := seal(t, s, r, 1)
	clk.Add(time.Second)
	c := seal(t, s, r, 1)
	clk.Add(-time.Minute)
	d := seal(t, s, r, 1)
	ids := keyIDs(a, b, c, d)
	if ids[0] != ids[1] || ids[1] == ids[2] || ids[2] == ids[3] {
		t.Fatalf("data keys %v: want the same until 1h, then a new one, then another after the clock went back", ids)
	}
	openAll(t, NewUnwrapCache(UnwrapCacheOptions{}), kr, a, b, c, d)
	if n := kr.decrypts.Load(); n != 3 {
		t.Fatalf("%d unwraps for 3 data keys", n)
	}
}

// TestRotation: when the recipient rotates its encryption key, the sender
// seals under a new data key wrapped to the new key as soon as it sees the
// new document, and never goes back to the old data key; the receiver
// serves cached entries of the old key during its overlap and never after.
func TestRotation(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	kr := receiverKeys(t, clk.Now, 2, 5, 6)
	oldR := recipientOf(t, kr)
	s := NewSealer(SealerOptions{Now: clk.Now})
	c := NewUnwrapCache(UnwrapCacheOptions{Now: clk.Now})
	before := seal(t, s, oldR, 4)
	openAll(t, c, kr, before)

	if _, err := kr.Keyring.(*keys.Local).Rotate(ctx, keys.UseEnc, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	newR := recipientOf(t, kr)
	if newR.EncKeyID == oldR.EncKeyID {
		t.Fatal("the rotation made no new key")
	}
	after := seal(t, s, newR, 4)
	if after.Keys[0].ID == before.Keys[0].ID || after.Keys[0].EncKeyID != newR.EncKeyID || len(after.Keys) != 1 {
		t.Fatalf("after the rotation the sender must wrap a new data key to %s: %+v", newR.EncKeyID, after.Keys)
	}
	openAll(t, c, kr, after)
	if n := kr.decrypts.Load(); n != 2 {
		t.Fatalf("%d unwraps for 2 data keys", n)
	}
	// A request sealed from a stale copy of the document (a lane that read
	// it before the refetch) gets a data key of its own, not the old one.
	stale := seal(t, s, oldR, 1)
	if stale.Keys[0].ID == before.Keys[0].ID {
		t.Fatal("the sender went back to a data key of a replaced encryption key")
	}

	// In the overlap the old key still unwraps, and its entry is served.
	openAll(t, c, kr, before)
	if n := kr.decrypts.Load(); n != 2 {
		t.Fatalf("%d unwraps; the old key's entry must be served during the overlap", n)
	}
	// After it, the entry is not served: the keyring refuses, and every
	// entry of the retired key is gone.
	clk.Add(10 * time.Minute)
	entries := c.Len()
	_, err := c.OpenMessage(ctx, kr, before, before.Messages[0])
	if !errors.Is(err, ErrUnwrap) || !errors.Is(err, keys.ErrUnknownKey) {
		t.Fatalf("a message under a retired key: %v, want ErrUnwrap from the keyring", err)
	}
	if n := kr.decrypts.Load(); n != 3 {
		t.Fatalf("%d unwraps; the retired key must go to the keyring, not the cache", n)
	}
	if c.Len() >= entries {
		t.Fatalf("the retired key's entries were kept: %d then %d", entries, c.Len())
	}
	openAll(t, c, kr, after)
	if n := kr.decrypts.Load(); n != 3 {
		t.Fatalf("%d unwraps; the current key's entry must survive", n)
	}
}

// TestSealerForgetsAndChecksTheKey: Forget drops the data key of one
// recipient key (the outbox calls it on unwrap_failed), and a document that
// names its current key by the same id but with another public key gets a
// data key wrapped to that key, not the one kept.
func TestSealerForgetsAndChecksTheKey(t *testing.T) {
	kr := receiverKeys(t, nil, 2, 5)
	r := recipientOf(t, kr)
	s := NewSealer(SealerOptions{})
	a := seal(t, s, r, 1)
	s.Forget("b.example#enc-" + strings.Repeat("0", 32)) // another key: no effect
	b := seal(t, s, r, 1)
	s.Forget(r.EncKeyID)
	c := seal(t, s, r, 1)
	if ids := keyIDs(a, b, c); ids[0] != ids[1] || ids[1] == ids[2] {
		t.Fatalf("data keys %v: want one kept until it is forgotten", ids)
	}
	swapped := r
	swapped.EncKey = &testkeys.Key(4).PublicKey
	d := seal(t, s, swapped, 1)
	if d.Keys[0].ID == c.Keys[0].ID {
		t.Fatal("a data key wrapped to another public key was reused")
	}
	if _, err := fcrypto.DecryptOAEP(testkeys.Key(4), d.Keys[0].Wrapped); err != nil {
		t.Fatalf("the new data key is not wrapped to the key the document names: %v", err)
	}
}

// TestOldStyleEnvelopesThroughTheCache: a cache-enabled receiver opens
// envelopes with a fresh data key per message (fednode before reuse, and
// SealMessages), one unwrap each.
func TestOldStyleEnvelopesThroughTheCache(t *testing.T) {
	kr := receiverKeys(t, nil, 2, 5)
	r := recipientOf(t, kr)
	e, err := SealMessages("a.example", r, messages(3))
	if err != nil {
		t.Fatal(err)
	}
	e = wire(t, e)
	if len(e.Keys) != 3 || distinct(keyIDs(e)) != 3 {
		t.Fatal("SealMessages must use a fresh data key per message")
	}
	openAll(t, NewUnwrapCache(UnwrapCacheOptions{}), kr, e)
	if n := kr.decrypts.Load(); n != 3 {
		t.Fatalf("%d unwraps for 3 data keys", n)
	}
}

// TestCacheKeyIsTheWrappedBytes: a later envelope that names the same data
// key id with other wrapped bytes is unwrapped afresh and opens under its
// own key; the cached key is never served for it. And GCM still refuses a
// message whose AAD names another data key id than its key_id.
func TestCacheKeyIsTheWrappedBytes(t *testing.T) {
	ctx := context.Background()
	kr := receiverKeys(t, nil, 2, 5)
	r := recipientOf(t, kr)
	c := NewUnwrapCache(UnwrapCacheOptions{})
	first := seal(t, NewSealer(SealerOptions{}), r, 2)
	openAll(t, c, kr, first)

	// Same id, another data key wrapped: a confused or hostile sender.
	id := first.Keys[0].ID
	other, _ := fcrypto.NewDataKey()
	wrapped, err := fcrypto.WrapKey(r.EncKey, other)
	if err != nil {
		t.Fatal(err)
	}
	m := EncryptedMessage{ID: fednode.NewID(time.Now()), From: "alice@a.example", To: "bob@b.example", CreatedAt: "2026-11-26T12:00:00.000Z", KeyID: id}
	m.Nonce, m.Ciphertext, _ = fcrypto.Seal(other, bindingOf(m, r.EncKeyID), []byte(`{"content":"under the other key","tags":["t"]}`))
	later := wire(t, Envelope{Version: 1, FromNode: "a.example", ToNode: "b.example",
		Keys: []WrappedKey{{ID: id, EncKeyID: r.EncKeyID, Wrapped: wrapped}}, Messages: []EncryptedMessage{m}})
	pt, err := c.OpenMessage(ctx, kr, later, later.Messages[0])
	if err != nil || pt.Content != "under the other key" {
		t.Fatalf("the later envelope's own key must open it: %+v, %v", pt, err)
	}
	if n := kr.decrypts.Load(); n != 2 {
		t.Fatalf("%d unwraps; other wrapped bytes under the same id must be unwrapped afresh", n)
	}
	// The first key's messages are still served from its own entry.
	openAll(t, c, kr, first)
	if n := kr.decrypts.Load(); n != 2 {
		t.Fatalf("%d unwraps after reopening the first envelope", n)
	}

	// The AAD binds the data key id: a ciphertext sealed for another id
	// does not open under this one, cache or not.
	moved := m
	moved.KeyID = "k-elsewhere"
	moved.Nonce, moved.Ciphertext, _ = fcrypto.Seal(other, bindingOf(moved, r.EncKeyID), []byte(`{"content":"x"}`))
	moved.KeyID = id
	env := later
	env.Messages = []EncryptedMessage{moved}
	if _, err := c.OpenMessage(ctx, kr, env, moved); !errors.Is(err, ErrOpen) {
		t.Fatalf("a message whose AAD names another data key id: %v, want ErrOpen", err)
	}
}

// TestUnwrapCacheBounds: an entry lives TTL after its first unwrap, and
// the least recently used goes first when the cache is full.
func TestUnwrapCacheBounds(t *testing.T) {
	kr := receiverKeys(t, nil, 2, 5)
	r := recipientOf(t, kr)
	clk := newClock()
	c := NewUnwrapCache(UnwrapCacheOptions{Now: clk.Now})
	e := seal(t, NewSealer(SealerOptions{}), r, 1)
	openAll(t, c, kr, e)
	clk.Add(UnwrapCacheTTL - time.Second)
	openAll(t, c, kr, e)
	if n := kr.decrypts.Load(); n != 1 {
		t.Fatalf("%d unwraps within the TTL", n)
	}
	clk.Add(time.Second)
	openAll(t, c, kr, e)
	if n := kr.decrypts.Load(); n != 2 {
		t.Fatalf("%d unwraps; an entry past its TTL must be unwrapped again", n)
	}

	kr.decrypts.Store(0)
	small := NewUnwrapCache(UnwrapCacheOptions{Size: 2})
	a, b, d := seal(t, NewSealer(SealerOptions{}), r, 1), seal(t, NewSealer(SealerOptions{}), r, 1), seal(t, NewSealer(SealerOptions{}), r, 1)
	for _, step := range []struct {
		env  Envelope
		want int64
	}{{a, 1}, {b, 2}, {a, 2}, {d, 3}, {a, 3}, {b, 4}} { // d evicts b, the least recently used; then b evicts d
		openAll(t, small, kr, step.env)
		if n := kr.decrypts.Load(); n != step.want {
			t.Fatalf("%d unwraps, want %d", n, step.want)
		}
	}
	if small.Len() != 2 {
		t.Fatalf("%d entries in a cache of 2", small.Len())
	}
}

// TestSpentKeysLeaveMemory: a data key past its bounds is dropped from the
// sender's and the receiver's memory at their next use, even when its own
// peer never comes back.
func TestSpentKeysLeaveMemory(t *testing.T) {
	kr := receiverKeys(t, nil, 2, 5)
	r := recipientOf(t, kr)
	clk := newClock()
	s := NewSealer(SealerOptions{Now: clk.Now})
	c := NewUnwrapCache(UnwrapCacheOptions{Now: clk.Now})
	openAll(t, c, kr, seal(t, s, r, 1))
	clk.Add(UnwrapCacheTTL)

	other := Recipient{Domain: "c.example", EncKeyID: "c.example#enc-" + strings.Repeat("1", 32), EncKey: &testkeys.Key(4).PublicKey}
	carol := messages(1)
	carol[0].To = fednode.Address{User: "carol", Domain: "c.example"}
	if _, err := s.Seal("a.example", other, carol); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	_, kept := s.keys[r.Domain]
	s.mu.Unlock()
	if kept {
		t.Fatal("the sender kept a spent data key of a quiet peer")
	}
	openAll(t, c, kr, seal(t, NewSealer(SealerOptions{}), r, 1))
	if n := c.Len(); n != 1 {
		t.Fatalf("%d unwrapped keys held; the expired one must be gone", n)
	}
}

// TestUnwrapCacheKeepsNoFailure: a failed unwrap (the key service down) is
// not remembered: the next message unwraps again, and then is cached.
func TestUnwrapCacheKeepsNoFailure(t *testing.T) {
	kr := receiverKeys(t, nil, 2, 5)
	r := recipientOf(t, kr)
	var down atomic.Bool
	down.Store(true)
	kr.fail = func() error {
		if down.Load() {
			return keys.ErrUnavailable
		}
		return nil
	}
	c := NewUnwrapCache(UnwrapCacheOptions{})
	e := seal(t, NewSealer(SealerOptions{}), r, 2)
	if _, err := c.OpenMessage(context.Background(), kr, e, e.Messages[0]); !errors.Is(err, keys.ErrUnavailable) || !errors.Is(err, ErrUnwrap) {
		t.Fatalf("with the key service down: %v", err)
	}
	down.Store(false)
	openAll(t, c, kr, e)
	if n := kr.decrypts.Load(); n != 2 {
		t.Fatalf("%d unwraps; the failure must not be cached, the success must", n)
	}
}

// TestConcurrentLanes: parallel lanes seal to one recipient through one
// sealer while parallel workers open through one cache (run with -race).
// Every message opens, no data key seals more than its bound, and the
// receiver unwraps each data key exactly once, however many workers want
// it at the same time.
func TestConcurrentLanes(t *testing.T) {
	const lanes, perLane, perEnvelope, bound = 8, 4, 8, 10
	kr := receiverKeys(t, nil, 2, 5)
	r := recipientOf(t, kr)
	s := NewSealer(SealerOptions{MaxMessages: bound})
	c := NewUnwrapCache(UnwrapCacheOptions{})
	envs := make(chan Envelope)
	var sealers sync.WaitGroup
	for range lanes {
		sealers.Go(func() {
			for range perLane {
				e, err := s.Seal("a.example", r, messages(perEnvelope))
				if err != nil {
					t.Error(err)
					return
				}
				envs <- e
			}
		})
	}
	go func() { sealers.Wait(); close(envs) }()
	var mu sync.Mutex
	uses := map[string]int{}
	var openers sync.WaitGroup
	for e := range envs {
		for _, m := range e.Messages {
			openers.Go(func() {
				if _, err := c.OpenMessage(context.Background(), kr, e, m); err != nil {
					t.Errorf("open %s: %v", m.ID, err)
				}
				mu.Lock()
				uses[m.KeyID]++
				mu.Unlock()
			})
		}
	}
	openers.Wait()
	total := lanes * perLane * perEnvelope
	want := (total + bound - 1) / bound
	if len(uses) != want {
		t.Fatalf("%d data keys for %d messages at %d each, want %d", len(uses), total, bound, want)
	}
	for id, n := range uses {
		if n > bound {
			t.Fatalf("data key %s sealed %d messages; the bound is %d", id, n, bound)
		}
	}
	if n := kr.decrypts.Load(); n != int64(want) {
		t.Fatalf("%d unwraps for %d data keys", n, want)
	}
}

// BenchmarkOpenMessage is the receiver's cost per message for messages
// sharing a data key: with the unwrap cache (one RSA-OAEP decryption per
// data key, then a hash, a lookup and GCM) and without it (one decryption
// per message, as every receiver did before senders reused keys). One op
// is one message.
//
//	go test ./federation -run '^$' -bench OpenMessage
func BenchmarkOpenMessage(b *testing.B) {
	benchOpenMessage(b, receiverKeys(b, nil, 2, 5))
}

// benchOpenMessage opens the messages of one envelope sealed to kr, one by
// one, unwrapping the data key each time and through an UnwrapCache.
func benchOpenMessage(b *testing.B, kr *countingKeyring) {
	r := recipientOf(b, kr)
	e := seal(b, NewSealer(SealerOptions{}), r, 16)
	ctx := context.Background()
	for _, bc := range []struct {
		name  string
		cache *UnwrapCache
	}{{"unwrap-each", nil}, {"cached", NewUnwrapCache(UnwrapCacheOptions{})}} {
		b.Run(bc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := bc.cache.OpenMessage(ctx, kr, e, e.Messages[i%len(e.Messages)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
