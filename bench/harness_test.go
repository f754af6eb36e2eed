package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode/client"
	"github.com/fednode/fednode/internal/baseline"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/internal/testnet"
	"github.com/fednode/fednode/keys"
)

// TestMain doubles as the plain baseline server: the test binary re-run
// with FEDNODE_BENCH_PLAIN set serves a handler that decodes the same JSON
// body fednode takes and answers 202, and nothing else.
func TestMain(m *testing.M) {
	if os.Getenv("FEDNODE_BENCH_PLAIN") != "" {
		servePlain()
		return
	}
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

func servePlain() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().String())
	http.Serve(ln, baseline.Send)
}

var (
	buildOnce sync.Once
	builtDir  string
	builtBin  string
	buildErr  error
)

// binary builds cmd/fednode once.
func binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		builtDir, buildErr = os.MkdirTemp("", "fednode-bench")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(builtDir, "fednode")
		if out, err := exec.Command("go", "build", "-o", builtBin, "../cmd/fednode").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return builtBin
}

// proc is a server process under measurement.
type proc struct {
	cmd *exec.Cmd
	url string
	dir string
}

// benchEnv lifts every limit that would refuse a load generator on
// 127.0.0.1, and keeps the logs quiet.
var benchEnv = []string{
	"RATE_LIMIT_API_ANON=100000000/1m", "RATE_LIMIT_API_AUTH=100000000/1m", "RATE_LIMIT_AUTH=100000000/1m",
	"RATE_LIMIT_INBOX_IP=100000000/1m", "RATE_LIMIT_INBOX_PEER=100000000/1m", "RATE_LIMIT_WS_CONNECT=100000000/1m",
	"RATE_LIMIT_PROBE=100000000/1m", "BAN_AFTER_VIOLATIONS=100000000", "BAN_AFTER_AUTH_FAILURES=100000000",
	"LOG_LEVEL=warn", "AUDIT_LOG=stderr", "FEDERATION_ALLOW_PRIVATE=true", "FEDERATION_PLAIN_HTTP=true",
	"OUTBOX_RETRY_BASE=20ms", "OUTBOX_RETRY_MAX=200ms",
}

// keyN hands out fixed test keys: generation takes seconds.
var keyN atomic.Int32

// startNode runs the fednode binary on a fresh DATA_DIR seeded with fixed
// test keys, with env on top of benchEnv, and waits until it answers.
func startNode(tb testing.TB, env ...string) *proc {
	tb.Helper()
	dir := tb.TempDir()
	if _, err := keys.OpenLocal(filepath.Join(dir, "keys"), keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) {
		return testkeys.Key(int(keyN.Add(1)-1) % testkeys.Count), nil
	}}); err != nil {
		tb.Fatal(err)
	}
	initStore := exec.Command(binary(tb), "admin", "init-store")
	initStore.Env = []string{"DATA_DIR=" + dir}
	if out, err := initStore.CombinedOutput(); err != nil {
		tb.Fatalf("init-store: %v\n%s", err, out)
	}
	return startIn(tb, dir, env...)
}

// startIn runs the binary on an existing DATA_DIR.
func startIn(tb testing.TB, dir string, env ...string) *proc {
	tb.Helper()
	addr := testnet.FreeAddr(tb)
	cmd := exec.Command(binary(tb))
	cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH"), "DATA_DIR=" + dir, "LISTEN_ADDR=" + addr}, benchEnv...), env...)
	var stderr bytes.Buffer
	cmd.Stderr, cmd.Stdout = &stderr, io.Discard
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p := &proc{cmd: cmd, url: "http://" + addr, dir: dir}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(p.url + "/healthz"); err == nil {
			resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			tb.Fatalf("node did not start:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the process with SIGTERM and waits.
func (p *proc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	p.cmd.Wait()
}

// startPlain runs the plain baseline handler in a process of its own.
func startPlain(tb testing.TB) *proc {
	tb.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "FEDNODE_BENCH_PLAIN=1")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		tb.Fatal(err)
	}
	return &proc{cmd: cmd, url: "http://" + strings.TrimSpace(line)}
}

// cpu is the CPU time (user and system) the process has used.
func (p *proc) cpu(tb testing.TB) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// rss is the process's resident memory.
func (p *proc) rss(tb testing.TB) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// load is the machine's 1-minute load average.
func load() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func (p *proc) api(token string) *client.Client {
	return &client.Client{BaseURL: p.url, Token: token, HTTP: httpClient}
}

// httpClient keeps enough idle connections for every sender.
var httpClient = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxIdleConns: 1024}}

// user registers name on p and returns a token.
func (p *proc) user(tb testing.TB, name string) string {
	tb.Helper()
	c := p.api("")
	ctx := context.Background()
	if err := c.Register(ctx, name, "password-"+name); err != nil {
		tb.Fatal(err)
	}
	if _, err := c.Login(ctx, name, "password-"+name); err != nil {
		tb.Fatal(err)
	}
	return c.Token
}

// domain is the node's domain: its listen address.
func (p *proc) domain() string { return strings.TrimPrefix(p.url, "http://") }

var sendBody = mustJSON(map[string]any{"to": "bob", "content": "a benchmark message of ordinary length", "tags": []string{"bench"}})

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// post sends body to url as token and reports whether it was accepted
// (2xx).
func post(url, token string, body []byte) bool {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode/100 == 2
}

// closedLoop runs workers that each send as fast as answers come, for d,
// and returns how many were accepted per second.
func closedLoop(workers int, d time.Duration, send func() bool) float64 {
	var ok atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if send() {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(ok.Load()) / time.Since(start).Seconds()
}

// percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

func sortedDurations(d []time.Duration) []time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s
}

// report prints one figure against its goal, and reports it as a metric
// named metric.
func report(b *testing.B, goal, figure string, value float64, unit, target string, met bool, metric string) {
	verdict := "met"
	if !met {
		verdict = "SHORT"
	}
	fmt.Printf("goal %-28s %-46s %10.3f %-7s target %-9s %-5s load %s, %d cores\n", goal, figure, value, unit, target, verdict, load(), runtime.NumCPU())
	b.ReportMetric(value, metric)
}

// names hands out unique user names.
var names atomic.Int64

func uniqueName(prefix string) string { return fmt.Sprintf("%s%d", prefix, names.Add(1)) }
