package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	fcrypto "github.com/fednode/fednode/crypto"
	"github.com/fednode/fednode/internal/testkeys"
)

// fixedKeys hands out test keys i, i+1, ... instead of generating.
func fixedKeys(start int) func() (*rsa.PrivateKey, error) {
	var n atomic.Int32
	n.Store(int32(start))
	return func() (*rsa.PrivateKey, error) { return testkeys.Key(int(n.Add(1) - 1)), nil }
}

func TestLocalCreatesTwoDistinctKeysWithMode0600(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	l, err := OpenLocal(dir, LocalOptions{Generate: fixedKeys(0)})
	if err != nil {
		t.Fatal(err)
	}
	pubs, _ := l.PublicKeys(context.Background())
	sig, ok1 := CurrentKey(pubs, UseSig)
	enc, ok2 := CurrentKey(pubs, UseEnc)
	if !ok1 || !ok2 || len(pubs) != 2 || sig.Key.N.Cmp(enc.Key.N) == 0 {
		t.Fatalf("want one signing and one different encryption key, got %+v", pubs)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		info, _ := e.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", e.Name(), info.Mode().Perm())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode %v", st.Mode().Perm())
	}
	// Reopening keeps the same keys (no generation).
	l2, err := OpenLocal(dir, LocalOptions{Generate: func() (*rsa.PrivateKey, error) { t.Fatal("generated again"); return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	pubs2, _ := l2.PublicKeys(context.Background())
	if len(pubs2) != 2 || pubs2[0].ID != pubs[0].ID || pubs2[1].ID != pubs[1].ID {
		t.Fatal("reopen changed the keys")
	}
	os.Chmod(filepath.Join(dir, sig.ID+".pem"), 0o644)
	if _, err := OpenLocal(dir, LocalOptions{}); err == nil {
		t.Fatal("a world-readable key file was used")
	}
}

func TestLocalSignDecrypt(t *testing.T) {
	ctx := context.Background()
	l, _ := OpenLocal(t.TempDir(), LocalOptions{Generate: fixedKeys(0)})
	pubs, _ := l.PublicKeys(ctx)
	sigKey, _ := CurrentKey(pubs, UseSig)
	encKey, _ := CurrentKey(pubs, UseEnc)
	id, sig, err := l.Sign(ctx, []byte("data"))
	sum := sha256.Sum256([]byte("data"))
	if err != nil || id != sigKey.ID || rsa.VerifyPKCS1v15(sigKey.Key, crypto.SHA256, sum[:], sig) != nil {
		t.Fatalf("Sign: %s %v", id, err)
	}
	dk, _ := fcrypto.NewDataKey()
	w, _ := fcrypto.WrapKey(encKey.Key, dk)
	if got, err := l.Decrypt(ctx, encKey.ID, w); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("Decrypt: %v", err)
	}
	if _, err := l.Decrypt(ctx, sigKey.ID, w); err != ErrUnknownKey {
		t.Fatalf("the signing key must never decrypt: %v", err)
	}
	if _, err := l.Decrypt(ctx, "enc-nope", w); err != ErrUnknownKey {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestLocalRotationOverlapAndRetirement(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	dir := t.TempDir()
	l, _ := OpenLocal(dir, LocalOptions{Generate: fixedKeys(0), Now: clock})
	before, _ := l.PublicKeys(ctx)
	oldEnc, _ := CurrentKey(before, UseEnc)
	dk, _ := fcrypto.NewDataKey()
	wrappedToOld, _ := fcrypto.WrapKey(oldEnc.Key, dk)

	newEnc, err := l.Rotate(ctx, UseEnc, time.Hour)
	if err != nil || newEnc.ID == oldEnc.ID {
		t.Fatalf("Rotate: %+v %v", newEnc, err)
	}
	during, _ := l.PublicKeys(ctx)
	if len(during) != 3 {
		t.Fatalf("old and new must both be published during the overlap: %d keys", len(during))
	}
	if cur, _ := CurrentKey(during, UseEnc); cur.ID != newEnc.ID {
		t.Fatal("the new key must be current")
	}
	if _, err := l.Decrypt(ctx, oldEnc.ID, wrappedToOld); err != nil {
		t.Fatalf("the old key must still decrypt during the overlap: %v", err)
	}
	// The rotation survives a restart.
	l, _ = OpenLocal(dir, LocalOptions{Generate: fixedKeys(5), Now: clock})
	if got, _ := l.PublicKeys(ctx); len(got) != 3 {
		t.Fatalf("after reopen: %d keys", len(got))
	}
	now = now.Add(time.Hour)
	after, _ := l.PublicKeys(ctx)
	if len(after) != 2 {
		t.Fatalf("after the overlap only current keys are published: %d", len(after))
	}
	if _, err := l.Decrypt(ctx, oldEnc.ID, wrappedToOld); err != ErrUnknownKey {
		t.Fatalf("a retired key must not decrypt: %v", err)
	}
	if _, err := OpenLocal(dir, LocalOptions{Generate: fixedKeys(5), Now: clock}); err != nil { // reopening prunes
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, oldEnc.ID+".pem")); !os.IsNotExist(err) {
		t.Fatal("a retired key's file must be deleted")
	}
}
