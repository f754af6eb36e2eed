package daemon_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fednode/fednode/internal/baseline"
)

// BenchmarkSendPath measures messages accepted per second through
// POST /api/messages (JWT check, session lookup, validation, fsynced bbolt
// write, live notification) beside a plain net/http handler that only
// decodes the same JSON body and answers 202, in the same run and over the
// same kind of loopback connection. Compare the two msgs/s metrics:
//
//	go test ./node -run '^$' -bench BenchmarkSendPath -benchtime 3s
func BenchmarkSendPath(b *testing.B) {
	body, _ := json.Marshal(map[string]any{"to": "bob", "content": "a benchmark message of ordinary length", "tags": []string{"bench"}})

	run := func(b *testing.B, url, token string, parallel bool) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		b.ResetTimer()
		if parallel {
			b.SetParallelism(8) // 8 × GOMAXPROCS concurrent senders
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					postAccepted(b, client, url, token, body)
				}
			})
		} else {
			for i := 0; i < b.N; i++ {
				postAccepted(b, client, url, token, body)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	}

	plain := httptest.NewServer(baseline.Send)
	defer plain.Close()

	n := startNode(b)
	alice := n.user("alice")
	n.user("bob")

	for _, mode := range []struct {
		name     string
		parallel bool
	}{{"serial", false}, {"parallel", true}} {
		b.Run("plain-net-http/"+mode.name, func(b *testing.B) { run(b, plain.URL, "", mode.parallel) })
		b.Run("fednode/"+mode.name, func(b *testing.B) { run(b, n.url+"/api/messages", alice, mode.parallel) })
	}
}

// postAccepted POSTs the JSON body to url (with token, when given) and
// fails the benchmark unless the answer is 202.
func postAccepted(b *testing.B, client *http.Client, url, token string, body []byte) {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Fatalf("status %d", resp.StatusCode)
	}
}
