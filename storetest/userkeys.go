package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/fednode/fednode"
)

// userKeys is a user key record for the suite: the store checks nothing
// of its bytes, so they need not be real keys.
func userKeys(enc, sig string, backup bool) fednode.UserKeys {
	k := fednode.UserKeys{Enc: []byte(enc), Sig: []byte(sig), CreatedAt: t0}
	if backup {
		k.Backup = &fednode.KeyBackup{V: 1, KDF: fednode.BackupKDF, Iterations: fednode.BackupMinIter,
			Salt: bytes.Repeat([]byte{1}, 16), Nonce: bytes.Repeat([]byte{2}, 12), Ciphertext: bytes.Repeat([]byte{3}, 40)}
	}
	return k
}

func sameUserKeys(a, b fednode.UserKeys) bool {
	if !bytes.Equal(a.Enc, b.Enc) || !bytes.Equal(a.Sig, b.Sig) || !a.CreatedAt.Equal(b.CreatedAt) || (a.Backup == nil) != (b.Backup == nil) {
		return false
	}
	if a.Backup == nil {
		return true
	}
	x, y := a.Backup, b.Backup
	return x.V == y.V && x.KDF == y.KDF && x.Iterations == y.Iterations &&
		bytes.Equal(x.Salt, y.Salt) && bytes.Equal(x.Nonce, y.Nonce) && bytes.Equal(x.Ciphertext, y.Ciphertext)
}

func testUserKeys(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	if err := s.PutUserKeys(ctx, "alice", userKeys("e", "s", false)); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("PutUserKeys for no such user: %v; want ErrNotFound", err)
	}
	for _, n := range []string{"Alice", "bob"} {
		if err := s.CreateUser(ctx, fednode.User{Username: n, Role: fednode.RoleUser, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.UserKeys(ctx, "alice"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("UserKeys before any: %v; want ErrNotFound", err)
	}
	first := userKeys("enc-1", "sig-1", true)
	if err := s.PutUserKeys(ctx, "ALICE", first); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserKeys(ctx, "alice")
	if err != nil || !sameUserKeys(got, first) {
		t.Fatalf("UserKeys = %+v, %v; want %+v", got, err, first)
	}
	// Replacing keys (a key change) drops the old backup with them.
	second := userKeys("enc-2", "sig-2", false)
	second.CreatedAt = t0.Add(time.Hour)
	if err := s.PutUserKeys(ctx, "alice", second); err != nil {
		t.Fatal(err)
	}
	if got, err := s.UserKeys(ctx, "Alice"); err != nil || !sameUserKeys(got, second) {
		t.Fatalf("UserKeys after a replacement = %+v, %v; want %+v", got, err, second)
	}
	if err := s.PutUserKeys(ctx, "bob", first); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUserKeys(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserKeys(ctx, "alice"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("UserKeys after DeleteUserKeys: %v; want ErrNotFound", err)
	}
	if err := s.DeleteUserKeys(ctx, "alice"); err != nil {
		t.Fatalf("deleting absent keys: %v", err)
	}
	if got, err := s.UserKeys(ctx, "bob"); err != nil || !sameUserKeys(got, first) {
		t.Fatalf("another user's keys must stay: %+v, %v", got, err)
	}
	// Deleting a user deletes its keys; a later user of that name (none
	// can be made: the name is taken for good) could never inherit them.
	if _, err := s.DeleteUser(ctx, fednode.DeletedUser{Username: "bob", DeletedAt: t0}, "a.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserKeys(ctx, "bob"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("UserKeys of a deleted user: %v; want ErrNotFound", err)
	}
	if err := s.PutUserKeys(ctx, "bob", first); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("PutUserKeys for a deleted user: %v; want ErrNotFound", err)
	}
}

// e2eMessage is an end-to-end encrypted message with a random payload of
// the right sizes: the store does no cryptography on it.
func e2eMessage(id, from, to string) fednode.Message {
	m := msg(id, from, to)
	m.Content, m.Tags = "", nil
	m.E2E = &fednode.E2E{V: fednode.E2EVersion, SigKey: fednode.KeyID(random(91)),
		Keys:  []fednode.E2EKey{{KeyID: fednode.KeyID(random(550)), Wrapped: random(fednode.E2EWrappedLen)}, {KeyID: fednode.KeyID(random(550)), Wrapped: random(fednode.E2EWrappedLen)}},
		Nonce: random(fednode.E2ENonceLen), Ciphertext: random(300), Signature: random(fednode.E2ESignatureLen)}
	return m
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// e2eSecrets are the strings of e that must not appear at rest: its key
// ids and each of its byte strings in base64, as JSON would write them.
func e2eSecrets(e *fednode.E2E) []string {
	out := []string{e.SigKey, b64(e.Nonce), b64(e.Ciphertext), b64(e.Signature)}
	for _, k := range e.Keys {
		out = append(out, k.KeyID, b64(k.Wrapped))
	}
	return out
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// sameE2E reports whether got is want's end-to-end message, payload byte
// for byte, with no clear content or tags.
func sameE2E(got, want fednode.Message) bool {
	return got.ID == want.ID && got.Content == "" && len(got.Tags) == 0 && reflect.DeepEqual(got.E2E, want.E2E)
}

func testE2EMessages(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	m := e2eMessage("e1", "alice", "bob")
	if _, err := s.AppendMessage(ctx, m, "alice", "bob"); err != nil {
		t.Fatal(err)
	}
	out := e2eMessage("e2", "alice", "carol")
	out.To.Domain, out.Status = "b.example", fednode.StatusQueued
	if _, err := s.AppendOutgoing(ctx, out, "alice"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Message(ctx, "e1"); err != nil || !sameE2E(got, m) {
		t.Fatalf("Message = %+v, %v", got, err)
	}
	all, err := s.Messages(ctx, []string{"e1", "e2"})
	if err != nil || !sameE2E(all["e1"], m) || !sameE2E(all["e2"], out) {
		t.Fatalf("Messages = %+v, %v", all, err)
	}
	if es, err := s.Mailbox(ctx, "bob", 0, 10); err != nil || len(es) != 1 || !sameE2E(es[0].Message, m) {
		t.Fatalf("Mailbox = %+v, %v", es, err)
	}
	if es, err := s.ConversationMessages(ctx, "alice", "carol@b.example", 0, 10); err != nil || len(es) != 1 || !sameE2E(es[0].Message, out) {
		t.Fatalf("ConversationMessages = %+v, %v", es, err)
	}
	cs, err := s.Conversations(ctx, "bob", 0, 10)
	if err != nil || len(cs) != 1 || !cs[0].LastE2E || cs[0].LastPreview != "" {
		t.Fatalf("Conversations = %+v, %v; want one whose last message is end-to-end encrypted", cs, err)
	}
	s.AppendMessage(ctx, msg("p1", "bob", "alice"), "alice", "bob")
	if cs, _ := s.Conversations(ctx, "bob", 0, 10); len(cs) != 1 || cs[0].LastE2E || cs[0].LastPreview != "hello p1" {
		t.Fatalf("Conversations after a plain message = %+v", cs)
	}
}
