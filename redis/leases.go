package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

var acquireLease = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`)

var releaseLease = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`)

// AcquireLease takes or renews the named lease for owner. Leases expire in
// Redis time, so a holder that dies is taken over after ttl.
func (s *Store) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (_ bool, err error) {
	defer wrap(&err, "acquire lease")
	n, err := acquireLease.Run(ctx, s.c, []string{s.key("lease", name)}, owner, ttl.Milliseconds()).Int()
	return n == 1, err
}

// ReleaseLease gives the lease up if owner holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) (err error) {
	defer wrap(&err, "release lease")
	return releaseLease.Run(ctx, s.c, []string{s.key("lease", name)}, owner).Err()
}
