package federation

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/keys"
)

// userKeysFixture is a node's keyring, its peer view, and a user's keys
// signed into a document by it.
type userKeysFixture struct {
	kr   *keys.Local
	peer *Peer
	doc  fednode.UserKeyDocument
}

const ukDomain = "b.example"

func newUserKeysFixture(t testing.TB) userKeysFixture {
	t.Helper()
	i := 0
	kr, err := keys.OpenLocal(t.TempDir(), keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) { i++; return testkeys.Key(i - 1), nil }})
	if err != nil {
		t.Fatal(err)
	}
	pubs, _ := kr.PublicKeys(context.Background())
	raw, _ := json.Marshal(BuildNodeDocument(ukDomain, "https", pubs))
	peer, err := ParseNodeDocument(raw, ukDomain, "https", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := x509.MarshalPKIXPublicKey(&testkeys.Key(5).PublicKey)
	// A fixed signing key: fuzz workers each make the fixture again.
	ec, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	doc, err := SignUserKeys(context.Background(), kr, ukDomain, "bob@"+ukDomain, fednode.UserKeys{Enc: enc, Sig: sig, CreatedAt: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return userKeysFixture{kr, peer, doc}
}

func TestVerifyUserKeys(t *testing.T) {
	f := newUserKeysFixture(t)
	if err := VerifyUserKeys(f.doc, "bob@"+ukDomain, f.peer); err != nil {
		t.Fatalf("the node's own document: %v", err)
	}
	if !strings.HasPrefix(f.doc.NodeKeyID, ukDomain+"#sig-") || f.doc.CreatedAt != "2026-11-26T12:00:00.000Z" {
		t.Fatalf("document: %+v", f.doc)
	}
	other, _ := x509.MarshalPKIXPublicKey(&testkeys.Key(6).PublicKey)
	for name, mod := range map[string]func(d *fednode.UserKeyDocument){
		"another enc key, ids made to match": func(d *fednode.UserKeyDocument) {
			d.EncKey, d.EncKeyID = other, fednode.KeyID(other)
			d.Fingerprint = fednode.Fingerprint(d.EncKeyID, d.SigKeyID)
		},
		"another created_at":       func(d *fednode.UserKeyDocument) { d.CreatedAt = "2026-11-27T12:00:00.000Z" },
		"a signature of another":   func(d *fednode.UserKeyDocument) { d.NodeSignature[7] ^= 1 },
		"a key id of another node": func(d *fednode.UserKeyDocument) { d.NodeKeyID = "c.example#" + strings.SplitN(d.NodeKeyID, "#", 2)[1] },
		"an unknown key":           func(d *fednode.UserKeyDocument) { d.NodeKeyID = ukDomain + "#sig-" + strings.Repeat("a", 32) },
		"an encryption key":        func(d *fednode.UserKeyDocument) { d.NodeKeyID = f.peer.Enc.EncKeyID },
		"a wrong fingerprint":      func(d *fednode.UserKeyDocument) { d.Fingerprint = strings.Repeat("0", 64) },
		"another address":          func(d *fednode.UserKeyDocument) { d.Address = "eve@" + ukDomain },
	} {
		t.Run(name, func(t *testing.T) {
			d := f.doc
			d.NodeSignature = slices.Clone(d.NodeSignature)
			mod(&d)
			err := VerifyUserKeys(d, "bob@"+ukDomain, f.peer)
			if fednode.ErrorCode(err) != fednode.EPeerKeysInvalid {
				t.Fatalf("%v; want peer_keys_invalid", err)
			}
		})
	}
}

// TestSignGet: a GET signed by SignGet carries exactly the headers the
// protocol names, and verifies with the signing node's key.
func TestSignGet(t *testing.T) {
	f := newUserKeysFixture(t)
	req, _ := http.NewRequest(http.MethodGet, "https://a.example"+UserKeysPath("bob"), nil)
	if err := SignGet(context.Background(), f.kr, ukDomain, req, time.Now()); err != nil {
		t.Fatal(err)
	}
	p, err := ParseSignature(req.Header.Get("Signature"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Headers, SignedGetHeaders) || len(MissingHeaders(p, SignedGetHeaders)) != 0 || req.Header.Get("Digest") != "" {
		t.Fatalf("signed %v", p.Headers)
	}
	pub, ok := f.peer.SigKeys[p.KeyID]
	if !ok {
		t.Fatalf("keyId %q is not a signing key of the node", p.KeyID)
	}
	if err := VerifySignature(req, p, pub); err != nil {
		t.Fatalf("does not verify: %v", err)
	}
	req.URL.Path = UserKeysPath("eve")
	if err := VerifySignature(req, p, pub); err == nil {
		t.Fatal("the signature still verifies for another user's path")
	}
}

// FuzzUserKeyDocument: what a peer answers for a user's keys. A document
// that decodes strictly reads alike with encoding/json, and re-encodes to
// bytes that decode to the same document; one that also verifies is
// exactly what the home node signed for that address.
func FuzzUserKeyDocument(f *testing.F) {
	fx := newUserKeysFixture(f)
	good, _ := json.Marshal(fx.doc)
	f.Add(good)
	for _, s := range []string{
		`{}`,
		`{"address":"bob@b.example"}`,
		strings.Replace(string(good), `"address"`, `"Address"`, 1),
		strings.Replace(string(good), `{`, `{"address":"eve@b.example",`, 1),
		strings.Replace(string(good), `}`, `,"extra":1}`, 1),
		strings.Replace(string(good), `"enc_key":"`, `"enc_key":"!`, 1),
		`{"address":"\ud800","enc_key":"","enc_key_id":"","sig_key":"","sig_key_id":"","fingerprint":"","created_at":"","node_key_id":"","node_signature":""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := DecodeUserKeyDocument(raw)
		if err != nil {
			return
		}
		var lenient fednode.UserKeyDocument
		if err := json.Unmarshal(raw, &lenient); err != nil || !reflect.DeepEqual(lenient, d) {
			t.Fatalf("%q: strictly %+v, by encoding/json %+v (%v)", raw, d, lenient, err)
		}
		re, _ := json.Marshal(d)
		again, err := DecodeUserKeyDocument(re)
		if err != nil || !reflect.DeepEqual(again, d) {
			t.Fatalf("re-encoded %s: %+v, %v", re, again, err)
		}
		err = VerifyUserKeys(d, "bob@"+ukDomain, fx.peer)
		if err != nil {
			if fednode.ErrorCode(err) != fednode.EPeerKeysInvalid {
				t.Fatalf("a refusal of another code: %v", err)
			}
			return
		}
		if d.EncKeyID != fx.doc.EncKeyID || d.SigKeyID != fx.doc.SigKeyID || d.CreatedAt != fx.doc.CreatedAt || d.Address != fx.doc.Address {
			t.Fatalf("a document the node never signed verifies: %+v", d)
		}
	})
}
