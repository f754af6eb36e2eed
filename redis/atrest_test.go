package redis_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/redis"
	"github.com/fednode/fednode/storetest"
)

func TestAtRest(t *testing.T) {
	srv := redistest.Start(t)
	storetest.RunAtRest(t, func(t *testing.T) storetest.AtRest {
		ctx, sealer := context.Background(), storetest.NewSealer(t)
		s, err := redis.Open(ctx, redis.Options{URL: srv.URL(), Password: redistest.Password, Namespace: "atrest", Sealer: sealer})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		c := s.Client()
		return storetest.AtRest{
			Store: s, Sealer: sealer,
			// DUMP of every key, then the RDB that SAVE writes and the
			// append-only files, which log every command's arguments.
			Raw: func(t *testing.T) []byte {
				var raw bytes.Buffer
				// Uncompressed, or DUMP and the RDB would hide text in LZF.
				if err := c.ConfigSet(ctx, "rdbcompression", "no").Err(); err != nil {
					t.Fatal(err)
				}
				keys, err := c.Keys(ctx, "*").Result()
				if err != nil || len(keys) == 0 {
					t.Fatalf("keys %v, %v", keys, err)
				}
				for _, k := range keys {
					d, err := c.Dump(ctx, k).Result()
					if err != nil {
						t.Fatal(err)
					}
					raw.WriteString(d)
				}
				if err := c.Save(ctx).Err(); err != nil {
					t.Fatal(err)
				}
				dir, err := c.ConfigGet(ctx, "dir").Result()
				if err != nil {
					t.Fatal(err)
				}
				files := 0
				filepath.WalkDir(dir["dir"], func(path string, e os.DirEntry, err error) error {
					if err == nil && !e.IsDir() && (strings.HasSuffix(path, ".rdb") || strings.Contains(path, ".aof")) {
						b, _ := os.ReadFile(path)
						raw.Write(b)
						files++
					}
					return nil
				})
				if files < 2 {
					t.Fatalf("found %d RDB and AOF files in %s", files, dir["dir"])
				}
				return raw.Bytes()
			},
			Damage: func(t *testing.T, id string) {
				k := "{atrest}:m:" + redis.Part(id)
				v, err := c.Get(ctx, k).Bytes()
				if err != nil {
					t.Fatal(err)
				}
				i := bytes.Index(v, []byte(`\"c\":\"`))
				if i < 0 {
					t.Fatalf("no ciphertext in the stored record %q", v)
				}
				i += 8
				v[i] ^= 1 // a base64 letter stays a base64 letter
				if err := c.Set(ctx, k, v, 0).Err(); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}
