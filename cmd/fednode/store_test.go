package main_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// storeNode is a node on the embedded store, started and stopped by a test
// that damages its file in between.
type storeNode struct {
	t   *testing.T
	bin string
	dir string
	env []string
	p   *proc
}

func newStoreNode(t *testing.T) *storeNode {
	bin := binary(t)
	dir := t.TempDir()
	return &storeNode{t: t, bin: bin, dir: dir, env: []string{"DATA_DIR=" + dir, "LISTEN_ADDR=127.0.0.1:0", "NODE_DOMAIN=node-a.test"}}
}

func (n *storeNode) file() string { return filepath.Join(n.dir, "fednode.db") }

func (n *storeNode) start() { n.p = start(n.t, n.bin, n.env...) }

// stop ends the node with SIGTERM, as an operator would before touching
// its store.
func (n *storeNode) stop() {
	n.t.Helper()
	n.p.cmd.Process.Signal(syscall.SIGTERM)
	n.p.cmd.Wait()
}

// run runs the binary with args to completion and returns its exit code
// and everything it printed.
func (n *storeNode) run(args ...string) (int, string) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.bin, args...)
	cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH")}, generous...), n.env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		n.t.Fatalf("fednode %v did not finish:\n%s", args, out)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		n.t.Fatal(err)
	}
	return code, string(out)
}

// refuses runs the node and checks that it does not start: a non-zero
// exit, a message that names the file and says each of want, and nothing
// that looks like a crash.
func (n *storeNode) refuses(want ...string) string {
	n.t.Helper()
	code, out := n.run()
	if code == 0 {
		n.t.Fatalf("the node started on a damaged store:\n%s", out)
	}
	noCrash(n.t, out)
	for _, w := range append([]string{n.file()}, want...) {
		if !strings.Contains(out, w) {
			n.t.Fatalf("exit %d; the output does not say %q:\n%s", code, w, out)
		}
	}
	return out
}

func noCrash(t *testing.T, out string) {
	t.Helper()
	for _, bad := range []string{"goroutine ", "panic", "SIGBUS", "SIGSEGV", "fatal error"} {
		if strings.Contains(out, bad) {
			t.Fatalf("the output has %q, a crash:\n%s", bad, out)
		}
	}
}

// fillStore registers two users and stores messages, enough for a store of
// a few hundred KiB, and returns alice's token.
func (n *storeNode) fillStore() string {
	n.t.Helper()
	for _, u := range []string{"alice", "bob"} {
		if code, body := n.p.post(n.t, "/api/auth/register", "", map[string]string{"username": u, "password": "password-" + u}); code != 201 {
			n.t.Fatalf("register %s: %d %v", u, code, body)
		}
	}
	alice := n.p.login(n.t, "alice")
	for i := range 300 {
		if code, body := n.p.post(n.t, "/api/messages", alice, map[string]any{"to": "bob@node-a.test", "content": fmt.Sprintf("message %d %s", i, strings.Repeat("x", 500))}); code != 202 {
			n.t.Fatalf("send: %d %v", code, body)
		}
	}
	return alice
}

// pageOf returns a page of the stopped node's store: the root page of the
// named bucket, read through bbolt from a copy (a running node holds the
// file's lock).
func (n *storeNode) bucketRoot(bucket string) int64 {
	n.t.Helper()
	b, err := os.ReadFile(n.file())
	if err != nil {
		n.t.Fatal(err)
	}
	cp := filepath.Join(n.t.TempDir(), "copy.db")
	if err := os.WriteFile(cp, b, 0o600); err != nil {
		n.t.Fatal(err)
	}
	db, err := bbolt.Open(cp, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		n.t.Fatal(err)
	}
	defer db.Close()
	var root int64
	db.View(func(tx *bbolt.Tx) error { root = int64(tx.Bucket([]byte(bucket)).Root()); return nil })
	if root == 0 {
		n.t.Fatalf("bucket %s is inline", bucket)
	}
	return root
}

func (n *storeNode) writeAt(off int64, b []byte) {
	n.t.Helper()
	f, err := os.OpenFile(n.file(), os.O_WRONLY, 0)
	if err != nil {
		n.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		n.t.Fatal(err)
	}
}

