package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fednode/fednode/client"
	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/e2e"
	"github.com/fednode/fednode/internal/syncbuf"
	"github.com/fednode/fednode/internal/testkeys"
	"github.com/fednode/fednode/node"
)

// fixedE2EKeys replaces generateKeys for the test: RSA test keys 4, 5,
// 6… in turn (generating RSA-4096 takes seconds), fresh P-256 keys.
func fixedE2EKeys(t *testing.T) {
	var n atomic.Int32
	n.Store(3)
	generateKeys = func() (*e2e.Keys, error) {
		sig, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return &e2e.Keys{Enc: testkeys.Key(int(n.Add(1)) % testkeys.Count), Sig: sig}, err
	}
	t.Cleanup(func() { generateKeys = e2e.GenerateKeys })
}

// TestFedctlE2E: two users of one node, end-to-end encrypted, as fedctl
// users see it: keys with a backup, a message the node's store does not
// hold in clear, a second device restored from the backup, a key change
// that is warned about and refused until trusted.
func TestFedctlE2E(t *testing.T) {
	fixedE2EKeys(t)
	cfg := e2eNodeConfig(t)
	srv := openNode(t, cfg)
	defer srv.Close()

	dir := t.TempDir()
	// A device is a config directory; a user's token is shared by devices.
	envFor := func(user, device string) func(string) string {
		return func(k string) string {
			switch k {
			case "FEDNODE_URL":
				return srv.URL()
			case "FEDCTL_TOKEN_FILE":
				return filepath.Join(dir, user+".token")
			case "FEDCTL_E2E_KEYS":
				return filepath.Join(dir, device, "e2e-keys.json")
			case "FEDCTL_KNOWN_KEYS":
				return filepath.Join(dir, device, "known-keys.json")
			}
			return ""
		}
	}
	fedctl := func(user, device, stdin string, args ...string) (string, string, error) {
		t.Helper()
		var out, errb bytes.Buffer
		err := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, envFor(user, device))
		return out.String(), errb.String(), err
	}
	must := func(user, device, stdin string, args ...string) string {
		t.Helper()
		out, errs, err := fedctl(user, device, stdin, args...)
		if err != nil {
			t.Fatalf("fedctl %s as %s on %s: %v\n%s", strings.Join(args, " "), user, device, err, errs)
		}
		return out
	}
	for _, u := range []string{"alice", "bob"} {
		must(u, u+"-laptop", "password-"+u+"\n", "register", u)
		must(u, u+"-laptop", "password-"+u+"\n", "login", u)
	}
	const secret = "the launch code is 0000, tell no node"

	// Keys: alice with a backup, bob without.
	out := must("alice", "alice-laptop", "alice's long passphrase\n", "keys", "init", "--backup")
	if !strings.Contains(out, "fingerprint: ") || !strings.Contains(out, "backup published") {
		t.Fatalf("keys init --backup: %q", out)
	}
	must("bob", "bob-laptop", "", "keys", "init")
	for _, f := range []string{"alice-laptop/e2e-keys.json", "alice-laptop/known-keys.json", "bob-laptop/e2e-keys.json"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st, err)
		}
	}
	if out := must("alice", "alice-laptop", "", "keys", "show"); !strings.Contains(out, "this device has the private keys") || !strings.Contains(out, "backup is on the node") {
		t.Fatalf("keys show (own): %q", out)
	}
	bobFP := fingerprint(t, must("bob", "bob-laptop", "", "keys", "show"))
	if out := must("alice", "alice-laptop", "", "keys", "show", "bob"); !strings.Contains(out, bobFP) || !strings.Contains(out, "first seen now") {
		t.Fatalf("keys show bob, first time: %q", out)
	}

	// bob tails while alice sends end-to-end.
	var tailOut syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	tailDone := make(chan error, 1)
	go func() {
		tailDone <- run(ctx, []string{"tail"}, nil, &tailOut, io.Discard, envFor("bob", "bob-laptop"))
	}()
	time.Sleep(300 * time.Millisecond) // tail starts from now
	var sent struct{ ID, Status string }
	if err := json.Unmarshal([]byte(must("alice", "alice-laptop", "", "send", "--e2e", "bob", secret, "secret")), &sent); err != nil || sent.ID == "" {
		t.Fatalf("send --e2e: %+v %v", sent, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(tailOut.String(), "[e2e] "+secret) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-tailDone
	if !strings.Contains(tailOut.String(), "[e2e] "+secret) {
		t.Fatalf("tail did not show the decrypted message: %s", tailOut.String())
	}

	msg := findMessage(t, must("bob", "bob-laptop", "", "inbox"), sent.ID)
	if msg["content"] != "[e2e] "+secret || !sameTags(msg["tags"], "secret") || msg["e2e"] != nil {
		t.Fatalf("bob's inbox: %v", msg)
	}
	var reply struct{ ID string }
	if err := json.Unmarshal([]byte(must("bob", "bob-laptop", "", "send", "--e2e", "alice", "a reply from bob")), &reply); err != nil {
		t.Fatal(err)
	}
	if m := findMessage(t, must("alice", "alice-laptop", "", "inbox"), reply.ID); m["content"] != "[e2e] a reply from bob" {
		t.Fatalf("alice reads bob's reply as %v", m)
	}
	// The node's store holds neither the content nor the tag in clear.
	srv.Close()
	scanned := 0
	filepath.WalkDir(cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		scanned += len(b)
		if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte("launch code")) {
			t.Fatalf("%s holds the end-to-end content in clear", path)
		}
		return nil
	})
	if scanned < 1<<14 {
		t.Fatalf("only %d bytes in DATA_DIR: the store was not where the test looked", scanned)
	}
	srv = openNode(t, withAddr(cfg, srv.URL()))
	defer srv.Close()

	// A second device for alice: a wrong passphrase is refused and leaves
	// no keys; the right one restores them, and alice reads her own copy.
	if _, _, err := fedctl("alice", "alice-phone", "not the passphrase\n", "keys", "restore"); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("restore with a wrong passphrase: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "alice-phone", "e2e-keys.json")); err == nil {
		t.Fatal("a failed restore wrote keys")
	}
	pf := filepath.Join(dir, "passphrase")
	os.WriteFile(pf, []byte("alice's long passphrase\n"), 0o600)
	if out, _, err := run2(srv.URL(), envFor("alice", "alice-phone"), map[string]string{"FEDCTL_PASSPHRASE_FILE": pf}, "keys", "restore"); err != nil || !strings.Contains(out, "restored") {
		t.Fatalf("restore with FEDCTL_PASSPHRASE_FILE: %q %v", out, err)
	}
	if m := findMessage(t, must("alice", "alice-phone", "", "inbox"), sent.ID); m["content"] != "[e2e] "+secret {
		t.Fatalf("alice's second device reads her sent copy as %v", m)
	}
	// Without keys on the device, bob's copy shows why it is unreadable.
	if m := findMessage(t, must("bob", "bob-phone", "", "inbox"), sent.ID); m["content"] != "[e2e: could not decrypt: this device has no end-to-end keys]" {
		t.Fatalf("a device without keys: %v", m)
	}

	// bob makes new keys: a key change for alice. Without --replace, init
	// refuses (a second device meant restore) and leaves everything as it was.
	if _, _, err := fedctl("bob", "bob-laptop", "", "keys", "init"); err == nil || !strings.Contains(err.Error(), "--replace") || !strings.Contains(err.Error(), bobFP) {
		t.Fatalf("keys init over published keys without --replace: %v", err)
	}
	if fp := fingerprint(t, must("bob", "bob-laptop", "", "keys", "show")); fp != bobFP {
		t.Fatalf("a refused init changed bob's keys: %s, was %s", fp, bobFP)
	}
	if out := must("bob", "bob-laptop", "", "keys", "init", "--replace"); !strings.Contains(out, "replacing your published keys") {
		t.Fatalf("keys init --replace must say it is a key change: %q", out)
	}
	newFP := fingerprint(t, must("bob", "bob-laptop", "", "keys", "show"))
	// bob (or his node, having swapped his keys) sends alice messages
	// signed by the new key: each one is marked, not only the first.
	var forged [2]string
	for i := range forged {
		var r struct{ ID string }
		if err := json.Unmarshal([]byte(must("bob", "bob-laptop", "", "send", "--e2e", "alice", fmt.Sprintf("new key %d", i))), &r); err != nil {
			t.Fatal(err)
		}
		forged[i] = r.ID
	}
	if _, _, err := fedctl("alice", "alice-laptop", "", "send", "--e2e", "bob", "after the change"); err == nil || !strings.Contains(err.Error(), "keys of bob@") || !strings.Contains(err.Error(), "keys trust") {
		t.Fatalf("send --e2e to changed keys must be refused: %v", err)
	}
	out = must("alice", "alice-laptop", "", "keys", "show", "bob")
	if !strings.Contains(out, "WARNING: the keys of bob@") || !strings.Contains(out, bobFP) || !strings.Contains(out, newFP) {
		t.Fatalf("keys show after a change: %q", out)
	}
	// Messages bob signed with his old key still verify against the pin
	// (and warn); the phone, which pinned nothing, just sees new keys.
	out, errs, err := fedctl("alice", "alice-laptop", "", "inbox")
	if err != nil || strings.Count(errs, "WARNING: the keys of bob@") != 1 {
		t.Fatalf("inbox after bob's key change warns once: %q %v", errs, err)
	}
	if m := findMessage(t, out, reply.ID); m["content"] != "[e2e] a reply from bob" {
		t.Fatalf("bob's reply signed before the change reads as %v", m)
	}
	for i, id := range forged {
		c, _ := findMessage(t, out, id)["content"].(string)
		if !strings.HasPrefix(c, "[e2e: UNTRUSTED KEY (the keys of bob@") || !strings.Contains(c, bobFP) || !strings.Contains(c, newFP) ||
			!strings.Contains(c, "--fingerprint") || !strings.HasSuffix(c, fmt.Sprintf(")] new key %d", i)) {
			t.Fatalf("message %d signed by bob's untrusted new key reads as %q", i, c)
		}
	}
	// keys trust pins only the keys whose fingerprint alice compared.
	if _, _, err := fedctl("alice", "alice-laptop", "", "keys", "trust", "bob"); err == nil || !strings.Contains(err.Error(), "--fingerprint") {
		t.Fatalf("keys trust without --fingerprint: %v", err)
	}
	if _, _, err := fedctl("alice", "alice-laptop", "", "keys", "trust", "bob", "--fingerprint", bobFP); err == nil ||
		!strings.Contains(err.Error(), bobFP) || !strings.Contains(err.Error(), newFP) {
		t.Fatalf("keys trust with another fingerprint must be refused, saying both: %v", err)
	}
	if out := must("alice", "alice-laptop", "", "keys", "show", "bob"); !strings.Contains(out, "WARNING") {
		t.Fatalf("a refused trust pinned the keys: %q", out)
	}
	if out := must("alice", "alice-laptop", "", "keys", "trust", "--fingerprint", strings.ToUpper(strings.ReplaceAll(newFP, " ", "")), "bob"); !strings.Contains(out, newFP) {
		t.Fatalf("keys trust: %q", out)
	}
	if out := must("alice", "alice-laptop", "", "keys", "show", "bob"); !strings.Contains(out, "trusted: the same keys") {
		t.Fatalf("keys show after trust: %q", out)
	}
	if err := json.Unmarshal([]byte(must("alice", "alice-laptop", "", "send", "--e2e", "bob", "after the change")), &sent); err != nil {
		t.Fatal(err)
	}
	inbox := must("bob", "bob-laptop", "", "inbox")
	if m := findMessage(t, inbox, sent.ID); m["content"] != "[e2e] after the change" {
		t.Fatalf("bob reads the message to his new keys as %v", m)
	}
	if !strings.Contains(inbox, "[e2e: could not decrypt: not encrypted to this device's key]") {
		t.Fatalf("the message to bob's old keys must say why it cannot be read:\n%s", inbox)
	}
	// Trusting the new keys keeps the old signing key for what it signed
	// before the change: bob's earlier reply still reads, with no warning.
	if m := findMessage(t, must("alice", "alice-laptop", "", "inbox"), reply.ID); m["content"] != "[e2e] a reply from bob" {
		t.Fatalf("bob's reply signed before the change, after alice trusts his new keys: %v", m)
	}

	// bob's keys go from his node: messages signed by the key alice pins
	// still verify against the pin, but say that he publishes no keys now
	// (PROTOCOL §5.5: keys that disappear are a key change).
	if out, _, err := run2(srv.URL(), envFor("bob", "bob-laptop"), nil, "keys", "show"); err != nil || !strings.Contains(out, newFP) {
		t.Fatalf("%q %v", out, err)
	}
	deleteKeys(t, srv.URL(), filepath.Join(dir, "bob.token"))
	out = must("alice", "alice-laptop", "", "inbox")
	for i, id := range forged {
		if m := findMessage(t, out, id); m["content"] != fmt.Sprintf("[e2e: UNTRUSTED KEY (signed by the key you trusted for %s, who publishes no end-to-end keys now; ask bob)] new key %d", m["from"], i) {
			t.Fatalf("bob's message %d, signed by the pinned key, after his keys are gone: %v", i, m)
		}
	}
}

