package daemon_test

import (
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/internal/redistest"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/keys"
	"github.com/fednode/fednode/node"
)

// onRedis makes a node a replica of "replicas.test" on srv: one domain, one
// JWT secret (startNode's), the same fixed keys in every replica's DATA_DIR.
func onRedis(url string, cluster bool) nodeOption {
	return func(c *daemon.Config, gen *keysFrom) {
		c.RedisURL, c.RedisPassword, c.RedisCluster, c.RedisNamespace = url, redistest.Password, cluster, "replicas"
		c.NodeDomain, c.PublicURL = "replicas.test", "http://replicas.test"
		k := 6
		*gen = func() (*rsa.PrivateKey, error) { k++; return testkeys.Key(k - 1), nil }
		c.OutboxLeaseTTL = time.Second
		// The at-rest key-encryption key, shared as the keyring directory
		// is (an operator copies it to every replica).
		if err := os.WriteFile(filepath.Join(c.DataDir, keys.KEKFile), []byte(strings.Repeat("k", 32)), 0o600); err != nil {
			panic(err)
		}
	}
}

func TestReplicasBehaveAsOneNode(t *testing.T) {
	srv := redistest.Start(t)
	limits := func(c *daemon.Config) { c.LoginMaxFailures = 4 }
	r := []*testNode{startNode(t, onRedis(srv.URL(), false), limits), startNode(t, onRedis(srv.URL(), false), limits), startNode(t, onRedis(srv.URL(), false), limits)}

	// One account store: registered on 1, logged in on 2, token good on 3.
	r[0].register("alice", "password-alice")
	r[0].register("bob", "password-bob")
	alice := r[1].login("alice", "password-alice")
	bob := r[2].login("bob", "password-bob")
	if me := r[2].do("GET", "/api/me", alice, nil); me.Status != 200 {
		t.Fatalf("a token from replica 2 on replica 3: %s", me.Raw)
	}

	// Accepted on 1, pushed on 2 at once.
	live := dialWS(t, r[1], bob, "")
	start := time.Now()
	id := r[0].send(alice, "bob", "across replicas")
	m := readMsg(t, live, 2*time.Second)
	if m["id"] != id {
		t.Fatalf("replica 2's socket got %v", m)
	}
	t.Logf("accepted on replica 1 -> pushed on replica 2: %v", time.Since(start))
	if got := r[2].do("GET", "/api/messages/"+id, bob, nil); got.Status != 200 {
		t.Fatalf("the message by id on replica 3: %s", got.Raw)
	}

	// Lockout counts across replicas: 4 failures spread over them lock the name.
	for i := 0; i < 4; i++ {
		r[i%3].do("POST", "/api/auth/login", "", map[string]string{"username": "alice", "password": "wrong-password"})
	}
	if got := r[2].do("POST", "/api/auth/login", "", map[string]string{"username": "alice", "password": "password-alice"}); got.code() != "account_locked" {
		t.Fatalf("lockout across replicas: %s", got.Raw)
	}

	// Revocation on 1 refuses everywhere and closes the socket on 2.
	if got := r[0].do("POST", "/api/auth/logout", bob, nil); got.Status != 204 {
		t.Fatalf("logout: %s", got.Raw)
	}
	for i := range r {
		if got := r[i].do("GET", "/api/me", bob, nil); got.Status != 401 {
			t.Fatalf("replica %d still honours a revoked token", i+1)
		}
	}
	expectClosed(t, live, websocket.ClosePolicyViolation)
}

