package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/atrest"
	"github.com/fednode/fednode/keys"
)

// atRestKEKMeta is the store meta key holding the id of the key-encryption
// key its message data keys are wrapped under.
const atRestKEKMeta = "atrest.kek"

// openSealer returns the sealer of messages at rest (package atrest),
// whose data keys are wrapped by the local key-encryption key
// DATA_DIR/keys/atrest.kek, created on the first start. Replicas sharing a
// Redis store share that file as they share the keyring directory.
func openSealer(cfg Config, log *slog.Logger) (*atrest.Sealer, *keys.LocalKEK, error) {
	kek, err := keys.OpenLocalKEK(cfg.DataDir)
	if err != nil {
		return nil, nil, fmt.Errorf("at rest: %w", err)
	}
	s := atrest.NewSealer(kek, nil)
	s.OnDamage = func(id string, err error) {
		log.Error("store: a stored message does not open (damaged or tampered with); it is not served", "event", "store.damaged_message", "message", id, "err", err)
	}
	return s, kek, nil
}

// checkKEK records the key-encryption key's id in a store that has none,
// and refuses a store sealed under another key: opening it would serve
// every message as damage.
func checkKEK(ctx context.Context, store fednode.Store, kek *keys.LocalKEK) error {
	got, err := store.Meta(ctx, atRestKEKMeta)
	switch {
	case errors.Is(err, fednode.ErrNotFound):
		return store.SetMeta(ctx, atRestKEKMeta, []byte(kek.ID()))
	case err != nil:
		return err
	case string(got) != kek.ID():
		return fmt.Errorf("at rest: this store's messages are sealed under key-encryption key %s, but DATA_DIR/atrest.kek is %s: restore that file from the node's backup (every replica needs the same one)", got, kek.ID())
	}
	return nil
}
