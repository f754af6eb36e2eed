package keys_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	fcrypto "github.com/fednode/fednode/crypto"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/internal/vaulttest"
	"github.com/fednode/fednode/keys"
)

func vaultClient(t *testing.T, v *vaulttest.Server, prefix string) *keys.VaultClient {
	t.Helper()
	vc, err := keys.NewVaultClient(context.Background(), keys.VaultConfig{Addr: v.Addr, Token: v.Token, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vc.Close)
	return vc
}

func TestTransitKeyring(t *testing.T) {
	v := vaulttest.Start(t)
	ctx := context.Background()
	now := time.Now()
	var offset atomic.Int64
	clock := func() time.Time { return now.Add(time.Duration(offset.Load())) }
	tr, err := keys.OpenTransit(ctx, vaultClient(t, v, "node1"), clock, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Created as rsa-4096, not exportable.
	raw, _ := v.Client(t).Logical().Read("transit/keys/node1-sig")
	if raw.Data["type"] != "rsa-4096" || raw.Data["exportable"] != false {
		t.Fatalf("transit key: type %v exportable %v", raw.Data["type"], raw.Data["exportable"])
	}
	pubs, _ := tr.PublicKeys(ctx)
	sig, _ := keys.CurrentKey(pubs, keys.UseSig)
	enc, _ := keys.CurrentKey(pubs, keys.UseEnc)
	if len(pubs) != 2 || sig.Key.N.Cmp(enc.Key.N) == 0 {
		t.Fatalf("want two distinct keys: %+v", pubs)
	}
	kid, s, err := tr.Sign(ctx, []byte("signing string"))
	sum := sha256.Sum256([]byte("signing string"))
	if err != nil || kid != sig.ID || rsa.VerifyPKCS1v15(sig.Key, crypto.SHA256, sum[:], s) != nil {
		t.Fatalf("Sign: %s %v", kid, err)
	}
	dk, _ := fcrypto.NewDataKey()
	w, _ := fcrypto.WrapKey(enc.Key, dk)
	if got, err := tr.Decrypt(ctx, enc.ID, w); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("Decrypt: %v", err)
	}
	if _, err := tr.Decrypt(ctx, sig.ID, w); !errors.Is(err, keys.ErrUnknownKey) {
		t.Fatalf("the signing key must not decrypt: %v", err)
	}

	// Rotation: both published for the overlap, the old one still works.
	newEnc, err := tr.Rotate(ctx, keys.UseEnc, time.Hour)
	if err != nil || newEnc.ID == enc.ID {
		t.Fatalf("Rotate: %+v %v", newEnc, err)
	}
	pubs, _ = tr.PublicKeys(ctx)
	if len(pubs) != 3 {
		t.Fatalf("during the overlap: %d keys", len(pubs))
	}
	if got, err := tr.Decrypt(ctx, enc.ID, w); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("the old version must decrypt during the overlap: %v", err)
	}
	// After the overlap: not published, refused by us and by Transit itself.
	offset.Store(int64(2 * time.Hour))
	if err := tr.Retire(ctx); err != nil {
		t.Fatal(err)
	}
	if pubs, _ := tr.PublicKeys(ctx); len(pubs) != 2 {
		t.Fatalf("after the overlap: %d keys", len(pubs))
	}
	if _, err := tr.Decrypt(ctx, enc.ID, w); !errors.Is(err, keys.ErrUnknownKey) {
		t.Fatalf("a retired version decrypted: %v", err)
	}
	cfg, _ := v.Client(t).Logical().Read("transit/keys/node1-enc")
	if n, _ := cfg.Data["min_decryption_version"].(interface{ String() string }); n == nil || n.String() != "2" {
		t.Fatalf("min_decryption_version = %v, want 2", cfg.Data["min_decryption_version"])
	}

	// Sealed: nothing is signed or decrypted, nothing falls back; public keys
	// are still served from the cache; unsealing brings it all back.
	v.Seal(t)
	if _, _, err := tr.Sign(ctx, []byte("x")); !errors.Is(err, keys.ErrUnavailable) {
		t.Fatalf("Sign while sealed: %v", err)
	}
	if pubs, err := tr.PublicKeys(ctx); err != nil || len(pubs) != 2 {
		t.Fatalf("public keys while sealed: %v", err)
	}
	v.Unseal(t)
	if _, _, err := tr.Sign(ctx, []byte("x")); err != nil {
		t.Fatalf("Sign after unseal: %v", err)
	}
}