func TestReplicasShareLimitsAndBans(t *testing.T) {
	srv := redistest.Start(t)
	mod := func(c *daemon.Config) {
		c.RateLimits[node.ClassAPIAnon] = rule(4)
		c.BanAfterViolations = 2
		c.BanDuration = time.Hour
	}
	r1, r2 := startNode(t, onRedis(srv.URL(), false), mod), startNode(t, onRedis(srv.URL(), false), mod)
	codes := []int{}
	for i := 0; i < 6; i++ {
		n := []*testNode{r1, r2}[i%2]
		codes = append(codes, n.do("GET", anonPath, "", nil).Status)
	}
	if codes[3] != 200 || codes[4] == 200 {
		t.Fatalf("4 requests per minute across both replicas: %v", codes)
	}
	// Two refusals made a ban; it holds on the other replica at once.
	deadline := time.Now().Add(2 * time.Second)
	for r2.do("GET", anonPath, "", nil).code() != "banned" {
		if time.Now().After(deadline) {
			t.Fatal("a ban made on one replica does not hold on the other")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The ban survives Redis being killed and restarted (append-only), and a
	// fresh replica that never saw it in memory enforces it.
	srv.Kill()
	srv.Restart()
	r3 := startNode(t, onRedis(srv.URL(), false), mod)
	if got := r3.do("GET", anonPath, "", nil); got.code() != "banned" {
		t.Fatalf("after a Redis crash and restart: %s", got.Raw)
	}
}

// load sends GET anonPath from several goroutines and tallies the statuses.
func loadStatuses(n *testNode, stop <-chan struct{}) func() map[int]int {
	var mu sync.Mutex
	tally := map[int]int{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(n.url + anonPath)
				code := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				mu.Lock()
				tally[code]++
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return func() map[int]int { wg.Wait(); return tally }
}

func TestRedisOutageUnderLoad(t *testing.T) {
	for _, failOpen := range []bool{true, false} {
		name := map[bool]string{true: "fail open", false: "fail closed"}[failOpen]
		t.Run(name, func(t *testing.T) {
			srv := redistest.Start(t)
			n := startNode(t, onRedis(srv.URL(), false), func(c *daemon.Config) {
				c.RateLimitFailOpen = failOpen
				c.RateLimits[node.ClassAPIAnon] = rule(1 << 20)
			})
			stop := make(chan struct{})
			done := loadStatuses(n, stop)
			time.Sleep(200 * time.Millisecond)
			srv.Stop()
			time.Sleep(1500 * time.Millisecond)
			during := n.do("GET", anonPath, "", nil)
			srv.Restart()
			time.Sleep(1500 * time.Millisecond) // the limiter retries Redis after its cooldown
			after := n.do("GET", anonPath, "", nil)
			close(stop)
			tally := done()
			t.Logf("%s: statuses under load %v", name, tally)
			if tally[500] != 0 || tally[0] != 0 {
				t.Fatalf("no request may fail with 500 or a dropped connection: %v", tally)
			}
			if failOpen {
				if during.Status != 200 {
					t.Fatalf("fail open: requests are decided in process while Redis is down: %d %s", during.Status, during.Raw)
				}
				if m := n.get("/metrics", ""); m.Status != 200 {
					t.Fatal("metrics")
				}
				if !strings.Contains(metricsText(t, n), "fednode_ratelimit_fallback_total") || metricValue(t, n, "fednode_ratelimit_fallback_total") < 1 {
					t.Fatal("fail-open decisions must be counted")
				}
			} else if during.Status != 503 || during.code() != "unavailable" || during.Header.Get("Retry-After") == "" {
				t.Fatalf("fail closed: want 503 with Retry-After, got %d %s", during.Status, during.Raw)
			}
			if after.Status != 200 {
				t.Fatalf("after Redis returns the node recovers without a restart: %d %s", after.Status, after.Raw)
			}
		})
	}
}

func metricsText(t *testing.T, n *testNode) string {
	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func metricValue(t *testing.T, n *testNode, name string) float64 {
	for _, line := range strings.Split(metricsText(t, n), "\n") {
		if strings.HasPrefix(line, name+" ") {
			var v float64
			json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(line, name))), &v)
			return v
		}
	}
	return 0
}

// recordingPeer is a peer node whose inbox accepts everything and counts
// each message id it is sent.
type recordingPeer struct {
	domain  string
	mu      sync.Mutex
	seen    map[string]int
	hang    atomic.Bool // while set, requests block until release closes
	release chan struct{}
}

func newRecordingPeer(t *testing.T) *recordingPeer {
	p := &recordingPeer{seen: map[string]int{}, release: make(chan struct{})}
	kr, err := keys.OpenLocal(t.TempDir(), keys.LocalOptions{Generate: nextTestKey})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == federation.WellKnownPath {
			pubs, _ := kr.PublicKeys(r.Context())
			w.Header().Set("Content-Type", federation.DocumentMediaType)
			json.NewEncoder(w).Encode(federation.BuildNodeDocument(p.domain, "http", pubs))
			return
		}
		if p.hang.Load() {
			<-p.release
		}
		var env federation.Envelope
		json.NewDecoder(r.Body).Decode(&env)
		var res []map[string]string
		p.mu.Lock()
		for _, m := range env.Messages {
			p.seen[m.ID]++
			res = append(res, map[string]string{"id": m.ID, "status": "accepted"})
		}
		p.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"results": res})
	}))
	t.Cleanup(func() { close(p.release); srv.Close() })
	p.domain = strings.TrimPrefix(srv.URL, "http://")
	return p
}

