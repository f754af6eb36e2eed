package node

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/keys"
)

// Offline admin actions work on the configured store directly: on the
// embedded store they need the node stopped (it locks the file, and they say
// so); on Redis they work while replicas run. They exist for making the
// first admin, and for revoking every session when no admin can log in
// (incident response).

func openForAdmin(ctx context.Context, cfg Config) (backend, error) {
	return openBackend(ctx, cfg, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// Promote gives an existing user the admin role.
func Promote(ctx context.Context, cfg Config, username string) error {
	be, err := openForAdmin(ctx, cfg)
	if err != nil {
		return err
	}
	defer be.close()
	err = be.store.UpdateUser(ctx, username, func(u *fednode.User) error { u.Role = fednode.RoleAdmin; return nil })
	if errors.Is(err, fednode.ErrNotFound) {
		return fmt.Errorf("promote: no user %q; register it first", username)
	}
	return err
}

// RevokeAllOffline deletes every session and returns how many there were.
// Running replicas on Redis refuse the tokens at once; their open sockets
// close at the next event or when their clients reconnect.
func RevokeAllOffline(ctx context.Context, cfg Config) (int, error) {
	be, err := openForAdmin(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer be.close()
	ids, err := be.store.DeleteAllSessions(ctx)
	if err == nil && len(ids) > 0 {
		be.broker.Publish(ctx, topicRevoke, ids)
	}
	return len(ids), err
}

// MigrateKeysToVault moves the node's local keys (DATA_DIR/keys) into Vault
// Transit, so its identity survives the move to KEYS_BACKEND=vault. It
// refuses when the Transit keys already exist.
func MigrateKeysToVault(ctx context.Context, cfg Config) error {
	if cfg.VaultAddr == "" {
		return errors.New("migrate: set VAULT_ADDR and VAULT_TOKEN (or AppRole)")
	}
	dir := filepath.Join(cfg.DataDir, "keys")
	if _, err := os.Stat(filepath.Join(dir, "keyring.json")); err != nil {
		return fmt.Errorf("migrate: no local keyring in %s: %w", dir, err)
	}
	local, err := keys.OpenLocal(dir, keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) {
		return nil, errors.New("migrate: the local keyring is incomplete")
	}})
	if err != nil {
		return err
	}
	vc, err := keys.NewVaultClient(ctx, cfg.vaultConfig(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	defer vc.Close()
	return keys.Import(ctx, vc, local)
}

// VaultPolicy returns the Vault policy this configuration needs (see
// keys.VaultPolicy), so an operator writes exactly what the node calls and
// nothing more. With migration it returns instead the policy of
// `fednode admin migrate-keys-to-vault`, for a short-lived token of its own.
// It reads only the configuration: no Vault token is needed to print it.
func VaultPolicy(cfg Config, migration bool) (string, error) {
	if !migration && !cfg.usesVault() {
		return "", errors.New("vault-policy: this configuration uses nothing in Vault; set KEYS_BACKEND=vault, JWT_SECRET_VAULT_PATH or REDIS_PASSWORD_VAULT_PATH")
	}
	p, err := keys.VaultPolicy(keys.PolicyParams{
		TransitMount: cfg.VaultTransitMount, KVMount: cfg.VaultKVMount, KeyPrefix: cfg.VaultKeyPrefix,
		Transit: cfg.KeysBackend == "vault", JWTSecretPath: cfg.JWTSecretVaultPath, RedisPasswordPath: cfg.RedisPasswordVaultPath,
		Migration: migration,
	})
	if err != nil {
		return "", fmt.Errorf("vault-policy: %w", err)
	}
	return p, nil
}
