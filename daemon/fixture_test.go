package daemon_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/atrest"
	"github.com/fednode/fednode/bolt"
	"github.com/fednode/fednode/client"
	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/internal/syncbuf"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/keys"
	"github.com/fednode/fednode/redis"
)

// The stored format of schema version 0 (every fednode before versions
// were kept), kept to prove that today's code upgrades it: testdata/store-v0
// holds a node's DATA_DIR (fednode.db and keys/) and redis.json, the same
// node's keys on Redis. `go test ./daemon -run GenerateStoreFixture
// -update-fixtures` makes them again; version 0 is version 1 without its
// version key (step 0 → 1 changes nothing else), so the generator writes
// with this code and deletes the key. When the schema version is raised,
// keep this fixture and add one of the version being left behind.
var updateFixtures = flag.Bool("update-fixtures", false, "regenerate testdata/store-v0")

const (
	fixtureDir = "testdata/store-v0"
	fixtureA   = "127.0.0.71:47101" // the fixture's node: its domain is in every record
	fixtureB   = "127.0.0.72:47102" // the peer it delivered to and has jobs queued for
	fixtureNS  = "fixture"
	fixtureBan = "203.0.113.9"
)

// fixtureNode is one of the fixture's two nodes, at its fixed address,
// with fixed keys, retrying fast, and never giving a job up however old.
func fixtureNode(addr string, firstKey int) nodeOption {
	return func(c *daemon.Config, gen *keysFrom) {
		c.ListenAddr = addr
		k := firstKey
		*gen = func() (*rsa.PrivateKey, error) { k++; return testkeys.Key((k - 1) % testkeys.Count), nil }
		fastRetry(c)
		c.OutboxGiveUpAfter = 100 * 365 * 24 * time.Hour
	}
}

// fixtureOnRedis puts the fixture's node on Redis.
func fixtureOnRedis(url string) func(*daemon.Config) {
	return func(c *daemon.Config) {
		c.RedisURL, c.RedisPassword, c.RedisNamespace = url, redistest.Password, fixtureNS
	}
}

