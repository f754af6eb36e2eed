package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/fednode/fednode"
)

// signedE2E is a payload of the right sizes signed by priv as a device
// signs it for id, from and to.
func signedE2E(tb testing.TB, priv *ecdsa.PrivateKey, id string, from, to fednode.Address) *fednode.E2E {
	tb.Helper()
	spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	e := &fednode.E2E{V: 1, SigKey: fednode.KeyID(spki), Nonce: make([]byte, 12), Ciphertext: make([]byte, 1024),
		Keys: []fednode.E2EKey{{KeyID: fednode.KeyID([]byte("a")), Wrapped: make([]byte, fednode.E2EWrappedLen)}}}
	h := sha256.Sum256(fednode.E2ESignedBytes(id, from, to, e))
	r, s, err := ecdsa.Sign(rand.Reader, priv, h[:])
	if err != nil {
		tb.Fatal(err)
	}
	e.Signature = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	return e
}

func TestVerifyE2ESignature(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	rsaSPKI := []byte("not a key")
	from, to := fednode.Address{User: "alice", Domain: "a.example"}, fednode.Address{User: "bob", Domain: "b.example"}
	id := fednode.NewID(time.Now())
	good := signedE2E(t, priv, id, from, to)
	if err := verifyE2ESignature(id, from, to, good, spki); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	for name, c := range map[string]struct {
		id       string
		from, to fednode.Address
		e        *fednode.E2E
	}{
		"another id":     {fednode.NewID(time.Now()), from, to, good},
		"another sender": {id, fednode.Address{User: "mallory", Domain: "a.example"}, to, good},
		"another to":     {id, from, fednode.Address{User: "carol", Domain: "b.example"}, good},
		"another key":    {id, from, to, signedE2E(t, other, id, from, to)},
	} {
		err := verifyE2ESignature(c.id, c.from, c.to, c.e, spki)
		var fe *fednode.Error
		if !errors.As(err, &fe) || fe.Code != fednode.EInvalidE2E || fe.Field != "e2e.signature" {
			t.Errorf("%s: %v; want invalid_e2e on e2e.signature", name, err)
		}
	}
	if err := verifyE2ESignature(id, from, to, good, rsaSPKI); err == nil || fednode.ErrorCode(err) == fednode.EInvalidE2E {
		t.Errorf("a stored key that does not parse: %v; want an internal error", err)
	}
}

// BenchmarkVerifyE2ESignature is what the signature check adds to each
// E2E send: parsing the published P-256 key and one ECDSA verification
// over the signed bytes of a 1 KiB ciphertext.
func BenchmarkVerifyE2ESignature(b *testing.B) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	from, to := fednode.Address{User: "alice", Domain: "a.example"}, fednode.Address{User: "bob", Domain: "b.example"}
	id := fednode.NewID(time.Now())
	e := signedE2E(b, priv, id, from, to)
	b.ReportAllocs()
	for b.Loop() {
		if err := verifyE2ESignature(id, from, to, e, spki); err != nil {
			b.Fatal(err)
		}
	}
}
