package bench_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/bolt"
	"github.com/fednode/fednode/internal/testnet"
	"github.com/fednode/fednode/internal/vaulttest"
)

// BenchmarkGoal measures every goal of docs/PERFORMANCE.md once:
//
//	go test ./bench -run '^$' -bench Goal -benchtime 1x
func BenchmarkGoal(b *testing.B) {
	if testing.Short() {
		b.Skip("runs the real binary for minutes")
	}
	b.Run("SendPath", benchSendPath)
	b.Run("CrossNode", benchCrossNode)
	b.Run("CrossNodeVault", benchCrossNodeVault)
	b.Run("Latency", benchLatency)
	b.Run("IdleSockets", benchIdleSockets)
	b.Run("DeepStore", benchDeepStore)
	b.Run("DeadPeers", benchDeadPeers)
}

// fsyncLoop is the disk's baseline: workers each append a small record and
// wait until it is fsynced, and one committer writes whatever is waiting
// and fsyncs once for all of it (group commit), as fast as the disk
// allows. It returns records per second.
func fsyncLoop(tb testing.TB, workers int, d time.Duration) float64 {
	f, err := os.Create(filepath.Join(tb.TempDir(), "log"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	type req struct{ done chan struct{} }
	q := make(chan req, workers)
	go func() {
		rec := make([]byte, 256)
		for first := range q {
			group := []req{first}
		drain:
			for {
				select {
				case r := <-q:
					group = append(group, r)
				default:
					break drain
				}
			}
			for range group {
				f.Write(rec)
			}
			f.Sync()
			for _, r := range group {
				close(r.done)
			}
		}
	}()
	defer close(q)
	return closedLoop(workers, d, func() bool {
		r := req{done: make(chan struct{})}
		q <- r
		<-r.done
		return true
	})
}

// benchSendPath: the local send path (authenticated POST, validated,
// fsynced, pushed) against a bare group-committed fsync loop at the same
// concurrency, and its CPU per message against the plain handler's, both
// servers measured from outside.
func benchSendPath(b *testing.B) {
	plain := startPlain(b)
	n := startNode(b)
	alice := n.user(b, "alice")
	n.user(b, "bob")
	const d = 3 * time.Second
	for _, senders := range []int{16, 64} {
		disk := fsyncLoop(b, senders, d)
		c0 := plain.cpu(b)
		plainRate := closedLoop(senders, d, func() bool { return post(plain.url, "", sendBody) })
		plainCPU := (plain.cpu(b) - c0).Seconds() / (plainRate * d.Seconds())
		c0 = n.cpu(b)
		rate := closedLoop(senders, d, func() bool { return post(n.url+"/api/messages", alice, sendBody) })
		cpu := (n.cpu(b) - c0).Seconds() / (rate * d.Seconds())
		g := fmt.Sprintf("send path, %d senders", senders)
		report(b, g, fmt.Sprintf("fednode msgs/s (disk %.0f, plain %.0f)", disk, plainRate), rate, "msgs/s", "", true, fmt.Sprintf("msgs/s@%d", senders))
		report(b, g, "ratio to group-committed fsync loop", rate/disk, "x", ">= 0.8", rate/disk >= 0.8, fmt.Sprintf("x-disk@%d", senders))
		report(b, g, "CPU per message, ratio to plain handler", cpu/plainCPU, "x", "<= 3", cpu/plainCPU <= 3, fmt.Sprintf("x-cpu@%d", senders))
		report(b, g, "ratio to plain net/http POST", rate/plainRate, "x", "(info)", true, fmt.Sprintf("x-plain@%d", senders))
	}
}

// pushCounter reads a user's socket and counts pushed messages, recording
// when each (by content) arrived.
type pushCounter struct {
	n    atomic.Int64
	mu   sync.Mutex
	seen map[string]time.Time
}

func watch(tb testing.TB, p *proc, token string) *pushCounter {
	tb.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.url, "http")+"/api/ws", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ws.Close() })
	pc := &pushCounter{seen: map[string]time.Time{}}
	go func() {
		for {
			var m struct{ Content string }
			if err := ws.ReadJSON(&m); err != nil {
				return
			}
			now := time.Now()
			pc.mu.Lock()
			pc.seen[m.Content] = now
			pc.mu.Unlock()
			pc.n.Add(1)
		}
	}()
	return pc
}

