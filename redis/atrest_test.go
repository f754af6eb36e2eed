package redis_test

import (
	"bytes"
	"context"
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
			Raw: func(t *testing.T) []byte { return srv.Raw(t) },
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
