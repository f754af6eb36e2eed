package daemon_test

import (
	"testing"
	"time"

	"github.com/fednode/fednode/internal/redistest"
)

// BenchmarkPushLatency measures accepted-to-pushed latency: a message sent
// on one replica and read from a socket on another (over Redis pub/sub),
// beside the same path within one replica, in the same run:
//
//	go test ./node -run '^$' -bench PushLatency -benchtime 500x
func BenchmarkPushLatency(b *testing.B) {
	srv := redistest.Start(b)
	r1, r2 := startNode(b, onRedis(srv.URL(), false)), startNode(b, onRedis(srv.URL(), false))
	alice := r1.user("alice")
	bob := r1.user("bob")
	for _, tc := range []struct {
		name string
		ws   *testNode
	}{{"same-replica", r1}, {"cross-replica", r2}} {
		b.Run(tc.name, func(b *testing.B) {
			live := dialWS(b, tc.ws, bob, "")
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				r1.send(alice, "bob", "ping")
				readMsg(b, live, 5*time.Second)
				total += time.Since(start)
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/push")
		})
	}
}