func (pc *pushCounter) wait(n int64, max time.Duration) bool {
	deadline := time.Now().Add(max)
	for pc.n.Load() < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// crossNodeRate sends from alice on a to bob on bn with 16 senders for d,
// and returns delivered messages per second: accepted on a, then pushed to
// bob's socket on bn.
func crossNodeRate(tb testing.TB, a, bn *proc, d time.Duration) (float64, int64, int64) {
	alice := a.user(tb, uniqueName("alice"))
	bobName := uniqueName("bob")
	bob := bn.user(tb, bobName)
	pc := watch(tb, bn, bob)
	body := mustJSON(map[string]any{"to": bobName + "@" + bn.domain(), "content": "cross-node benchmark message"})
	var accepted atomic.Int64
	start := time.Now()
	closedLoop(16, d, func() bool {
		if post(a.url+"/api/messages", alice, body) {
			accepted.Add(1)
			return true
		}
		return false
	})
	pc.wait(accepted.Load(), 120*time.Second)
	return float64(pc.n.Load()) / time.Since(start).Seconds(), accepted.Load(), pc.n.Load()
}

// benchCrossNode: POST on A to pushed on B, against a plain POST.
func benchCrossNode(b *testing.B) {
	plain := startPlain(b)
	plainRate := closedLoop(16, 3*time.Second, func() bool { return post(plain.url, "", sendBody) })
	a, bn := startNode(b), startNode(b)
	rate, accepted, pushed := crossNodeRate(b, a, bn, 10*time.Second)
	g := "cross-node delivery"
	report(b, g, fmt.Sprintf("delivered msgs/s (%d accepted, %d pushed)", accepted, pushed), rate, "msgs/s", "all", accepted == pushed, "delivered-msgs/s")
	report(b, g, fmt.Sprintf("ratio to plain POST (%.0f/s)", plainRate), rate/plainRate, "x", ">= 0.35", rate/plainRate >= 0.35, "x-plain")
}

// benchCrossNodeVault: the same with both nodes' keys in Vault Transit,
// against local keys in the same run.
func benchCrossNodeVault(b *testing.B) {
	v := vaulttest.Start(b)
	local, _, _ := crossNodeRate(b, startNode(b), startNode(b), 10*time.Second)
	vaultEnv := func(prefix string) []string {
		return []string{"KEYS_BACKEND=vault", "VAULT_ADDR=" + v.Addr, "VAULT_TOKEN=" + v.Token, "VAULT_KEY_PREFIX=" + prefix}
	}
	rate, accepted, pushed := crossNodeRate(b, startNode(b, vaultEnv("bench-a")...), startNode(b, vaultEnv("bench-b")...), 10*time.Second)
	g := "cross-node, keys in Vault"
	report(b, g, fmt.Sprintf("delivered msgs/s (%d accepted, %d pushed)", accepted, pushed), rate, "msgs/s", "all", accepted == pushed, "delivered-msgs/s")
	report(b, g, fmt.Sprintf("ratio to local keys (%.0f/s)", local), rate/local, "x", ">= 0.5", rate/local >= 0.5, "x-local")
}

// openLoop offers rate sends per second for d, open-loop: the schedule
// does not wait for answers (a pool of workers sends), and a send that is
// due is made even if the ones before it are late. It returns how many
// were offered and accepted, and when each send started, by content.
func openLoop(rate int, d time.Duration, send func(content string) bool) (offered, accepted int64, started map[string]time.Time) {
	started = map[string]time.Time{}
	var mu sync.Mutex
	work := make(chan string, rate*int(d/time.Second+1))
	var ok atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 1024; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				mu.Lock()
				started[c] = time.Now()
				mu.Unlock()
				if send(c) {
					ok.Add(1)
				}
			}
		}()
	}
	start := time.Now()
	total := int64(rate) * int64(d/time.Second)
	for offered < total {
		due := min(total, int64(time.Since(start).Seconds()*float64(rate)))
		for ; offered < due; offered++ {
			work <- fmt.Sprintf("m%d", offered)
		}
		time.Sleep(time.Millisecond)
	}
	close(work)
	wg.Wait()
	return offered, ok.Load(), started
}

