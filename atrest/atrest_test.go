package atrest

import (
	"bytes"
	"context"
	"errors"
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

func TestPlaintextRecordPassesThrough(t *testing.T) {
	got, err := sealer(t).OpenMessage(context.Background(), msg())
	if err != nil || got.Content != "the canary sings" {
		t.Fatalf("%+v %v", got, err)
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
		if err == nil && IsSealed(m) && (got.Content != "the canary sings" || len(got.Tags) != 1) {
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
