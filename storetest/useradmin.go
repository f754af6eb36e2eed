package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fednode/fednode"
)

// testUserPages: Users pages through the users in order of canonical name
// from a cursor, and filters by prefix, substring and role.
func testUserPages(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	if got, err := s.Users(ctx, fednode.UserQuery{Limit: 10}); err != nil || len(got) != 0 {
		t.Fatalf("Users on a fresh store = %+v, %v", got, err)
	}
	for _, n := range []string{"Carol", "alice", "bob", "alfred", "dave", "malice"} {
		role := fednode.RoleUser
		if n == "dave" || n == "alfred" {
			role = fednode.RoleAdmin
		}
		if err := s.CreateUser(ctx, fednode.User{Username: n, Role: role, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	names := func(q fednode.UserQuery) []string {
		t.Helper()
		us, err := s.Users(ctx, q)
		if err != nil {
			t.Fatalf("Users(%+v): %v", q, err)
		}
		out := []string{}
		for _, u := range us {
			out = append(out, u.Username)
		}
		return out
	}
	for _, c := range []struct {
		name string
		q    fednode.UserQuery
		want []string
	}{
		{"first page", fednode.UserQuery{Limit: 2}, []string{"alfred", "alice"}},
		{"next page from a cursor", fednode.UserQuery{After: "alice", Limit: 3}, []string{"bob", "Carol", "dave"}},
		{"last page", fednode.UserQuery{After: "dave", Limit: 3}, []string{"malice"}},
		{"after the end", fednode.UserQuery{After: "zed", Limit: 3}, []string{}},
		{"a cursor in any case", fednode.UserQuery{After: "CAROL", Limit: 1}, []string{"dave"}},
		{"prefix", fednode.UserQuery{Prefix: "Al", Limit: 10}, []string{"alfred", "alice"}},
		{"prefix from a cursor", fednode.UserQuery{Prefix: "al", After: "alfred", Limit: 10}, []string{"alice"}},
		{"prefix from a cursor before it", fednode.UserQuery{Prefix: "b", After: "alice", Limit: 10}, []string{"bob"}},
		{"substring", fednode.UserQuery{Contains: "LIC", Limit: 10}, []string{"alice", "malice"}},
		{"substring, paged", fednode.UserQuery{Contains: "lic", After: "alice", Limit: 10}, []string{"malice"}},
		{"role", fednode.UserQuery{Role: fednode.RoleAdmin, Limit: 10}, []string{"alfred", "dave"}},
		{"no match", fednode.UserQuery{Prefix: "x", Limit: 10}, []string{}},
	} {
		if got := names(c.q); !equal(got, c.want) {
			t.Errorf("%s: Users(%+v) = %v, want %v", c.name, c.q, got, c.want)
		}
	}
	// Suspension is part of the stored user.
	at := t0.Add(time.Minute)
	if err := s.UpdateUser(ctx, "bob", func(u *fednode.User) error {
		u.SuspendedAt, u.SuspendedBy, u.SuspendReason = at, "dave", "spam"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if u, err := s.User(ctx, "bob"); err != nil || !u.Suspended() || !u.SuspendedAt.Equal(at) || u.SuspendedBy != "dave" || u.SuspendReason != "spam" {
		t.Fatalf("suspended user = %+v, %v", u, err)
	}
	if us, _ := s.Users(ctx, fednode.UserQuery{Prefix: "bob", Limit: 1}); len(us) != 1 || !us[0].Suspended() {
		t.Fatalf("Users must show the suspension: %+v", us)
	}
	s.UpdateUser(ctx, "bob", func(u *fednode.User) error { u.SuspendedAt = time.Time{}; return nil })
	if u, _ := s.User(ctx, "bob"); u.Suspended() {
		t.Fatalf("unsuspended user = %+v", u)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// testDeleteUser: DeleteUser takes the account, its sessions, login
// failures and mailbox, and the messages no other local user holds (not
// one still queued for delivery), with their dead letters; the name can
// never be registered again.
func testDeleteUser(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	for _, n := range []string{"Alice", "bob"} {
		if err := s.CreateUser(ctx, fednode.User{Username: n, Role: fednode.RoleUser, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	s.CreateSession(ctx, session("sa1", "alice", t0), 0)
	s.CreateSession(ctx, session("sa2", "alice", t0.Add(time.Second)), 0)
	s.CreateSession(ctx, session("sb1", "bob", t0), 0)
	s.AddLoginFailure(ctx, "alice", t0, t0.Add(-time.Hour))
	s.AddLoginFailure(ctx, "bob", t0, t0.Add(-time.Hour))

	s.AppendMessage(ctx, msg("to-bob", "alice", "bob"), "alice", "bob")   // bob holds it too
	s.AppendMessage(ctx, msg("from-bob", "bob", "alice"), "bob", "alice") // bob holds it too
	s.AppendMessage(ctx, msg("to-self", "alice", "alice"), "alice")       // alice's alone
	s.AppendMessage(ctx, msg("to-carol", "alice", "carol"), "alice")      // carol has no account
	in := msg("from-remote", "bob", "alice")                              // bob@b.example, not our bob
	in.From.Domain = "b.example"
	s.AppendMessage(ctx, in, "alice")
	s.AppendOutgoing(ctx, remote("queued", "alice", "x"), "alice")   // the outbox still holds it
	s.AppendOutgoing(ctx, remote("failed", "alice", "bob"), "alice") // to bob@b.example
	jobs, _ := s.PeerJobs(ctx, "b.example", 0, 10)
	for _, j := range jobs {
		if j.MessageID == "failed" {
			s.FinishJobs(ctx, "b.example", []fednode.JobResult{{Seq: j.Seq, MessageID: "failed", Status: fednode.StatusFailed, Reason: "refused"}}, t0)
		}
	}
	if dead, _ := s.DeadLetters(ctx, 10); len(dead) != 1 {
		t.Fatalf("setup: dead letters %+v", dead)
	}

	tomb := fednode.DeletedUser{Username: "ALICE", DeletedAt: t0, By: "root"}
	del, err := s.DeleteUser(ctx, tomb, "a.example")
	if err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if !sameSet(del.Sessions, "sa1", "sa2") || del.Messages != 4 {
		t.Fatalf("DeleteUser = %+v; want sessions sa1, sa2 and 4 messages", del)
	}
	if _, err := s.User(ctx, "alice"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("the user must be gone: %v", err)
	}
	for _, id := range []string{"sa1", "sa2"} {
		if _, err := s.Session(ctx, id); !errors.Is(err, fednode.ErrNotFound) {
			t.Fatalf("session %s must be gone: %v", id, err)
		}
	}
	if _, err := s.Session(ctx, "sb1"); err != nil {
		t.Fatalf("another user's session must stay: %v", err)
	}
	if f, _ := s.LoginFailures(ctx, "alice", t0.Add(-time.Hour)); len(f) != 0 {
		t.Fatalf("login failures must be gone: %v", f)
	}
	if f, _ := s.LoginFailures(ctx, "bob", t0.Add(-time.Hour)); len(f) != 1 {
		t.Fatalf("another user's login failures must stay: %v", f)
	}
	if box, err := s.Mailbox(ctx, "alice", 0, 10); err != nil || len(box) != 0 {
		t.Fatalf("the mailbox must be gone: %+v, %v", box, err)
	}
	for id, kept := range map[string]bool{"to-bob": true, "from-bob": true, "queued": true, "to-self": false, "to-carol": false, "from-remote": false, "failed": false} {
		_, err := s.Message(ctx, id)
		if kept && err != nil {
			t.Errorf("message %s must stay: %v", id, err)
		}
		if !kept && !errors.Is(err, fednode.ErrNotFound) {
			t.Errorf("message %s must be deleted: %v", id, err)
		}
	}
	if box, _ := s.Mailbox(ctx, "bob", 0, 10); len(box) != 2 {
		t.Fatalf("bob's mailbox must be untouched: %+v", box)
	}
	if dead, _ := s.DeadLetters(ctx, 10); len(dead) != 0 {
		t.Fatalf("a deleted message's dead letter must go with it: %+v", dead)
	}
	for _, n := range []string{"alice", "Alice", "ALICE"} {
		if err := s.CreateUser(ctx, fednode.User{Username: n, CreatedAt: t0}); !errors.Is(err, fednode.ErrTaken) {
			t.Fatalf("a deleted name must never be registered again (%s): %v", n, err)
		}
	}
	if us, _ := s.Users(ctx, fednode.UserQuery{Limit: 10}); len(us) != 1 || us[0].Username != "bob" {
		t.Fatalf("Users after the deletion = %+v", us)
	}
	if _, err := s.DeleteUser(ctx, tomb, "a.example"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("deleting a deleted user: %v, want ErrNotFound", err)
	}
	if _, err := s.DeleteUser(ctx, fednode.DeletedUser{Username: "nobody"}, "a.example"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("deleting no such user: %v, want ErrNotFound", err)
	}
	if err := s.CreateUser(ctx, fednode.User{Username: "nobody"}); err != nil {
		t.Fatalf("a name never registered stays free: %v", err)
	}
	// Now bob goes: what alice and bob shared is nobody's, so it goes too.
	del, err = s.DeleteUser(ctx, fednode.DeletedUser{Username: "bob", DeletedAt: t0}, "a.example")
	if err != nil || del.Messages != 2 || len(del.Sessions) != 1 {
		t.Fatalf("DeleteUser(bob) = %+v, %v", del, err)
	}
	for _, id := range []string{"to-bob", "from-bob"} {
		if _, err := s.Message(ctx, id); !errors.Is(err, fednode.ErrNotFound) {
			t.Errorf("message %s must go with its last holder: %v", id, err)
		}
	}
}
