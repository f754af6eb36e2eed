package main_test

import (
	"context"
	"crypto/rsa"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/internal/testnet"
	"github.com/fednode/fednode/keys"
)

type binNode struct {
	t    *testing.T
	bin  string
	env  []string
	p    *proc
	addr string
}

// startBinNode seeds DATA_DIR with fixed test keys (generation takes
// seconds) and starts the binary on a fixed port, so it keeps its domain
// across restarts.
func startBinNode(t *testing.T, bin string, sigKey, encKey int) *binNode {
	dir := t.TempDir()
	order := []int{sigKey, encKey}
	_, err := keys.OpenLocal(filepath.Join(dir, "keys"), keys.LocalOptions{Generate: func() (*rsa.PrivateKey, error) {
		k := testkeys.Key(order[0])
		order = order[1:]
		return k, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Keys in DATA_DIR tell the node it ran there before: it would refuse
	// to start without its store. Creating the empty store is explicit.
	initStore := exec.Command(bin, "admin", "init-store")
	initStore.Env = []string{"DATA_DIR=" + dir}
	if out, err := initStore.CombinedOutput(); err != nil {
		t.Fatalf("init-store: %v\n%s", err, out)
	}
	addr := testnet.FreeAddr(t)
	n := &binNode{t: t, bin: bin, addr: addr, env: []string{
		"DATA_DIR=" + dir, "LISTEN_ADDR=" + addr,
		"FEDERATION_ALLOW_PRIVATE=true", "FEDERATION_PLAIN_HTTP=true",
		"OUTBOX_RETRY_BASE=50ms", "OUTBOX_RETRY_MAX=500ms",
	}}
	n.p = start(t, bin, n.env...)
	return n
}

func (n *binNode) kill9() {
	n.p.cmd.Process.Signal(syscall.SIGKILL)
	n.p.cmd.Wait()
}

func (n *binNode) restart() { n.p = start(n.t, n.bin, n.env...) }

func (n *binNode) user(name string) string {
	n.t.Helper()
	if err := n.p.api("").Register(context.Background(), name, "password-"+name); err != nil {
		n.t.Fatalf("register %s: %v", name, err)
	}
	return n.p.login(n.t, name)
}

// list returns the ids of a user's mailbox in order, duplicates included.
func (n *binNode) list(token string) []string {
	var out []string
	after := ""
	for {
		page, err := n.p.api(token).Messages(context.Background(), after, 200)
		if err != nil {
			n.t.Fatal(err)
		}
		for _, m := range page.Messages {
			out = append(out, m.ID)
		}
		if len(page.Messages) == 0 {
			return out
		}
		after = page.Next
	}
}

// waitFor polls until every id in want is in the recipient's mailbox, then
// checks none appears twice.
func (n *binNode) waitFor(token string, want map[string]bool) {
	n.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := n.list(token)
		have := map[string]int{}
		for _, id := range got {
			have[id]++
			if have[id] > 1 {
				n.t.Fatalf("message %s is shown twice", id)
			}
		}
		missing := 0
		for id := range want {
			if have[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%d of %d accepted messages never arrived", missing, len(want))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// load sends from 4 goroutines until stop is closed and returns the ids
// answered 202.
func load(t *testing.T, from *proc, token, to string, stop <-chan struct{}) func() map[string]bool {
	var mu sync.Mutex
	accepted := map[string]bool{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, body := from.post(t, "/api/messages", token, map[string]any{"to": to, "content": fmt.Sprintf("w%d-%d", w, i)})
				if code == 202 {
					mu.Lock()
					accepted[body["id"].(string)] = true
					mu.Unlock()
				} else if code == 0 {
					time.Sleep(20 * time.Millisecond) // the node is down
				}
			}
		}(w)
	}
	return func() map[string]bool {
		wg.Wait()
		return accepted
	}
}

func TestBinaryThreeNodesFederateAndSurviveKill9(t *testing.T) {
	bin := binary(t)
	a, b, c := startBinNode(t, bin, 0, 1), startBinNode(t, bin, 2, 3), startBinNode(t, bin, 4, 5)
	alice, bob, carol := a.user("alice"), b.user("bob"), c.user("carol")
	dave := a.user("dave")

	// Local, and every direction around the ring and back.
	sends := []struct {
		from  *binNode
		token string
		to    string
		rcpt  *binNode
		rtok  string
	}{
		{a, alice, "dave", a, dave},
		{a, alice, "bob@" + b.addr, b, bob}, {b, bob, "carol@" + c.addr, c, carol}, {c, carol, "alice@" + a.addr, a, alice},
		{b, bob, "alice@" + a.addr, a, alice}, {c, carol, "bob@" + b.addr, b, bob}, {a, alice, "carol@" + c.addr, c, carol},
	}
	for _, s := range sends {
		code, body := s.from.p.post(t, "/api/messages", s.token, map[string]any{"to": s.to, "content": "hello " + s.to})
		if code != 202 {
			t.Fatalf("send to %s: %d %v", s.to, code, body)
		}
		s.rcpt.waitFor(s.rtok, map[string]bool{body["id"].(string): true})
	}

	// The sender dies under load: whatever it accepted is delivered after
	// it restarts, once.
	stop := make(chan struct{})
	wait := load(t, a.p, alice, "bob@"+b.addr, stop)
	time.Sleep(250 * time.Millisecond)
	a.kill9()
	close(stop)
	accepted := wait()
	a.restart()
	if len(accepted) < 20 {
		t.Fatalf("only %d accepted before the kill", len(accepted))
	}
	b.waitFor(bob, accepted)
	t.Logf("sender killed: %d accepted, all delivered once", len(accepted))

	// The receiver dies under load.
	stop = make(chan struct{})
	wait = load(t, c.p, carol, "bob@"+b.addr, stop)
	time.Sleep(250 * time.Millisecond)
	b.kill9()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	accepted = wait()
	b.restart()
	b.waitFor(bob, accepted)
	t.Logf("receiver killed: %d accepted, all delivered once", len(accepted))
}
