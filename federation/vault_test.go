package federation

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/internal/vaulttest"
	"github.com/fednode/fednode/keys"
)

// TestVaultSignatureEqualsGoFed: the same key, imported into Transit, signs
// a request through Transit (the signing string built here) exactly as
// go-fed/httpsig signs it with the key in memory: byte-identical Signature
// headers (RSASSA-PKCS1-v1_5 is deterministic), and both verify.
func TestVaultSignatureEqualsGoFed(t *testing.T) {
	v := vaulttest.Start(t)
	ctx := context.Background()
	local := keyringOf(t, 0, 1)
	vc, err := keys.NewVaultClient(ctx, keys.VaultConfig{Addr: v.Addr, Token: v.Token, KeyPrefix: "equiv"})
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	if err := keys.Import(ctx, vc, local); err != nil {
		t.Fatal(err)
	}
	transit, err := keys.OpenTransit(ctx, vc, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := keys.Keyring(transit).(keys.HTTPSigner); ok {
		t.Fatal("Transit must not be able to hand go-fed a key")
	}
	body := []byte(`{"version":1}`)
	date := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	viaGoFed, viaVault := vectorRequest(t, body), vectorRequest(t, body)
	if err := SignRequest(ctx, local, vecFrom, viaGoFed, body, date); err != nil {
		t.Fatal(err)
	}
	if err := SignRequest(ctx, transit, vecFrom, viaVault, body, date); err != nil {
		t.Fatal(err)
	}
	if a, b := viaGoFed.Header.Get("Signature"), viaVault.Header.Get("Signature"); a != b || a == "" {
		t.Fatalf("signatures differ:\n go-fed: %s\n vault:  %s", a, b)
	}
	for _, r := range []*http.Request{viaGoFed, viaVault} {
		r.Host = vecTo
		if err := verifyRequest(r, &testkeys.Key(0).PublicKey); err != nil {
			t.Fatalf("does not verify: %v", err)
		}
	}
}
