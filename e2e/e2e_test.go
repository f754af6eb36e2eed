package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/testkeys"
)

var (
	alice = fednode.Address{User: "alice", Domain: "a.example"}
	bob   = fednode.Address{User: "bob", Domain: "b.example"}
	carol = fednode.Address{User: "carol", Domain: "a.example"}
)

// Fixed P-256 signing keys: alice's is the RFC 6979 A.2.5 key.
const (
	aliceSigHex = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721"
	bobSigHex   = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
	carolSigHex = "2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40"
)

// testUser returns fixed keys: RSA test key i and the P-256 key sigHex.
func testUser(t testing.TB, i int, sigHex string) *Keys {
	t.Helper()
	sig, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), mustHex(sigHex))
	if err != nil {
		t.Fatal(err)
	}
	return &Keys{Enc: testkeys.Key(i), Sig: sig}
}

func aliceKeys(t testing.TB) *Keys { return testUser(t, 4, aliceSigHex) }
func bobKeys(t testing.TB) *Keys   { return testUser(t, 5, bobSigHex) }
func carolKeys(t testing.TB) *Keys { return testUser(t, 6, carolSigHex) }

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

const testID = "01KBQ8E2E0ABCDEFGHJKMNPQRS"

func sealTest(t *testing.T) (*fednode.E2E, *Keys, *Keys) {
	t.Helper()
	a, b := aliceKeys(t), bobKeys(t)
	e, err := Seal(testID, alice, bob, "hello\x00 bob", []string{"x", "Y-1"}, []*PublicKeys{b.Public()}, a)
	if err != nil {
		t.Fatal(err)
	}
	return e, a, b
}

func TestSealOpenRoundTrip(t *testing.T) {
	e, a, b := sealTest(t)
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(e.Keys) != 2 || e.Keys[0].KeyID != b.Public().EncKeyID() || e.Keys[1].KeyID != a.Public().EncKeyID() {
		t.Fatalf("keys: want the recipient's then the sender's, got %+v", e.Keys)
	}
	for name, own := range map[string]*Keys{"recipient": b, "sender": a} {
		content, tags, err := Open(testID, alice, bob, e, own, a.Public())
		if err != nil || content != "hello bob" || !slices.Equal(tags, []string{"x", "Y-1"}) {
			t.Fatalf("%s opens %q %q, %v", name, content, tags, err)
		}
	}
	// To oneself: one wrapped key.
	self, err := Seal(testID, alice, alice, "note", nil, []*PublicKeys{a.Public()}, a)
	if err != nil || len(self.Keys) != 1 {
		t.Fatalf("to oneself: %v, %d keys", err, len(self.Keys))
	}
	if c, tags, err := Open(testID, alice, alice, self, a, a.Public()); err != nil || c != "note" || tags == nil || len(tags) != 0 {
		t.Fatalf("to oneself opens %q %v, %v", c, tags, err)
	}
}

