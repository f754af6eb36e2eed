package daemon

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"
)

func tarOf(tb testing.TB, files ...string) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o600, Size: int64(len(files[i+1])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[i+1]))
	}
	tw.Close()
	return buf.Bytes()
}

const keyList = `[{"id":"sig-0a","use":"sig"}]`

// TestReadBackupRefuses: what is not a backup, or would write outside the
// data directory, is refused before anything is restored.
func TestReadBackupRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		archive []byte
		want    string
	}{
		{"not a tar", []byte("hello"), "not a readable backup"},
		{"no store", tarOf(t, "jwt_secret", "s"), "no store"},
		{"a path out", tarOf(t, "fednode.db", "x", "../etc/passwd", "x"), "not a file of a backup"},
		{"a path in keys", tarOf(t, "fednode.db", "x", "keys/../../x", "x"), "not a file of a backup"},
		{"keys without their list", tarOf(t, "fednode.db", "x", "keys/sig-0a.pem", "k"), "not their list"},
		{"a listed key missing", tarOf(t, "fednode.db", "x", "keys/keyring.json", keyList), "lists 1 keys"},
		{"an unlisted key", tarOf(t, "fednode.db", "x", "keys/keyring.json", `[]`, "keys/sig-0a.pem", "k"), "lists 0 keys"},
		{"a bad key id", tarOf(t, "fednode.db", "x", "keys/keyring.json", `[{"id":"../x"}]`, "keys/../x.pem", "k"), "not a file of a backup"},
		{"twice", tarOf(t, "fednode.db", "x", "fednode.db", "y"), "not a file of a backup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := readBackup(bytes.NewReader(tc.archive), io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
		})
	}
	var db bytes.Buffer
	c, err := readBackup(bytes.NewReader(tarOf(t, "fednode.db", "store", "keys/keyring.json", keyList, "keys/sig-0a.pem", "k", "jwt_secret", "s")), &db)
	if err != nil || db.String() != "store" || string(c.keys["sig-0a.pem"]) != "k" || string(c.files["jwt_secret"]) != "s" {
		t.Fatalf("a good archive: %v %+v", err, c)
	}
}

// FuzzReadBackup: no archive makes the reader panic, or return a key file
// name that could leave the keys directory.
func FuzzReadBackup(f *testing.F) {
	f.Add(tarOf(f, "fednode.db", "x", "keys/keyring.json", keyList, "keys/sig-0a.pem", "k"))
	f.Add(tarOf(f, "fednode.db", "x", "jwt_secret", "s"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := readBackup(bytes.NewReader(b), io.Discard)
		if err != nil {
			return
		}
		for name := range c.keys {
			if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
				t.Fatalf("a key file named %q", name)
			}
		}
	})
}
