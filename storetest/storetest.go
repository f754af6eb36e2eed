// Package storetest is the conformance suite every store backend must pass:
// it holds each to the contract fednode.Store. The embedded bbolt store and
// the Redis store (on one server and on a cluster) run the very same tests,
// which is what makes the backends interchangeable.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fednode/fednode"
)

// Run runs the suite. open returns a fresh, empty store; open should
// register its own cleanup, which must allow for a store the suite closed.
func Run(t *testing.T, open func(t *testing.T) fednode.Store) {
	t.Run("Ping", func(t *testing.T) {
		if err := open(t).Ping(context.Background()); err != nil {
			t.Fatalf("Ping on a fresh store: %v", err)
		}
	})
	t.Run("Users", func(t *testing.T) { testUsers(t, open(t)) })
	t.Run("UserPages", func(t *testing.T) { testUserPages(t, open(t)) })
	t.Run("DeleteUser", func(t *testing.T) { testDeleteUser(t, open(t)) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, open(t)) })
	t.Run("LoginFailures", func(t *testing.T) { testFailures(t, open(t)) })
	t.Run("Messages", func(t *testing.T) { testMessages(t, open(t)) })
	t.Run("MessagesInOneRead", func(t *testing.T) { testMessagesBatch(t, open(t)) })
	t.Run("ConcurrentAppendKeepsCursorsDense", func(t *testing.T) { testConcurrentAppend(t, open(t)) })
	t.Run("Outbox", func(t *testing.T) { testOutbox(t, open(t)) })
	t.Run("PeerJobsReadsForwardFromACursor", func(t *testing.T) { testPeerJobsCursor(t, open(t)) })
	t.Run("OutgoingJob", func(t *testing.T) { testOutgoingJob(t, open(t)) })
	t.Run("RedriveDeadLetters", func(t *testing.T) { testRedrive(t, open(t)) })
	t.Run("PurgeDeadLetters", func(t *testing.T) { testPurge(t, open(t)) })
	t.Run("QueueStats", func(t *testing.T) { testQueueStats(t, open(t)) })
	t.Run("Meta", func(t *testing.T) { testMeta(t, open(t)) })
	t.Run("FreshStoreHasTheCurrentSchemaVersion", func(t *testing.T) { testSchemaVersion(t, open(t)) })
	t.Run("Bans", func(t *testing.T) { testBans(t, open(t)) })
	t.Run("PeerDocuments", func(t *testing.T) { testPeerDocs(t, open(t)) })
	t.Run("Leases", func(t *testing.T) { testLeases(t, open(t)) })
	t.Run("Invites", func(t *testing.T) { testInvites(t, open(t)) })
	t.Run("InviteUsedOnceUnderRace", func(t *testing.T) { testInviteRace(t, open(t)) })
	t.Run("Conversations", func(t *testing.T) { testConversations(t, open(t)) })
	t.Run("DeleteMailboxMessage", func(t *testing.T) { testDeleteMailboxMessage(t, open(t)) })
	t.Run("Blocks", func(t *testing.T) { testBlocks(t, open(t)) })
	t.Run("UserKeys", func(t *testing.T) { testUserKeys(t, open(t)) })
	t.Run("E2EMessages", func(t *testing.T) { testE2EMessages(t, open(t)) })
	t.Run("Close", func(t *testing.T) { testClose(t, open(t)) })
}

func testBans(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	if _, err := s.Ban(ctx, "203.0.113.7"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("no ban yet: %v", err)
	}
	b := fednode.Ban{Key: "203.0.113.7", Until: t0.Add(time.Hour), Reason: "rate limit violations", Level: 2, CreatedAt: t0}
	if err := s.SetBan(ctx, b); err != nil {
		t.Fatal(err)
	}
	s.SetBan(ctx, fednode.Ban{Key: "2001:db8:1:2::/64", Until: t0.Add(-time.Hour), Level: 1, CreatedAt: t0.Add(-2 * time.Hour)})
	got, err := s.Ban(ctx, "203.0.113.7")
	if err != nil || !got.Until.Equal(b.Until) || got.Level != 2 || got.Reason != b.Reason {
		t.Fatalf("Ban = %+v, %v", got, err)
	}
	if !got.Active(t0) || got.Active(t0.Add(2*time.Hour)) {
		t.Fatal("Active must follow Until")
	}
	all, err := s.Bans(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("Bans = %+v, %v", all, err)
	}
	if n, err := s.PruneBans(ctx, t0); err != nil || n != 1 {
		t.Fatalf("PruneBans = %d, %v; want the expired one", n, err)
	}
	if err := s.DeleteBan(ctx, "203.0.113.7"); err != nil {
		t.Fatal(err)
	}
	if all, _ := s.Bans(ctx); len(all) != 0 {
		t.Fatalf("after delete and prune: %+v", all)
	}
}

