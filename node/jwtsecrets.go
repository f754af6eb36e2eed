package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fednode/fednode/keys"
)

// TokenSecrets is where token signing secrets come from: StaticSecret, or
// VaultSecrets. Only this package implements it.
type TokenSecrets interface {
	// current is the secret new tokens are signed with, and its kid ("" for
	// a static secret: no kid header).
	current(ctx context.Context) (kid string, secret []byte, err error)
	// lookup returns the secret a token's kid names, if it is still honoured.
	lookup(ctx context.Context, kid string) ([]byte, error)
}

var errSecretRetired = errors.New("token secret retired or unknown")

// StaticSecret is a JWT secret given in the configuration: rotating it
// means restarting with another, which refuses every token.
func StaticSecret(secret string) TokenSecrets { return staticSecret(secret) }

type staticSecret []byte

func (s staticSecret) current(context.Context) (string, []byte, error) { return "", s, nil }
func (s staticSecret) lookup(_ context.Context, kid string) ([]byte, error) {
	if kid != "" {
		return nil, errSecretRetired
	}
	return s, nil
}

// vaultSecrets keeps the JWT secret in Vault KV v2. Each KV version is a
// kid ("v3"); rotating writes a new random version; the version before the
// current one is still accepted for overlap after the current one was made,
// then refused. Versions are cached and refreshed every 30 s, so a short
// Vault outage stops neither logins nor token checks.
type vaultSecrets struct {
	kv      *keys.Secrets
	path    string
	overlap time.Duration
	now     func() time.Time

	mu       sync.Mutex
	cur      int
	values   map[int][]byte
	created  map[int]time.Time
	fetched  time.Time
	fetchErr error
}

const jwtSecretRefresh = 30 * time.Second

// VaultSecrets keeps the JWT secret at path in Vault KV v2 (created when
// absent), rotatable through the admin API with an overlap.
func VaultSecrets(ctx context.Context, kv *keys.Secrets, path string, overlap time.Duration, now func() time.Time) (TokenSecrets, error) {
	v := &vaultSecrets{kv: kv, path: path, overlap: overlap, now: now, values: map[int][]byte{}, created: map[int]time.Time{}}
	if _, err := kv.Read(ctx, path, 0); errors.Is(err, keys.ErrNoSecret) {
		if _, err := v.rotate(ctx); err != nil { // first start: make one
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	if err := v.refresh(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *vaultSecrets) refresh(ctx context.Context) error {
	cur, created, err := v.kv.Versions(ctx, v.path)
	if err != nil {
		return err
	}
	values := map[int][]byte{}
	for _, n := range []int{cur, cur - 1} {
		if _, ok := created[n]; !ok {
			continue
		}
		v.mu.Lock()
		cached, ok := v.values[n]
		v.mu.Unlock()
		if ok {
			values[n] = cached
			continue
		}
		s, err := v.kv.Read(ctx, v.path, n)
		if err != nil {
			return err
		}
		if len(s.Value) < MinSecretLen {
			return fmt.Errorf("JWT secret version %d in Vault is shorter than %d characters", n, MinSecretLen)
		}
		values[n] = []byte(s.Value)
	}
	v.mu.Lock()
	v.cur, v.values, v.created, v.fetched = cur, values, created, v.now()
	v.mu.Unlock()
	return nil
}

// ensure refreshes when the cache is old; a failure keeps the cache.
func (v *vaultSecrets) ensure(ctx context.Context, force bool) {
	v.mu.Lock()
	stale := force || v.now().Sub(v.fetched) > jwtSecretRefresh
	v.mu.Unlock()
	if stale {
		if err := v.refresh(ctx); err != nil {
			v.mu.Lock()
			v.fetchErr = err
			v.mu.Unlock()
		}
	}
}

func (v *vaultSecrets) current(ctx context.Context) (string, []byte, error) {
	v.ensure(ctx, false)
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.values[v.cur]
	if !ok {
		return "", nil, fmt.Errorf("JWT secret unavailable: %v", v.fetchErr)
	}
	return "v" + strconv.Itoa(v.cur), s, nil
}

func (v *vaultSecrets) lookup(ctx context.Context, kid string) ([]byte, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(kid, "v"))
	if err != nil || !strings.HasPrefix(kid, "v") {
		return nil, errSecretRetired
	}
	v.ensure(ctx, false)
	v.mu.Lock()
	known := n <= v.cur
	v.mu.Unlock()
	if !known { // a newer version made by another replica
		v.ensure(ctx, true)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.values[n]
	switch {
	case !ok:
		return nil, errSecretRetired
	case n == v.cur:
		return s, nil
	case n == v.cur-1 && v.now().Before(v.created[v.cur].Add(v.overlap)):
		return s, nil
	}
	return nil, errSecretRetired
}

// rotate writes a new random secret as the next version.
func (v *vaultSecrets) rotate(ctx context.Context) (int, error) {
	raw := make([]byte, 48)
	if _, err := rand.Read(raw); err != nil {
		return 0, err
	}
	n, err := v.kv.Write(ctx, v.path, base64.RawURLEncoding.EncodeToString(raw))
	if err != nil {
		return 0, err
	}
	v.refresh(ctx)
	return n, nil
}
