package daemon_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/internal/vaulttest"
)

// BenchmarkCrossNodeDeliveryKeys: messages per second from POST on node A
// to pushed at node B, with both nodes' keys local and, in the same run,
// both in Vault Transit; and the Vault calls each delivered message costs:
//
//	go test ./node -run '^$' -bench CrossNodeDeliveryKeys -benchtime 300x
func BenchmarkCrossNodeDeliveryKeys(b *testing.B) {
	v := vaulttest.Start(b)
	for _, backend := range []string{"local", "vault"} {
		b.Run(backend, func(b *testing.B) {
			mod := func(prefix string) func(*daemon.Config) {
				return func(c *daemon.Config) {
					fastRetry(c)
					if backend == "vault" {
						c.KeysBackend, c.VaultAddr, c.VaultToken, c.VaultKeyPrefix = "vault", v.Addr, v.Token, fmt.Sprintf("%s-%d", prefix, b.N)
					}
				}
			}
			a, bn := startNode(b, mod("a")), startNode(b, mod("b"))
			alice := a.user("alice")
			bob := bn.user("bob")
			live := dialWS(b, bn, bob, "")
			got := make(chan struct{})
			go func() {
				for i := 0; i < b.N; i++ {
					live.SetReadDeadline(time.Now().Add(60 * time.Second))
					var m map[string]any
					if err := live.ReadJSON(&m); err != nil {
						b.Errorf("read %d: %v", i, err)
						break
					}
				}
				close(got)
			}()
			calls := a.srv.VaultCalls() + bn.srv.VaultCalls()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			per := (b.N + 7) / 8
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := w * per; i < min((w+1)*per, b.N); i++ {
						a.send(alice, "bob@"+bn.srv.Domain(), "benchmark")
					}
				}(w)
			}
			wg.Wait()
			<-got
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			b.ReportMetric(float64(a.srv.VaultCalls()+bn.srv.VaultCalls()-calls)/float64(b.N), "vault-calls/msg")
		})
	}
}
