package atrest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/fednode/fednode"
)

func TestRecordOpensOnlyAsItsKindAndOwner(t *testing.T) {
	ctx := context.Background()
	s := sealer(t)
	secret := []byte(`{"v":1,"ciphertext":"SECRET-BACKUP-CANARY"}`)
	sealed, err := s.SealRecord(ctx, fednode.RecordKeyBackup, "alice", secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("SECRET")) {
		t.Fatalf("the sealed record shows its plaintext: %s", sealed)
	}
	if got, err := s.OpenRecord(ctx, fednode.RecordKeyBackup, "alice", sealed); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open: %q, %v", got, err)
	}
	changed := bytes.Clone(sealed)
	changed[len(changed)-5] ^= 1 // inside the base64 of the ciphertext
	for name, c := range map[string]struct {
		kind, owner string
		sealed      []byte
	}{
		"another owner":   {fednode.RecordKeyBackup, "bob", sealed},
		"another kind":    {"user_keys.other", "alice", sealed},
		"as a message":    {kindMessage, "alice", sealed},
		"changed":         {fednode.RecordKeyBackup, "alice", changed},
		"not an envelope": {fednode.RecordKeyBackup, "alice", []byte("{}")},
	} {
		before := s.Damaged()
		got, err := s.OpenRecord(ctx, c.kind, c.owner, c.sealed)
		if !errors.Is(err, ErrDamaged) || !errors.Is(err, fednode.ErrStoreFailed) || got != nil || s.Damaged() != before+1 {
			t.Errorf("%s: %q, %v; want ErrDamaged, counted", name, got, err)
		}
	}
	if _, err := s.SealRecord(ctx, kindMessage, "alice", secret); err == nil {
		t.Error("a record sealed as a message")
	}
}

func TestUserKeysBackupSealedAndClearRefused(t *testing.T) {
	ctx := context.Background()
	s := sealer(t)
	k := fednode.UserKeys{Enc: []byte("enc"), Sig: []byte("sig"), Backup: &fednode.KeyBackup{V: 1, KDF: fednode.BackupKDF,
		Iterations: fednode.BackupMinIter, Salt: bytes.Repeat([]byte{1}, 16), Nonce: make([]byte, 12), Ciphertext: []byte("BACKUP-CANARY-0123456789")}}
	r, err := fednode.SealUserKeys(ctx, s, "Alice", k)
	if err != nil || r.Backup != nil || r.SealedBackup == nil {
		t.Fatalf("sealed record %+v, %v", r, err)
	}
	got, err := fednode.OpenUserKeys(ctx, s, "alice", r)
	if err != nil || got.Backup == nil || !bytes.Equal(got.Backup.Ciphertext, k.Backup.Ciphertext) {
		t.Fatalf("opened %+v, %v", got, err)
	}
	if _, err := fednode.OpenUserKeys(ctx, s, "bob", r); !errors.Is(err, ErrDamaged) {
		t.Fatalf("alice's backup as bob's: %v; want ErrDamaged", err)
	}
	clear := fednode.StoredUserKeys{Enc: k.Enc, Sig: k.Sig, Backup: k.Backup}
	if _, err := fednode.OpenUserKeys(ctx, s, "alice", clear); !errors.Is(err, ErrDamaged) {
		t.Fatalf("a backup stored in clear: %v; want ErrDamaged", err)
	}
	none := fednode.StoredUserKeys{Enc: k.Enc, Sig: k.Sig}
	if got, err := fednode.OpenUserKeys(ctx, s, "alice", none); err != nil || got.Backup != nil {
		t.Fatalf("keys without a backup: %+v, %v", got, err)
	}
}
