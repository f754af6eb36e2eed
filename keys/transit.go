package keys

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	fcrypto "github.com/fednode/fednode/crypto"
)

// Transit is a keyring in Vault Transit: the node's signing and encryption
// keys are Transit keys of type rsa-4096, created when absent, never
// exportable. Signing calls Transit's sign endpoint (PKCS#1 v1.5, SHA-256);
// unwrapping calls its decrypt endpoint (RSA-OAEP, SHA-256, no label). The
// node never holds a private key. Public keys are cached (they are safe to
// cache) so a short Vault outage does not take the node document away.
//
// Each Transit key version is one of our key ids. A rotation adds a version;
// the old ones stay published for an overlap, recorded in KV v2 at
// <kv>/<prefix>/key-retirements, after which Retire raises Transit's
// min_decryption_version.
type Transit struct {
	vc      *VaultClient
	names   map[string]string // use -> Transit key name
	now     func() time.Time
	overlap time.Duration // for versions rotated outside the node

	mu       sync.RWMutex
	pubs     []PublicKey
	versions map[string]transitVersion // key id -> version
	fetched  time.Time
}

type transitVersion struct {
	use     string
	version int
	retired bool
}

// What the node asks of Transit. VaultPolicy pins the same values, so a
// request the node does not make is refused by Vault.
const (
	transitKeyType = "rsa-4096"
	signHash       = "sha2-256" // in the sign path
	signAlgorithm  = "pkcs1v15"
	importHash     = "SHA256" // OAEP hash of the BYOK wrapping
)

// transitKeyName is the Transit key of a use: "<prefix>-sig", "<prefix>-enc".
func transitKeyName(prefix, use string) string { return prefix + "-" + use }

// retirementsKey is the KV path (under the mount) of the retirement times.
func retirementsKey(prefix string) string { return prefix + "/key-retirements" }

// publicTTL is how long public keys are cached.
const publicTTL = 30 * time.Second

// OpenTransit creates the node's Transit keys when absent and loads their
// public halves. overlap applies to versions rotated outside the node.
func OpenTransit(ctx context.Context, vc *VaultClient, now func() time.Time, overlap time.Duration) (*Transit, error) {
	if now == nil {
		now = time.Now
	}
	t := &Transit{vc: vc, now: now, overlap: overlap,
		names: map[string]string{UseSig: transitKeyName(vc.cfg.KeyPrefix, UseSig), UseEnc: transitKeyName(vc.cfg.KeyPrefix, UseEnc)}}
	for _, use := range []string{UseSig, UseEnc} {
		s, err := vc.read(ctx, t.path("keys", use))
		if err != nil {
			return nil, err
		}
		if s == nil { // absent: create, never exportable
			if _, err := vc.generating(ctx, t.path("keys", use), map[string]any{"type": transitKeyType, "exportable": false}); err != nil {
				return nil, fmt.Errorf("keys: create transit key %s: %w", t.names[use], err)
			}
			vc.cfg.Log.Info("vault: created transit key", "name", t.names[use])
		} else if s.Data["type"] != transitKeyType {
			return nil, fmt.Errorf("keys: transit key %s is %v, not rsa-4096", t.names[use], s.Data["type"])
		}
	}
	if err := t.refresh(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Transit) path(op, use string, rest ...string) string {
	p := t.vc.cfg.TransitMount + "/" + op + "/" + t.names[use]
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

func (t *Transit) retirementsPath() string {
	return t.vc.cfg.KVMount + "/data/" + retirementsKey(t.vc.cfg.KeyPrefix)
}

// retirements reads use:version -> retirement time from KV.
func (t *Transit) retirements(ctx context.Context) (map[string]time.Time, error) {
	s, err := t.vc.read(ctx, t.retirementsPath())
	out := map[string]time.Time{}
	if err != nil || s == nil {
		return out, err
	}
	data, _ := s.Data["data"].(map[string]any)
	for k, v := range data {
		if ts, ok := v.(string); ok {
			if tm, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				out[k] = tm
			}
		}
	}
	return out, nil
}

// refresh reloads the public keys of every live version.
func (t *Transit) refresh(ctx context.Context) error {
	ret, err := t.retirements(ctx)
	if err != nil {
		return err
	}
	now := t.now()
	var pubs []PublicKey
	versions := map[string]transitVersion{}
	for _, use := range []string{UseSig, UseEnc} {
		s, err := t.vc.read(ctx, t.path("keys", use))
		if err != nil {
			return err
		}
		if s == nil {
			return fmt.Errorf("keys: transit key %s is gone", t.names[use])
		}
		latest, _ := s.Data["latest_version"].(json.Number).Int64()
		minDec, _ := s.Data["min_decryption_version"].(json.Number).Int64()
		raw, _ := s.Data["keys"].(map[string]any)
		type ver struct {
			n       int
			created time.Time
			pub     *rsa.PublicKey
		}
		var vs []ver
		for k, v := range raw {
			n, _ := strconv.Atoi(k)
			m, _ := v.(map[string]any)
			pemStr, _ := m["public_key"].(string)
			pub, err := fcrypto.ParsePublicKeyPEM(pemStr)
			if err != nil {
				return fmt.Errorf("keys: transit key %s version %d: %w", t.names[use], n, err)
			}
			created, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(m["creation_time"]))
			vs = append(vs, ver{n, created, pub})
		}
		sort.Slice(vs, func(i, j int) bool { return vs[i].n < vs[j].n })
		for i, v := range vs {
			kid := use + "-" + fcrypto.Fingerprint(v.pub)
			k := PublicKey{ID: kid, Use: use, Key: v.pub, CreatedAt: v.created.UTC()}
			retired := int64(v.n) < minDec
			if int64(v.n) < latest {
				until, ok := ret[use+":"+strconv.Itoa(v.n)]
				if !ok && i+1 < len(vs) { // rotated outside the node: default overlap
					until = vs[i+1].created.Add(t.overlap)
				}
				k.ExpiresAt = until.UTC()
				retired = retired || !now.Before(until)
			}
			versions[kid] = transitVersion{use: use, version: v.n, retired: retired}
			if !retired {
				pubs = append(pubs, k)
			}
		}
	}
	sort.SliceStable(pubs, func(i, j int) bool { return pubs[i].CreatedAt.Before(pubs[j].CreatedAt) })
	t.mu.Lock()
	t.pubs, t.versions, t.fetched = pubs, versions, now
	t.mu.Unlock()
	return nil
}

