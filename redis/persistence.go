package redis

import (
	"context"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// CheckPersistence reports, for each master, how much an accepted message
// could be lost in a Redis crash: "" when append-only with fsync always.
func (s *Store) CheckPersistence(ctx context.Context) (_ []string, err error) {
	defer wrap(&err, "check persistence")
	var warnings []string
	check := func(ctx context.Context, c *goredis.Client) error {
		cfg, err := c.ConfigGet(ctx, "append*").Result()
		if err != nil {
			return err
		}
		addr := c.Options().Addr
		switch {
		case cfg["appendonly"] != "yes":
			warnings = append(warnings, addr+": appendonly is off: a Redis crash loses every message accepted since the last snapshot; set appendonly yes and appendfsync always")
		case cfg["appendfsync"] == "everysec":
			warnings = append(warnings, addr+": appendfsync everysec: a Redis crash can lose up to one second of accepted messages; set appendfsync always to lose none")
		case cfg["appendfsync"] == "no":
			warnings = append(warnings, addr+": appendfsync no: the OS decides when data reaches disk; a crash can lose accepted messages; set appendfsync always")
		}
		return nil
	}
	switch c := s.c.(type) {
	case *goredis.ClusterClient:
		var mu sync.Mutex // ForEachMaster runs the masters concurrently
		err = c.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return check(ctx, m)
		})
	case *goredis.Client:
		err = check(ctx, c)
	}
	return warnings, err
}
