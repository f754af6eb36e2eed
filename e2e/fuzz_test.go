package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/strictjson"
)

// FuzzOpen: whatever an e2e member holds, Open never panics, and it never
// accepts one whose signed parts differ from what alice sealed. (The
// signature itself is not unique: ECDSA's (r, n-s) verifies too, so it
// is left out of the comparison; see doc.go.)
func FuzzOpen(f *testing.F) {
	a, b := aliceKeys(f), bobKeys(f)
	// The stored vector, not a fresh Seal: every fuzz worker process must
	// see the same message.
	orig, err := os.ReadFile(vecMessageFile)
	if err != nil {
		f.Fatal(err)
	}
	e := new(fednode.E2E)
	if err := strictjson.Decode(orig, e); err != nil {
		f.Fatal(err)
	}
	unsigned := *e
	unsigned.Signature = nil
	want, _ := json.Marshal(&unsigned)
	f.Add(orig)
	f.Add(bytes.Replace(orig, []byte(`"v":1`), []byte(`"v":2`), 1))
	f.Add([]byte(`{"v":1,"sig_key":"","keys":[],"nonce":"","ciphertext":"","signature":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var x fednode.E2E
		if strictjson.Decode(data, &x) != nil {
			return
		}
		content, _, err := Open(vecID, alice, bob, &x, b, a.Public())
		if err != nil {
			if errors.Is(err, ErrNotForMe) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrWrongSigner) ||
				errors.Is(err, ErrBadSignature) || errors.Is(err, ErrCannotOpen) || errors.Is(err, ErrBadPlaintext) {
				return
			}
			t.Fatalf("an unclassified error: %v", err)
		}
		x.Signature = nil
		got, _ := json.Marshal(&x)
		if !bytes.Equal(got, want) || content != vecContent {
			t.Fatalf("accepted a changed message: %s", got)
		}
	})
}

// FuzzUnwrapBackup: whatever a node hands back as a backup, unwrapping
// never panics and never yields keys from anything but the backup that
// was made, under its passphrase. Iterations are cheap here (the floor is
// checked by UnwrapBackup, which must refuse these unopened).
func FuzzUnwrapBackup(f *testing.F) {
	a := aliceKeys(f)
	pub := a.Public()
	orig, err := wrapBackupWith(make([]byte, 16), make([]byte, 12), 2, "pw", alice, a)
	if err != nil {
		f.Fatal(err)
	}
	raw, _ := json.Marshal(orig)
	f.Add(raw, "pw")
	f.Add(raw, "pW")
	f.Add([]byte(`{"v":1,"kdf":"PBKDF2-HMAC-SHA256","iterations":1,"salt":"","nonce":"","ciphertext":""}`), "")
	f.Fuzz(func(t *testing.T, data []byte, pass string) {
		var b fednode.KeyBackup
		if strictjson.Decode(data, &b) != nil || b.Iterations > 16 {
			return
		}
		if _, err := UnwrapBackup(pass, alice, pub.EncKeyID(), pub.SigKeyID(), &b); !errors.Is(err, ErrBadBackup) {
			t.Fatalf("UnwrapBackup opened %d iterations: %v", b.Iterations, err)
		}
		k, err := unwrapBackup(pass, alice, pub.EncKeyID(), pub.SigKeyID(), &b)
		if err != nil {
			if k != nil || !(errors.Is(err, ErrWrongPassphrase) || errors.Is(err, ErrBadBackup)) {
				t.Fatalf("%v with keys %v", err, k != nil)
			}
			return
		}
		got, _ := json.Marshal(&b)
		if pass != "pw" || !bytes.Equal(got, raw) || !k.Enc.Equal(a.Enc) {
			t.Fatalf("accepted a changed backup %s under %q", got, pass)
		}
	})
}