func TestSealRefusesBadContent(t *testing.T) {
	a, b := aliceKeys(t), bobKeys(t)
	for name, tc := range map[string]struct {
		content string
		tags    []string
		code    string
	}{
		"empty content":  {" ", nil, fednode.EInvalidContent},
		"invalid UTF-8":  {"\xff", nil, fednode.EInvalidContent},
		"bad tag":        {"x", []string{"a b"}, fednode.EInvalidTags},
		"duplicate tags": {"x", []string{"a", "A"}, fednode.EInvalidTags},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Seal(testID, alice, bob, tc.content, tc.tags, []*PublicKeys{b.Public()}, a)
			if fednode.ErrorCode(err) != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
	big := bytes.Repeat([]byte("é"), fednode.MaxContentChars)
	if _, err := Seal(testID, alice, bob, string(big), nil, []*PublicKeys{b.Public()}, a); err != nil {
		t.Fatalf("the longest content: %v", err)
	}
}

func clone(e *fednode.E2E) *fednode.E2E {
	c := *e
	c.Nonce, c.Ciphertext, c.Signature = slices.Clone(e.Nonce), slices.Clone(e.Ciphertext), slices.Clone(e.Signature)
	c.Keys = slices.Clone(e.Keys)
	for i := range c.Keys {
		c.Keys[i].Wrapped = slices.Clone(c.Keys[i].Wrapped)
	}
	return &c
}

// resign signs e anew with k: a tampered payload the sender itself
// signed, so that the checks after the signature are reached too.
func resign(t *testing.T, e *fednode.E2E, k *ecdsa.PrivateKey) {
	t.Helper()
	if err := Sign(testID, alice, bob, e, k); err != nil {
		t.Fatal(err)
	}
}

// TestOpenRefusesEveryByteFlip flips each byte of the nonce, ciphertext,
// wrapped keys and signature: the signature catches every one; re-signed
// by the sender, GCM catches those of the nonce and ciphertext, and OAEP
// or GCM those of the wrapped key.
func TestOpenRefusesEveryByteFlip(t *testing.T) {
	e, a, b := sealTest(t)
	type part struct {
		name   string
		bytes  func(*fednode.E2E) []byte
		resign bool
	}
	parts := []part{
		{"nonce", func(e *fednode.E2E) []byte { return e.Nonce }, true},
		{"ciphertext", func(e *fednode.E2E) []byte { return e.Ciphertext }, true},
		{"wrapped[0]", func(e *fednode.E2E) []byte { return e.Keys[0].Wrapped }, false},
		{"wrapped[1]", func(e *fednode.E2E) []byte { return e.Keys[1].Wrapped }, false},
		{"signature", func(e *fednode.E2E) []byte { return e.Signature }, false},
	}
	for _, p := range parts {
		for i := range p.bytes(e) {
			c := clone(e)
			p.bytes(c)[i] ^= 0x01
			if _, _, err := Open(testID, alice, bob, c, b, a.Public()); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("%s byte %d flipped: %v, want ErrBadSignature", p.name, i, err)
			}
			if p.resign {
				resign(t, c, a.Sig)
				if _, _, err := Open(testID, alice, bob, c, b, a.Public()); !errors.Is(err, ErrCannotOpen) {
					t.Fatalf("%s byte %d flipped and re-signed: %v, want ErrCannotOpen", p.name, i, err)
				}
			}
		}
	}
	// A wrapped key flipped and re-signed: OAEP refuses (a sample of
	// positions; each costs an RSA-4096 decryption).
	for _, i := range []int{0, 1, 100, 255, 256, 511} {
		c := clone(e)
		c.Keys[0].Wrapped[i] ^= 0x80
		resign(t, c, a.Sig)
		if _, _, err := Open(testID, alice, bob, c, b, a.Public()); !errors.Is(err, ErrCannotOpen) {
			t.Fatalf("wrapped byte %d flipped and re-signed: %v", i, err)
		}
	}
}

