package main_test

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/keys"
)

func seedKeys(t *testing.T, dir string, sig, enc int) {
	order := []int{sig, enc}
	if _, err := keys.OpenLocal(filepath.Join(dir, "keys"), keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) {
		k := testkeys.Key(order[0])
		order = order[1:]
		return k, nil
	}}); err != nil {
		t.Fatal(err)
	}
	// The key of messages at rest, shared by replicas as their keys are.
	if err := os.WriteFile(filepath.Join(dir, keys.KEKFile), bytes.Repeat([]byte{byte(sig + 1)}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReplicaKilledWhileHoldingOutboxJobs: replica 1 is delivering to a peer
// whose inbox hangs; it is killed with SIGKILL mid-request. Replica 2 takes
// the peer over when the lease lapses, and every accepted message is
// delivered.
func TestReplicaKilledWhileHoldingOutboxJobs(t *testing.T) {
	bin := binary(t)
	redisSrv := redistest.Start(t)

	var hang atomic.Bool
	var hung atomic.Int32
	hang.Store(true)
	release := make(chan struct{})
	var mu sync.Mutex
	seen := map[string]int{}
	var domain string
	peerKeys, _ := keys.OpenLocal(t.TempDir(), keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) { return testkeys.Key(5), nil }})
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == federation.WellKnownPath {
			pubs, _ := peerKeys.PublicKeys(r.Context())
			w.Header().Set("Content-Type", federation.DocumentMediaType)
			json.NewEncoder(w).Encode(federation.BuildNodeDocument(domain, "http", pubs))
			return
		}
		if hang.Load() {
			hung.Add(1)
			<-release // the first delivery hangs: replica 1 holds these jobs
		}
		var env federation.Envelope
		json.NewDecoder(r.Body).Decode(&env)
		var res []map[string]string
		mu.Lock()
		for _, m := range env.Messages {
			seen[m.ID]++
			res = append(res, map[string]string{"id": m.ID, "status": "accepted"})
		}
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"results": res})
	}))
	defer peer.Close()
	defer close(release)
	domain = strings.TrimPrefix(peer.URL, "http://")

	replica := func() (*proc, []string) {
		dir := t.TempDir()
		seedKeys(t, dir, 0, 1) // replicas of one node share its keys
		env := []string{"DATA_DIR=" + dir, "LISTEN_ADDR=127.0.0.1:0", "NODE_DOMAIN=replicas.test", "PUBLIC_URL=http://replicas.test",
			"JWT_SECRET=" + strings.Repeat("s", 40), "REDIS_URL=" + redisSrv.URL(), "REDIS_PASSWORD=" + redistest.Password,
			"FEDERATION_ALLOW_PRIVATE=true", "FEDERATION_PLAIN_HTTP=true", "OUTBOX_LEASE_TTL=1s",
			"OUTBOX_RETRY_BASE=50ms", "OUTBOX_RETRY_MAX=200ms"}
		return start(t, bin, env...), env
	}
	r1, _ := replica()
	r1.post(t, "/api/auth/register", "", map[string]string{"username": "alice", "password": "password-alice"})
	alice := r1.login(t, "alice")
	var ids []string
	for i := 0; i < 20; i++ {
		code, body := r1.post(t, "/api/messages", alice, map[string]any{"to": "bob@" + domain, "content": fmt.Sprintf("m%d", i)})
		if code != 202 {
			t.Fatalf("send: %d %v", code, body)
		}
		ids = append(ids, body["id"].(string))
	}
	r2, _ := replica()
	time.Sleep(500 * time.Millisecond) // replica 1 is now stuck in a delivery, holding the peer's lease
	if hung.Load() == 0 {
		t.Fatal("replica 1 never started a delivery; the test would prove nothing")
	}
	r1.cmd.Process.Kill()
	r1.cmd.Wait()
	hang.Store(false)

	deadline := time.Now().Add(20 * time.Second)
	for {
		delivered := 0
		for _, id := range ids {
			req, _ := http.NewRequest("GET", r2.url+"/api/messages/"+id, nil)
			req.Header.Set("Authorization", "Bearer "+alice)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			if m["status"] == "delivered" {
				delivered++
			}
		}
		if delivered == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica 2 delivered %d of %d after replica 1 died", delivered, len(ids))
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if seen[id] < 1 {
			t.Fatalf("message %s never reached the peer", id)
		}
	}
	t.Logf("replica 1 killed holding jobs; replica 2 delivered all %d", len(ids))
}
