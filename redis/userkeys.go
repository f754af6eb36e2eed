package redis

import (
	"context"
	"encoding/json"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode"
)

// User keys. "uk:<canonical name>" is the JSON fednode.StoredUserKeys of a
// user's published end-to-end keys (the backup sealed at rest); DeleteUser
// deletes it with the account.

// putUserKeys sets KEYS[2] to ARGV[1] when the user KEYS[1] exists.
var putUserKeys = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
return 1`)

// PutUserKeys stores (or replaces) a user's end-to-end keys.
func (s *Store) PutUserKeys(ctx context.Context, username string, k fednode.UserKeys) (err error) {
	defer wrap(&err, "put user keys")
	name := fednode.CanonicalUsername(username)
	r, err := fednode.SealUserKeys(ctx, s.sealer, name, k)
	if err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	n, err := putUserKeys.Run(ctx, s.c, []string{s.key("u", name), s.key("uk", name)}, b).Int()
	if err == nil && n == 0 {
		return fednode.ErrNotFound
	}
	return err
}

// UserKeys returns a user's end-to-end keys.
func (s *Store) UserKeys(ctx context.Context, username string) (_ fednode.UserKeys, err error) {
	defer wrap(&err, "user keys")
	name := fednode.CanonicalUsername(username)
	var r fednode.StoredUserKeys
	if err := getJSON(ctx, s.c, s.key("uk", name), &r); err != nil {
		return fednode.UserKeys{}, err
	}
	return fednode.OpenUserKeys(ctx, s.sealer, name, r) // a backup that does not open: damage, counted by the sealer
}

// DeleteUserKeys removes a user's end-to-end keys.
func (s *Store) DeleteUserKeys(ctx context.Context, username string) (err error) {
	defer wrap(&err, "delete user keys")
	return s.c.Del(ctx, s.key("uk", fednode.CanonicalUsername(username))).Err()
}