func TestOpenRefusesChangedMetadataAndKeys(t *testing.T) {
	e, a, b := sealTest(t)
	c := carolKeys(t)
	for name, tc := range map[string]struct {
		id       string
		from, to fednode.Address
		e        *fednode.E2E
		own      *Keys
		sender   *PublicKeys
		want     error
	}{
		"another id":        {"01KBQ8E2E0ABCDEFGHJKMNPQRT", alice, bob, e, b, a.Public(), ErrBadSignature},
		"another sender":    {testID, carol, bob, e, b, a.Public(), ErrBadSignature},
		"another recipient": {testID, alice, carol, e, b, a.Public(), ErrBadSignature},
		"another signer":    {testID, alice, bob, e, b, c.Public(), ErrWrongSigner},
		"not for me":        {testID, alice, bob, e, c, a.Public(), ErrNotForMe},
		"changed sig_key":   {testID, alice, bob, with(e, func(x *fednode.E2E) { x.SigKey = c.Public().SigKeyID() }), b, c.Public(), ErrBadSignature},
		"changed key_id":    {testID, alice, bob, with(e, func(x *fednode.E2E) { x.Keys[0].KeyID = c.Public().EncKeyID() }), b, a.Public(), ErrBadSignature},
		"swapped keys":      {testID, alice, bob, with(e, func(x *fednode.E2E) { x.Keys[0], x.Keys[1] = x.Keys[1], x.Keys[0] }), b, a.Public(), ErrBadSignature},
		"dropped key":       {testID, alice, bob, with(e, func(x *fednode.E2E) { x.Keys = x.Keys[:1] }), b, a.Public(), ErrBadSignature},
		"bad version":       {testID, alice, bob, with(e, func(x *fednode.E2E) { x.V = 2 }), b, a.Public(), ErrInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := Open(tc.id, tc.from, tc.to, tc.e, tc.own, tc.sender); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Tags absent or null mean none, as in the node-level plaintext.
	for _, pt := range []string{`{"content":"x"}`, `{"content":"x","tags":null}`} {
		if c, tags, err := Open(testID, alice, bob, sealRaw(t, []byte(pt), a, b), b, a.Public()); err != nil || c != "x" || tags == nil || len(tags) != 0 {
			t.Fatalf("%s: %q %v %v", pt, c, tags, err)
		}
	}
	// Re-signed by the sender under other metadata or key ids: the AAD,
	// rebuilt from the message's own metadata, no longer matches.
	x := with(e, func(x *fednode.E2E) { x.Keys[1].KeyID = c.Public().EncKeyID() })
	resign(t, x, a.Sig)
	if _, _, err := Open(testID, alice, bob, x, b, a.Public()); !errors.Is(err, ErrCannotOpen) {
		t.Fatalf("a re-signed changed key id: %v", err)
	}
}

func with(e *fednode.E2E, f func(*fednode.E2E)) *fednode.E2E {
	c := clone(e)
	f(c)
	return c
}

func TestOpenRefusesBadPlaintext(t *testing.T) {
	a, b := aliceKeys(t), bobKeys(t)
	for name, pt := range map[string]string{
		"not JSON":        `hello`,
		"unknown member":  `{"content":"x","tags":[],"extra":1}`,
		"missing content": `{"tags":[]}`,
		"repeated":        `{"content":"x","content":"y","tags":[]}`,
		"empty content":   `{"content":"  ","tags":[]}`,
		"bad tag":         `{"content":"x","tags":["a b"]}`,
		"bad case":        `{"Content":"x","tags":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			e := sealRaw(t, []byte(pt), a, b)
			if _, _, err := Open(testID, alice, bob, e, b, a.Public()); !errors.Is(err, ErrBadPlaintext) {
				t.Fatalf("got %v, want ErrBadPlaintext", err)
			}
		})
	}
}

// sealRaw seals pt as it is, as a sender that skips the content rules.
func sealRaw(t *testing.T, pt []byte, a, b *Keys) *fednode.E2E {
	t.Helper()
	e, err := sealWith(make([]byte, 32), make([]byte, 12), testID, alice, bob, "placeholder", nil, []*PublicKeys{b.Public()}, a)
	if err != nil {
		t.Fatal(err)
	}
	aead, _ := newGCM(make([]byte, 32))
	e.Ciphertext = aead.Seal(nil, e.Nonce, pt, fednode.E2EAAD(testID, alice, bob, e.SigKey, []string{e.Keys[0].KeyID, e.Keys[1].KeyID}))
	resign(t, e, a.Sig)
	return e
}

func TestPrivateKeysRoundTrip(t *testing.T) {
	a := aliceKeys(t)
	raw, err := MarshalPrivate(a)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePrivate(raw)
	if err != nil || !k.Enc.Equal(a.Enc) || !k.Sig.Equal(a.Sig) {
		t.Fatalf("round trip: %v", err)
	}
	for name, bad := range map[string]string{
		"not JSON":     `x`,
		"swapped":      string(swapJSON(raw)),
		"missing sig":  `{"enc":""}`,
		"extra member": `{"enc":"","sig":"","x":1}`,
	} {
		if _, err := ParsePrivate([]byte(bad)); !errors.Is(err, ErrBadKeys) {
			t.Errorf("%s: %v, want ErrBadKeys", name, err)
		}
	}
}

func swapJSON(raw []byte) []byte {
	raw = bytes.Replace(raw, []byte(`"enc"`), []byte(`"tmp"`), 1)
	raw = bytes.Replace(raw, []byte(`"sig"`), []byte(`"enc"`), 1)
	return bytes.Replace(raw, []byte(`"tmp"`), []byte(`"sig"`), 1)
}

func TestParsePublicKeysAndDocument(t *testing.T) {
	a, b := aliceKeys(t), bobKeys(t)
	pub := a.Public()
	if _, err := ParsePublicKeys(pub.SigSPKI, pub.EncSPKI); !errors.Is(err, ErrBadKeys) {
		t.Fatalf("swapped keys: %v", err)
	}
	p, err := ParsePublicKeys(pub.EncSPKI, pub.SigSPKI)
	if err != nil || p.Fingerprint() != pub.Fingerprint() {
		t.Fatalf("parse: %v", err)
	}
	doc := &fednode.UserKeyDocument{Address: alice.String(), EncKey: pub.EncSPKI, EncKeyID: pub.EncKeyID(),
		SigKey: pub.SigSPKI, SigKeyID: pub.SigKeyID(), Fingerprint: pub.Fingerprint(), CreatedAt: "2026-11-26T12:00:00.000Z"}
	if _, err := VerifyDocument(doc, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyDocument(doc, bob); !errors.Is(err, ErrBadKeys) {
		t.Fatalf("another address: %v", err)
	}
	doc.EncKey = b.Public().EncSPKI
	if _, err := VerifyDocument(doc, alice); !errors.Is(err, ErrBadKeys) {
		t.Fatalf("a swapped key under the old id: %v", err)
	}
}

// TestPBKDF2RFC7914 pins the KDF to RFC 7914 §11's PBKDF2-HMAC-SHA256
// vectors, which any client's PBKDF2 must reproduce.
func TestPBKDF2RFC7914(t *testing.T) {
	for _, tc := range []struct {
		pass, salt string
		iter       int
		want       string
	}{
		{"passwd", "salt", 1, "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"},
		{"Password", "NaCl", 80000, "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"},
	} {
		got, err := pbkdf2.Key(sha256.New, tc.pass, []byte(tc.salt), tc.iter, 64)
		if err != nil || hex.EncodeToString(got) != tc.want {
			t.Fatalf("PBKDF2(%q, %q, %d) = %x, %v", tc.pass, tc.salt, tc.iter, got, err)
		}
	}
}

func TestBackupRoundTrip(t *testing.T) {
	a := aliceKeys(t)
	pub := a.Public()
	b, err := WrapBackup("correct horse", alice, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(); err != nil || b.Iterations != fednode.BackupMinIter || len(b.Salt) != 16 {
		t.Fatalf("backup %+v: %v", b, err)
	}
	k, err := UnwrapBackup("correct horse", alice, pub.EncKeyID(), pub.SigKeyID(), b)
	if err != nil || !k.Enc.Equal(a.Enc) || !k.Sig.Equal(a.Sig) {
		t.Fatalf("unwrap: %v", err)
	}
	if k, err := UnwrapBackup("correct horsf", alice, pub.EncKeyID(), pub.SigKeyID(), b); !errors.Is(err, ErrWrongPassphrase) || k != nil {
		t.Fatalf("wrong passphrase: %v %v", k, err)
	}
	// The AAD binds the address and key ids (cheap iterations from here).
	cheap, err := wrapBackupWith(make([]byte, 16), make([]byte, 12), 2, "correct horse", alice, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unwrapBackup("correct horse", carol, pub.EncKeyID(), pub.SigKeyID(), cheap); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("another address: %v", err)
	}
	if _, err := unwrapBackup("correct horse", alice, bobKeys(t).Public().EncKeyID(), pub.SigKeyID(), cheap); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("other key ids: %v", err)
	}
	if _, err := unwrapBackup("correct horse", alice, pub.EncKeyID(), pub.SigKeyID(), cheap); err != nil {
		t.Fatalf("the cheap backup itself: %v", err)
	}
	weak := *b
	weak.Iterations = fednode.BackupMinIter - 1
	if _, err := UnwrapBackup("correct horse", alice, pub.EncKeyID(), pub.SigKeyID(), &weak); !errors.Is(err, ErrBadBackup) {
		t.Fatalf("iterations below the floor: %v", err)
	}
	if _, err := WrapBackup("", alice, a); !errors.Is(err, ErrBadBackup) {
		t.Fatalf("an empty passphrase: %v", err)
	}
}

// TestBackupRefusesOtherKeys: a backup sealed (by its owner or anyone with
// the passphrase) under the published ids but holding other keys is
// refused rather than installed.
func TestBackupRefusesOtherKeys(t *testing.T) {
	a, c := aliceKeys(t), carolKeys(t)
	pub := a.Public()
	pt, _ := MarshalPrivate(c)
	kek, _ := pbkdf2.Key(sha256.New, "pw", make([]byte, 16), 1, 32)
	aead, _ := newGCM(kek)
	b := &fednode.KeyBackup{V: 1, KDF: fednode.BackupKDF, Iterations: 1, Salt: make([]byte, 16), Nonce: make([]byte, 12),
		Ciphertext: aead.Seal(nil, make([]byte, 12), pt, BackupAAD(alice, pub.EncKeyID(), pub.SigKeyID()))}
	if _, err := unwrapBackup("pw", alice, pub.EncKeyID(), pub.SigKeyID(), b); !errors.Is(err, ErrBadBackup) {
		t.Fatalf("other keys: %v", err)
	}
}

// TestBackupPassphraseNFC: a passphrase typed decomposed ("e" + U+0301,
// as some input methods make it) opens a backup sealed with the composed
// form ("é"), and the other way round (PROTOCOL §5.7).
func TestBackupPassphraseNFC(t *testing.T) {
	a := aliceKeys(t)
	pub := a.Public()
	const composed, decomposed = "caf\u00e9 au lait, s'il vous pla\u00eet", "cafe\u0301 au lait, s'il vous plai\u0302t"
	for _, c := range []struct{ seal, open string }{{composed, decomposed}, {decomposed, composed}} {
		b, err := wrapBackupWith(make([]byte, 16), make([]byte, 12), 2, c.seal, alice, a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := unwrapBackup(c.open, alice, pub.EncKeyID(), pub.SigKeyID(), b); err != nil {
			t.Fatalf("sealed with %+q, opened with %+q: %v", c.seal, c.open, err)
		}
	}
}