// PublicKeys implements Keyring, from a cache refreshed every publicTTL; a
// stale copy is served while Vault cannot be reached.
func (t *Transit) PublicKeys(ctx context.Context) ([]PublicKey, error) {
	t.mu.RLock()
	fresh := t.now().Sub(t.fetched) < publicTTL
	pubs := t.pubs
	t.mu.RUnlock()
	if !fresh {
		if err := t.refresh(ctx); err != nil && pubs == nil {
			return nil, err
		}
		t.mu.RLock()
		pubs = t.pubs
		t.mu.RUnlock()
	}
	return pubs, nil
}

func (t *Transit) kidOf(ctx context.Context, use string, version int) (string, error) {
	for attempt := 0; attempt < 2; attempt++ {
		t.mu.RLock()
		for kid, v := range t.versions {
			if v.use == use && v.version == version {
				t.mu.RUnlock()
				return kid, nil
			}
		}
		t.mu.RUnlock()
		if err := t.refresh(ctx); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("keys: transit %s has no version %d", t.names[use], version)
}

// Sign implements Keyring with Transit's sign endpoint: PKCS#1 v1.5 over
// SHA-256 of data, with the key's latest version.
func (t *Transit) Sign(ctx context.Context, data []byte) (string, []byte, error) {
	s, err := t.vc.write(ctx, t.path("sign", UseSig, signHash), map[string]any{
		"input": base64.StdEncoding.EncodeToString(data), "signature_algorithm": signAlgorithm,
	})
	if err != nil {
		return "", nil, err
	}
	version, raw, err := parseVaultValue(fmt.Sprint(s.Data["signature"]))
	if err != nil {
		return "", nil, err
	}
	kid, err := t.kidOf(ctx, UseSig, version)
	return kid, raw, err
}

// Decrypt implements Keyring with Transit's decrypt endpoint (RSA-OAEP,
// SHA-256, no label), for a live version only.
func (t *Transit) Decrypt(ctx context.Context, keyID string, ciphertext []byte) ([]byte, error) {
	t.mu.RLock()
	v, ok := t.versions[keyID]
	t.mu.RUnlock()
	if !ok {
		if err := t.refresh(ctx); err != nil {
			return nil, err
		}
		t.mu.RLock()
		v, ok = t.versions[keyID]
		t.mu.RUnlock()
	}
	if !ok || v.use != UseEnc || v.retired {
		return nil, ErrUnknownKey
	}
	s, err := t.vc.write(ctx, t.path("decrypt", UseEnc), map[string]any{
		"ciphertext": "vault:v" + strconv.Itoa(v.version) + ":" + base64.StdEncoding.EncodeToString(ciphertext),
	})
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(fmt.Sprint(s.Data["plaintext"]))
}

func parseVaultValue(s string) (int, []byte, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 || parts[0] != "vault" || !strings.HasPrefix(parts[1], "v") {
		return 0, nil, fmt.Errorf("keys: unexpected transit value %q", s)
	}
	n, err := strconv.Atoi(parts[1][1:])
	if err != nil {
		return 0, nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	return n, raw, err
}

// Rotate makes a new version of a use's key; the others stay published and
// usable until now+overlap, then Retire retires them.
func (t *Transit) Rotate(ctx context.Context, use string, overlap time.Duration) (PublicKey, error) {
	if use != UseSig && use != UseEnc {
		return PublicKey{}, fmt.Errorf("keys: unknown use %q", use)
	}
	ret, err := t.retirements(ctx)
	if err != nil {
		return PublicKey{}, err
	}
	s, err := t.vc.read(ctx, t.path("keys", use))
	if err != nil || s == nil {
		return PublicKey{}, fmt.Errorf("keys: read transit key: %v", err)
	}
	latest, _ := s.Data["latest_version"].(json.Number).Int64()
	until := t.now().Add(overlap).UTC()
	for v := int64(1); v <= latest; v++ {
		k := use + ":" + strconv.FormatInt(v, 10)
		if old, ok := ret[k]; !ok || old.After(until) {
			ret[k] = until
		}
	}
	data := map[string]any{}
	for k, v := range ret {
		data[k] = v.Format(time.RFC3339Nano)
	}
	if _, err := t.vc.write(ctx, t.retirementsPath(), map[string]any{"data": data}); err != nil {
		return PublicKey{}, err
	}
	if _, err := t.vc.generating(ctx, t.path("keys", use, "rotate"), map[string]any{}); err != nil {
		return PublicKey{}, err
	}
	if err := t.refresh(ctx); err != nil {
		return PublicKey{}, err
	}
	pubs, _ := t.PublicKeys(ctx)
	k, _ := CurrentKey(pubs, use)
	return k, nil
}

// Retire raises min_decryption_version past every version whose overlap
// has ended, so Transit itself refuses them.
func (t *Transit) Retire(ctx context.Context) error {
	if err := t.refresh(ctx); err != nil {
		return err
	}
	t.mu.RLock()
	minLive := map[string]int{}
	maxRetired := map[string]int{}
	for _, v := range t.versions {
		if v.retired {
			maxRetired[v.use] = max(maxRetired[v.use], v.version)
		} else if minLive[v.use] == 0 || v.version < minLive[v.use] {
			minLive[v.use] = v.version
		}
	}
	t.mu.RUnlock()
	for use, retired := range maxRetired {
		if minLive[use] > retired {
			if _, err := t.vc.write(ctx, t.path("keys", use, "config"), map[string]any{"min_decryption_version": minLive[use]}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Import moves a local keyring into Transit (BYOK): every version of each
// use, oldest first, wrapped as Transit requires (AES-256 KWP, the AES key
// wrapped with RSA-OAEP-SHA256 to Transit's wrapping key), not exportable,
// and rotatable by Transit like a key it made.
// The Transit keys must not exist yet: an identity is never overwritten.
func Import(ctx context.Context, vc *VaultClient, l *Local) error {
	s, err := vc.generating(ctx, vc.cfg.TransitMount+"/wrapping_key", nil)
	if err != nil || s == nil {
		return fmt.Errorf("keys: transit wrapping key: %v", err)
	}
	wrapping, err := fcrypto.ParsePublicKeyPEM(fmt.Sprint(s.Data["public_key"]))
	if err != nil {
		return fmt.Errorf("keys: transit wrapping key: %w", err)
	}
	l.mu.RLock()
	local := append([]localKey(nil), l.keys...)
	l.mu.RUnlock()
	for _, use := range []string{UseSig, UseEnc} {
		name := vc.cfg.TransitMount + "/keys/" + transitKeyName(vc.cfg.KeyPrefix, use)
		if existing, err := vc.read(ctx, name); err != nil {
			return err
		} else if existing != nil {
			return fmt.Errorf("keys: transit key %s already exists; refusing to overwrite an identity", name)
		}
		first := true
		for _, k := range local {
			if k.meta.Use != use {
				continue
			}
			der, err := x509.MarshalPKCS8PrivateKey(k.priv)
			if err != nil {
				return err
			}
			ephemeral := make([]byte, 32)
			if _, err := rand.Read(ephemeral); err != nil {
				return err
			}
			wrappedKey, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, wrapping, ephemeral, nil)
			if err != nil {
				return err
			}
			wrappedTarget, err := wrapKWP(ephemeral, der)
			if err != nil {
				return err
			}
			body := map[string]any{"ciphertext": base64.StdEncoding.EncodeToString(append(wrappedKey, wrappedTarget...)), "hash_function": importHash}
			path := name + "/import_version"
			if first {
				// allow_rotation: Transit refuses to rotate an imported key
				// without it, and the node rotates its keys.
				body["type"], body["exportable"], body["allow_rotation"] = transitKeyType, false, true
				path = name + "/import"
			}
			if _, err := vc.write(ctx, path, body); err != nil {
				return fmt.Errorf("keys: import %s: %w", k.meta.ID, err)
			}
			first = false
		}
		if first {
			return errors.New("keys: the local keyring has no " + use + " key")
		}
	}
	return nil
}

var _ Keyring = (*Transit)(nil)
