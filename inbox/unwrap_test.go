package inbox

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/keys"
)

// memStore is the inbox's store in memory, with one user, bob.
type memStore struct {
	mu   sync.Mutex
	msgs map[string]fednode.Message
}

var _ Store = (*memStore)(nil)

func (s *memStore) User(_ context.Context, name string) (fednode.User, error) {
	if name != "bob" {
		return fednode.User{}, fednode.ErrNotFound
	}
	return fednode.User{Username: name}, nil
}

func (s *memStore) Message(_ context.Context, id string) (fednode.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.msgs[id]
	if !ok {
		return fednode.Message{}, fednode.ErrNotFound
	}
	return m, nil
}

func (s *memStore) AppendMessage(_ context.Context, m fednode.Message, _ ...string) ([]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.msgs[m.ID]; ok {
		return nil, fednode.ErrDuplicate
	}
	s.msgs[m.ID] = m
	return []uint64{uint64(len(s.msgs))}, nil
}

// counting counts the unwraps that reach the keyring.
type counting struct {
	keys.Keyring
	decrypts atomic.Int64
}

func (c *counting) Decrypt(ctx context.Context, keyID string, ciphertext []byte) ([]byte, error) {
	c.decrypts.Add(1)
	return c.Keyring.Decrypt(ctx, keyID, ciphertext)
}

// TestInboxUnwrapsOncePerDataKey: an inbox built without an unwrap cache
// makes one, so messages from several requests under one data key cost one
// unwrap; and a message under an encryption key retired since is refused
// unwrap_failed, not opened from the cache.
func TestInboxUnwrapsOncePerDataKey(t *testing.T) {
	ctx := context.Background()
	order := []int{2, 5, 6}
	local, err := keys.OpenLocal(t.TempDir(), keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) {
		k := testkeys.Key(order[0])
		order = order[1:]
		return k, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	kr := &counting{Keyring: local}
	in := New(Config{Domain: "b.example", DateWindow: 5 * time.Minute}, Deps{
		Store: &memStore{msgs: map[string]fednode.Message{}}, Keyring: kr, Now: time.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if in.Unwraps == nil {
		t.Fatal("New made no unwrap cache")
	}
	pubs, _ := local.PublicKeys(ctx)
	enc, _ := keys.CurrentKey(pubs, keys.UseEnc)
	r := federation.Recipient{Domain: "b.example", EncKeyID: federation.KeyID("b.example", enc.ID), EncKey: enc.Key}
	sealer := federation.NewSealer(federation.SealerOptions{})
	send := func() federation.Envelope {
		t.Helper()
		var msgs []fednode.Message
		for range 4 {
			msgs = append(msgs, fednode.Message{ID: fednode.NewID(time.Now()), From: fednode.Address{User: "alice", Domain: "a.example"},
				To: fednode.Address{User: "bob", Domain: "b.example"}, Content: "hi", CreatedAt: time.Now()})
		}
		e, err := sealer.Seal("a.example", r, msgs)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(e)
		if e, err = federation.DecodeEnvelope(body); err != nil {
			t.Fatal(err)
		}
		return e
	}
	for range 3 {
		env := send()
		for _, m := range env.Messages {
			if res, _, err := in.accept(ctx, env, m); err != nil || res.Status != federation.StatusAccepted {
				t.Fatalf("accept: %+v, %v", res, err)
			}
		}
	}
	if n := kr.decrypts.Load(); n != 1 {
		t.Fatalf("%d unwraps for 12 messages under one data key", n)
	}

	// An emergency rotation: the old key is retired at once.
	if _, err := local.Rotate(ctx, keys.UseEnc, 0); err != nil {
		t.Fatal(err)
	}
	env := send() // still sealed to the old key, from a stale document
	res, _, err := in.accept(ctx, env, env.Messages[0])
	if err != nil || res.Status != federation.StatusRefused || res.Code != federation.CodeUnwrapFailed {
		t.Fatalf("a message under a retired key: %+v, %v; want refused unwrap_failed", res, err)
	}
}

func (s *memStore) Blocked(context.Context, string, fednode.Address) (bool, error) { return false, nil }
