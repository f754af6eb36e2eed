package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/atrest"
	"github.com/fednode/fednode/keys"
)

// atRestKEKMeta is the store meta key holding the id of the local
// key-encryption key its message data keys are wrapped under.
const atRestKEKMeta = "atrest.kek"

// kekChain wraps new data keys with Transit when the node's keys are in
// Vault, with the local key file otherwise, and unwraps each data key with
// the one that wrapped it: a store sealed under the local key file before a
// move to Vault stays readable while the file is kept.
type kekChain struct {
	transit *keys.TransitKEK // nil unless KEYS_BACKEND=vault
	local   *keys.LocalKEK   // nil on Vault when there is no key file
}

func (c kekChain) WrapDataKey(ctx context.Context, key []byte) ([]byte, error) {
	if c.transit != nil {
		return c.transit.WrapDataKey(ctx, key)
	}
	return c.local.WrapDataKey(ctx, key)
}

func (c kekChain) UnwrapDataKey(ctx context.Context, wrapped []byte) ([]byte, error) {
	switch {
	case keys.IsTransitWrapped(wrapped) && c.transit != nil:
		return c.transit.UnwrapDataKey(ctx, wrapped)
	case keys.IsTransitWrapped(wrapped):
		return nil, errors.New("the data key is wrapped by Vault Transit, and this node does not use Vault keys")
	case c.local == nil:
		return nil, fmt.Errorf("the data key is wrapped by the local key file DATA_DIR/%s, which this node does not have", keys.KEKFile)
	}
	return c.local.UnwrapDataKey(ctx, wrapped)
}

// openSealer returns the sealer of messages at rest (package atrest) and
// the check of the store it seals. Data keys are wrapped by Vault Transit
// (a dedicated aes256-gcm96 key) when KEYS_BACKEND=vault, by the local
// key-encryption key DATA_DIR/atrest.kek (made on the first start)
// otherwise. Replicas sharing a Redis store share that file as they share
// the keyring.
func openSealer(ctx context.Context, cfg Config, vc *keys.VaultClient, log *slog.Logger) (*atrest.Sealer, func(context.Context, fednode.Store) error, error) {
	var c kekChain
	var err error
	if cfg.KeysBackend == "vault" {
		if vc == nil {
			return nil, nil, errors.New("at rest: KEYS_BACKEND=vault without a Vault client")
		}
		if c.transit, err = keys.OpenTransitKEK(ctx, vc); err != nil {
			return nil, nil, fmt.Errorf("at rest: %w", err)
		}
		if _, err := os.Stat(filepath.Join(cfg.DataDir, keys.KEKFile)); err == nil { // kept from before a move to Vault
			c.local, err = keys.OpenLocalKEK(cfg.DataDir)
			if err != nil {
				return nil, nil, fmt.Errorf("at rest: %w", err)
			}
		}
	} else if c.local, err = keys.OpenLocalKEK(cfg.DataDir); err != nil {
		return nil, nil, fmt.Errorf("at rest: %w", err)
	}
	s := atrest.NewSealer(c, nil)
	s.OnDamage = func(id string, err error) {
		log.Error("store: a stored message does not open (damaged or tampered with); it is not served", "event", "store.damaged_message", "message", id, "err", err)
	}
	return s, func(ctx context.Context, store fednode.Store) error { return checkKEK(ctx, store, c) }, nil
}

// checkKEK records the local key-encryption key's id in a store that has
// none, and refuses a store sealed under another local key, or under one
// this node no longer has: opening it would serve every message as damage.
func checkKEK(ctx context.Context, store fednode.Store, c kekChain) error {
	got, err := store.Meta(ctx, atRestKEKMeta)
	switch {
	case errors.Is(err, fednode.ErrNotFound):
		if c.local == nil {
			return nil
		}
		return store.SetMeta(ctx, atRestKEKMeta, []byte(c.local.ID()))
	case err != nil:
		return err
	case c.local == nil:
		return fmt.Errorf("at rest: this store's older messages are sealed under the local key-encryption key %s, but DATA_DIR/%s is missing: restore it from the node's backup", got, keys.KEKFile)
	case string(got) != c.local.ID():
		return fmt.Errorf("at rest: this store's messages are sealed under key-encryption key %s, but DATA_DIR/%s is %s: restore that file from the node's backup (every replica needs the same one)", got, keys.KEKFile, c.local.ID())
	}
	return nil
}

// reencrypter is implemented by both stores.
type reencrypter interface {
	ReencryptMessages(ctx context.Context, batch int) (int, error)
}

// reencryptBatch is how many records one bbolt transaction re-encrypts.
const reencryptBatch = 1000

// Reencrypt seals every stored message again under a new data key (this
// process's), so that older data keys, and the records under them, are no
// longer in use: `fednode admin reencrypt`. On the embedded store the node
// must be stopped; on Redis replicas may run. It returns how many records
// it rewrote.
func Reencrypt(ctx context.Context, cfg Config) (int, error) {
	be, err := openForAdmin(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer be.close()
	r, ok := be.store.(reencrypter)
	if !ok {
		return 0, errors.New("reencrypt: this store cannot re-encrypt")
	}
	n, err := r.ReencryptMessages(ctx, reencryptBatch)
	if err != nil {
		return n, fmt.Errorf("reencrypt: %d records done, then: %w", n, err)
	}
	return n, nil
}
