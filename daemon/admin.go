package daemon

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/bolt"
	"github.com/fednode/fednode/keys"
	"github.com/fednode/fednode/node"
)

// Offline admin actions work on the configured store directly: on the
// embedded store they need the node stopped (it locks the file, and they say
// so); on Redis they work while replicas run. They exist for making the
// first admin, and for revoking every session when no admin can log in
// (incident response).

func openForAdmin(ctx context.Context, cfg Config) (backend, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	vc, err := openVault(ctx, &cfg, log) // the key of messages at rest, the Redis password
	if err != nil {
		return backend{}, err
	}
	be, err := openBackend(ctx, cfg, time.Now, log, vc)
	if vc == nil {
		return be, err
	}
	if err != nil {
		vc.Close()
		return backend{}, err
	}
	be.closers = append(be.closers, func() error { vc.Close(); return nil })
	return be, nil
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
		be.broker.Publish(ctx, node.TopicRevoke, ids)
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

// The embedded store's file, its creation and its damage.
//
// A node must never quietly start with an empty store where it had data: it
// would go on with its old identity (keys, JWT secret) and no accounts, no
// messages, and nothing would say so. So a missing store is created only on
// a first start, when DATA_DIR shows no earlier life; otherwise creating one
// is the operator's explicit act (fednode admin init-store). And a store
// that fails its check is refused with what is wrong and what to do.

// storeFile is the embedded store's file in DATA_DIR (bolt's layout).
func storeFile(cfg Config) string { return filepath.Join(cfg.DataDir, "fednode.db") }

// earlierLife lists what in dir shows that a node ran there before: the
// local keys and the development JWT secret, both written on a first start.
func earlierLife(dir string) []string {
	var traces []string
	if ents, err := os.ReadDir(filepath.Join(dir, "keys")); err == nil && len(ents) > 0 {
		traces = append(traces, "keys/")
	}
	if _, err := os.Stat(filepath.Join(dir, devSecretFile)); err == nil {
		traces = append(traces, devSecretFile)
	}
	return traces
}

// prepareStore runs first at a start on the embedded store, before anything
// else is written to DATA_DIR. A missing store file is created when DATA_DIR
// shows no earlier life (a first start), and refused when it does. Creating
// it before the keys and the secret means that a first start cut short
// later (a bad TLS path, Ctrl-C during key generation) leaves a store
// beside them, and the next start does not mistake it for a lost one.
func prepareStore(ctx context.Context, cfg Config) error {
	path := storeFile(cfg)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil // present (bolt checks it) or unreadable (bolt says why)
	}
	if traces := earlierLife(cfg.DataDir); len(traces) > 0 {
		return fmt.Errorf(`store: %s is missing, but %s shows that a node ran here before (%s).
Starting with an empty store would silently lose every account and message, so the node does not start.
  - Restore fednode.db from a backup: check the copy with "fednode admin check-store FILE", then copy it to %s.
  - Or, to start this node empty on purpose (it keeps its keys and secret): fednode admin init-store
See "Damage and recovery" in docs/OPERATIONS.md`, path, cfg.DataDir, strings.Join(traces, ", "), path)
	}
	db, err := bolt.Open(ctx, bolt.Options{Dir: cfg.DataDir, Timeout: 2 * time.Second, Create: true})
	if err != nil {
		return err
	}
	return db.Close()
}

// storeError adds to an error opening the embedded store what the operator
// can do about it.
func storeError(cfg Config, err error) error {
	path := storeFile(cfg)
	restore := fmt.Sprintf(`
To restore from a backup: stop the node, keep the damaged file (mv %[1]s %[1]s.damaged),
check the backup with "fednode admin check-store BACKUP", copy it to %[1]s and start the node.
"fednode admin check-store" lists everything wrong with this file; see "Damage and recovery" in docs/OPERATIONS.md`, path)
	var de *bolt.DamageError
	switch {
	case errors.As(err, &de) && de.Empty:
		return fmt.Errorf(`%w
The file holds nothing: the store was lost, or the node's first start was cut short.
If this node never stored anything, "fednode admin init-store" creates an empty store.%s`, err, restore)
	case errors.As(err, &de) && de.MetaOnly:
		lost := ""
		if de.LostTxid {
			lost = " The damaged page claims a newer transaction: its writes would be lost."
		}
		return fmt.Errorf(`%w
bbolt keeps two copies of the page that says where the data is, so that it can go on from the intact one, at transaction %d.%s
To accept that state: "fednode admin repair-meta" (it checks the whole file first, then rewrites the damaged page).%s`, err, de.Txid, lost, restore)
	case errors.As(err, &de):
		return fmt.Errorf("%w\nThe node will not serve a damaged store.%s", err, restore)
	case errors.Is(err, bolt.ErrNoStore):
		return fmt.Errorf("%w: restore it from a backup, or create an empty one with \"fednode admin init-store\"", err)
	}
	return err
}

// CheckStore checks an embedded store file (DATA_DIR's when path is empty;
// a backup, say, when not): bbolt's own consistency check, after a check
// of every page that cannot crash on a damaged file, and a decode of every
// record. The node must be stopped; the check says so if it is not.
func CheckStore(ctx context.Context, cfg Config, path string) (*bolt.Report, error) {
	if path == "" {
		if cfg.RedisURL != "" {
			return nil, errors.New("check-store: this node's store is Redis (REDIS_URL); give the path of a fednode.db to check one")
		}
		path = storeFile(cfg)
	}
	rep, err := bolt.Check(ctx, path, 2*time.Second)
	if err != nil {
		return nil, storeError(cfg, err)
	}
	return rep, nil
}

// InitStore creates an empty embedded store in DATA_DIR: the explicit act
// that starts a node empty where it has run before (its keys and secret
// stay). It never replaces a store that has data; a 0-byte file, which
// holds nothing, it replaces.
func InitStore(ctx context.Context, cfg Config) (string, error) {
	if cfg.RedisURL != "" {
		return "", errors.New("init-store: this node's store is Redis (REDIS_URL), which needs no creating")
	}
	path := storeFile(cfg)
	switch st, err := os.Stat(path); {
	case err == nil && st.Size() > 0:
		return "", fmt.Errorf("init-store: %s exists (%d bytes) and init-store never replaces a store. To start empty instead of restoring it, move it aside first: mv %s %s.damaged", path, st.Size(), path, path)
	case err == nil:
		if err := os.Remove(path); err != nil {
			return "", fmt.Errorf("init-store: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("init-store: %w", err)
	}
	db, err := bolt.Open(ctx, bolt.Options{Dir: cfg.DataDir, Timeout: 2 * time.Second, Create: true})
	if err != nil {
		return "", fmt.Errorf("init-store: %w", err)
	}
	return path, db.Close()
}

// RepairMeta accepts the older of the embedded store's two meta pages when
// the other is damaged and nothing else is (bolt.RepairMeta).
func RepairMeta(ctx context.Context, cfg Config) (*bolt.Report, error) {
	if cfg.RedisURL != "" {
		return nil, errors.New("repair-meta: this node's store is Redis (REDIS_URL)")
	}
	rep, err := bolt.RepairMeta(ctx, cfg.DataDir, 2*time.Second)
	if err != nil {
		return rep, storeError(cfg, err)
	}
	return rep, nil
}
