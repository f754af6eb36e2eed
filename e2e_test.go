package fednode

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestIDTimeIsNewIDTime(t *testing.T) {
	now := time.Date(2026, 11, 27, 14, 30, 1, 234e6, time.UTC)
	got, ok := IDTime(NewID(now))
	if !ok || !got.Equal(now) {
		t.Fatalf("IDTime(NewID(%v)) = %v, %v", now, got, ok)
	}
	if err := CheckE2EID(NewID(now.Add(-E2EIDWindow-time.Second)), now); ErrorCode(err) != EInvalidE2E {
		t.Fatalf("old id: %v", err)
	}
	if err := CheckE2EID(NewID(now.Add(E2EIDWindow+time.Second)), now); ErrorCode(err) != EInvalidE2E {
		t.Fatalf("future id: %v", err)
	}
	if err := CheckE2EID(NewID(now.Add(-time.Minute)), now); err != nil {
		t.Fatalf("fresh id: %v", err)
	}
	if err := CheckE2EID("not-an-id", now); ErrorCode(err) != EInvalidE2E {
		t.Fatalf("bad id: %v", err)
	}
}

func validE2E() *E2E {
	id := KeyID([]byte("k"))
	return &E2E{V: 1, SigKey: KeyID([]byte("s")), Keys: []E2EKey{{KeyID: id, Wrapped: make([]byte, 512)}},
		Nonce: make([]byte, 12), Ciphertext: make([]byte, 17), Signature: make([]byte, 64)}
}

func TestE2EValidate(t *testing.T) {
	if err := validE2E().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*E2E){
		"version":       func(e *E2E) { e.V = 2 },
		"sig key":       func(e *E2E) { e.SigKey = "short" },
		"no keys":       func(e *E2E) { e.Keys = nil },
		"too many keys": func(e *E2E) { e.Keys = make([]E2EKey, E2EMaxKeys+1) },
		"dup key":       func(e *E2E) { e.Keys = append(e.Keys, e.Keys[0]) },
		"wrapped len":   func(e *E2E) { e.Keys[0].Wrapped = e.Keys[0].Wrapped[:511] },
		"key id":        func(e *E2E) { e.Keys[0].KeyID = strings.Repeat("+", 43) },
		"nonce":         func(e *E2E) { e.Nonce = make([]byte, 16) },
		"short ct":      func(e *E2E) { e.Ciphertext = make([]byte, 16) },
		"long ct":       func(e *E2E) { e.Ciphertext = make([]byte, E2EMaxCiphertext+1) },
		"signature":     func(e *E2E) { e.Signature = make([]byte, 72) },
	} {
		e := validE2E()
		mut(e)
		if err := e.Validate(); ErrorCode(err) != EInvalidE2E {
			t.Errorf("%s: got %v, want %s", name, err, EInvalidE2E)
		}
	}
}

func TestKeyBackupValidate(t *testing.T) {
	ok := KeyBackup{V: 1, KDF: BackupKDF, Iterations: BackupMinIter, Salt: make([]byte, 16), Nonce: make([]byte, 12), Ciphertext: make([]byte, 100)}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*KeyBackup){
		"kdf":        func(b *KeyBackup) { b.KDF = "scrypt" },
		"few iter":   func(b *KeyBackup) { b.Iterations = BackupMinIter - 1 },
		"many iter":  func(b *KeyBackup) { b.Iterations = BackupMaxIter + 1 },
		"salt":       func(b *KeyBackup) { b.Salt = make([]byte, 8) },
		"nonce":      func(b *KeyBackup) { b.Nonce = nil },
		"ciphertext": func(b *KeyBackup) { b.Ciphertext = make([]byte, BackupMaxCiphertxt+1) },
	} {
		b := ok
		mut(&b)
		if err := b.Validate(); ErrorCode(err) != EInvalidUserKeys {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestCheckPublicKeysAndDocument(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 2048)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	enc, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	sig, _ := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	enc2k, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	sig384, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	if err := CheckPublicKeys(enc, sig); err != nil {
		t.Fatal(err)
	}
	for name, kk := range map[string][2][]byte{"rsa-2048": {enc2k, sig}, "p-384": {enc, sig384}, "swapped": {sig, enc}, "garbage": {[]byte("x"), sig}} {
		if err := CheckPublicKeys(kk[0], kk[1]); ErrorCode(err) != EInvalidUserKeys {
			t.Errorf("%s: %v", name, err)
		}
	}
	d := UserKeyDocument{Address: "bob@b.example", EncKey: enc, EncKeyID: KeyID(enc), SigKey: sig, SigKeyID: KeyID(sig),
		Fingerprint: Fingerprint(KeyID(enc), KeyID(sig)), CreatedAt: "2026-11-27T14:00:00.000Z"}
	if err := d.Check("bob@b.example"); err != nil {
		t.Fatal(err)
	}
	if err := d.Check("eve@b.example"); ErrorCode(err) != EPeerKeysInvalid {
		t.Fatalf("other address: %v", err)
	}
	d.EncKeyID = KeyID(sig)
	if err := d.Check("bob@b.example"); ErrorCode(err) != EPeerKeysInvalid {
		t.Fatalf("wrong id: %v", err)
	}
}

func TestFingerprintForm(t *testing.T) {
	f := Fingerprint(KeyID([]byte("a")), KeyID([]byte("b")))
	if len(f) != 79 || strings.Count(f, " ") != 15 {
		t.Fatalf("fingerprint %q", f)
	}
	if f == Fingerprint(KeyID([]byte("b")), KeyID([]byte("a"))) {
		t.Fatal("fingerprint does not depend on which key is which")
	}
}

func TestE2ESignedBytesCoverEverything(t *testing.T) {
	from, to := Address{User: "alice", Domain: "a.example"}, Address{User: "bob", Domain: "b.example"}
	base := string(E2ESignedBytes("ID", from, to, validE2E()))
	want := "fednode-e2e/1\nID\nalice@a.example\nbob@b.example\n" + KeyID([]byte("s")) + "\n" + KeyID([]byte("k")) + "\n"
	if !strings.HasPrefix(base, want) || strings.Count(base, "\n") != 8 {
		t.Fatalf("signed bytes %q", base)
	}
	for name, mut := range map[string]func(*E2E){
		"nonce":   func(e *E2E) { e.Nonce[0] = 1 },
		"ct":      func(e *E2E) { e.Ciphertext[16] = 1 },
		"wrapped": func(e *E2E) { e.Keys[0].Wrapped[511] = 1 },
		"sig key": func(e *E2E) { e.SigKey = KeyID([]byte("t")) },
	} {
		e := validE2E()
		mut(e)
		if string(E2ESignedBytes("ID", from, to, e)) == base {
			t.Errorf("%s is not covered", name)
		}
	}
}
