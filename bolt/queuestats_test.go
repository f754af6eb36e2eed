package bolt_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/bolt"
)

// TestQueueStatsCountedAtOpen: the depths QueueStats reports are kept in
// memory, so a reopened store must count them again from the file, deep
// queues (several pages of jobs) included.
func TestQueueStatsCountedAtOpen(t *testing.T) {
	dir, ctx := t.TempDir(), context.Background()
	open := func() *bolt.Store {
		db, err := bolt.Open(ctx, bolt.Options{Dir: dir, Timeout: time.Second, Create: true})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 300 {
		peer := "b.example"
		if i%100 == 0 {
			peer = "c.example"
		}
		m := fednode.Message{ID: fmt.Sprintf("m%03d", i), From: fednode.Address{User: "a", Domain: "a.example"},
			To: fednode.Address{User: "b", Domain: peer}, Content: "x", CreatedAt: t0.Add(time.Duration(i) * time.Second)}
		if _, err := db.AppendOutgoing(ctx, m, "a"); err != nil {
			t.Fatal(err)
		}
	}
	jobs, _ := db.PeerJobs(ctx, "c.example", 0, 1)
	db.FinishJobs(ctx, "c.example", []fednode.JobResult{{Seq: jobs[0].Seq, MessageID: jobs[0].MessageID, Status: fednode.StatusFailed, Reason: "x"}}, t0)
	before, err := db.QueueStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = open()
	defer db.Close()
	after, err := db.QueueStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	depth := map[string]int{}
	for _, p := range after.Peers {
		depth[p.Peer] = p.Depth
	}
	if len(after.Peers) != 2 || depth["b.example"] != 297 || depth["c.example"] != 2 || after.DeadLetters != 1 || len(before.Peers) != 2 {
		t.Fatalf("before reopen %+v; after %+v", before, after)
	}
}