// deleteKeys removes the published keys of the user whose token is in
// tokenFile (fedctl has no command for it).
func deleteKeys(t *testing.T, url, tokenFile string) {
	t.Helper()
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &client.Client{BaseURL: url, Token: strings.TrimSpace(string(tok))}
	if err := c.DeleteKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// e2eNodeConfig is a node for the end-to-end tests: on a free port, in a
// temporary DATA_DIR, with cheap passwords.
func e2eNodeConfig(t *testing.T) daemon.Config {
	cfg := daemon.DefaultConfig()
	cfg.ListenAddr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Password = node.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}
	return cfg
}

// run2 runs fedctl with extra environment variables.
func run2(url string, base func(string) string, extra map[string]string, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		return base(k)
	})
	return out.String(), errb.String(), err
}

func withAddr(cfg daemon.Config, url string) daemon.Config {
	cfg.ListenAddr = strings.TrimPrefix(url, "http://")
	return cfg
}

func fingerprint(t *testing.T, out string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if fp, ok := strings.CutPrefix(line, "fingerprint: "); ok {
			return fp
		}
	}
	t.Fatalf("no fingerprint in %q", out)
	return ""
}

func findMessage(t *testing.T, jsonLines, id string) map[string]any {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(jsonLines), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["id"] == id {
			return m
		}
	}
	t.Fatalf("message %s not in:\n%s", id, jsonLines)
	return nil
}

func sameTags(v any, want ...string) bool {
	tags, _ := v.([]any)
	if len(tags) != len(want) {
		return false
	}
	for i, t := range tags {
		if t != want[i] {
			return false
		}
	}
	return true
}
