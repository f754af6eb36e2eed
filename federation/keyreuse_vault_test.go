package federation

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fednode/fednode/internal/vaulttest"
	"github.com/fednode/fednode/keys"
)

// transitReceiver is b.example's keyring in a real Vault Transit (the local
// test keys sig and enc, imported), with its clock, counting unwraps.
func transitReceiver(tb testing.TB, now func() time.Time, sig, enc int) (*countingKeyring, *keys.Transit) {
	tb.Helper()
	v := vaulttest.Start(tb)
	ctx := context.Background()
	vc, err := keys.NewVaultClient(ctx, keys.VaultConfig{Addr: v.Addr, Token: v.Token, KeyPrefix: "reuse"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(vc.Close)
	if err := keys.Import(ctx, vc, receiverKeys(tb, nil, sig, enc).Keyring.(*keys.Local)); err != nil {
		tb.Fatal(err)
	}
	tr, err := keys.OpenTransit(ctx, vc, now, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return &countingKeyring{Keyring: tr}, tr
}

// TestTransitUnwrapsOncePerDataKey: with the node's keys in Vault Transit,
// messages under one data key cost one Transit decrypt; after a rotation's
// overlap ends (Transit's own view of it), the old key's entries are not
// served and the keyring refuses.
func TestTransitUnwrapsOncePerDataKey(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	kr, tr := transitReceiver(t, clk.Now, 2, 5)
	r := recipientOf(t, kr)
	s := NewSealer(SealerOptions{Now: clk.Now})
	c := NewUnwrapCache(UnwrapCacheOptions{Now: clk.Now})
	envs := []Envelope{seal(t, s, r, 8), seal(t, s, r, 8)}
	openAll(t, c, kr, envs...)
	if n := kr.decrypts.Load(); n != 1 {
		t.Fatalf("%d Transit decrypts for one data key", n)
	}

	if _, err := tr.Rotate(ctx, keys.UseEnc, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	openAll(t, c, kr, envs...) // the overlap: still served
	if n := kr.decrypts.Load(); n != 1 {
		t.Fatalf("%d Transit decrypts during the overlap", n)
	}
	clk.Add(10 * time.Minute)
	if _, err := c.OpenMessage(ctx, kr, envs[0], envs[0].Messages[0]); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("a message under a retired Transit key: %v, want ErrUnwrap", err)
	}
	if n := kr.decrypts.Load(); n != 2 {
		t.Fatalf("%d Transit decrypts; the retired key must go to the keyring", n)
	}
	next := recipientOf(t, kr)
	after := seal(t, s, next, 4)
	if next.EncKeyID == r.EncKeyID || after.Keys[0].ID == envs[0].Keys[0].ID {
		t.Fatal("after the rotation the sender must use a new data key for the new key")
	}
	openAll(t, c, kr, after)
	if n := kr.decrypts.Load(); n != 3 {
		t.Fatalf("%d Transit decrypts for 2 data keys and one refusal", n)
	}
}

// BenchmarkOpenMessageTransit is BenchmarkOpenMessage with the node's keys
// in Vault Transit (a local dev server): without the cache each message is
// a Vault call.
//
//	go test ./federation -run '^$' -bench OpenMessageTransit
func BenchmarkOpenMessageTransit(b *testing.B) {
	kr, _ := transitReceiver(b, nil, 2, 5)
	benchOpenMessage(b, kr)
}