func testPeerDocs(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	if _, _, err := s.PeerDocument(ctx, "b.example:8443"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("no document yet: %v", err)
	}
	s.SetPeerDocument(ctx, "b.example:8443", []byte(`{"v":1}`), t0)
	s.SetPeerDocument(ctx, "b.example:8443", []byte(`{"v":2}`), t0.Add(time.Minute))
	doc, at, err := s.PeerDocument(ctx, "b.example:8443")
	if err != nil || string(doc) != `{"v":2}` || !at.Equal(t0.Add(time.Minute)) {
		t.Fatalf("PeerDocument = %s %v %v", doc, at, err)
	}
}

func testLeases(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	ok, err := s.AcquireLease(ctx, "outbox:b.example", "replica-1", time.Second)
	if err != nil || !ok {
		t.Fatalf("first acquire: %v %v", ok, err)
	}
	if ok, _ := s.AcquireLease(ctx, "outbox:b.example", "replica-2", time.Second); ok {
		t.Fatal("a held lease was taken by another owner")
	}
	if ok, _ := s.AcquireLease(ctx, "outbox:b.example", "replica-1", 200*time.Millisecond); !ok {
		t.Fatal("the holder must be able to renew")
	}
	if ok, _ := s.AcquireLease(ctx, "outbox:c.example", "replica-2", time.Second); !ok {
		t.Fatal("another lease is independent")
	}
	s.ReleaseLease(ctx, "outbox:b.example", "replica-2") // not the holder: no effect
	if ok, _ := s.AcquireLease(ctx, "outbox:b.example", "replica-2", time.Second); ok {
		t.Fatal("a release by a non-holder freed the lease")
	}
	time.Sleep(300 * time.Millisecond) // the renewed lease (200ms) expires: a dead holder is taken over
	if ok, _ := s.AcquireLease(ctx, "outbox:b.example", "replica-2", time.Second); !ok {
		t.Fatal("an expired lease must be taken over")
	}
	s.ReleaseLease(ctx, "outbox:b.example", "replica-2")
	if ok, _ := s.AcquireLease(ctx, "outbox:b.example", "replica-1", time.Second); !ok {
		t.Fatal("a released lease must be free")
	}
}

func remote(id, from, to string) fednode.Message {
	m := msg(id, from, to)
	m.To.Domain = "b.example"
	m.Status = fednode.StatusQueued
	return m
}