func TestReplicasDeliverEachJobOnce(t *testing.T) {
	srv := redistest.Start(t)
	r1, r2 := startNode(t, onRedis(srv.URL(), false), fastRetry), startNode(t, onRedis(srv.URL(), false), fastRetry)
	alice := r1.user("alice")
	peer := newRecordingPeer(t)
	var ids []string
	for i := 0; i < 40; i++ {
		ids = append(ids, []*testNode{r1, r2}[i%2].send(alice, "bob@"+peer.domain, "once"))
	}
	for _, id := range ids {
		waitStatus(t, r1, alice, id, "delivered")
	}
	peer.mu.Lock()
	defer peer.mu.Unlock()
	for _, id := range ids {
		if peer.seen[id] != 1 {
			t.Fatalf("message %s was delivered %d times; each job goes through exactly one replica", id, peer.seen[id])
		}
	}
}

func TestNodeOnRedisCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	a := cl.Addrs()
	url := "redis://" + a[0] + "?addr=" + a[1] + "&addr=" + a[2]
	r1, r2 := startNode(t, onRedis(url, true)), startNode(t, onRedis(url, true))
	r1.register("alice", "password-alice")
	bob := r2.user("bob")
	alice := r2.login("alice", "password-alice")
	live := dialWS(t, r1, bob, "")
	id := r2.send(alice, "bob", "on a cluster")
	if m := readMsg(t, live, 3*time.Second); m["id"] != id {
		t.Fatalf("got %v", m)
	}
	r2.restart()
	if box := r2.mailbox(bob); len(box) != 1 || box[0]["content"] != "on a cluster" {
		t.Fatalf("after a replica restart: %v", box)
	}
}

// TestNodeOnTLSRedis: rediss:// with a private CA works; without trusting
// the CA the node refuses to start rather than talk to an unverified Redis.
func TestNodeOnTLSRedis(t *testing.T) {
	srv := redistest.StartTLS(t)
	n := startNode(t, onRedis(srv.URL(), false), func(c *daemon.Config) { c.RedisTLSCAFile = srv.CAFile })
	n.user("alice")
	if r := n.do("GET", "/readyz", "", nil); r.Status != 200 {
		t.Fatalf("readyz over TLS: %s", r.Raw)
	}
	cfg := n.cfg
	cfg.RedisTLSCAFile, cfg.ListenAddr = "", "127.0.0.1:0" // same DATA_DIR: its key files are not locked
	if _, err := daemon.Open(t.Context(), cfg, daemon.Options{Log: quietLog(), Audit: quietLog()}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a Redis certificate from an unknown CA must be refused: %v", err)
	}
}
