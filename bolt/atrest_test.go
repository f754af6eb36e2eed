package bolt

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode/storetest"
)

func TestAtRest(t *testing.T) {
	storetest.RunAtRest(t, func(t *testing.T) storetest.AtRest {
		dir, sealer := t.TempDir(), storetest.NewSealer(t)
		d, err := Open(context.Background(), Options{Dir: dir, Timeout: time.Second, Create: true, Sealer: sealer})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return storetest.AtRest{
			Store: d, Sealer: sealer,
			Raw: func(t *testing.T) []byte {
				b, err := os.ReadFile(filepath.Join(dir, fileName))
				if err != nil {
					t.Fatal(err)
				}
				return b
			},
			Damage: func(t *testing.T, id string) {
				err := d.db.Update(func(tx *bbolt.Tx) error {
					b := tx.Bucket(bMessages)
					v := bytes.Clone(b.Get([]byte(id)))
					i := bytes.Index(v, []byte(`\"c\":\"`))
					if i < 0 {
						t.Fatalf("no ciphertext in the stored record %q", v)
					}
					i += 8
					v[i] ^= 1 // a base64 letter stays a base64 letter
					return b.Put([]byte(id), v)
				})
				if err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}
