// Package redistest starts real redis-server processes for tests: a single
// server, or a Redis Cluster of several masters made with
// redis-cli --cluster create, each on a random loopback port with a password,
// append-only persistence and a temporary directory. A test that needs Redis
// fails (never skips) when redis-server is not installed: .ci/run installs it.
package redistest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fednode/fednode/internal/testcert"
	"github.com/fednode/fednode/internal/testnet"
)

// Password is the password every test server requires.
const Password = "redistest-password"

// Server is one redis-server process.
type Server struct {
	tb      testing.TB
	Addr    string
	CAFile  string // with StartTLS: the CA to trust
	tls     bool
	dir     string
	args    []string
	cmd     *exec.Cmd
	exited  chan struct{}
	cluster bool
}

func binary(tb testing.TB, name string) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs a real Redis: the full suite (make test) runs it; -short skips it")
	}
	p, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("%s is not installed: this test needs a real Redis (apt-get install redis-server; .ci/run does it)", name)
	}
	return p
}

// Start starts a single redis-server and stops it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, false)
}

// StartTLS starts a redis-server that speaks TLS only (its plain port is
// off), with a certificate for 127.0.0.1 from a throwaway CA whose PEM is at
// CAFile. URL is then rediss://.
func StartTLS(tb testing.TB) *Server {
	tb.Helper()
	dir := tb.TempDir()
	tc := testcert.Write(tb, dir)
	caFile, certFile, keyFile := tc.CA, tc.Cert, tc.Key
	port := testnet.FreePort(tb)
	s := &Server{tb: tb, Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, CAFile: caFile, tls: true}
	s.args = []string{
		"--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", caFile, "--tls-auth-clients", "no",
		"--requirepass", Password, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log"),
	}
	s.Restart()
	tb.Cleanup(s.Kill)
	return s
}

func start(tb testing.TB, cluster bool) *Server {
	tb.Helper()
	port := testnet.FreePort(tb)
	s := &Server{tb: tb, Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: tb.TempDir(), cluster: cluster}
	s.args = []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--requirepass", Password, "--masterauth", Password,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log"),
	}
	if cluster {
		s.args = append(s.args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes.conf"), "--cluster-node-timeout", "2000")
	}
	s.Restart()
	tb.Cleanup(s.Kill)
	return s
}

// Restart starts the server again (after Stop or Kill) on the same port and
// data directory, and waits until it answers.
func (s *Server) Restart() {
	s.tb.Helper()
	s.cmd = exec.Command(binary(s.tb, "redis-server"), s.args...)
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("redis-server: %v", err)
	}
	s.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(s.cmd, s.exited)
	c := s.client()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A cluster node answers PING before the cluster is formed.
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.tb.Fatalf("redis-server on %s did not start: %v\n%s", s.Addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is a client of this server alone.
func (s *Server) client() *goredis.Client {
	opt := &goredis.Options{Addr: s.Addr, Password: Password}
	if s.tls {
		pool := x509.NewCertPool()
		pem, _ := os.ReadFile(s.CAFile)
		pool.AppendCertsFromPEM(pem)
		opt.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	}
	return goredis.NewClient(opt)
}

// Kill stops the server with SIGKILL (what a crash looks like).
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
	}
}

// Stop stops the server cleanly (SIGTERM).
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
		s.cmd = nil
	}
}

// URL is the server's redis:// (or rediss://) URL, without the password
// (REDIS_PASSWORD carries it).
func (s *Server) URL() string {
	if s.tls {
		return "rediss://" + s.Addr
	}
	return "redis://" + s.Addr
}

// Cluster is a Redis Cluster of masters with no replicas.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts n masters (at least 3) and joins them into a cluster
// with redis-cli --cluster create, waiting until every node reports
// cluster_state:ok.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	c := &Cluster{}
	var addrs []string
	for i := 0; i < n; i++ {
		s := start(tb, true)
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr)
	}
	args := append([]string{"-a", Password, "--no-auth-warning", "--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(binary(tb, "redis-cli"), args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range c.Nodes {
		cl := goredis.NewClient(&goredis.Options{Addr: s.Addr, Password: Password})
		for {
			info, err := cl.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("cluster did not form: %v %s", err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cl.Close()
	}
	return c
}

// Addrs are the cluster's node addresses.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, s := range c.Nodes {
		out = append(out, s.Addr)
	}
	return out
}

// Raw returns every byte the server holds at rest: a DUMP of every key,
// then the RDB file (saved now) and the AOF files, with compression off so
// that no text hides in LZF. Tests of encryption at rest search it.
func (s *Server) Raw(tb testing.TB) []byte {
	tb.Helper()
	ctx := context.Background()
	c := s.client()
	defer c.Close()
	var raw []byte
	if err := c.ConfigSet(ctx, "rdbcompression", "no").Err(); err != nil {
		tb.Fatal(err)
	}
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, k := range keys {
		d, err := c.Dump(ctx, k).Result()
		if err != nil {
			tb.Fatal(err)
		}
		raw = append(raw, d...)
	}
	if err := c.Save(ctx).Err(); err != nil {
		tb.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(s.dir, func(path string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && (strings.HasSuffix(path, ".rdb") || strings.Contains(path, ".aof")) {
			b, rerr := os.ReadFile(path)
			if rerr != nil {
				return rerr
			}
			raw = append(raw, b...)
			files++
		}
		return err
	})
	if err != nil || files < 2 {
		tb.Fatalf("found %d RDB and AOF files in %s (%v)", files, s.dir, err)
	}
	return raw
}
