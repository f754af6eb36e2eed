package keys

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/go-fed/httpsig"

	fcrypto "github.com/fednode/fednode/crypto"
	"github.com/fednode/fednode/internal/atomicfile"
)

// Local is a keyring in files: DIR/<id>.pem (PKCS#8, mode 0600) and
// DIR/keyring.json (ids, uses, creation and expiry times, mode 0600), in a
// directory of mode 0700. It is created with one key of each use on first
// open.
type Local struct {
	dir      string
	now      func() time.Time
	generate func() (*rsa.PrivateKey, error)

	mu   sync.RWMutex
	keys []localKey // oldest first
}

type localKey struct {
	meta keyMeta
	priv *rsa.PrivateKey
}

type keyMeta struct {
	ID        string    `json:"id"`
	Use       string    `json:"use"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// LocalOptions tune OpenLocal; the zero value is right for production.
type LocalOptions struct {
	Now func() time.Time
	// Generate makes a new private key; nil means RSA-4096 from crypto/rand.
	// Tests supply fixed keys because generation takes seconds.
	Generate func() (*rsa.PrivateKey, error)
}

const metaFile = "keyring.json"

// OpenLocal opens the keyring in dir, creating it and its first keys when
// absent. Keys whose overlap has ended are deleted.
func OpenLocal(dir string, opt LocalOptions) (*Local, error) {
	l := &Local{dir: dir, now: opt.Now, generate: opt.Generate}
	if l.now == nil {
		l.now = time.Now
	}
	if l.generate == nil {
		l.generate = func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, fcrypto.RSABits) }
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if err := l.load(); err != nil {
		return nil, err
	}
	changed := false
	for _, use := range []string{UseSig, UseEnc} {
		if _, ok := l.current(use); !ok {
			if err := l.add(use); err != nil {
				return nil, err
			}
			changed = true
		}
	}
	if l.prune() {
		changed = true
	}
	if changed {
		if err := l.save(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *Local) load() error {
	b, err := os.ReadFile(filepath.Join(l.dir, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	var metas []keyMeta
	if err := json.Unmarshal(b, &metas); err != nil {
		return fmt.Errorf("keys: %s: %w", metaFile, err)
	}
	for _, m := range metas {
		path := filepath.Join(l.dir, m.ID+".pem")
		st, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("keys: %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
		}
		pemBytes, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		priv, err := parsePrivatePEM(pemBytes)
		if err != nil {
			return fmt.Errorf("keys: %s: %w", path, err)
		}
		l.keys = append(l.keys, localKey{meta: m, priv: priv})
	}
	return nil
}

func parsePrivatePEM(b []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := k.(*rsa.PrivateKey)
	if !ok || priv.N.BitLen() != fcrypto.RSABits {
		return nil, errors.New("not an RSA-4096 key")
	}
	return priv, nil
}

// add generates a key of a use and writes its file; save writes the index.
func (l *Local) add(use string) error {
	priv, err := l.generate()
	if err != nil {
		return fmt.Errorf("keys: generate: %w", err)
	}
	if priv.N.BitLen() != fcrypto.RSABits {
		return errors.New("keys: generated key is not RSA-4096")
	}
	id := use + "-" + fcrypto.Fingerprint(&priv.PublicKey)
	for _, k := range l.keys {
		if k.meta.ID == id {
			return fmt.Errorf("keys: key %s already present", id)
		}
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(l.dir, id+".pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	l.keys = append(l.keys, localKey{meta: keyMeta{ID: id, Use: use, CreatedAt: l.now().UTC()}, priv: priv})
	return nil
}

func (l *Local) save() error {
	metas := make([]keyMeta, len(l.keys))
	for i, k := range l.keys {
		metas[i] = k.meta
	}
	b, _ := json.MarshalIndent(metas, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(l.dir, metaFile), b, 0o600); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	return nil
}

// prune drops keys whose overlap has ended, deleting their files.
func (l *Local) prune() bool {
	now := l.now()
	kept := l.keys[:0]
	changed := false
	for _, k := range l.keys {
		if !k.meta.ExpiresAt.IsZero() && !now.Before(k.meta.ExpiresAt) {
			os.Remove(filepath.Join(l.dir, k.meta.ID+".pem"))
			changed = true
			continue
		}
		kept = append(kept, k)
	}
	l.keys = kept
	return changed
}

func (l *Local) current(use string) (localKey, bool) {
	for i := len(l.keys) - 1; i >= 0; i-- {
		if k := l.keys[i]; k.meta.Use == use && k.meta.ExpiresAt.IsZero() {
			return k, true
		}
	}
	return localKey{}, false
}

// Rotate makes a new current key of a use. The old one stays published and
// usable for overlap, then is retired.
func (l *Local) Rotate(ctx context.Context, use string, overlap time.Duration) (PublicKey, error) {
	if use != UseSig && use != UseEnc {
		return PublicKey{}, fmt.Errorf("keys: unknown use %q", use)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old, ok := l.current(use)
	if err := l.add(use); err != nil {
		return PublicKey{}, err
	}
	if ok {
		for i := range l.keys {
			if l.keys[i].meta.ID == old.meta.ID {
				l.keys[i].meta.ExpiresAt = l.now().Add(overlap).UTC()
			}
		}
	}
	if err := l.save(); err != nil {
		return PublicKey{}, err
	}
	k := l.keys[len(l.keys)-1]
	return PublicKey{ID: k.meta.ID, Use: use, Key: &k.priv.PublicKey, CreatedAt: k.meta.CreatedAt}, nil
}

// live returns the key with that id if its overlap has not ended.
func (l *Local) live(id string) (localKey, bool) {
	now := l.now()
	for _, k := range l.keys {
		if k.meta.ID == id && (k.meta.ExpiresAt.IsZero() || now.Before(k.meta.ExpiresAt)) {
			return k, true
		}
	}
	return localKey{}, false
}

// Sign implements Keyring.
func (l *Local) Sign(ctx context.Context, data []byte) (string, []byte, error) {
	l.mu.RLock()
	k, ok := l.current(UseSig)
	l.mu.RUnlock()
	if !ok {
		return "", nil, ErrUnknownKey
	}
	sum := sha256.Sum256(data)
	sig, err := rsa.SignPKCS1v15(nil, k.priv, crypto.SHA256, sum[:])
	if err != nil {
		return "", nil, fmt.Errorf("keys: sign: %w", err)
	}
	return k.meta.ID, sig, nil
}

// Decrypt implements Keyring.
func (l *Local) Decrypt(ctx context.Context, keyID string, ciphertext []byte) ([]byte, error) {
	l.mu.RLock()
	k, ok := l.live(keyID)
	l.mu.RUnlock()
	if !ok || k.meta.Use != UseEnc {
		return nil, ErrUnknownKey
	}
	return fcrypto.DecryptOAEP(k.priv, ciphertext)
}

// PublicKeys implements Keyring.
func (l *Local) PublicKeys(ctx context.Context) ([]PublicKey, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	now := l.now()
	var out []PublicKey
	for _, k := range l.keys {
		if !k.meta.ExpiresAt.IsZero() && !now.Before(k.meta.ExpiresAt) {
			continue
		}
		out = append(out, PublicKey{ID: k.meta.ID, Use: k.meta.Use, Key: &k.priv.PublicKey, CreatedAt: k.meta.CreatedAt, ExpiresAt: k.meta.ExpiresAt})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// SignRequest implements HTTPSigner with go-fed/httpsig.
func (l *Local) SignRequest(ctx context.Context, r *http.Request, body []byte, headers []string, keyID func(string) string) (string, error) {
	l.mu.RLock()
	k, ok := l.current(UseSig)
	l.mu.RUnlock()
	if !ok {
		return "", ErrUnknownKey
	}
	// go-fed signers are not safe for concurrent use; one per request is cheap.
	s, _, err := httpsig.NewSigner([]httpsig.Algorithm{httpsig.RSA_SHA256}, httpsig.DigestSha256, headers, httpsig.Signature, 0)
	if err != nil {
		return "", fmt.Errorf("keys: signer: %w", err)
	}
	full := keyID(k.meta.ID)
	if err := s.SignRequest(k.priv, full, r, body); err != nil {
		return "", fmt.Errorf("keys: sign request: %w", err)
	}
	return full, nil
}

var (
	_ Keyring    = (*Local)(nil)
	_ HTTPSigner = (*Local)(nil)
)
