package daemon_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/e2e"
)

// BenchmarkSendE2E measures what end-to-end encryption costs the node: the
// same message sent in clear and sealed end to end, through
// POST /api/messages in one run. The node cannot open an E2E payload; it
// checks its structure and the sender's signature (ECDSA P-256), and
// stores a larger body (two 512-byte wrapped keys, a signature, base64).
// The client's own cost (seal, open) is BenchmarkSealOpen in package e2e:
//
//	go test ./daemon -run '^$' -bench BenchmarkSendE2E -benchtime 3000x
func BenchmarkSendE2E(b *testing.B) {
	n := startNode(b)
	text := strings.Repeat("an ordinary message ", 10)
	alice, bob := &e2eUser{n: n, name: "alice", token: n.user("alice")}, &e2eUser{n: n, name: "bob", token: n.user("bob")}
	for _, u := range []*e2eUser{alice, bob} {
		k, err := e2e.GenerateKeys()
		if err != nil {
			b.Fatal(err)
		}
		u.keys = k
		if r := n.do("PUT", "/api/keys", u.token, map[string]any{"enc_key": k.Public().EncSPKI, "sig_key": k.Public().SigSPKI}); r.Status != 200 {
			b.Fatalf("publish keys: %d %s", r.Status, r.Raw)
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, mode := range []string{"clear", "e2e"} {
		b.Run(mode, func(b *testing.B) {
			bodies := make([][]byte, b.N)
			for i := range bodies {
				msg := map[string]any{"to": "bob", "content": text}
				if mode == "e2e" { // sealed by alice's client before the clock starts
					id := fednode.NewID(time.Now())
					sealed, err := e2e.Seal(id, alice.addr(), bob.addr(), text, nil, []*e2e.PublicKeys{bob.keys.Public()}, alice.keys)
					if err != nil {
						b.Fatal(err)
					}
					msg = map[string]any{"to": "bob", "id": id, "e2e": sealed}
				}
				bodies[i], _ = json.Marshal(msg)
			}
			b.SetBytes(int64(len(bodies[0])))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				postAccepted(b, client, n.url+"/api/messages", alice.token, bodies[i])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
