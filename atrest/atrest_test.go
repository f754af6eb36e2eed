package atrest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/keys"
)

func sealer(t testing.TB) *Sealer {
	t.Helper()
	k, err := keys.OpenLocalKEK(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return NewSealer(k, nil)
}

func msg() fednode.Message {
	return fednode.Message{ID: "m1", From: fednode.Address{User: "alice", Domain: "a.test"}, To: fednode.Address{User: "bob", Domain: "b.test"},
		Content: "the canary sings", Tags: []string{"secret-tag"}, CreatedAt: time.Unix(1, 0).UTC()}
}

func TestSealOpenRoundTrip(t *testing.T) {
	ctx, s := context.Background(), sealer(t)
	stored, err := s.SealMessage(ctx, msg())
	if err != nil {
		t.Fatal(err)
	}
	if !IsSealed(stored) || strings.Contains(stored.Content, "canary") || stored.Tags != nil || stored.ID != "m1" {
		t.Fatalf("stored %+v", stored)
	}
	got, err := s.OpenMessage(ctx, stored)
	if err != nil || got.Content != "the canary sings" || len(got.Tags) != 1 || got.Tags[0] != "secret-tag" {
		t.Fatalf("opened %+v, %v", got, err)
	}
	if again, _ := s.SealMessage(ctx, msg()); again.Content == stored.Content {
		t.Fatal("two seals of one message are equal (nonce reused)")
	}
}

func TestOpenRefusesWhatWasMovedOrChanged(t *testing.T) {
	ctx, s := context.Background(), sealer(t)
	stored, _ := s.SealMessage(ctx, msg())
	flip := func(m fednode.Message) fednode.Message {
		b := []byte(m.Content)
		i := bytes.LastIndex(b, []byte(`"c":"`)) + 6
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		m.Content = string(b)
		return m
	}
	moved := stored
	moved.ID = "m2"
	readdressed := stored
	readdressed.To.User = "mallory"
	for name, m := range map[string]fednode.Message{
		"other id": moved, "other recipient": readdressed, "flipped ciphertext": flip(stored),
		"not json": {ID: "m1", Content: Prefix + "{"},
	} {
		t.Run(name, func(t *testing.T) {
			n := 0
			s.OnDamage = func(id string, _ error) {
				if id == m.ID {
					n++
				}
			}
			_, err := s.OpenMessage(ctx, m)
			if !errors.Is(err, ErrDamaged) || !errors.Is(err, fednode.ErrStoreFailed) || n != 1 {
				t.Fatalf("err %v, %d damage counted", err, n)
			}
		})
	}
}

func TestRotationKeepsOldRecordsReadable(t *testing.T) {
	ctx, s := context.Background(), sealer(t)
	old, _ := s.SealMessage(ctx, msg())
	first := s.CurrentKeyID()
	s.Rotate()
	newer, _ := s.SealMessage(ctx, msg())
	if s.CurrentKeyID() == first || KeyID(old) != first || KeyID(newer) == first {
		t.Fatalf("keys %s %s %s", first, KeyID(old), KeyID(newer))
	}
	// A restarted node (empty cache) reads both through the wrapper.
	fresh := NewSealer(s.w, nil)
	for _, m := range []fednode.Message{old, newer} {
		if got, err := fresh.OpenMessage(ctx, m); err != nil || got.Content != "the canary sings" {
			t.Fatalf("%+v %v", got, err)
		}
	}
}

// TestPlaintextRecordIsDamage: a record in clear (which only a writer of
// the store could have put there after the upgrade sealed everything) is
// neither served nor re-sealed, and is counted.
func TestPlaintextRecordIsDamage(t *testing.T) {
	s := sealer(t)
	got, err := s.OpenMessage(context.Background(), msg())
	if !errors.Is(err, ErrDamaged) || !errors.Is(err, fednode.ErrStoreFailed) || got.Content != "" {
		t.Fatalf("a plaintext record: %+v %v", got, err)
	}
	if _, _, err := s.Reseal(context.Background(), msg()); !errors.Is(err, ErrDamaged) {
		t.Fatalf("reseal of a plaintext record: %v", err)
	}
	if s.Damaged() != 2 {
		t.Fatalf("damaged = %d, want 2", s.Damaged())
	}
}

func FuzzOpenMessage(f *testing.F) {
	s := sealer(f)
	stored, _ := s.SealMessage(context.Background(), msg())
	f.Add(stored.Content)
	f.Add(Prefix + `{"v":1}`)
	f.Fuzz(func(t *testing.T, content string) {
		m := msg()
		m.Content = content
		got, err := s.OpenMessage(context.Background(), m)
		if err == nil && (got.Content != "the canary sings" || len(got.Tags) != 1) {
			t.Fatalf("a forged envelope opened: %+v", got)
		}
	})
}

func BenchmarkSealOpen(b *testing.B) {
	ctx, s := context.Background(), sealer(b)
	m := msg()
	m.Content = strings.Repeat("x", 500)
	b.ReportAllocs()
	for b.Loop() {
		stored, err := s.SealMessage(ctx, m)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.OpenMessage(ctx, stored); err != nil {
			b.Fatal(err)
		}
	}
}

// flakyWrapper wraps like w, but cannot unwrap while down is set.
type flakyWrapper struct {
	KeyWrapper
	down bool
}

func (f *flakyWrapper) UnwrapDataKey(ctx context.Context, wrapped []byte) ([]byte, error) {
	if f.down {
		return nil, fmt.Errorf("key service: %w", fednode.ErrUnavailable)
	}
	return f.KeyWrapper.UnwrapDataKey(ctx, wrapped)
}

// TestKeyServiceAwayIsNotDamage: a record whose data key cannot be
// unwrapped because the key service is away (or the caller gave up) is not
// served, but it is not damage either: the error wraps ErrUnavailable, not
// ErrDamaged, OnDamage is not called, and the record opens once the service
// is back.
func TestKeyServiceAwayIsNotDamage(t *testing.T) {
	ctx := context.Background()
	k, err := keys.OpenLocalKEK(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyWrapper{KeyWrapper: k}
	r, err := NewSealer(f, nil).SealMessage(ctx, msg())
	if err != nil {
		t.Fatal(err)
	}
	s := NewSealer(f, nil) // a fresh node: nothing cached
	damaged := 0
	s.OnDamage = func(string, error) { damaged++ }
	f.down = true
	if _, err := s.OpenMessage(ctx, r); !errors.Is(err, fednode.ErrUnavailable) || errors.Is(err, ErrDamaged) || damaged != 0 {
		t.Fatalf("key service away: %v (damage reported %d times); want ErrUnavailable, not ErrDamaged", err, damaged)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	f.down = false
	if _, err := s.OpenMessage(cancelled, r); errors.Is(err, ErrDamaged) && damaged != 0 {
		t.Fatalf("a cancelled read: %v; want no damage", err)
	}
	if got, err := s.OpenMessage(ctx, r); err != nil || got.Content != msg().Content {
		t.Fatalf("after the key service is back: %+v, %v", got, err)
	}
}