func latencies(started map[string]time.Time, pc *pushCounter) []time.Duration {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	var out []time.Duration
	for c, t0 := range started {
		if t1, ok := pc.seen[c]; ok {
			out = append(out, t1.Sub(t0))
		}
	}
	return sortedDurations(out)
}

// benchLatency: send → pushed, offered open-loop, locally at 3,000/s and
// across nodes at 1,000/s, for 20 s each.
func benchLatency(b *testing.B) {
	n := startNode(b)
	alice, bob := n.user(b, "alice"), n.user(b, "bob")
	pc := watch(b, n, bob)
	offered, accepted, started := openLoop(3000, 20*time.Second, func(c string) bool {
		return post(n.url+"/api/messages", alice, mustJSON(map[string]any{"to": "bob", "content": c}))
	})
	pc.wait(accepted, 30*time.Second)
	lat := latencies(started, pc)
	g := "latency, local, 3000/s"
	report(b, g, fmt.Sprintf("accepted of %d offered", offered), float64(accepted), "msgs", "all", accepted == offered, "local-accepted")
	report(b, g, "p50 send to pushed", float64(percentile(lat, 0.50).Milliseconds()), "ms", "", true, "local-p50-ms")
	report(b, g, "p99 send to pushed", float64(percentile(lat, 0.99).Milliseconds()), "ms", "<= 50", percentile(lat, 0.99) <= 50*time.Millisecond, "local-p99-ms")

	a, bn := startNode(b), startNode(b)
	alice = a.user(b, "alice")
	bob = bn.user(b, "bob")
	pc = watch(b, bn, bob)
	to := "bob@" + bn.domain()
	offered, accepted, started = openLoop(1000, 20*time.Second, func(c string) bool {
		return post(a.url+"/api/messages", alice, mustJSON(map[string]any{"to": to, "content": c}))
	})
	pc.wait(accepted, 120*time.Second)
	lat = latencies(started, pc)
	g = "latency, cross-node, 1000/s"
	report(b, g, fmt.Sprintf("delivered of %d offered", offered), float64(len(lat)), "msgs", "all", int64(len(lat)) == offered, "cross-delivered")
	report(b, g, "p50 send to pushed", float64(percentile(lat, 0.50).Milliseconds()), "ms", "", true, "cross-p50-ms")
	report(b, g, "p99 send to pushed", float64(percentile(lat, 0.99).Milliseconds()), "ms", "<= 250", percentile(lat, 0.99) <= 250*time.Millisecond, "cross-p99-ms")
}

// benchIdleSockets: 10,000 idle authenticated sockets (100 users, 100
// each): the node's resident memory, and a message to another user still
// pushed at once.
func benchIdleSockets(b *testing.B) {
	n := startNode(b)
	base := n.rss(b)
	var tokens []string
	for u := 0; u < 100; u++ {
		tokens = append(tokens, n.user(b, fmt.Sprintf("idle%d", u)))
	}
	dialer := websocket.Dialer{ReadBufferSize: 1024, WriteBufferSize: 1024, HandshakeTimeout: 30 * time.Second}
	url := "ws" + strings.TrimPrefix(n.url, "http") + "/api/ws"
	var conns []*websocket.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := 0; i < 10000; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, _, err := dialer.Dial(url, http.Header{"Authorization": {"Bearer " + tokens[i%100]}})
			if err != nil {
				b.Errorf("socket %d: %v", i, err)
				return
			}
			go func() { // answer pings, as an idle client does
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
				}
			}()
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	time.Sleep(2 * time.Second) // let the node settle
	rss := n.rss(b)
	alice, target := n.user(b, "alice"), n.user(b, "target")
	pc := watch(b, n, target)
	var lat []time.Duration
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		post(n.url+"/api/messages", alice, mustJSON(map[string]any{"to": "target", "content": fmt.Sprint(i)}))
		pc.wait(int64(i+1), 5*time.Second)
		lat = append(lat, time.Since(t0))
	}
	lat = sortedDurations(lat)
	g := fmt.Sprintf("%d idle sockets", len(conns))
	report(b, g, fmt.Sprintf("node RSS (%.0f MB before)", float64(base)/(1<<20)), float64(rss)/(1<<20), "MB", "<= 200", rss <= 200<<20, "rss-MB")
	report(b, g, "KiB per socket", float64(rss-base)/float64(len(conns))/1024, "KiB", "(info)", true, "KiB/socket")
	report(b, g, "worst of 20 sends to pushed", float64(lat[len(lat)-1].Milliseconds()), "ms", "< 50", lat[len(lat)-1] < 50*time.Millisecond, "push-ms")
}

