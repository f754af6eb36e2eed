package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fednode/fednode"
)

func testInvites(t *testing.T, s fednode.Store) {
	ctx := context.Background()
	inv := fednode.Invite{Code: "k7x2mq9d4n6p8r3t5v7w9y2b4c", CreatedBy: "root", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateInvite(ctx, inv); err != nil {
		t.Fatalf("CreateInvite: %v", err)
	}
	if err := s.CreateInvite(ctx, inv); !errors.Is(err, fednode.ErrDuplicate) {
		t.Fatalf("CreateInvite with a stored code: %v, want ErrDuplicate", err)
	}
	old := fednode.Invite{Code: "old", CreatedBy: "root", CreatedAt: t0.Add(-2 * time.Hour), ExpiresAt: t0.Add(-time.Hour)}
	s.CreateInvite(ctx, old)
	all, err := s.Invites(ctx)
	if err != nil || len(all) != 2 || all[0].Code != "old" || all[1].Code != inv.Code || !all[1].ExpiresAt.Equal(inv.ExpiresAt) || all[1].Used() {
		t.Fatalf("Invites = %+v, %v; want both, oldest first, unused", all, err)
	}

	u := func(name string) fednode.User {
		return fednode.User{Username: name, PasswordHash: "h", Role: fednode.RoleUser, CreatedAt: t0}
	}
	s.CreateUser(ctx, u("Taken"))
	refusals := []struct {
		name, code string
		user       fednode.User
		want       error
	}{
		{"unknown code", "nope", u("carol"), fednode.ErrInviteUnknown},
		{"expired code", "old", u("carol"), fednode.ErrInviteExpired},
		{"taken name", inv.Code, u("tAKEN"), fednode.ErrTaken},
	}
	for _, r := range refusals {
		if err := s.CreateUserWithInvite(ctx, r.user, r.code, t0); !errors.Is(err, r.want) {
			t.Fatalf("%s: %v, want %v", r.name, err, r.want)
		}
	}
	if _, err := s.User(ctx, "carol"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("a refused registration left an account: %v", err)
	}
	if all, _ := s.Invites(ctx); all[1].Used() {
		t.Fatal("a registration refused for its name used the invite")
	}

	if err := s.CreateUserWithInvite(ctx, u("Dave"), inv.Code, t0.Add(time.Minute)); err != nil {
		t.Fatalf("CreateUserWithInvite: %v", err)
	}
	if got, err := s.User(ctx, "dave"); err != nil || got.Username != "Dave" {
		t.Fatalf("the account made with an invite: %+v, %v", got, err)
	}
	all, _ = s.Invites(ctx)
	if got := all[1]; got.UsedBy != "dave" || !got.UsedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("the used invite: %+v", got)
	}
	if err := s.CreateUserWithInvite(ctx, u("erin"), inv.Code, t0.Add(time.Minute)); !errors.Is(err, fednode.ErrInviteUsed) {
		t.Fatalf("a second use: %v, want ErrInviteUsed", err)
	}

	if err := s.DeleteInvite(ctx, "nope"); !errors.Is(err, fednode.ErrNotFound) {
		t.Fatalf("DeleteInvite(unknown): %v, want ErrNotFound", err)
	}
	if n, err := s.PruneInvites(ctx, t0); err != nil || n != 1 {
		t.Fatalf("PruneInvites = %d, %v; want the expired one", n, err)
	}
	if err := s.DeleteInvite(ctx, inv.Code); err != nil {
		t.Fatalf("DeleteInvite: %v", err)
	}
	if all, _ := s.Invites(ctx); len(all) != 0 {
		t.Fatalf("after prune and delete: %+v", all)
	}
	if err := s.CreateUserWithInvite(ctx, u("frank"), inv.Code, t0); !errors.Is(err, fednode.ErrInviteUnknown) {
		t.Fatalf("a revoked code: %v, want ErrInviteUnknown", err)
	}
}

// testInviteRace: many registrations racing for one code (each with its own
// name) make exactly one account, and the invite names it.
func testInviteRace(t *testing.T, s fednode.Store) {
	RaceInvite(t, []fednode.Store{s})
}

// RaceInvite issues one invite on stores[0] and races 16 registrations with
// it, spread over stores (replicas sharing one backend), each under its own
// name. Exactly one must succeed, every other must be refused with
// ErrInviteUsed, and the invite must name the winner.
func RaceInvite(t *testing.T, stores []fednode.Store) {
	t.Helper()
	ctx := context.Background()
	code := "race-" + fmt.Sprint(time.Now().UnixNano())
	if err := stores[0].CreateInvite(ctx, fednode.Invite{Code: code, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			u := fednode.User{Username: fmt.Sprintf("racer%d", i), PasswordHash: "h", CreatedAt: t0}
			errs[i] = stores[i%len(stores)].CreateUserWithInvite(ctx, u, code, t0)
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("racers %d and %d both registered with one invite", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, fednode.ErrInviteUsed):
			t.Fatalf("racer %d: %v, want ErrInviteUsed", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("nobody registered with the invite")
	}
	all, _ := stores[0].Invites(ctx)
	for _, inv := range all {
		if inv.Code == code && inv.UsedBy != fmt.Sprintf("racer%d", winner) {
			t.Fatalf("the invite names %q, the winner was racer%d", inv.UsedBy, winner)
		}
	}
	for i := range n {
		_, err := stores[0].User(ctx, fmt.Sprintf("racer%d", i))
		if (i == winner) != (err == nil) {
			t.Fatalf("racer%d: account %v, winner %d", i, err, winner)
		}
	}
}