func TestGenerateStoreFixture(t *testing.T) {
	if !*updateFixtures {
		t.Skip("regenerates testdata/store-v0 with -update-fixtures")
	}
	ctx := context.Background()
	a := fillFixture(t)
	os.RemoveAll(fixtureDir)
	copyTree(t, filepath.Join(a.cfg.DataDir, "keys"), filepath.Join(fixtureDir, "keys"))
	db, err := bbolt.Open(filepath.Join(a.cfg.DataDir, "fednode.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte("meta")).Delete([]byte(fednode.SchemaKey)) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(a.cfg.DataDir, "fednode.db"), filepath.Join(fixtureDir, "fednode.db"))

	srv := redistest.Start(t)
	dir := t.TempDir() // the same node, on Redis
	copyTree(t, filepath.Join(fixtureDir, "keys"), filepath.Join(dir, "keys"))
	fillFixture(t, fixtureOnRedis(srv.URL()), func(c *daemon.Config) { c.DataDir = dir })
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, Password: redistest.Password})
	defer c.Close()
	prefix := "{" + fixtureNS + "}:"
	c.Del(ctx, prefix+"meta:"+fednode.SchemaKey)
	b, err := json.MarshalIndent(dumpRedis(t, c, prefix), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fixtureDir, "redis.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fillFixture runs the fixture's scenario on a node (options add to it)
// and its peer: users, sessions, messages delivered both ways and local,
// jobs queued for the peer once it is down, a failed login, an admin, a
// ban and the peer's cached document. It returns the stopped node.
func fillFixture(t *testing.T, opts ...any) *testNode {
	ctx := context.Background()
	b := startNode(t, fixtureNode(fixtureB, 6))
	bob := b.user("bob")
	a := startNode(t, append([]any{fixtureNode(fixtureA, 4)}, opts...)...)
	alice, carol := a.user("alice"), a.user("carol")
	a.user("dave") // a session and nothing else
	waitStatus(t, a, alice, a.send(alice, "bob@"+fixtureB, "delivered before the upgrade"), "delivered")
	b.send(bob, "alice@"+fixtureA, "from bob before the upgrade")
	waitMailbox(t, a, alice, 2)
	a.send(carol, "alice@"+fixtureA, "local before the upgrade")
	doc := b.do("GET", federation.WellKnownPath, "", nil).Raw
	b.srv.Close()
	b.srv = nil
	for _, s := range []string{"queued 1 before the upgrade", "queued 2 before the upgrade"} {
		a.send(alice, "bob@"+fixtureB, s)
	}
	if _, err := a.api("").Login(ctx, "dave", "wrong password"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	a.srv.Close()
	a.srv = nil
	if err := daemon.Promote(ctx, a.cfg, "alice"); err != nil {
		t.Fatal(err)
	}
	s := openFixtureStore(t, a.cfg)
	defer s.Close()
	if err := s.SetBan(ctx, fednode.Ban{Key: fixtureBan, Until: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), Reason: "fixture", Level: 1, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PeerDocument(ctx, fixtureB); errors.Is(err, fednode.ErrNotFound) { // the embedded store's directory keeps it in memory
		if err := s.SetPeerDocument(ctx, fixtureB, []byte(doc), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func openFixtureStore(t *testing.T, cfg daemon.Config) fednode.Store {
	t.Helper()
	var s fednode.Store
	kek, err := keys.OpenLocalKEK(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	sealer := atrest.NewSealer(kek, nil)
	if cfg.RedisURL != "" {
		s, err = redis.Open(context.Background(), redis.Options{URL: cfg.RedisURL, Password: cfg.RedisPassword, Namespace: cfg.RedisNamespace, Sealer: sealer})
	} else {
		s, err = bolt.Open(context.Background(), bolt.Options{Dir: cfg.DataDir, Timeout: time.Second, Sealer: sealer})
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUpgradeFromStoreV0: a node started on the fixture of schema
// version 0, on either backend, logs the upgrade, and everything is there:
// its users log in (the admin is still admin), their messages are listed,
// the queued jobs are delivered once the peer is up, the ban holds, and
// sessions, login failures and the peer's document are readable.
func TestUpgradeFromStoreV0(t *testing.T) {
	for _, backend := range []string{"bolt", "redis"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			b := startNode(t, fixtureNode(fixtureB, 6))
			bob := b.user("bob")
			dir := t.TempDir()
			copyTree(t, filepath.Join(fixtureDir, "keys"), filepath.Join(dir, "keys"))
			opts := []any{fixtureNode(fixtureA, 4), func(c *daemon.Config) { c.DataDir = dir }}
			if backend == "bolt" {
				copyFile(t, filepath.Join(fixtureDir, "fednode.db"), filepath.Join(dir, "fednode.db"))
			} else {
				srv := redistest.Start(t)
				c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, Password: redistest.Password})
				defer c.Close()
				loadRedis(t, c, "{"+fixtureNS+"}:", filepath.Join(fixtureDir, "redis.json"))
				opts = append(opts, fixtureOnRedis(srv.URL()))
			}
			logs := &syncbuf.Buffer{}
			a := startNode(t, append(opts, logTo{logs})...)
			if !strings.Contains(logs.String(), "store schema upgraded from 0 to 1") || !strings.Contains(logs.String(), "store schema upgraded from 2 to 3") {
				t.Fatalf("no upgrade logged:\n%s", logs.String())
			}
			alice, carol := a.login("alice", "password-alice"), a.login("carol", "password-carol")
			want := []string{"delivered before the upgrade", "from bob before the upgrade", "local before the upgrade", "queued 1 before the upgrade", "queued 2 before the upgrade"}
			if got := contents(a.mailbox(alice)); !slices.Equal(got, want) {
				t.Fatalf("alice's mailbox: %q, want %q", got, want)
			}
			if got := contents(a.mailbox(carol)); !slices.Equal(got, []string{"local before the upgrade"}) {
				t.Fatalf("carol's mailbox: %q", got)
			}
			bans, err := a.api(alice).Bans(ctx) // an admin call: the role survived
			if err != nil || !slices.ContainsFunc(bans, func(b client.Ban) bool { return b.Key == fixtureBan }) {
				t.Fatalf("bans: %+v, %v", bans, err)
			}
			got := contents(waitMailbox(t, b, bob, 2))
			if !slices.Equal(got, want[3:]) {
				t.Fatalf("the jobs queued before the upgrade delivered %q", got)
			}
			a.srv.Close()
			a.srv = nil
			// Schema 3 sealed every message: no text of one is left at rest.
			var raw []byte
			if backend == "bolt" {
				if raw, err = os.ReadFile(filepath.Join(dir, "fednode.db")); err != nil {
					t.Fatal(err)
				}
			} else {
				c := goredis.NewClient(&goredis.Options{Addr: strings.TrimPrefix(a.cfg.RedisURL, "redis://"), Password: redistest.Password})
				defer c.Close()
				c.ConfigSet(ctx, "rdbcompression", "no") // DUMP would hide text in LZF otherwise
				for _, k := range c.Keys(ctx, "*").Val() {
					raw = append(raw, c.Dump(ctx, k).Val()...)
				}
			}
			if len(raw) == 0 || strings.Contains(string(raw), "before the upgrade") {
				t.Fatalf("message text at rest after the upgrade (%d bytes)", len(raw))
			}
			s := openFixtureStore(t, a.cfg)
			defer s.Close()
			if v, err := s.Meta(ctx, fednode.SchemaKey); err != nil || string(v) != strconv.Itoa(fednode.SchemaVersion) {
				t.Fatalf("schema version after the upgrade: %q %v", v, err)
			}
			// Schema 2 built the conversations of the old mailboxes.
			convs, err := s.Conversations(ctx, "alice", 0, 10)
			wantConvs := []fednode.Conversation{
				{With: "bob@" + fixtureB, LastCursor: 5, LastPreview: "queued 2 before the upgrade", LastFromMe: true, Unread: 1},
				{With: "carol@" + fixtureA, LastCursor: 3, LastPreview: "local before the upgrade", Unread: 1},
			}
			for i := range convs {
				convs[i].LastAt = time.Time{}
			}
			if err != nil || !reflect.DeepEqual(convs, wantConvs) {
				t.Fatalf("alice's conversations after the upgrade: %+v, %v; want %+v", convs, err, wantConvs)
			}
			if es, err := s.ConversationMessages(ctx, "alice", "bob@"+fixtureB, 0, 10); err != nil || len(es) != 4 || es[0].Cursor != 5 {
				t.Fatalf("alice's conversation with bob after the upgrade: %+v, %v", es, err)
			}
			if ids, err := s.DeleteUserSessions(ctx, "dave"); err != nil || len(ids) != 1 {
				t.Fatalf("dave's session from the fixture: %v %v", ids, err)
			}
			if _, _, err := s.PeerDocument(ctx, fixtureB); err != nil {
				t.Fatalf("the peer's document: %v", err)
			}
			if f, err := s.LoginFailures(ctx, "dave", time.Time{}); err != nil || len(f) != 1 {
				t.Fatalf("dave's failed login: %v %v", f, err)
			}
		})
	}
}

func contents(msgs []map[string]any) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m["content"].(string))
	}
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		copyFile(t, p, filepath.Join(to, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// redisKey is one key of a Redis fixture, named without the namespace.
type redisKey struct {
	Key    string            `json:"key"`
	Type   string            `json:"type"`
	String string            `json:"string,omitempty"`
	Hash   map[string]string `json:"hash,omitempty"`
	Set    []string          `json:"set,omitempty"`
	List   []string          `json:"list,omitempty"`
	ZSet   []goredis.Z       `json:"zset,omitempty"`
}

// dumpRedis reads every key of a namespace but those that expire (leases).
func dumpRedis(t *testing.T, c *goredis.Client, prefix string) []redisKey {
	ctx := context.Background()
	keys, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	var out []redisKey
	for _, k := range keys {
		if ttl, _ := c.PTTL(ctx, k).Result(); ttl > 0 {
			continue
		}
		r := redisKey{Key: strings.TrimPrefix(k, prefix), Type: c.Type(ctx, k).Val()}
		switch r.Type {
		case "string":
			r.String = c.Get(ctx, k).Val()
		case "hash":
			r.Hash = c.HGetAll(ctx, k).Val()
		case "set":
			r.Set = c.SMembers(ctx, k).Val()
			slices.Sort(r.Set)
		case "list":
			r.List = c.LRange(ctx, k, 0, -1).Val()
		case "zset":
			r.ZSet = c.ZRangeWithScores(ctx, k, 0, -1).Val()
		default:
			t.Fatalf("%s: a key of type %s, which the fixture cannot keep", k, r.Type)
		}
		out = append(out, r)
	}
	return out
}

// loadRedis writes a Redis fixture into a namespace.
func loadRedis(t *testing.T, c *goredis.Client, prefix, file string) {
	t.Helper()
	ctx := context.Background()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var keys []redisKey
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	for _, r := range keys {
		k := prefix + r.Key
		var err error
		switch r.Type {
		case "string":
			err = c.Set(ctx, k, r.String, 0).Err()
		case "hash":
			err = c.HSet(ctx, k, r.Hash).Err()
		case "set":
			err = c.SAdd(ctx, k, anys(r.Set)...).Err()
		case "list":
			err = c.RPush(ctx, k, anys(r.List)...).Err()
		case "zset":
			err = c.ZAdd(ctx, k, r.ZSet...).Err()
		}
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
}

func anys(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
