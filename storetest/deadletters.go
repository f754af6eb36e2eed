package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fednode/fednode"
)

// enqueueTo queues messages from alice to bob at domain, returning their jobs
// in order.
func enqueueTo(t *testing.T, s fednode.Store, domain string, ids ...string) []fednode.Job {
	t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		m := remote(id, "alice", "bob")
		m.To.Domain = domain
		if _, err := s.AppendOutgoing(ctx, m, "alice"); err != nil {
			t.Fatalf("AppendOutgoing %s: %v", id, err)
		}
	}
	jobs, err := s.PeerJobs(ctx, domain, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return jobs[len(jobs)-len(ids):]
}

// fail ends jobs as failed with code, making them dead letters.
func fail(t *testing.T, s fednode.Store, domain, code string, jobs ...fednode.Job) {
	t.Helper()
	var res []fednode.JobResult
	for _, j := range jobs {
		res = append(res, fednode.JobResult{Seq: j.Seq, MessageID: j.MessageID, Status: fednode.StatusFailed, Reason: "refused: " + code, Code: code})
	}
	if err := s.FinishJobs(context.Background(), domain, res, t0); err != nil {
		t.Fatal(err)
	}
}

func ids(dls []fednode.DeadLetter) []string {
	var out []string
	for _, d := range dls {
		out = append(out, d.MessageID)
	}
	return out
}

// testOutgoingJob: a queued message's job is found by its id, with the
// attempts noted on it; once finished it is gone.
func testOutgoingJob(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	if _, err := s.OutgoingJob(ctx, "b.example", "j1"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("no job yet: %v", err)
	}
	jobs := enqueueTo(t, s, "b.example", "j1", "j2")
	if err := s.NoteAttempt(ctx, "b.example", []uint64{jobs[1].Seq}, fednode.DeliveryUnavailable, "b.example answered HTTP 503"); err != nil {
		t.Fatal(err)
	}
	j, err := s.OutgoingJob(ctx, "b.example", "j2")
	if err != nil || j.Seq != jobs[1].Seq || j.MessageID != "j2" || j.Attempts != 1 || j.LastCode != fednode.DeliveryUnavailable || j.LastError != "b.example answered HTTP 503" {
		t.Fatalf("OutgoingJob(j2) = %+v, %v", j, err)
	}
	if _, err := s.OutgoingJob(ctx, "c.example", "j2"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("a job asked of another peer: %v", err)
	}
	fail(t, s, "b.example", fednode.DeliveryRefused, jobs[1])
	if _, err := s.OutgoingJob(ctx, "b.example", "j2"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("a finished job: %v", err)
	}
	if m, _ := s.Message(ctx, "j2"); m.ReasonCode != fednode.DeliveryRefused {
		t.Fatalf("a failed message keeps its reason code: %+v", m)
	}
	if dead, _ := s.DeadLetters(ctx, 10); len(dead) != 1 || dead[0].Code != fednode.DeliveryRefused {
		t.Fatalf("a dead letter keeps its code: %+v", dead)
	}
	if j, err := s.OutgoingJob(ctx, "b.example", "j1"); err != nil || j.Attempts != 0 {
		t.Fatalf("OutgoingJob(j1) = %+v, %v", j, err)
	}
}

