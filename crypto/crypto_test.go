package crypto

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/fednode/fednode/internal/testkeys"
)

func binding() Binding {
	return Binding{Version: 1, MessageID: "01ARZ3NDEKTSV4RRFFQ69G5FAV", From: "alice@a.example", To: "bob@b.example",
		CreatedAt: "2026-11-26T12:00:00.000Z", EncKeyID: "b.example#enc-00", DataKeyID: "k1"}
}

func TestSealOpenAndBinding(t *testing.T) {
	key, _ := NewDataKey()
	b := binding()
	nonce, ct, err := Seal(key, b, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := Open(key, nonce, b, ct); err != nil || string(pt) != "hello" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	// Every bound field, changed, must make Open fail.
	for name, mod := range map[string]func(*Binding){
		"version":    func(b *Binding) { b.Version = 2 },
		"message id": func(b *Binding) { b.MessageID = "01ARZ3NDEKTSV4RRFFQ69G5FAW" },
		"sender":     func(b *Binding) { b.From = "mallory@a.example" },
		"recipient":  func(b *Binding) { b.To = "carol@b.example" },
		"node":       func(b *Binding) { b.To = "bob@c.example" },
		"created_at": func(b *Binding) { b.CreatedAt = "2026-11-26T12:00:00.001Z" },
		"enc key id": func(b *Binding) { b.EncKeyID = "b.example#enc-01" },
		"data key":   func(b *Binding) { b.DataKeyID = "k2" },
		// Length prefixes: moving a character across a field boundary changes the AAD.
		"boundary": func(b *Binding) { b.From, b.To = "alice@a.examplebob", "@b.example" },
	} {
		moved := binding()
		mod(&moved)
		if bytes.Equal(moved.AAD(), b.AAD()) {
			t.Fatalf("%s: AAD did not change", name)
		}
		if _, err := Open(key, nonce, moved, ct); err != ErrOpen {
			t.Errorf("%s: Open with a changed binding: %v", name, err)
		}
	}
	other, _ := NewDataKey()
	if _, err := Open(other, nonce, b, ct); err != ErrOpen {
		t.Fatal("Open with another key must fail")
	}
	ct[0] ^= 1
	if _, err := Open(key, nonce, b, ct); err != ErrOpen {
		t.Fatal("tampered ciphertext opened")
	}
	if _, err := Open(key[:16], nonce, b, ct); err != ErrOpen {
		t.Fatal("a 16-byte key must be refused")
	}
}

func TestWrapUnwrap(t *testing.T) {
	priv := testkeys.Key(0)
	key, _ := NewDataKey()
	w, err := WrapKey(&priv.PublicKey, key)
	if err != nil || len(w) != 512 {
		t.Fatalf("WrapKey: %d bytes, %v", len(w), err)
	}
	got, err := DecryptOAEP(priv, w)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("DecryptOAEP: %v", err)
	}
	if _, err := DecryptOAEP(testkeys.Key(1), w); err == nil {
		t.Fatal("unwrap with another key succeeded")
	}
	if _, err := WrapKey(&priv.PublicKey, key[:31]); err == nil {
		t.Fatal("a short data key was wrapped")
	}
}

