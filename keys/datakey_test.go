package keys

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestLocalKEKWrapsAndPersists(t *testing.T) {
	ctx, dir := context.Background(), t.TempDir()
	k, err := OpenLocalKEK(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KEKFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v, %v", fi, err)
	}
	key := bytes.Repeat([]byte{7}, 32)
	w, err := k.WrapDataKey(ctx, key)
	if err != nil || bytes.Contains(w, key) {
		t.Fatalf("wrapped %x, %v", w, err)
	}
	again, err := OpenLocalKEK(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.UnwrapDataKey(ctx, w); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("unwrapped %x, %v", got, err)
	}
	w[3] ^= 1
	if _, err := again.UnwrapDataKey(ctx, w); err == nil {
		t.Fatal("a changed wrapped key unwrapped")
	}
	other, _ := OpenLocalKEK(t.TempDir())
	w[3] ^= 1
	if _, err := other.UnwrapDataKey(ctx, w); err == nil {
		t.Fatal("another node's key unwrapped it")
	}
}
