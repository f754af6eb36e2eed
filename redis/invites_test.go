package redis_test

import (
	"context"
	"testing"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/redis"
	"github.com/fednode/fednode/storetest"
)

// TestInviteUsedOnceAcrossReplicas: two replicas, each with its own client
// (its own connections) on one namespace, race registrations for one
// invite code; one account is made.
func TestInviteUsedOnceAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	var stores []fednode.Store
	for range 2 {
		s, err := redis.Open(context.Background(), redis.Options{URL: srv.URL(), Password: redistest.Password, Namespace: "invite-race"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	storetest.RaceInvite(t, stores)
}
