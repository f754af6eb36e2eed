package daemon

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"time"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/fednode/fednode/bolt"
	"github.com/fednode/fednode/internal/atomicfile"
	"github.com/fednode/fednode/keys"
)

// Backups of a node on the embedded store.
//
// A backup is one tar archive, mode 0600, holding all a node needs to be
// restored as the same node: its store (fednode.db, a consistent copy
// taken online through the admin socket, or offline), its local keys
// (keys/, without which peers would not recognise it) and its development
// JWT secret (jwt_secret, when the node uses one; without it every session
// ends). A secret given in the environment or kept in Vault is not in
// DATA_DIR, so not in the backup: the operator keeps it, and the report
// says so. The archive is written to a temporary file, synced, renamed
// into place, and then read back and its store checked in full before the
// command reports success.

// Archive member names: the store, the dev secret, and keys/<file>.
const (
	archiveStore = "fednode.db"
	archiveKeys  = "keys/"
	maxSmallFile = 1 << 20 // a key, the key list, the secret
)

// BackupResult is what Backup did.
type BackupResult struct {
	Path   string
	Bytes  int64
	Online bool          // the copy came from the running node
	Files  []string      // the archive's members
	Store  *bolt.Report  // the check of the copy
	Notes  []string      // what the backup does not hold, and why
	Took   time.Duration // the copy, not the check
}

func (r *BackupResult) String() string {
	var b strings.Builder
	how := "the node is stopped: copied from the file"
	if r.Online {
		how = "copied from the running node through its admin socket"
	}
	fmt.Fprintf(&b, "backup: %s (%s, %s, in %v)\n", r.Path, sizeOf(r.Bytes), how, r.Took.Round(time.Millisecond))
	fmt.Fprintf(&b, "holds: %s\n", strings.Join(r.Files, ", "))
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	b.WriteString(r.Store.String())
	return b.String()
}

