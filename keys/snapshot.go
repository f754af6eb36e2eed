package keys

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// SnapshotLocal reads the files of a local keyring (dir as OpenLocal
// takes it) for a backup: keyring.json and every key it lists, by file
// name. A node may rotate or retire keys while it is read (a key file is
// written before the list that names it, and removed before the list
// that drops it), so a read that finds a listed key missing is taken
// again. No keyring gives no files and no error.
func SnapshotLocal(dir string) (map[string][]byte, error) {
	var err error
	for range 5 {
		var files map[string][]byte
		if files, err = readLocal(dir); err == nil {
			return files, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, err
}

func readLocal(dir string) (map[string][]byte, error) {
	list, err := os.ReadFile(filepath.Join(dir, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	files := map[string][]byte{metaFile: list}
	names, err := LocalFileNames(list)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		files[name] = b
	}
	return files, nil
}

var keyIDPattern = regexp.MustCompile(`^[a-z]{3}-[0-9a-f]{1,64}$`)

// LocalFileNames returns the key files a keyring.json lists, refusing a
// list that does not parse or names a file outside the keyring.
func LocalFileNames(list []byte) ([]string, error) {
	var metas []keyMeta
	if err := json.Unmarshal(list, &metas); err != nil {
		return nil, fmt.Errorf("keys: %s: %w", metaFile, err)
	}
	var names []string
	for _, m := range metas {
		if !keyIDPattern.MatchString(m.ID) {
			return nil, fmt.Errorf("keys: %s: %q is not a key id", metaFile, m.ID)
		}
		names = append(names, m.ID+".pem")
	}
	return names, nil
}

// LocalListFile is the name of a local keyring's list of keys.
const LocalListFile = metaFile
