package storetest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/fednode/fednode"
)

// testQueueStats: QueueStats follows every write that adds or ends jobs
// or dead letters (enqueue, finish, redrive, purge): each waiting peer with
// its depth and the enqueue time of its first job, drained peers gone, and
// the dead letters counted once each.
func testQueueStats(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	st, err := s.QueueStats(ctx)
	if err != nil || len(st.Peers) != 0 || st.DeadLetters != 0 {
		t.Fatalf("fresh store: %+v, %v", st, err)
	}
	enqueue := func(id, domain string, at time.Time) {
		t.Helper()
		m := remote(id, "alice", "bob")
		m.To.Domain, m.CreatedAt = domain, at
		if _, err := s.AppendOutgoing(ctx, m, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		enqueue(fmt.Sprintf("b%d", i), "b.example", t0.Add(time.Duration(i)*time.Minute))
	}
	for i := range 2 {
		enqueue(fmt.Sprintf("c%d", i), "c.example:8443", t0.Add(time.Hour+time.Duration(i)*time.Minute))
	}
	if _, err := s.AppendOutgoing(ctx, remote("b0", "alice", "bob"), "alice"); err == nil {
		t.Fatal("a duplicate must be refused")
	}
	want := func(dead int, peers ...fednode.PeerQueue) {
		t.Helper()
		st, err := s.QueueStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].Peer < st.Peers[j].Peer })
		ok := len(st.Peers) == len(peers) && st.DeadLetters == dead
		for i := 0; ok && i < len(peers); i++ {
			ok = st.Peers[i].Peer == peers[i].Peer && st.Peers[i].Depth == peers[i].Depth && st.Peers[i].Oldest.Equal(peers[i].Oldest)
		}
		if !ok {
			t.Fatalf("QueueStats = %+v, want %+v and %d dead letters", st, peers, dead)
		}
	}
	want(0, fednode.PeerQueue{Peer: "b.example", Depth: 5, Oldest: t0}, fednode.PeerQueue{Peer: "c.example:8443", Depth: 2, Oldest: t0.Add(time.Hour)})

	jobs, _ := s.PeerJobs(ctx, "b.example", 0, 10)
	err = s.FinishJobs(ctx, "b.example", []fednode.JobResult{
		{Seq: jobs[0].Seq, MessageID: "b0", Status: fednode.StatusDelivered},
		{Seq: jobs[2].Seq, MessageID: "b2", Status: fednode.StatusFailed, Reason: "unknown_recipient"},
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	// Finishing a job already finished changes nothing.
	s.FinishJobs(ctx, "b.example", []fednode.JobResult{{Seq: jobs[0].Seq, MessageID: "b0", Status: fednode.StatusDelivered}}, t0)
	want(1, fednode.PeerQueue{Peer: "b.example", Depth: 3, Oldest: t0.Add(time.Minute)}, fednode.PeerQueue{Peer: "c.example:8443", Depth: 2, Oldest: t0.Add(time.Hour)})

	cjobs, _ := s.PeerJobs(ctx, "c.example:8443", 0, 10)
	var results []fednode.JobResult
	for _, j := range cjobs {
		results = append(results, fednode.JobResult{Seq: j.Seq, MessageID: j.MessageID, Status: fednode.StatusFailed, Reason: "gave up"})
	}
	if err := s.FinishJobs(ctx, "c.example:8443", results, t0); err != nil {
		t.Fatal(err)
	}
	want(3, fednode.PeerQueue{Peer: "b.example", Depth: 3, Oldest: t0.Add(time.Minute)})

	// Redriving c.example's dead letters queues them again at the tail;
	// purging the rest forgets them.
	later := t0.Add(24 * time.Hour)
	if got, err := s.RedriveDeadLetters(ctx, fednode.DeadLetterFilter{Peer: "c.example:8443"}, later); err != nil || len(got) != 2 {
		t.Fatalf("redrive: %+v, %v", got, err)
	}
	want(1, fednode.PeerQueue{Peer: "b.example", Depth: 3, Oldest: t0.Add(time.Minute)}, fednode.PeerQueue{Peer: "c.example:8443", Depth: 2, Oldest: later})
	if got, err := s.PurgeDeadLetters(ctx, fednode.DeadLetterFilter{}); err != nil || len(got) != 1 {
		t.Fatalf("purge: %+v, %v", got, err)
	}
	want(0, fednode.PeerQueue{Peer: "b.example", Depth: 3, Oldest: t0.Add(time.Minute)}, fednode.PeerQueue{Peer: "c.example:8443", Depth: 2, Oldest: later})

	// A dead letter whose message its sender deletes from their view, or
	// whose sender is deleted, is gone, and counted gone.
	jobs, _ = s.PeerJobs(ctx, "b.example", 0, 10)
	results = nil
	for _, j := range jobs[:2] {
		results = append(results, fednode.JobResult{Seq: j.Seq, MessageID: j.MessageID, Status: fednode.StatusFailed, Reason: "gave up"})
	}
	if err := s.FinishJobs(ctx, "b.example", results, t0); err != nil {
		t.Fatal(err)
	}
	want(2, fednode.PeerQueue{Peer: "b.example", Depth: 1, Oldest: t0.Add(4 * time.Minute)}, fednode.PeerQueue{Peer: "c.example:8443", Depth: 2, Oldest: later})
	if err := s.DeleteMailboxMessage(ctx, "alice", jobs[0].MessageID, "a.example"); err != nil {
		t.Fatal(err)
	}
	want(1, fednode.PeerQueue{Peer: "b.example", Depth: 1, Oldest: t0.Add(4 * time.Minute)}, fednode.PeerQueue{Peer: "c.example:8443", Depth: 2, Oldest: later})
}
