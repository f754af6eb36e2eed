package storetest

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/atrest"
	"github.com/fednode/fednode/keys"
)

// NewSealer returns an at-rest sealer under a fresh local key-encryption
// key, for a backend's tests to open its store with.
func NewSealer(tb testing.TB) *atrest.Sealer {
	tb.Helper()
	k, err := keys.OpenLocalKEK(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return atrest.NewSealer(k, nil)
}

// AtRest is what the at-rest test needs of a backend: a store opened with
// a sealer, every byte the backend holds at rest, and a way to damage one
// stored message.
type AtRest struct {
	Store fednode.Store
	// Sealer is the store's sealer.
	Sealer *atrest.Sealer
	// Raw returns every byte the backend holds: the database file, or a
	// DUMP of every key with the RDB and AOF files.
	Raw func(t *testing.T) []byte
	// Damage changes one byte of the sealed part of message id's record.
	Damage func(t *testing.T, id string)
}

// canary is the text the at-rest test stores; no window of canaryWindow of
// its bytes may appear at rest.
const (
	canary       = "CANARY-7f3a91c2-the-quick-brown-fox-owes-me-money"
	canaryTag    = "canarytag7f3a91"
	canaryWindow = 8
)

// RunAtRest stores canary messages through every append path, proves that
// no part of the canary appears in what the backend holds at rest and that
// every read path returns the messages intact, and that a damaged record
// is reported as damage, never served.
func RunAtRest(t *testing.T, open func(t *testing.T) AtRest) {
	ctx := context.Background()
	b := open(t)
	s := b.Store
	m := func(id, from, to string) fednode.Message {
		x := msg(id, from, to)
		x.Content, x.Tags = canary+" "+id, []string{canaryTag, "t2"}
		return x
	}
	if _, err := s.AppendMessage(ctx, m("m1", "alice", "bob"), "alice", "bob"); err != nil {
		t.Fatal(err)
	}
	out := m("m2", "alice", "carol")
	out.To.Domain = "b.example"
	if _, err := s.AppendOutgoing(ctx, out, "alice"); err != nil {
		t.Fatal(err)
	}
	batch, mbs := []fednode.Message{m("m3", "dave", "bob"), m("m4", "dave", "erin")}, [][]string{{"bob"}, {"erin"}}
	if bs, ok := s.(interface {
		AppendMessages(context.Context, []fednode.Message, [][]string) ([][]uint64, []error)
	}); ok {
		if _, errs := bs.AppendMessages(ctx, batch, mbs); errs[0] != nil || errs[1] != nil {
			t.Fatal(errs)
		}
	} else {
		for i, x := range batch {
			if _, err := s.AppendMessage(ctx, x, mbs[i]...); err != nil {
				t.Fatal(err)
			}
		}
	}

	// An end-to-end encrypted message: its payload is sealed with the
	// record, so not even its key ids show at rest.
	e2e := e2eMessage("m5", "frank", "gina")
	if _, err := s.AppendMessage(ctx, e2e, "frank", "gina"); err != nil {
		t.Fatal(err)
	}

	// A user's key backup: a ciphertext under the user's passphrase, sealed
	// again so that a thief of the store cannot guess the passphrase offline.
	if err := s.CreateUser(ctx, fednode.User{Username: "hank", Role: fednode.RoleUser, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	backup := &fednode.KeyBackup{V: fednode.E2EVersion, KDF: fednode.BackupKDF, Iterations: fednode.BackupMinIter,
		Salt: random(16), Nonce: random(fednode.E2ENonceLen), Ciphertext: []byte(canary + "-backup-" + canary)}
	if err := s.PutUserKeys(ctx, "hank", fednode.UserKeys{Enc: random(550), Sig: random(91), CreatedAt: t0, Backup: backup}); err != nil {
		t.Fatal(err)
	}

	raw := b.Raw(t)
	if len(raw) == 0 {
		t.Fatal("the backend's raw bytes are empty: the test would prove nothing")
	}
	absentAtRest(t, raw, e2eSecrets(e2e.E2E), canaryWindow/2, "an end-to-end payload")
	absentAtRest(t, raw, []string{b64(backup.Ciphertext), b64(backup.Salt)}, canaryWindow/2, "a key backup")
	if k, err := s.UserKeys(ctx, "hank"); err != nil || !reflect.DeepEqual(k.Backup, backup) {
		t.Fatalf("the key backup read back as %+v, %v", k.Backup, err)
	}
	if got, err := s.Message(ctx, "m5"); err != nil || !sameE2E(got, e2e) {
		t.Fatalf("the end-to-end message read back as %+v, %v", got, err)
	}
	if es, err := s.Mailbox(ctx, "gina", 0, 10); err != nil || len(es) != 1 || !sameE2E(es[0].Message, e2e) {
		t.Fatalf("the end-to-end message in the mailbox: %+v, %v", es, err)
	}
	absentAtRest(t, raw, []string{canary, canaryTag}, 1, "the canary")

	intact := func(got fednode.Message, id string) {
		t.Helper()
		if got.ID != id || got.Content != canary+" "+id || len(got.Tags) != 2 || got.Tags[0] != canaryTag {
			t.Fatalf("message %s read back as %+v", id, got)
		}
	}
	got, err := s.Message(ctx, "m2")
	if err != nil {
		t.Fatal(err)
	}
	intact(got, "m2")
	all, err := s.Messages(ctx, []string{"m1", "m2", "m3", "m4"})
	if err != nil || len(all) != 4 {
		t.Fatalf("Messages: %d, %v", len(all), err)
	}
	for id, got := range all {
		intact(got, id)
	}
	es, err := s.Mailbox(ctx, "bob", 0, 10)
	if err != nil || len(es) != 2 {
		t.Fatalf("Mailbox: %+v, %v", es, err)
	}
	intact(es[0].Message, "m1")
	intact(es[1].Message, "m3")
	es, err = s.ConversationMessages(ctx, "bob", "dave@a.example", 0, 10)
	if err != nil || len(es) != 1 {
		t.Fatalf("ConversationMessages: %+v, %v", es, err)
	}
	intact(es[0].Message, "m3")
	cs, err := s.Conversations(ctx, "bob", 0, 10)
	if err != nil || len(cs) != 2 || cs[0].LastPreview != fednode.Preview(canary+" m3") || cs[1].LastPreview != fednode.Preview(canary+" m1") {
		t.Fatalf("Conversations: %+v, %v", cs, err)
	}

	// Re-encryption: after a rotation, every record is sealed again under
	// the new data key, once, and still reads back intact.
	re, ok := s.(interface {
		ReencryptMessages(ctx context.Context, batch int) (int, error)
	})
	if !ok {
		t.Fatal("the store has no ReencryptMessages")
	}
	b.Sealer.Rotate()
	if n, err := re.ReencryptMessages(ctx, 3); err != nil || n != 5 {
		t.Fatalf("ReencryptMessages after a rotation: %d, %v; want all 5", n, err)
	}
	if n, err := re.ReencryptMessages(ctx, 3); err != nil || n != 0 {
		t.Fatalf("ReencryptMessages again: %d, %v; want none", n, err)
	}
	if all, err = s.Messages(ctx, []string{"m1", "m2", "m3", "m4"}); err != nil || len(all) != 4 {
		t.Fatalf("Messages after ReencryptMessages: %d, %v", len(all), err)
	}
	for id, got := range all {
		intact(got, id)
	}
	if got, err := s.Message(ctx, "m5"); err != nil || !sameE2E(got, e2e) {
		t.Fatalf("the end-to-end message after ReencryptMessages: %+v, %v", got, err)
	}

	b.Damage(t, "m4")
	b.Sealer.Rotate() // so that m4 must be opened to be sealed again
	if _, err := re.ReencryptMessages(ctx, 3); !errors.Is(err, atrest.ErrDamaged) {
		t.Fatalf("ReencryptMessages over a damaged record: %v; want atrest.ErrDamaged", err)
	}
	for name, read := range map[string]func() (fednode.Message, error){
		"Message": func() (fednode.Message, error) { return s.Message(ctx, "m4") },
		"Mailbox": func() (fednode.Message, error) {
			es, err := s.Mailbox(ctx, "erin", 0, 10)
			if len(es) > 0 {
				return es[0].Message, err
			}
			return fednode.Message{}, err
		},
	} {
		got, err := read()
		if !errors.Is(err, atrest.ErrDamaged) || got.Content != "" {
			t.Fatalf("%s of a damaged record: %+v, %v; want atrest.ErrDamaged and nothing served", name, got, err)
		}
	}
}

// absentAtRest fails when any canaryWindow bytes of a secret, taken every
// step bytes, appear in raw: the bytes the backend holds at rest.
func absentAtRest(t *testing.T, raw []byte, secrets []string, step int, what string) {
	t.Helper()
	for _, secret := range secrets {
		for i := 0; i+canaryWindow <= len(secret); i += step {
			if w := secret[i : i+canaryWindow]; bytes.Contains(raw, []byte(w)) {
				t.Fatalf("%q, part of %s, appears at rest", w, what)
			}
		}
	}
}
