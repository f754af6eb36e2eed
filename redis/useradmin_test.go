package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/redis"
)

// TestUsersIndexesAnOlderStore: users written before the name index existed
// (plain "u:<name>" keys) are listed once the index is built from them, on
// one server and across a cluster's masters.
func TestUsersIndexesAnOlderStore(t *testing.T) {
	srv := redistest.Start(t)
	cl := redistest.StartCluster(t, 3)
	addrs := cl.Addrs()
	for name, c := range map[string]struct {
		url     string
		cluster bool
	}{"single": {srv.URL(), false}, "cluster": {"redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2], true}} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := fresh(t, c.url, c.cluster).(*redis.Store)
			for _, n := range []string{"Zoe", "amy", "kim"} {
				b, _ := json.Marshal(fednode.User{Username: n, Role: fednode.RoleUser})
				if err := s.Client().Set(ctx, s.Prefix()+"u:"+fednode.CanonicalUsername(n), b, 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.CreateUser(ctx, fednode.User{Username: "bea"}); err != nil {
				t.Fatal(err)
			}
			us, err := s.Users(ctx, fednode.UserQuery{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(names(us)); got != "[amy bea kim Zoe]" {
				t.Fatalf("Users = %s; want every user, old and new, in order", got)
			}
			if n, _ := s.Client().Exists(ctx, s.Prefix()+"uidxdone").Result(); n != 1 {
				t.Fatal("the index must be marked built")
			}
		})
	}
}

func names(us []fednode.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.Username
	}
	return out
}
