package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// imageUID is the user the container image runs the node as (distroless's
// nonroot), and the owner of the image's /data.
const imageUID = 65532

// UsesDataDir reports whether the node keeps anything in DATA_DIR: the
// embedded store, local keys, or the development JWT secret. A node on
// Redis with its keys and JWT secret in Vault needs no DATA_DIR at all.
func (c Config) UsesDataDir() bool {
	return c.RedisURL == "" || c.KeysBackend == "local" || c.JWTSecret == "" && c.JWTSecretVaultPath == ""
}

// checkDataDir makes DATA_DIR when it is missing and proves that this
// process can write there, by creating a file and removing it, before the
// node writes anything that matters. A directory it cannot write is the
// commonest first-start failure in a container (a root-owned volume, a
// read-only mount); without this check it surfaces later as a bare
// "permission denied" on whichever file comes first.
func checkDataDir(dir string) error {
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		var f *os.File
		if f, err = os.CreateTemp(dir, ".fednode-write-check-*"); err == nil {
			f.Close()
			err = os.Remove(f.Name())
		}
	}
	if err != nil {
		return dataDirError(dir, os.Getuid(), err)
	}
	return nil
}

// dataDirError is the one message an operator sees when DATA_DIR is not
// writable: the path, the user the node runs as, the cause, and the fix.
func dataDirError(dir string, uid int, err error) error {
	mode := ""
	if st, serr := os.Stat(dir); serr == nil {
		mode = fmt.Sprintf(" (%v)", st.Mode())
	}
	var fix string
	switch {
	case errors.Is(err, syscall.EROFS):
		fix = fmt.Sprintf(`It is on a read-only file system. Mount a writable volume at %s
(in a container with a read-only root: docker run -v fednode-data:%[1]s, or volumes: ["fednode-data:%[1]s"] in compose).`, dir)
	case errors.Is(err, fs.ErrPermission):
		fix = fmt.Sprintf(`Give the directory to the node's user: chown -R %d %s
In a container, mount a named volume at %[2]s: a fresh one takes the image's ownership of /data (uid %[3]d);
a directory bind-mounted from the host keeps its host owner, so chown it to uid %[1]d on the host.`, uid, dir, imageUID)
	default:
		fix = "Make sure the path is a directory on a file system with free space."
	}
	return fmt.Errorf("DATA_DIR %s%s is not writable by the user the node runs as (uid %d): %w\n%s", dir, mode, uid, err, fix)
}
