package keys

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Transit's key that wraps the data keys of messages at rest: a symmetric
// key of its own, "<prefix>-atrest", never the RSA keys of federation.
const (
	atRestKeySuffix = "atrest"
	atRestKeyType   = "aes256-gcm96"
)

// TransitKEK wraps the data keys that encrypt messages at rest (package
// atrest) with Vault Transit's encrypt and decrypt under a dedicated,
// non-exportable aes256-gcm96 key: the key-encryption key never leaves
// Vault, so a copy of the store, or of the whole DATA_DIR, reveals no
// message without Vault's consent. A wrapped data key is Transit's
// ciphertext, "vault:v<version>:<base64>": rotating the Transit key
// leaves older versions able to decrypt.
type TransitKEK struct {
	vc   *VaultClient
	name string
}

// OpenTransitKEK creates the key when absent (only as non-exportable
// aes256-gcm96) and refuses one of another type.
func OpenTransitKEK(ctx context.Context, vc *VaultClient) (*TransitKEK, error) {
	k := &TransitKEK{vc: vc, name: transitKeyName(vc.cfg.KeyPrefix, atRestKeySuffix)}
	path := vc.cfg.TransitMount + "/keys/" + k.name
	s, err := vc.read(ctx, path)
	if err != nil {
		return nil, err
	}
	if s == nil {
		if _, err := vc.write(ctx, path, map[string]any{"type": atRestKeyType, "exportable": false}); err != nil {
			return nil, fmt.Errorf("keys: create transit key %s: %w", k.name, err)
		}
		vc.cfg.Log.Info("vault: created transit key", "name", k.name)
	} else if s.Data["type"] != atRestKeyType {
		return nil, fmt.Errorf("keys: transit key %s is %v, not %s", k.name, s.Data["type"], atRestKeyType)
	}
	return k, nil
}

// IsTransitWrapped reports whether a wrapped data key is Transit's.
func IsTransitWrapped(wrapped []byte) bool { return strings.HasPrefix(string(wrapped), "vault:v") }

// WrapDataKey encrypts a data key with Transit.
func (k *TransitKEK) WrapDataKey(ctx context.Context, key []byte) ([]byte, error) {
	s, err := k.vc.write(ctx, k.vc.cfg.TransitMount+"/encrypt/"+k.name, map[string]any{"plaintext": base64.StdEncoding.EncodeToString(key)})
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("%w: transit encrypt answered nothing", ErrUnavailable)
	}
	ct, _ := s.Data["ciphertext"].(string)
	if !IsTransitWrapped([]byte(ct)) {
		return nil, fmt.Errorf("keys: transit encrypt answered %q", ct)
	}
	return []byte(ct), nil
}

// UnwrapDataKey decrypts a data key WrapDataKey wrapped.
func (k *TransitKEK) UnwrapDataKey(ctx context.Context, wrapped []byte) ([]byte, error) {
	if !IsTransitWrapped(wrapped) {
		return nil, errors.New("keys: not a transit-wrapped data key")
	}
	s, err := k.vc.write(ctx, k.vc.cfg.TransitMount+"/decrypt/"+k.name, map[string]any{"ciphertext": string(wrapped)})
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("%w: transit decrypt answered nothing", ErrUnavailable)
	}
	pt, ok := s.Data["plaintext"].(string)
	if !ok {
		return nil, errors.New("keys: transit decrypt answered no plaintext")
	}
	return base64.StdEncoding.DecodeString(pt)
}
