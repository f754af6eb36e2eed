package keys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/fednode/fednode/internal/atomicfile"
)

// KEKFile is the local key-encryption key of data keys at rest, in
// DATA_DIR (beside the store, not in the keyring directory, which a node on
// Vault Transit does not have), mode 0600.
const KEKFile = "atrest.kek"

// LocalKEK wraps the data keys that encrypt messages at rest (package
// atrest) with RFC 5649 AES key wrap under a 256-bit key-encryption key
// kept in a file beside the store, never in it: a copy of the store alone (fednode.db,
// a Redis dump) holds only wrapped data keys. The key file is created on
// first use; losing it loses every stored message, so `fednode admin backup`
// archives it (docs/OPERATIONS.md).
type LocalKEK struct{ kek []byte }

// OpenLocalKEK reads dir/atrest.kek (dir is DATA_DIR), creating it (32
// random bytes, 0600) when absent.
func OpenLocalKEK(dir string) (*LocalKEK, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	path := filepath.Join(dir, KEKFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b = make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("keys: write %s: %w", path, err)
		}
		return &LocalKEK{kek: b}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("keys: %s holds %d bytes, not a 256-bit key", path, len(b))
	}
	return &LocalKEK{kek: b}, nil
}

// WrapDataKey wraps a data key (RFC 5649).
func (k *LocalKEK) WrapDataKey(ctx context.Context, key []byte) ([]byte, error) {
	return wrapKWP(k.kek, key)
}

// UnwrapDataKey unwraps a data key WrapDataKey wrapped; a wrapped key
// changed in any bit, or wrapped under another key, fails.
func (k *LocalKEK) UnwrapDataKey(ctx context.Context, wrapped []byte) ([]byte, error) {
	return unwrapKWP(k.kek, wrapped)
}

// ID names the key-encryption key without revealing it: a store records
// the id of the key its data keys are wrapped under, so a node started
// with another key file (a replica that made its own instead of sharing
// the keyring directory) is refused before it writes anything.
func (k *LocalKEK) ID() string {
	h := sha256.Sum256(append([]byte("fednode at rest key-encryption key id\x00"), k.kek...))
	return "kek-" + hex.EncodeToString(h[:8])
}
