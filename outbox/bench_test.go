package outbox_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode/outbox"
)

func benchConfig(lanes, batch int) outbox.Config {
	return outbox.Config{Domain: "a.example", Lanes: lanes, BatchSize: batch,
		RetryBase: 30 * time.Second, RetryMax: 6 * time.Hour, GiveUpAfter: 120 * time.Hour}
}

// BenchmarkLaneBatchPick measures what picking a batch costs as a peer's
// queue grows: jobs read from the store per envelope sent (jobs-read/batch)
// and the time per envelope (ns/op; b.N is envelopes), with 4 lanes, 50
// pairs and 16 messages a batch, to a peer that accepts at once. The
// keyring signs for free and the peer's key is small, so the pick is not
// hidden behind RSA. The queue holds depth jobs plus the b.N batches the
// run sends:
//
//	go test ./outbox -run '^$' -bench LaneBatchPick -benchtime 400x
func BenchmarkLaneBatchPick(b *testing.B) {
	for _, depth := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			db := openBolt(b)
			peer := &counter{}
			srv := httptest.NewServer(peer)
			defer srv.Close()
			domain := strings.TrimPrefix(srv.URL, "http://")
			fill(b, db, domain, depth+b.N*16, 50)
			st := &readCounter{Store: db}
			b.ResetTimer()
			startOutbox(b, benchConfig(4, 16), st, peerMap{domain: peerAt(domain, srv.URL, cheapKey())}, freeKeyring{})
			waitFor(b, 10*time.Minute, "the batches", func() bool { return peer.requests.Load() >= int64(b.N) })
			b.StopTimer()
			b.ReportMetric(float64(st.read.Load())/float64(peer.requests.Load()), "jobs-read/batch")
			b.ReportMetric(float64(peer.messages.Load())/float64(peer.requests.Load()), "msgs/batch")
		})
	}
}

// BenchmarkOutboxDelivery measures messages per second through the outbox
// to a peer that accepts at once, with the node's RSA-4096 signing, 4
// lanes and 50 sender–recipient pairs; by batch size, and with 10 dead
// peers holding 1,000 queued jobs each (five refuse connections, five
// never answer) beside the healthy one. "drain" times b.N messages queued
// before the outbox starts, the outbox alone; "stream" times b.N messages
// from AppendOutgoing (16 concurrent writers, each message fsynced and the
// outbox notified, as the send path does) to accepted, on the same cores:
//
//	go test ./outbox -run '^$' -bench OutboxDelivery -benchtime 5000x -count 3
func BenchmarkOutboxDelivery(b *testing.B) {
	for _, mode := range []string{"drain", "stream"} {
		for _, dead := range []int{0, 10} {
			for _, batch := range []int{16, 64} {
				b.Run(fmt.Sprintf("%s/batch=%d/dead=%d", mode, batch, dead), func(b *testing.B) {
					benchDelivery(b, mode == "stream", batch, dead)
				})
			}
		}
	}
}

func benchDelivery(b *testing.B, stream bool, batch, dead int) {
	db := openBolt(b)
	peer := &counter{}
	srv := httptest.NewServer(peer)
	defer srv.Close()
	domain := strings.TrimPrefix(srv.URL, "http://")
	peers := peerMap{domain: peerAt(domain, srv.URL, peerKey)}
	for i := range dead {
		d := fmt.Sprintf("dead%d.example", i)
		peers[d] = peerAt(d, deadInbox(b, i%2 == 0), peerKey)
		fill(b, db, d, 1000, 50)
	}
	if !stream {
		fill(b, db, domain, b.N, 50)
	}
	kr := realKeyring(b)
	b.ResetTimer()
	start := time.Now()
	ob := startOutbox(b, benchConfig(4, batch), db, peers, kr)
	if stream {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
					m := outgoing(domain, i, 50)
					if _, err := db.AppendOutgoing(context.Background(), m, m.From.User); err != nil {
						b.Error(err)
						return
					}
					ob.Notify()
				}
			}()
		}
		wg.Wait()
	}
	waitFor(b, 10*time.Minute, "the deliveries", func() bool { return peer.messages.Load() >= int64(b.N) })
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	b.ReportMetric(float64(peer.messages.Load())/float64(peer.requests.Load()), "msgs/batch")
}