// alternate measures a and b in turns, rounds times each, so that both
// see the same machine, and returns the sums of what they measured.
func alternate(rounds int, a, b func() float64) (sa, sb float64) {
	for i := 0; i < rounds; i++ {
		sa += a()
		sb += b()
	}
	return sa, sb
}

// benchDeepStore: the send path on a store that already holds 200,000
// messages, against a fresh one, measured in turns.
func benchDeepStore(b *testing.B) {
	fresh := startNode(b)
	freshAlice := fresh.user(b, "alice")
	fresh.user(b, "bob")

	deep := startNode(b)
	deep.user(b, "alice")
	deep.user(b, "bob")
	deep.stop()
	fill(b, deep.dir, 200000)
	deep = startIn(b, deep.dir) // on another address: a new domain, so log in again
	c := deep.api("")
	if _, err := c.Login(context.Background(), "alice", "password-alice"); err != nil {
		b.Fatal(err)
	}
	deepAlice := c.Token
	if _, _, err := deep.api(deepAlice).Send(context.Background(), "bob", "after the fill", nil); err != nil {
		b.Fatalf("a send to the filled store: %v", err)
	}
	freshRate, deepRate := alternate(3,
		func() float64 {
			return closedLoop(16, 2*time.Second, func() bool { return post(fresh.url+"/api/messages", freshAlice, sendBody) })
		},
		func() float64 {
			return closedLoop(16, 2*time.Second, func() bool { return post(deep.url+"/api/messages", deepAlice, sendBody) })
		})
	freshRate, deepRate = freshRate/3, deepRate/3
	g := "store of 200,000 messages"
	report(b, g, fmt.Sprintf("send msgs/s (fresh store %.0f)", freshRate), deepRate, "msgs/s", "", true, "msgs/s")
	report(b, g, "ratio to a fresh store", deepRate/freshRate, "x", ">= 0.9", deepRate/freshRate >= 0.9, "x-fresh")
}

// fill appends n messages from alice to bob straight into the store.
func fill(tb testing.TB, dir string, n int) {
	tb.Helper()
	ctx := context.Background()
	st, err := bolt.Open(ctx, bolt.Options{Dir: dir, Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	from, _ := fednode.ParseAddress("alice", "x.test")
	to, _ := fednode.ParseAddress("bob", "x.test")
	var wg sync.WaitGroup
	per := n / 256
	for w := 0; w < 256; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				m := fednode.Message{ID: fednode.NewID(time.Now()), From: from, To: to, Content: "a stored message of ordinary length", Tags: []string{}, CreatedAt: time.Now(), Status: fednode.StatusDelivered}
				if _, err := st.AppendMessage(ctx, m, "alice", "bob"); err != nil {
					tb.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// benchDeadPeers: delivery to a healthy peer from a node with 10 dead
// peers queued, against one with none, measured in turns.
func benchDeadPeers(b *testing.B) {
	clean, burdened, peer := startNode(b), startNode(b), startNode(b)
	dead := burdened.user(b, "deadsender")
	for p := 0; p < 10; p++ {
		to := fmt.Sprintf("nobody@%s", testnet.FreeAddr(b)) // nothing listens there
		for i := 0; i < 50; i++ {
			post(burdened.url+"/api/messages", dead, mustJSON(map[string]any{"to": to, "content": "to a dead peer"}))
		}
	}
	cleanRate, rate := alternate(3,
		func() float64 { r, _, _ := crossNodeRate(b, clean, peer, 3*time.Second); return r },
		func() float64 { r, _, _ := crossNodeRate(b, burdened, peer, 3*time.Second); return r })
	cleanRate, rate = cleanRate/3, rate/3
	g := "10 dead peers queued"
	report(b, g, fmt.Sprintf("delivered msgs/s (none dead %.0f)", cleanRate), rate, "msgs/s", "", true, "msgs/s")
	report(b, g, "ratio to no dead peers", rate/cleanRate, "x", ">= 0.9", rate/cleanRate >= 0.9, "x-clean")
}
