package daemon

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fednode/fednode/node"
)

// devSecretFile is where a development node keeps the JWT secret it
// generated for itself.
const devSecretFile = "jwt_secret"

// loadOrCreateDevSecret returns the development JWT secret kept in dir,
// creating 48 random bytes (base64, 64 characters) with mode 0600 the first
// time. A secret file that others can read is refused, not silently used.
func loadOrCreateDevSecret(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("secret: %w", err)
	}
	path := filepath.Join(dir, devSecretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		st, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("secret: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("secret: %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
		}
		s := strings.TrimSpace(string(b))
		if len(s) < node.MinSecretLen {
			return "", fmt.Errorf("secret: %s holds fewer than %d characters", path, node.MinSecretLen)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("secret: %w", err)
	}
	raw := make([]byte, 48)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("secret: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("secret: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("secret: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("secret: %w", err)
	}
	return s, f.Close()
}