func TestPublicKeyPEM(t *testing.T) {
	pub := &testkeys.Key(0).PublicKey
	s := MarshalPublicKeyPEM(pub)
	got, err := ParsePublicKeyPEM(s)
	if err != nil || got.N.Cmp(pub.N) != 0 {
		t.Fatalf("round trip: %v", err)
	}
	if len(Fingerprint(pub)) != 32 || Fingerprint(pub) == Fingerprint(&testkeys.Key(1).PublicKey) {
		t.Fatal("fingerprints must be 32 hex chars and differ between keys")
	}
	small, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]string{
		"empty":      "",
		"garbage":    "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
		"wrong type": strings.Replace(s, "PUBLIC KEY", "RSA PUBLIC KEY", 2),
		"trailing":   s + "junk",
		"rsa-2048":   MarshalPublicKeyPEM(&small.PublicKey),
	} {
		if _, err := ParsePublicKeyPEM(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Wycheproof vectors, run through our open path: every valid vector with
// protocol v1's sizes must open to its message, every invalid one must fail,
// and every vector of another size must be refused.
func TestWycheproofAESGCM(t *testing.T) {
	var f struct {
		TestGroups []struct {
			KeySize, IvSize, TagSize int
			Tests                    []struct {
				TcID                               int `json:"tcId"`
				Key, Iv, Aad, Msg, Ct, Tag, Result string
			}
		}
	}
	readJSON(t, "testdata/wycheproof/aes_gcm_test.json", &f)
	ours, other := 0, 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			key, iv, aad, msg := unhex(t, tc.Key), unhex(t, tc.Iv), unhex(t, tc.Aad), unhex(t, tc.Msg)
			ct := append(unhex(t, tc.Ct), unhex(t, tc.Tag)...)
			pt, err := openWithAAD(key, iv, aad, ct)
			protocolSizes := g.KeySize == 256 && g.IvSize == 96 && g.TagSize == 128
			switch {
			case !protocolSizes:
				other++
				if err == nil {
					t.Errorf("tc %d: key %d / iv %d bits opened; protocol v1 must refuse it", tc.TcID, g.KeySize, g.IvSize)
				}
			case tc.Result == "valid":
				ours++
				if err != nil || !bytes.Equal(pt, msg) {
					t.Errorf("tc %d: valid vector: %v", tc.TcID, err)
				}
			default:
				ours++
				if err == nil {
					t.Errorf("tc %d: invalid vector opened", tc.TcID)
				}
			}
		}
	}
	t.Logf("%d vectors at protocol sizes, %d of other sizes refused", ours, other)
	if ours < 50 {
		t.Fatalf("only %d vectors at AES-256/96-bit nonce: is the file right?", ours)
	}
}

// openWithAAD is Open with raw associated data, so that Wycheproof's AAD
// can be fed through the same length checks and AEAD.
func openWithAAD(key, nonce, aad, ct []byte) ([]byte, error) {
	if len(nonce) != NonceSize || len(ct) < TagSize {
		return nil, ErrOpen
	}
	aead, err := gcm(key)
	if err != nil {
		return nil, ErrOpen
	}
	return aead.Open(nil, nonce, ct, aad)
}

func TestWycheproofRSAOAEP4096SHA256(t *testing.T) {
	var f struct {
		TestGroups []struct {
			KeySize         int
			Sha, MgfSha     string
			PrivateKeyPkcs8 string
			Tests           []struct {
				TcID                   int `json:"tcId"`
				Msg, Ct, Label, Result string
			}
		}
	}
	readJSON(t, "testdata/wycheproof/rsa_oaep_4096_sha256_mgf1sha256_test.json", &f)
	n := 0
	for _, g := range f.TestGroups {
		if g.KeySize != 4096 || g.Sha != "SHA-256" || g.MgfSha != "SHA-256" {
			t.Fatalf("unexpected group %d/%s/%s", g.KeySize, g.Sha, g.MgfSha)
		}
		k, err := x509.ParsePKCS8PrivateKey(unhex(t, g.PrivateKeyPkcs8))
		if err != nil {
			t.Fatal(err)
		}
		priv := k.(*rsa.PrivateKey)
		for _, tc := range g.Tests {
			n++
			pt, err := DecryptOAEP(priv, unhex(t, tc.Ct))
			switch {
			case tc.Label != "":
				// Protocol v1 uses the empty label only: a labelled
				// ciphertext must not open on our path, valid or not.
				if err == nil {
					t.Errorf("tc %d: ciphertext with label %q opened", tc.TcID, tc.Label)
				}
			case tc.Result == "valid":
				if err != nil || !bytes.Equal(pt, unhex(t, tc.Msg)) {
					t.Errorf("tc %d: valid vector: %v", tc.TcID, err)
				}
			default:
				if err == nil {
					t.Errorf("tc %d: invalid vector opened", tc.TcID)
				}
			}
		}
	}
	if n < 30 {
		t.Fatalf("only %d vectors", n)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
