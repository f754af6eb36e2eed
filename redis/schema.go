package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode"
)

// migration is one step of the Redis store's schema (see
// fednode.SchemaVersion). Redis has no transaction across a scan of many
// keys, so a step must be idempotent: a replica that dies during one
// leaves the version where it was, and the next runs the step again. The
// version is then moved on by a compare-and-set, and only by the replica
// that holds the upgrade lease, so replicas starting together never run a
// step twice at once.
type migration struct {
	name  string
	apply func(ctx context.Context, s *Store) error
}

// migrations[v] upgrades a store of schema version v to v+1. Append a step
// to change the format; never edit or remove one that has shipped.
var migrations = []migration{
	// 0 → 1: the format of every fednode before versions were kept is
	// version 0. Stores of that time queued jobs without the index by
	// message id (obidx) that GET /api/messages/{id}, redrive and purge
	// read; this step builds it for the jobs already queued (idempotent:
	// it writes the same entries again).
	{name: "index queued jobs by message id", apply: indexQueuedJobs},
	// 1 → 2: each user's conversation index (conversations.go), which
	// appends keep from version 2 on, built from the mailboxes.
	{name: "index conversations", apply: indexMailboxes},
	// 2 → 3: message content and tags sealed at rest (atrest.go), and the
	// conversation index's clear previews replaced by the last message's id.
	{name: "seal messages at rest", apply: sealMessages},
}

// indexQueuedJobs writes the obidx entry of every queued job.
func indexQueuedJobs(ctx context.Context, s *Store) error {
	peers, err := s.c.SMembers(ctx, s.key("obpeers")).Result()
	if err != nil {
		return err
	}
	for _, p := range peers {
		jobs, err := s.c.HGetAll(ctx, s.key("obj", p)).Result()
		if err != nil {
			return err
		}
		if len(jobs) == 0 {
			continue
		}
		idx := make(map[string]any, len(jobs))
		for seq, v := range jobs {
			var j fednode.Job
			if err := decodeReply(v, &j); err != nil {
				return fmt.Errorf("job %s of %s: %w", seq, p, err)
			}
			idx[j.MessageID] = seq
		}
		if err := s.c.HSet(ctx, s.key("obidx", p), idx).Err(); err != nil {
			return err
		}
	}
	return nil
}

// upgradeLease is the lease the replica that upgrades the schema holds;
// the others wait for it.
const (
	upgradeLease    = "schema-upgrade"
	upgradeLeaseTTL = 30 * time.Second
	upgradePoll     = 250 * time.Millisecond
)

// setVersion moves the version from ARGV[1] ("" for none) to ARGV[2], or
// answers 0 when someone else moved it.
var setVersion = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false then cur = '' end
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`)

// schemaVersion reads the version; present is false when none is recorded.
func (s *Store) schemaVersion(ctx context.Context) (v int, present bool, err error) {
	b, err := s.c.Get(ctx, s.key("meta", fednode.SchemaKey)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	v, err = fednode.ParseSchemaVersion(b)
	return v, true, err
}

// empty reports whether the namespace holds no key at all: a store never
// used, which is given the current version rather than upgraded. Every key
// of the namespace is in one hash slot, so on a cluster the master of that
// slot holds them all.
func (s *Store) empty(ctx context.Context) (bool, error) {
	c, err := s.slotClient(ctx)
	if err != nil {
		return false, err
	}
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, s.prefix+"*", 1000).Result()
		if err != nil || len(keys) > 0 {
			return false, err
		}
		if cursor = next; cursor == 0 {
			return true, nil
		}
	}
}

// upgrade brings the store to the version of steps: it refuses a newer
// store, gives a never-used one the current version, and upgrades an older
// one step by step under the upgrade lease, while the other replicas wait.
func (s *Store) upgrade(ctx context.Context, steps []migration, log *slog.Logger) (err error) {
	defer wrap(&err, "schema upgrade")
	owner := make([]byte, 12)
	rand.Read(owner)
	me := hex.EncodeToString(owner)
	waiting := false
	for {
		v, present, err := s.schemaVersion(ctx)
		if err != nil {
			return err
		}
		if !present {
			if fresh, err := s.empty(ctx); err != nil {
				return err
			} else if fresh {
				if err := setVersion.Run(ctx, s.c, []string{s.key("meta", fednode.SchemaKey)}, "", len(steps)).Err(); err != nil {
					return err
				}
				continue // read what was stored: this, or another replica's
			}
		}
		switch {
		case v > len(steps):
			return &fednode.SchemaTooNewError{Store: fmt.Sprintf("Redis namespace %q", strings.Trim(s.prefix, "{}:")), Found: v, Supported: len(steps)}
		case v == len(steps):
			return nil
		}
		held, err := s.AcquireLease(ctx, upgradeLease, me, upgradeLeaseTTL)
		if err != nil {
			return err
		}
		if held {
			err := s.runSteps(ctx, steps, me, log)
			s.ReleaseLease(context.WithoutCancel(ctx), upgradeLease, me)
			if err != nil {
				return err
			}
			continue
		}
		if !waiting {
			log.Info("store schema: another replica is upgrading the store; waiting for it", "store", s.prefix, "from", v, "to", len(steps))
			waiting = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for another replica's upgrade: %w", ctx.Err())
		case <-time.After(upgradePoll):
		}
	}
}

// runSteps runs the steps from the stored version on, renewing the lease
// while they run; a step whose lease is lost is cancelled.
func (s *Store) runSteps(ctx context.Context, steps []migration, me string, log *slog.Logger) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		t := time.NewTicker(upgradeLeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if held, err := s.AcquireLease(ctx, upgradeLease, me, upgradeLeaseTTL); err != nil || !held {
					cancel(fmt.Errorf("the upgrade lease was lost (%v)", err))
					return
				}
			}
		}
	}()
	v, present, err := s.schemaVersion(ctx) // under the lease: another replica may have finished
	if err != nil {
		return err
	}
	for ; v < len(steps); v++ {
		start := time.Now()
		if err := steps[v].apply(ctx, s); err != nil {
			if cause := context.Cause(ctx); cause != nil {
				err = fmt.Errorf("%w: %w", err, cause)
			}
			return fmt.Errorf("from %d to %d (%s): %w; the store is still at version %d", v, v+1, steps[v].name, err, v)
		}
		from := ""
		if present {
			from = string(fednode.FormatSchemaVersion(v))
		}
		ok, err := setVersion.Run(ctx, s.c, []string{s.key("meta", fednode.SchemaKey)}, from, v+1).Int()
		if err != nil {
			return err
		}
		if ok != 1 {
			return fmt.Errorf("from %d to %d: the version changed under the upgrade; is a replica of another fednode running?", v, v+1)
		}
		present = true
		log.Info(fednode.SchemaUpgraded(v), "store", s.prefix, "from", v, "to", v+1, "step", steps[v].name, "took", time.Since(start))
	}
	return nil
}