// TestBinaryRefusesDamagedStore damages a stopped node's store in each way
// the issue names and runs the real binary on it: it must exit non-zero
// with a message that names the file, says what is wrong and how to
// recover, and no stack trace; check-store must find the same. Restoring
// the backup then brings everything back.
func TestBinaryRefusesDamagedStore(t *testing.T) {
	n := newStoreNode(t)
	n.start()
	n.fillStore()
	n.stop()
	backup, err := os.ReadFile(n.file())
	if err != nil {
		t.Fatal(err)
	}
	hwm := int64(0)
	{
		db, err := bbolt.Open(n.file(), 0o600, &bbolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		db.View(func(tx *bbolt.Tx) error { hwm = tx.Size(); return nil })
		db.Close()
	}
	msgRoot := n.bucketRoot("messages")

	for _, tc := range []struct {
		name   string
		damage func()
		want   []string
	}{
		{"truncated to half", func() { os.Truncate(n.file(), hwm/2) }, []string{"is truncated", "restore", "check-store"}},
		{"truncated to 8 KiB", func() { os.Truncate(n.file(), 8<<10) }, []string{"is truncated", "restore", "check-store"}},
		{"truncated to 0 bytes", func() { os.Truncate(n.file(), 0) }, []string{"empty (0 bytes)", "init-store", "check-store"}},
		{"a page header damaged", func() { n.writeAt(msgRoot*4096+8, []byte{0, 0}) }, []string{"bucket messages", "not a branch or leaf page", "restore"}},
		{"a meta page damaged", func() { n.writeAt(16+20, []byte{0xff}) }, []string{"meta page 0 is damaged", "repair-meta", "restore"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n.t = t
			if err := os.WriteFile(n.file(), backup, 0o600); err != nil {
				t.Fatal(err)
			}
			tc.damage()
			n.refuses(tc.want...)
			code, out := n.run("admin", "check-store")
			if code == 0 || !strings.Contains(out, "result: DAMAGED") {
				t.Fatalf("check-store on a damaged store: exit %d\n%s", code, out)
			}
			noCrash(t, out)
		})
	}
	n.t = t
	if err := os.WriteFile(n.file(), backup, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := n.run("admin", "check-store"); code != 0 || !strings.Contains(out, "result: ok") {
		t.Fatalf("check-store on the restored backup: exit %d\n%s", code, out)
	}
	n.start()
	bob := n.p.login(t, "bob")
	if got := len(n.p.ids(t, bob)); got != 300 {
		t.Fatalf("after restoring the backup bob has %d messages, want 300", got)
	}
}

// TestBinaryRepairMeta: the recovery for a damaged meta page, end to end.
func TestBinaryRepairMeta(t *testing.T) {
	n := newStoreNode(t)
	n.start()
	n.fillStore()
	n.stop()
	// Damage the meta page of the older transaction: nothing is lost.
	b, _ := os.ReadFile(n.file())
	tx0, tx1 := le64(b[16+48:]), le64(b[4096+16+48:])
	older := int64(0)
	if tx1 < tx0 {
		older = 1
	}
	n.writeAt(older*4096+16+20, []byte{0xff})
	n.refuses(fmt.Sprintf("meta page %d is damaged", older), "repair-meta")
	code, out := n.run("admin", "repair-meta")
	if code != 0 || !strings.Contains(out, "both meta pages of") {
		t.Fatalf("repair-meta: exit %d\n%s", code, out)
	}
	n.start()
	bob := n.p.login(t, "bob")
	if got := len(n.p.ids(t, bob)); got != 300 {
		t.Fatalf("after repair-meta bob has %d messages, want 300", got)
	}
}

func le64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// TestBinaryRefusesMissingStoreWhereANodeRan: a DATA_DIR with the node's
// keys and secret but no store is refused, never started empty; init-store
// is the explicit way to start it empty.
func TestBinaryRefusesMissingStoreWhereANodeRan(t *testing.T) {
	n := newStoreNode(t)
	n.start()
	n.fillStore()
	n.stop()
	if err := os.Rename(n.file(), n.file()+".elsewhere"); err != nil {
		t.Fatal(err)
	}
	n.refuses("is missing", "keys/", "jwt_secret", "init-store")
	if code, out := n.run("admin", "promote", "alice"); code == 0 || !strings.Contains(out, "init-store") {
		t.Fatalf("an admin command on the missing store: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(n.file()); err == nil {
		t.Fatal("an admin command created the store")
	}
	code, out := n.run("admin", "init-store")
	if code != 0 || !strings.Contains(out, "created an empty store") {
		t.Fatalf("init-store: exit %d\n%s", code, out)
	}
	if code, out := n.run("admin", "init-store"); code == 0 || !strings.Contains(out, "never replaces a store") {
		t.Fatalf("init-store over a store: exit %d\n%s", code, out)
	}
	n.start() // empty, on purpose
	if code, _ := n.p.post(t, "/api/auth/login", "", map[string]string{"username": "alice", "password": "password-alice"}); code == 200 {
		t.Fatal("alice logs in on a store that init-store made empty")
	}
}

// TestBinaryStoreFailureAtRunTime damages the store under a running node:
// the next send crashes bbolt inside the group committer. The node must
// answer 503 (not die), refuse writes from then on, say why in /readyz and
// the log, stay alive, and at the next start refuse the store with a clear
// message instead of crashing again.
func TestBinaryStoreFailureAtRunTime(t *testing.T) {
	n := newStoreNode(t)
	n.start()
	alice := n.fillStore()
	n.writeAt(n.bucketRoot("messages")*4096, []byte{0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0})

	for range 3 {
		code, body := n.p.post(t, "/api/messages", alice, map[string]any{"to": "bob@node-a.test", "content": "after the damage"})
		if code != http.StatusServiceUnavailable {
			t.Fatalf("send on a failed store: %d %v, want 503", code, body)
		}
	}
	code, body := n.p.post(t, "/api/auth/register", "", map[string]string{"username": "carol", "password": "password-carol"})
	if code != http.StatusServiceUnavailable {
		t.Fatalf("register on a failed store: %d %v, want 503", code, body)
	}
	resp, err := http.Get(n.p.url + "/readyz")
	if err != nil {
		t.Fatalf("the node died: %v", err)
	}
	why, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(why), "store: the store has failed and refuses writes") {
		t.Fatalf("/readyz on a failed store must say why: %d %s", resp.StatusCode, why)
	}
	if resp, err := http.Get(n.p.url + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the process must live on: %v", err)
	}
	n.stop()
	logs := n.p.logs.String()
	if c := strings.Count(logs, `"msg":"store: failed; writes are refused`); c != 1 || !strings.Contains(logs, `"level":"ERROR"`) {
		t.Fatalf("the failure was logged %d times at Error, want once:\n%s", c, logs)
	}
	noCrash(t, logs)
	out := n.refuses("bucket messages", "restore")
	t.Logf("the next start:\n%s", out)
}

// TestBinaryFullDisk limits the size of files the node may write (as a full
// disk would stop it): sends fail with 503 and /readyz says the store cannot
// take writes; once there is room again, both recover without a restart.
func TestBinaryFullDisk(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("needs prlimit (util-linux) to limit a running process's file size")
	}
	n := newStoreNode(t)
	n.start()
	alice := n.fillStore()
	st, _ := os.Stat(n.file())
	pid := strconv.Itoa(n.p.cmd.Process.Pid)
	if out, err := exec.Command(prlimit, "--pid", pid, fmt.Sprintf("--fsize=%d:", st.Size())).CombinedOutput(); err != nil {
		t.Skipf("prlimit: %v %s", err, out)
	}
	refused := false
	for i := 0; i < 2000 && !refused; i++ {
		code, body := n.p.post(t, "/api/messages", alice, map[string]any{"to": "bob@node-a.test", "content": strings.Repeat("y", 4000)})
		switch code {
		case http.StatusAccepted:
		case http.StatusServiceUnavailable:
			refused = true
		default:
			t.Fatalf("send on a full disk: %d %v, want 202 or 503", code, body)
		}
	}
	if !refused {
		t.Fatal("the file never reached its limit")
	}
	resp, err := http.Get(n.p.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	why, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(why), "cannot take writes") {
		t.Fatalf("/readyz while writes fail must say why: %d %s", resp.StatusCode, why)
	}
	if out, err := exec.Command(prlimit, "--pid", pid, "--fsize=unlimited:").CombinedOutput(); err != nil {
		t.Fatalf("prlimit: %v %s", err, out)
	}
	if code, body := n.p.post(t, "/api/messages", alice, map[string]any{"to": "bob@node-a.test", "content": "room again"}); code != http.StatusAccepted {
		t.Fatalf("send once there is room: %d %v", code, body)
	}
	if resp, err := http.Get(n.p.url + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz once a write succeeded: %v %v", resp, err)
	}
	n.stop()
	if code, out := n.run("admin", "check-store"); code != 0 {
		t.Fatalf("check-store after the full disk: exit %d\n%s", code, out)
	}
}