// testRedrive: redriving puts dead letters back at the tail of their
// peers' queues, in message id order, as new jobs; the messages are queued
// again; one id, one peer or all can be picked; a letter is redriven once.
func testRedrive(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	b := enqueueTo(t, s, "b.example", "r1", "r2", "r3", "r4")
	c := enqueueTo(t, s, "c.example", "r5", "r6")
	if err := s.NoteAttempt(ctx, "b.example", []uint64{b[2].Seq}, fednode.DeliveryUnreachable, "down"); err != nil {
		t.Fatal(err)
	}
	// Failed out of order: redrive must follow the ids, not the failures.
	fail(t, s, "b.example", fednode.DeliveryGaveUp, b[2], b[0])
	fail(t, s, "c.example", fednode.DeliveryPolicyRefused, c...)
	later := t0.Add(time.Hour)

	got, err := s.RedriveDeadLetters(ctx, fednode.DeadLetterFilter{MessageID: "r6"}, later)
	if err != nil || len(got) != 1 || got[0].MessageID != "r6" || got[0].Peer != "c.example" {
		t.Fatalf("redrive one = %+v, %v", got, err)
	}
	if got, err := s.RedriveDeadLetters(ctx, fednode.DeadLetterFilter{MessageID: "r6"}, later); err != nil || len(got) != 0 {
		t.Fatalf("a letter redriven twice: %+v, %v", got, err)
	}
	if got, err := s.RedriveDeadLetters(ctx, fednode.DeadLetterFilter{MessageID: "r2"}, later); err != nil || len(got) != 0 {
		t.Fatalf("a queued message is no dead letter: %+v, %v", got, err)
	}
	got, err = s.RedriveDeadLetters(ctx, fednode.DeadLetterFilter{Peer: "b.example"}, later)
	if err != nil || len(got) != 2 || got[0].MessageID != "r1" || got[1].MessageID != "r3" {
		t.Fatalf("redrive a peer = %+v, %v; want r1, r3", got, err)
	}
	jobs, _ := s.PeerJobs(ctx, "b.example", 0, 10)
	var order []string
	for _, j := range jobs {
		order = append(order, j.MessageID)
	}
	if len(order) != 4 || order[0] != "r2" || order[1] != "r4" || order[2] != "r1" || order[3] != "r3" {
		t.Fatalf("b.example's queue after redrive: %v; want r2 r4 then r1 r3", order)
	}
	if j := jobs[3]; j.Attempts != 0 || j.LastError != "" || !j.EnqueuedAt.Equal(later) || j.Pair != "alice@a.example|bob@b.example" || j.Seq <= jobs[1].Seq {
		t.Fatalf("a redriven job is new, at the tail: %+v", j)
	}
	if j, err := s.OutgoingJob(ctx, "b.example", "r3"); err != nil || j.Seq != jobs[3].Seq {
		t.Fatalf("a redriven job is indexed: %+v, %v", j, err)
	}
	if m, _ := s.Message(ctx, "r3"); m.Status != fednode.StatusQueued || m.Reason != "" || m.ReasonCode != "" {
		t.Fatalf("a redriven message is queued again: %+v", m)
	}
	if dead, _ := s.DeadLetters(ctx, 10); len(dead) != 1 || dead[0].MessageID != "r5" {
		t.Fatalf("dead letters left: %+v", dead)
	}
	if peers, _ := s.PendingPeers(ctx); !sameSet(peers, "b.example", "c.example") {
		t.Fatalf("PendingPeers = %v", peers)
	}
	got, err = s.RedriveDeadLetters(ctx, fednode.DeadLetterFilter{}, later)
	if err != nil || len(got) != 1 || got[0].MessageID != "r5" {
		t.Fatalf("redrive all = %+v, %v", got, err)
	}
	if dead, _ := s.DeadLetters(ctx, 10); len(dead) != 0 {
		t.Fatalf("dead letters left after redriving all: %+v", dead)
	}
}

// testPurge: purging forgets dead letters, one, a peer's or all; their
// messages stay failed.
func testPurge(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	b := enqueueTo(t, s, "b.example", "p1", "p2")
	c := enqueueTo(t, s, "c.example", "p3")
	d := enqueueTo(t, s, "d.example", "p4")
	fail(t, s, "b.example", fednode.DeliveryRefused, b...)
	fail(t, s, "c.example", fednode.DeliveryRefused, c...)
	fail(t, s, "d.example", fednode.DeliveryRefused, d...)
	if got, err := s.PurgeDeadLetters(ctx, fednode.DeadLetterFilter{MessageID: "p3"}); err != nil || len(got) != 1 || got[0].MessageID != "p3" {
		t.Fatalf("purge one = %+v, %v", got, err)
	}
	if got, err := s.PurgeDeadLetters(ctx, fednode.DeadLetterFilter{MessageID: "p3"}); err != nil || len(got) != 0 {
		t.Fatalf("purge one twice = %+v, %v", got, err)
	}
	if got, err := s.PurgeDeadLetters(ctx, fednode.DeadLetterFilter{Peer: "b.example"}); err != nil || len(got) != 2 || got[0].MessageID != "p1" || got[1].MessageID != "p2" {
		t.Fatalf("purge a peer = %+v, %v", got, err)
	}
	if dead, _ := s.DeadLetters(ctx, 10); len(dead) != 1 || dead[0].MessageID != "p4" {
		t.Fatalf("dead letters left: %+v", ids(dead))
	}
	if got, err := s.PurgeDeadLetters(ctx, fednode.DeadLetterFilter{}); err != nil || len(got) != 1 {
		t.Fatalf("purge all = %+v, %v", got, err)
	}
	if dead, _ := s.DeadLetters(ctx, 10); len(dead) != 0 {
		t.Fatalf("dead letters left after purging all: %+v", ids(dead))
	}
	if m, _ := s.Message(ctx, "p1"); m.Status != fednode.StatusFailed {
		t.Fatalf("a purged letter's message stays failed: %+v", m)
	}
	if got, err := s.RedriveDeadLetters(ctx, fednode.DeadLetterFilter{MessageID: "p1"}, t0); err != nil || len(got) != 0 {
		t.Fatalf("a purged letter cannot be redriven: %+v, %v", got, err)
	}
}
