package bolt

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// generate writes a store of about size bytes into dir with the node's own
// layout and records (appendOne, as the group committer writes them):
// 1,000 users, messages of 200 to 1,200 bytes of text between them, each in
// two mailboxes; one in ten of the last 5,000 waits in the outbox (delivered
// jobs leave it). It skips fsync (NoSync) and commits 5,000 messages at a
// time: only the file matters, not how it was made.
func generate(tb testing.TB, dir string, size int64) string {
	tb.Helper()
	path := filepath.Join(dir, fileName)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{NoSync: true, NoGrowSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("the node stores every message durably before it answers and pushes it live over a socket to each device of the user")
	text := func() string {
		var b strings.Builder
		for n := 200 + rng.IntN(1000); b.Len() < n; {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		return b.String()
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bUsers, bSessions, bUserSessions, bMessages, bMailboxes, bFailures, bOutbox, bDead, bBans, bPeers, bMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		for i := range 1000 {
			u := fednode.User{Username: fmt.Sprintf("user%04d", i), PasswordHash: strings.Repeat("h", 60), CreatedAt: t0}
			if err := put(tx.Bucket(bUsers), []byte(u.Username), u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	for n, done := 0, false; !done; {
		st, err := os.Stat(path)
		if err != nil {
			tb.Fatal(err)
		}
		done = st.Size() >= size
		err = db.Update(func(tx *bbolt.Tx) error {
			for range 5000 {
				from, to := fmt.Sprintf("user%04d", rng.IntN(1000)), fmt.Sprintf("user%04d", rng.IntN(1000))
				m := fednode.Message{ID: fednode.NewID(t0.Add(time.Duration(n) * time.Millisecond)), From: fednode.Address{User: from, Domain: "a.test"},
					To: fednode.Address{User: to, Domain: "a.test"}, Content: text(), CreatedAt: t0.Add(time.Duration(n) * time.Millisecond)}
				job := done && n%10 == 0
				if job {
					m.To.Domain = "b.test"
				}
				if _, err := appendOne(tx, m, []string{from, to}, job); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return path
}

// BenchmarkCheck measures the checks and reports their cost in seconds per
// GiB: "pages" (the page walk and bbolt's Tx.Check), "start" (that and the
// records of every bucket but messages and mailboxes: what Open runs) and
// "records" (every record: what Check, fednode admin check-store, runs). FEDNODE_CHECK_BENCH_MB sets the
// store's size (default 256); FEDNODE_CHECK_BENCH_KEEP keeps the generated
// file in that directory, to time "fednode admin check-store" on it.
//
//	FEDNODE_CHECK_BENCH_MB=1024 go test ./bolt -run '^$' -bench Check -benchtime 3x
func BenchmarkCheck(b *testing.B) {
	mb := int64(256)
	if s := os.Getenv("FEDNODE_CHECK_BENCH_MB"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		mb = v
	}
	dir := b.TempDir()
	if keep := os.Getenv("FEDNODE_CHECK_BENCH_KEEP"); keep != "" {
		dir = keep
		if err := os.MkdirAll(dir, 0o700); err != nil {
			b.Fatal(err)
		}
	}
	path := filepath.Join(dir, fileName)
	if _, err := os.Stat(path); err != nil {
		generate(b, dir, mb<<20)
	}
	st, _ := os.Stat(path)
	for _, c := range []struct {
		name  string
		scope recordScope
	}{{"pages", noRecords}, {"start", smallRecords}, {"records", allRecords}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				rep, err := check(context.Background(), path, time.Second, c.scope)
				if err != nil || rep.Damaged() {
					b.Fatalf("%v\n%s", err, rep)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/(float64(st.Size())/(1<<30)), "s/GiB")
			b.ReportMetric(float64(st.Size())/(1<<20), "MiB")
		})
	}
}
