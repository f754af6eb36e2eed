package inbox_test

import (
	"fmt"
	"testing"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/federation"
)

// BenchmarkReceiveEnvelope measures messages per second stored through
// the inbox (signature check, an RSA-4096 unwrap and an AES-GCM open per
// message, fsynced bbolt writes), by messages per envelope; b.N is
// messages. The envelopes are sealed before the timer starts:
//
//	go test ./inbox -run '^$' -bench ReceiveEnvelope -benchtime 320x
func BenchmarkReceiveEnvelope(b *testing.B) {
	for _, per := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("messages=%d", per), func(b *testing.B) {
			w := newWorld(b, nil)
			var envs []federation.Envelope
			for i := 0; i < b.N; i += per {
				var msgs []fednode.Message
				for j := i; j < min(i+per, b.N); j++ {
					msgs = append(msgs, message("bob", fmt.Sprint("benchmark message ", j)))
				}
				envs = append(envs, w.seal(msgs...))
			}
			b.ResetTimer()
			for _, env := range envs {
				ans, err := w.deliver(env)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range ans.Results {
					if r.Status != federation.StatusAccepted {
						b.Fatalf("%+v", r)
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