func TestAppRoleLogsInAgainWhenItsTokenIsRevoked(t *testing.T) {
	v := vaulttest.Start(t)
	policy, err := keys.VaultPolicy(keys.PolicyParams{KeyPrefix: "ar", Transit: true})
	if err != nil {
		t.Fatal(err)
	}
	role, secret := v.AppRole(t, "fednode", policy, "10m")
	ctx := context.Background()
	vc, err := keys.NewVaultClient(ctx, keys.VaultConfig{Addr: v.Addr, RoleID: role, SecretID: secret, KeyPrefix: "ar"})
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	tr, err := keys.OpenTransit(ctx, vc, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Revoke every token the role issued: the next call logs in again once.
	accessors, err := v.Client(t).Logical().List("auth/token/accessors")
	if err != nil {
		t.Fatal(err)
	}
	var revoked []any
	for _, a := range accessors.Data["keys"].([]any) {
		info, _ := v.Client(t).Logical().Write("auth/token/lookup-accessor", map[string]any{"accessor": a})
		if info != nil && strings.Contains(strings.Join(toStrings(info.Data["policies"]), ","), "fednode") {
			if _, err := v.Client(t).Logical().Write("auth/token/revoke-accessor", map[string]any{"accessor": a}); err != nil {
				t.Fatal(err)
			}
			revoked = append(revoked, a)
		}
	}
	if len(revoked) == 0 {
		t.Fatal("no token of the role was found to revoke: the test would prove nothing")
	}
	for _, a := range revoked {
		if info, _ := v.Client(t).Logical().Write("auth/token/lookup-accessor", map[string]any{"accessor": a}); info != nil {
			t.Fatalf("token %v survived its revocation", a)
		}
	}
	if _, _, err := tr.Sign(ctx, []byte("after revocation")); err != nil {
		t.Fatalf("AppRole must log in again after its token is revoked: %v", err)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestImportLocalKeysIntoTransit(t *testing.T) {
	v := vaulttest.Start(t)
	ctx := context.Background()
	order := []int{0, 1}
	local, err := keys.OpenLocal(t.TempDir(), keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) {
		k := testkeys.Key(order[0])
		order = order[1:]
		return k, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	vc := vaultClient(t, v, "migrated")
	if err := keys.Import(ctx, vc, local); err != nil {
		t.Fatal(err)
	}
	tr, err := keys.OpenTransit(ctx, vc, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sameIdentity(t, local, tr)
	// PKCS#1 v1.5 is deterministic: the same signature from both.
	_, s1, _ := local.Sign(ctx, []byte("same"))
	_, s2, err := tr.Sign(ctx, []byte("same"))
	if err != nil || !bytes.Equal(s1, s2) {
		t.Fatalf("Transit and the local key sign differently: %v", err)
	}
	if err := keys.Import(ctx, vc, local); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("a second import must refuse: %v", err)
	}
	raw, _ := v.Client(t).Logical().Read("transit/keys/migrated-sig")
	if raw.Data["exportable"] != false {
		t.Fatal("imported keys must not be exportable")
	}
	// A migrated node rotates its keys like any other: Transit refuses to
	// rotate an imported key unless the import allowed it.
	tp, _ := tr.PublicKeys(ctx)
	for _, use := range []string{keys.UseSig, keys.UseEnc} {
		old, _ := keys.CurrentKey(tp, use)
		if k, err := tr.Rotate(ctx, use, time.Hour); err != nil || k.ID == old.ID {
			t.Fatalf("rotate the imported %s key: %+v %v", use, k, err)
		}
	}
}

// sameIdentity fails unless a and b have the same current key ids: a key
// migration must not change a node's identity.
func sameIdentity(t *testing.T, a, b keys.Keyring) {
	t.Helper()
	ctx := context.Background()
	ap, _ := a.PublicKeys(ctx)
	bp, _ := b.PublicKeys(ctx)
	for _, use := range []string{keys.UseSig, keys.UseEnc} {
		ka, _ := keys.CurrentKey(ap, use)
		kb, _ := keys.CurrentKey(bp, use)
		if ka.ID != kb.ID {
			t.Fatalf("%s: the identity changed in the move: %s -> %s", use, ka.ID, kb.ID)
		}
	}
}