func testOutbox(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	if peers, _ := s.PendingPeers(ctx); len(peers) != 0 {
		t.Fatalf("fresh store has pending peers %v", peers)
	}
	for i, id := range []string{"o1", "o2", "o3"} {
		c, err := s.AppendOutgoing(ctx, remote(id, "alice", "bob"), "alice")
		if err != nil || c != uint64(i+1) {
			t.Fatalf("AppendOutgoing %s = %d, %v", id, c, err)
		}
	}
	other := remote("o4", "alice", "carol")
	other.To.Domain = "c.example"
	s.AppendOutgoing(ctx, other, "alice")
	if _, err := s.AppendOutgoing(ctx, remote("o1", "alice", "bob"), "alice"); !errors.Is(err, fednode.ErrDuplicate) {
		t.Fatalf("duplicate outgoing id: %v", err)
	}
	peers, err := s.PendingPeers(ctx)
	if err != nil || !sameSet(peers, "b.example", "c.example") {
		t.Fatalf("PendingPeers = %v, %v", peers, err)
	}
	jobs, err := s.PeerJobs(ctx, "b.example", 0, 10)
	if err != nil || len(jobs) != 3 || jobs[0].MessageID != "o1" || jobs[2].MessageID != "o3" {
		t.Fatalf("PeerJobs = %+v, %v; want o1..o3 in order", jobs, err)
	}
	if j := jobs[0]; j.Peer != "b.example" || j.Pair != "alice@a.example|bob@b.example" || !j.EnqueuedAt.Equal(t0) || j.Attempts != 0 {
		t.Fatalf("job fields: %+v", j)
	}
	if box, _ := s.Mailbox(ctx, "alice", 0, 10); len(box) != 4 || box[0].Message.Status != fednode.StatusQueued {
		t.Fatalf("the sender's mailbox must hold the queued messages: %+v", box)
	}
	if box, _ := s.Mailbox(ctx, "bob", 0, 10); len(box) != 0 {
		t.Fatal("a remote recipient has no local mailbox")
	}
	if err := s.NoteAttempt(ctx, "b.example", []uint64{jobs[0].Seq, jobs[1].Seq}, fednode.DeliveryUnreachable, "connection refused"); err != nil {
		t.Fatal(err)
	}
	jobs, _ = s.PeerJobs(ctx, "b.example", 0, 2)
	if len(jobs) != 2 || jobs[0].Attempts != 1 || jobs[0].LastError != "connection refused" || jobs[0].LastCode != fednode.DeliveryUnreachable || jobs[1].Attempts != 1 {
		t.Fatalf("after NoteAttempt: %+v", jobs)
	}
	err = s.FinishJobs(ctx, "b.example", []fednode.JobResult{
		{Seq: jobs[0].Seq, MessageID: "o1", Status: fednode.StatusDelivered},
		{Seq: jobs[1].Seq, MessageID: "o2", Status: fednode.StatusFailed, Reason: "unknown_recipient"},
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Message(ctx, "o1"); m.Status != fednode.StatusDelivered {
		t.Fatalf("o1 status %q", m.Status)
	}
	if m, _ := s.Message(ctx, "o2"); m.Status != fednode.StatusFailed || m.Reason != "unknown_recipient" {
		t.Fatalf("o2: %+v", m)
	}
	if rest, _ := s.PeerJobs(ctx, "b.example", 0, 10); len(rest) != 1 || rest[0].MessageID != "o3" {
		t.Fatalf("remaining jobs: %+v", rest)
	}
	dead, err := s.DeadLetters(ctx, 10)
	if err != nil || len(dead) != 1 || dead[0].MessageID != "o2" || dead[0].Peer != "b.example" || dead[0].Attempts != 2 || dead[0].Reason != "unknown_recipient" {
		t.Fatalf("DeadLetters = %+v, %v", dead, err)
	}
	jobs, _ = s.PeerJobs(ctx, "b.example", 0, 10)
	s.FinishJobs(ctx, "b.example", []fednode.JobResult{{Seq: jobs[0].Seq, MessageID: "o3", Status: fednode.StatusDelivered}}, t0)
	if peers, _ := s.PendingPeers(ctx); !sameSet(peers, "c.example") {
		t.Fatalf("a drained peer must not be pending: %v", peers)
	}
}

// testPeerJobsCursor: PeerJobs reads a peer's queue forward from a cursor:
// the jobs after it, in order, at most limit; a finished job is skipped and
// a cursor at one still works; a job enqueued later comes after every
// cursor already handed out; other peers' queues never show.
func testPeerJobsCursor(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	enqueue := func(id, domain string) {
		t.Helper()
		m := remote(id, "alice", "bob")
		m.To.Domain = domain
		if _, err := s.AppendOutgoing(ctx, m, "alice"); err != nil {
			t.Fatalf("AppendOutgoing %s: %v", id, err)
		}
	}
	var want []string
	for i := range 7 {
		want = append(want, fmt.Sprintf("q%d", i))
		enqueue(want[i], "b.example")
		if i == 3 {
			enqueue("x1", "c.example")
		}
	}
	// Pages of 3 from cursor 0: every job once, in order, Seqs increasing.
	var got []string
	var seqs []uint64
	var after uint64
	for page := 0; ; page++ {
		jobs, err := s.PeerJobs(ctx, "b.example", after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) == 0 {
			break
		}
		if len(jobs) > 3 || page > len(want) {
			t.Fatalf("page %d after %d: %d jobs, limit 3 (read so far %v)", page, after, len(jobs), got)
		}
		for _, j := range jobs {
			if j.Seq <= after {
				t.Fatalf("PeerJobs(after %d) returned Seq %d", after, j.Seq)
			}
			after = j.Seq
			got = append(got, j.MessageID)
			seqs = append(seqs, j.Seq)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("reading forward by cursor gave %v, want %v", got, want)
	}
	page := func(after uint64, limit int) []string {
		t.Helper()
		jobs, err := s.PeerJobs(ctx, "b.example", after, limit)
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, j := range jobs {
			ids = append(ids, j.MessageID)
		}
		return ids
	}
	if ids := page(seqs[2], 2); !reflect.DeepEqual(ids, []string{"q3", "q4"}) {
		t.Fatalf("PeerJobs(after q2's Seq, 2) = %v, want [q3 q4]", ids)
	}
	if err := s.FinishJobs(ctx, "b.example", []fednode.JobResult{{Seq: seqs[3], MessageID: "q3", Status: fednode.StatusDelivered}}, t0); err != nil {
		t.Fatal(err)
	}
	if ids := page(seqs[2], 10); !reflect.DeepEqual(ids, []string{"q4", "q5", "q6"}) {
		t.Fatalf("after q3 finished, PeerJobs(after q2's Seq) = %v, want [q4 q5 q6]", ids)
	}
	if ids := page(seqs[3], 1); !reflect.DeepEqual(ids, []string{"q4"}) {
		t.Fatalf("a cursor at a finished job: PeerJobs = %v, want [q4]", ids)
	}
	if ids := page(seqs[6], 10); len(ids) != 0 {
		t.Fatalf("PeerJobs after the last job = %v, want none", ids)
	}
	enqueue("q7", "b.example")
	jobs, err := s.PeerJobs(ctx, "b.example", seqs[6], 10)
	if err != nil || len(jobs) != 1 || jobs[0].MessageID != "q7" || jobs[0].Seq <= seqs[6] {
		t.Fatalf("a job enqueued later, read after the old last Seq: %+v, %v", jobs, err)
	}
	if other, err := s.PeerJobs(ctx, "c.example", 0, 10); err != nil || len(other) != 1 || other[0].MessageID != "x1" {
		t.Fatalf("another peer's queue: %+v, %v", other, err)
	}
	if none, err := s.PeerJobs(ctx, "d.example", 0, 10); err != nil || len(none) != 0 {
		t.Fatalf("a peer with no queue: %+v, %v", none, err)
	}
}

func testMeta(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	if _, err := s.Meta(ctx, "k"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("Meta on a fresh store: %v", err)
	}
	s.SetMeta(ctx, "k", []byte("v1"))
	s.SetMeta(ctx, "k", []byte("v2"))
	if v, err := s.Meta(ctx, "k"); err != nil || string(v) != "v2" {
		t.Fatalf("Meta = %q, %v", v, err)
	}
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func testUsers(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	alice := fednode.User{Username: "Alice", PasswordHash: "h1", Role: fednode.RoleUser, CreatedAt: t0}
	if err := s.CreateUser(ctx, alice); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if err := s.CreateUser(ctx, fednode.User{Username: "aLiCe", PasswordHash: "h2"}); !errors.Is(err, fednode.ErrTaken) {
		t.Fatalf("CreateUser with another case: got %v, want ErrTaken", err)
	}
	got, err := s.User(ctx, "ALICE")
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	if got.Username != "Alice" || got.PasswordHash != "h1" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("User = %+v, want the first registration unchanged", got)
	}
	if _, err := s.User(ctx, "bob"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("User(bob): got %v, want ErrNotFound", err)
	}
	if err := s.UpdateUser(ctx, "alice", func(u *fednode.User) error { u.Role = fednode.RoleAdmin; return nil }); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	boom := errors.New("boom")
	if err := s.UpdateUser(ctx, "alice", func(u *fednode.User) error { u.PasswordHash = "x"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("UpdateUser returning an error: got %v", err)
	}
	got, _ = s.User(ctx, "alice")
	if got.Role != fednode.RoleAdmin || got.PasswordHash != "h1" {
		t.Fatalf("after updates: %+v, want role admin and the hash untouched by the failed update", got)
	}
	if err := s.UpdateUser(ctx, "nobody", func(*fednode.User) error { return nil }); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("UpdateUser(nobody): got %v, want ErrNotFound", err)
	}
}

func session(id, user string, issued time.Time) fednode.Session {
	return fednode.Session{ID: id, Username: user, IssuedAt: issued, ExpiresAt: issued.Add(time.Hour)}
}

func testSessions(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		ev, err := s.CreateSession(ctx, session(fmt.Sprintf("a%d", i), "alice", t0.Add(time.Duration(i)*time.Second)), 3)
		if err != nil || len(ev) != 0 {
			t.Fatalf("CreateSession %d: evicted %v, err %v", i, ev, err)
		}
	}
	ev, err := s.CreateSession(ctx, session("a3", "alice", t0.Add(3*time.Second)), 3)
	if err != nil || len(ev) != 1 || ev[0] != "a0" {
		t.Fatalf("fourth session over a limit of 3: evicted %v (err %v), want [a0]", ev, err)
	}
	if _, err := s.Session(ctx, "a0"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("evicted session still there: %v", err)
	}
	got, err := s.Session(ctx, "a3")
	if err != nil || got.Username != "alice" || !got.ExpiresAt.Equal(t0.Add(3*time.Second+time.Hour)) {
		t.Fatalf("Session(a3) = %+v, %v", got, err)
	}
	if _, err := s.CreateSession(ctx, session("b0", "bob", t0), 3); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, "a1"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if err := s.DeleteSession(ctx, "a1"); err != nil {
		t.Fatalf("DeleteSession twice must be idempotent: %v", err)
	}
	if _, err := s.Session(ctx, "a1"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("deleted session still there: %v", err)
	}
	// After a1 was deleted alice has a2, a3: two more fit under 3 with one eviction.
	if ev, _ := s.CreateSession(ctx, session("a4", "alice", t0.Add(4*time.Second)), 3); len(ev) != 0 {
		t.Fatalf("after a delete the index must shrink: evicted %v", ev)
	}
	ids, err := s.DeleteUserSessions(ctx, "ALICE")
	if err != nil || !sameSet(ids, "a2", "a3", "a4") {
		t.Fatalf("DeleteUserSessions = %v, %v; want a2 a3 a4", ids, err)
	}
	if _, err := s.Session(ctx, "b0"); err != nil {
		t.Fatalf("bob's session must survive alice's revocation: %v", err)
	}
	if _, err := s.CreateSession(ctx, session("a5", "alice", t0.Add(5*time.Second)), 3); err != nil {
		t.Fatal(err)
	}
	ids, err = s.DeleteAllSessions(ctx)
	if err != nil || !sameSet(ids, "a5", "b0") {
		t.Fatalf("DeleteAllSessions = %v, %v; want a5 b0", ids, err)
	}
	for _, id := range []string{"a5", "b0"} {
		if _, err := s.Session(ctx, id); !errors.Is(err, fednode.ErrNotFound) {
			t.Fatalf("session %s survived DeleteAllSessions", id)
		}
	}
	// Expiry.
	s.CreateSession(ctx, session("old", "carol", t0), 10)
	s.CreateSession(ctx, session("new", "carol", t0.Add(2*time.Hour)), 10)
	n, err := s.PruneSessions(ctx, t0.Add(90*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("PruneSessions = %d, %v; want 1", n, err)
	}
	if _, err := s.Session(ctx, "old"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatal("expired session survived pruning")
	}
	if _, err := s.Session(ctx, "new"); err != nil {
		t.Fatalf("live session pruned: %v", err)
	}
}

func testFailures(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	since := t0.Add(-time.Minute)
	var got []time.Time
	var err error
	for i := 0; i < 3; i++ {
		got, err = s.AddLoginFailure(ctx, "alice", t0.Add(time.Duration(i)*time.Second), since)
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 3 || !got[0].Equal(t0) {
		t.Fatalf("AddLoginFailure = %v, want 3 oldest first", got)
	}
	// A later window forgets the first two.
	got, _ = s.LoginFailures(ctx, "alice", t0.Add(2*time.Second))
	if len(got) != 1 {
		t.Fatalf("LoginFailures since t0+2s = %v, want 1", got)
	}
	if got, _ := s.LoginFailures(ctx, "bob", since); len(got) != 0 {
		t.Fatalf("failures for another name: %v", got)
	}
	if err := s.ClearLoginFailures(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoginFailures(ctx, "alice", since); len(got) != 0 {
		t.Fatalf("after Clear: %v", got)
	}
	s.AddLoginFailure(ctx, "old", t0, since)
	s.AddLoginFailure(ctx, "recent", t0.Add(time.Hour), since)
	n, err := s.PruneLoginFailures(ctx, t0.Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("PruneLoginFailures = %d, %v; want 1", n, err)
	}
	if got, _ := s.LoginFailures(ctx, "recent", since); len(got) != 1 {
		t.Fatalf("recent failure pruned: %v", got)
	}
}

func msg(id, from, to string) fednode.Message {
	return fednode.Message{
		ID:        id,
		From:      fednode.Address{User: from, Domain: "a.example"},
		To:        fednode.Address{User: to, Domain: "a.example"},
		Content:   "hello " + id,
		Tags:      []string{"t1"},
		CreatedAt: t0,
		Status:    fednode.StatusDelivered,
	}
}

func testMessages(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	c, err := s.AppendMessage(ctx, msg("m1", "alice", "bob"), "alice", "bob")
	if err != nil || len(c) != 2 || c[0] != 1 || c[1] != 1 {
		t.Fatalf("AppendMessage m1 = %v, %v; want cursors [1 1]", c, err)
	}
	c, err = s.AppendMessage(ctx, msg("m2", "bob", "alice"), "bob", "alice")
	if err != nil || c[0] != 2 || c[1] != 2 {
		t.Fatalf("AppendMessage m2 = %v, %v; want [2 2]", c, err)
	}
	c, err = s.AppendMessage(ctx, msg("m3", "alice", "alice"), "alice", "alice")
	if err != nil || c[0] != 3 || c[1] != 3 {
		t.Fatalf("a note to self is appended once: %v, %v; want [3 3]", c, err)
	}
	if _, err := s.AppendMessage(ctx, msg("m1", "mallory", "bob"), "bob"); !errors.Is(err, fednode.ErrDuplicate) {
		t.Fatalf("duplicate id: got %v, want ErrDuplicate", err)
	}
	got, err := s.Message(ctx, "m1")
	if err != nil || got.From.User != "alice" || got.Content != "hello m1" || len(got.Tags) != 1 || !got.CreatedAt.Equal(t0) {
		t.Fatalf("Message(m1) = %+v, %v; the duplicate must not overwrite it", got, err)
	}
	if _, err := s.Message(ctx, "nope"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("Message(nope): %v", err)
	}
	all, err := s.Mailbox(ctx, "bob", 0, 10)
	if err != nil || len(all) != 2 || all[0].Message.ID != "m1" || all[1].Message.ID != "m2" || all[1].Cursor != 2 {
		t.Fatalf("Mailbox(bob) = %+v, %v; want m1, m2 (the duplicate appended nothing)", all, err)
	}
	page, _ := s.Mailbox(ctx, "alice", 1, 1)
	if len(page) != 1 || page[0].Message.ID != "m2" || page[0].Cursor != 2 {
		t.Fatalf("Mailbox(alice, after 1, limit 1) = %+v", page)
	}
	if rest, _ := s.Mailbox(ctx, "alice", 3, 10); len(rest) != 0 {
		t.Fatalf("nothing after the last cursor, got %+v", rest)
	}
	if none, err := s.Mailbox(ctx, "nobody", 0, 10); err != nil || len(none) != 0 {
		t.Fatalf("empty mailbox = %v, %v", none, err)
	}
	if h, err := s.MailboxHead(ctx, "ALICE"); err != nil || h != 3 {
		t.Fatalf("MailboxHead(alice) = %d, %v; want 3", h, err)
	}
	if h, err := s.MailboxHead(ctx, "nobody"); err != nil || h != 0 {
		t.Fatalf("MailboxHead(nobody) = %d, %v; want 0", h, err)
	}
}

// testMessagesBatch: Messages returns what Message returns, for every
// stored id asked, once per id, and leaves out the ids not stored.
func testMessagesBatch(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	if got, err := s.Messages(ctx, nil); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Messages(no ids) = %v, %v; want an empty map", got, err)
	}
	// An id of characters no key may hold is stored under a hash of it.
	ids := []string{"b1", "b2", "odd id:{x}*", "b4"}
	for _, id := range ids[:3] {
		if _, err := s.AppendMessage(ctx, msg(id, "alice", "bob"), "alice", "bob"); err != nil {
			t.Fatal(err)
		}
	}
	out := remote("b4", "alice", "bob")
	if _, err := s.AppendOutgoing(ctx, out, "alice"); err != nil {
		t.Fatal(err)
	}
	jobs, _ := s.PeerJobs(ctx, "b.example", 0, 10)
	if len(jobs) != 1 {
		t.Fatalf("PeerJobs = %+v", jobs)
	}
	if err := s.FinishJobs(ctx, "b.example", []fednode.JobResult{{Seq: jobs[0].Seq, MessageID: "b4", Status: fednode.StatusFailed, Reason: "gone"}}, t0); err != nil {
		t.Fatal(err)
	}
	got, err := s.Messages(ctx, []string{"b4", "nope", "b1", "odd id:{x}*", "b1", "", "b2"})
	if err != nil {
		t.Fatalf("Messages: %v", err)
	}
	if len(got) != 4 {
		t.Fatalf("Messages = %d messages %v; want b1, b2, b4 and the odd id, and nothing for the ids not stored", len(got), got)
	}
	for _, id := range ids {
		want, err := s.Message(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := got[id]
		if !ok || m.ID != id || m.Content != want.Content || m.Status != want.Status || m.Reason != want.Reason ||
			m.From != want.From || m.To != want.To || !m.CreatedAt.Equal(want.CreatedAt) || len(m.Tags) != len(want.Tags) {
			t.Fatalf("Messages[%q] = %+v (present %v), want what Message returns: %+v", id, m, ok, want)
		}
	}
	if got["b4"].Status != fednode.StatusFailed || got["b4"].Reason != "gone" {
		t.Fatalf("Messages must read the message as it is now: %+v", got["b4"])
	}
	if got, err := s.Messages(ctx, []string{"nope", "neither"}); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Messages(only ids not stored) = %v, %v; want an empty map", got, err)
	}
}

func testConcurrentAppend(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := s.AppendMessage(ctx, msg(fmt.Sprintf("c%03d", i), "x", "y"), "y")
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Mailbox(ctx, "y", 0, 1000)
	if err != nil || len(all) != n {
		t.Fatalf("Mailbox after %d concurrent appends: %d entries, %v", n, len(all), err)
	}
	seen := map[string]bool{}
	for i, e := range all {
		if e.Cursor != uint64(i+1) {
			t.Fatalf("entry %d has cursor %d: cursors must be dense and ordered", i, e.Cursor)
		}
		if seen[e.Message.ID] {
			t.Fatalf("message %s appears twice", e.Message.ID)
		}
		seen[e.Message.ID] = true
	}
}

func sameSet(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	m := map[string]int{}
	for _, g := range got {
		m[g]++
	}
	for _, w := range want {
		if m[w] == 0 {
			return false
		}
		m[w]--
	}
	return true
}

// testClose: a closed store refuses every call with an error that names
// the operation, never a panic, a hang or an answer that looks like data
// (an empty mailbox, a "not found"), and closing it again does nothing.
func testClose(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	if _, err := s.AppendMessage(ctx, msg("m1", "alice", "bob"), "alice", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := Calls()
	contract := reflect.TypeFor[fednode.Store]()
	for i := range contract.NumMethod() {
		if name := contract.Method(i).Name; name != "Close" {
			if _, ok := calls[name]; !ok {
				t.Fatalf("fednode.Store.%s has no entry in Calls", name)
			}
		}
	}
	for name, c := range calls {
		err := c.Do(ctx, s)
		if err == nil || errors.Is(err, fednode.ErrNotFound) {
			t.Errorf("%s after Close: %v, want an error that is not a not-found", name, err)
			continue
		}
		if _, rest, _ := strings.Cut(err.Error(), ": "); !strings.HasPrefix(rest, c.Op+": ") {
			t.Errorf("%s after Close: %q does not name the operation %q", name, err, c.Op)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("a second Close: %v, want nothing done", err)
	}
}