func sizeOf(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// ErrRedisBackup is the answer of backup and restore on a node whose store
// is Redis: Redis is backed up with its own persistence.
var ErrRedisBackup = errors.New(`this node's store is Redis (REDIS_URL): back it up with Redis's own persistence, an RDB snapshot (BGSAVE) or the AOF, and keep DATA_DIR/keys and the JWT secret with it; see "Backups and restore" in docs/OPERATIONS.md`)

// Backup writes a backup archive of the node to file: online from the
// running node, or from the file when the node is stopped.
func Backup(ctx context.Context, cfg Config, file string) (*BackupResult, error) {
	if cfg.RedisURL != "" {
		return nil, fmt.Errorf("backup: %w", ErrRedisBackup)
	}
	start := time.Now()
	res := &BackupResult{Path: file}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing is there
	defer tmp.Close()
	tw := tar.NewWriter(tmp)
	add := func(name string, size int64) (io.Writer, error) {
		res.Files = append(res.Files, name)
		return tw, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: start, Typeflag: tar.TypeReg, Format: tar.FormatPAX})
	}
	if err := copyStore(ctx, cfg, add, res); err != nil {
		return nil, err
	}
	if cfg.KeysBackend == "local" {
		files, err := keys.SnapshotLocal(filepath.Join(cfg.DataDir, "keys"))
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		if len(files) == 0 {
			res.Notes = append(res.Notes, "DATA_DIR/keys holds no keyring: restored, the node makes new keys, and peers see a new identity")
		}
		for _, name := range slices.Sorted(maps.Keys(files)) {
			if err := addFile(add, archiveKeys+name, files[name]); err != nil {
				return nil, fmt.Errorf("backup: %w", err)
			}
		}
	} else {
		res.Notes = append(res.Notes, "the node's keys are in Vault Transit (KEYS_BACKEND=vault): back Vault up too")
	}
	for _, name := range dataDirFiles {
		if b, err := os.ReadFile(filepath.Join(cfg.DataDir, name)); err == nil {
			if err := addFile(add, name, b); err != nil {
				return nil, fmt.Errorf("backup: %w", err)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("backup: %w", err)
		}
	}
	if cfg.JWTSecret != "" || cfg.JWTSecretVaultPath != "" {
		res.Notes = append(res.Notes, "the JWT secret comes from the environment or Vault, not DATA_DIR: keep it with the backup, or every session ends at the restore")
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	st, _ := tmp.Stat()
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	atomicfile.SyncDir(filepath.Dir(file))
	res.Bytes, res.Took = st.Size(), time.Since(start)
	rep, err := verifyBackup(ctx, file)
	if err != nil {
		return res, err
	}
	res.Store = rep
	if rep.Damaged() {
		return res, fmt.Errorf("backup: the copy of the store in %s fails its check; do not rely on it", file)
	}
	return res, nil
}

// copyStore adds the store to the archive: from the running node if one
// answers on the admin socket, else from the file.
func copyStore(ctx context.Context, cfg Config, add func(string, int64) (io.Writer, error), res *BackupResult) error {
	body, size, err := fetchOnline(ctx, cfg.DataDir)
	switch {
	case err == nil:
		defer body.Close()
		res.Online = true
		w, err := add(archiveStore, size)
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if n, err := io.Copy(w, body); err != nil || n != size {
			return fmt.Errorf("backup: the node sent %d bytes of %d: %v", n, size, err)
		}
		return nil
	case !errors.Is(err, errNoNode):
		return err
	}
	err = bolt.BackupFile(ctx, cfg.DataDir, 2*time.Second, func(size int64) (io.Writer, error) { return add(archiveStore, size) })
	if err != nil {
		err = storeError(cfg, err)
		if errors.Is(err, berrors.ErrTimeout) { // the file is locked: a node holds it
			err = fmt.Errorf("%w\nThe node runs but does not answer on %s: is this the node's DATA_DIR, and did its log say why the admin socket is off?", err, filepath.Join(cfg.DataDir, adminSocketFile))
		}
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

func addFile(add func(string, int64) (io.Writer, error), name string, b []byte) error {
	w, err := add(name, int64(len(b)))
	if err == nil {
		_, err = w.Write(b)
	}
	return err
}

// backupContents is what an archive holds besides the store.
type backupContents struct {
	keys  map[string][]byte // keys/ file name -> content
	files map[string][]byte // dataDirFiles present: name -> content
}

// dataDirFiles are the small files of DATA_DIR a backup holds besides the
// store and keys/: the development JWT secret, and the key-encryption key
// of messages at rest (without which the store's messages are lost).
var dataDirFiles = []string{devSecretFile, keys.KEKFile}

// readBackup reads a backup archive from r, which may be anything (the
// archive is the operator's, but it may be damaged or not a backup at
// all): the store goes to db, the small files are returned. It refuses a
// member it does not know (a name with a path in it, a link, a
// directory, a second copy), a small file over 1 MiB, a key list that
// does not list exactly the keys present, and an archive with no store.
func readBackup(r io.Reader, db io.Writer) (backupContents, error) {
	var c backupContents
	seen := map[string]bool{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return c, fmt.Errorf("not a readable backup archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg || seen[h.Name] || h.Size < 0 {
			return c, fmt.Errorf("the archive holds %q (type %c), which is not a file of a backup", h.Name, h.Typeflag)
		}
		seen[h.Name] = true
		name, isKey := strings.CutPrefix(h.Name, archiveKeys)
		switch {
		case h.Name == archiveStore:
			if _, err := io.Copy(db, tr); err != nil {
				return c, fmt.Errorf("reading the store from the archive: %w", err)
			}
			continue
		case h.Size > maxSmallFile:
			return c, fmt.Errorf("%q is %d bytes: no key or secret is that large", h.Name, h.Size)
		case !slices.Contains(dataDirFiles, h.Name) && !(isKey && name != "" && !strings.ContainsAny(name, `/\`) && name != "." && name != ".."):
			return c, fmt.Errorf("the archive holds %q, which is not a file of a backup", h.Name)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return c, fmt.Errorf("reading %q from the archive: %w", h.Name, err)
		}
		if isKey {
			if c.keys == nil {
				c.keys = map[string][]byte{}
			}
			c.keys[name] = b
		} else {
			if c.files == nil {
				c.files = map[string][]byte{}
			}
			c.files[h.Name] = b
		}
	}
	if !seen[archiveStore] {
		return c, errors.New("the archive holds no store (fednode.db): it is not a fednode backup")
	}
	if len(c.keys) > 0 {
		list, ok := c.keys[keys.LocalListFile]
		if !ok {
			return c, errors.New("the archive holds keys but not their list, keys/" + keys.LocalListFile)
		}
		names, err := keys.LocalFileNames(list)
		if err != nil {
			return c, err
		}
		names = append(names, keys.LocalListFile)
		if len(names) != len(c.keys) {
			return c, fmt.Errorf("keys/%s lists %d keys, the archive holds %d key files", keys.LocalListFile, len(names)-1, len(c.keys)-1)
		}
		for _, n := range names {
			if _, ok := c.keys[n]; !ok {
				return c, fmt.Errorf("keys/%s lists %s, which the archive does not hold", keys.LocalListFile, n)
			}
		}
	}
	return c, nil
}

// extractStore reads the archive at file, writing its store to a new file
// at dbPath, and checks that copy in full.
func extractStore(ctx context.Context, file, dbPath string) (backupContents, *bolt.Report, error) {
	f, err := os.Open(file)
	if err != nil {
		return backupContents{}, nil, err
	}
	defer f.Close()
	out, err := os.OpenFile(dbPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return backupContents{}, nil, err
	}
	c, err := readBackup(f, out)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return c, nil, fmt.Errorf("%s: %w", file, err)
	}
	rep, err := bolt.Check(ctx, dbPath, 2*time.Second)
	return c, rep, err
}

// verifyBackup reads a backup back and checks its store, from a copy
// beside it that it then removes.
func verifyBackup(ctx context.Context, file string) (*bolt.Report, error) {
	tmp := file + ".verify"
	os.Remove(tmp)
	defer os.Remove(tmp)
	_, rep, err := extractStore(ctx, file, tmp)
	if err != nil {
		return nil, fmt.Errorf("backup: verify: %w", err)
	}
	rep.Path = file + " (its fednode.db)"
	return rep, nil
}

// Restore makes DATA_DIR the node the backup at file was taken of: its
// store, keys and development secret. The node must be stopped, and
// DATA_DIR must hold neither a store nor keys: a restore never replaces
// them (move them aside first). The store is checked in full before
// anything is written, and put in place last, so a restore cut short
// leaves no store and the node does not start on half of one.
func Restore(ctx context.Context, cfg Config, file string) (*bolt.Report, error) {
	if cfg.RedisURL != "" {
		return nil, fmt.Errorf("restore: %w", ErrRedisBackup)
	}
	for _, p := range []string{storeFile(cfg), filepath.Join(cfg.DataDir, "keys", keys.LocalListFile), filepath.Join(cfg.DataDir, keys.KEKFile), filepath.Join(cfg.DataDir, adminSocketFile)} {
		if _, err := os.Stat(p); err == nil {
			return nil, fmt.Errorf("restore: %s exists, and a restore never replaces a node's store or keys. Stop the node and move its DATA_DIR aside first (mv %s %s.before-restore), then restore into an empty one", p, cfg.DataDir, cfg.DataDir)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	tmp := filepath.Join(cfg.DataDir, ".fednode.db.restore")
	os.Remove(tmp)
	c, rep, err := extractStore(ctx, file, tmp)
	if err == nil && rep.Damaged() {
		err = fmt.Errorf("the store in the backup fails its check; nothing was restored")
	}
	if err != nil {
		os.Remove(tmp)
		return rep, fmt.Errorf("restore: %w", err)
	}
	if len(c.keys) > 0 {
		dir := filepath.Join(cfg.DataDir, "keys")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		for name, b := range c.keys {
			if err := writeSynced(filepath.Join(dir, name), b); err != nil {
				return nil, fmt.Errorf("restore: %w", err)
			}
		}
		atomicfile.SyncDir(dir)
	}
	for name, b := range c.files {
		if err := writeSynced(filepath.Join(cfg.DataDir, name), b); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	if err := os.Rename(tmp, storeFile(cfg)); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	atomicfile.SyncDir(cfg.DataDir)
	rep.Path = storeFile(cfg)
	return rep, nil
}

// writeSynced writes a new file of mode 0600 and syncs it.
func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
