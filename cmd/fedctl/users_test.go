package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/node"
	"github.com/fednode/fednode/ratelimit"
)

// TestFedctlManagesAUser drives `fedctl admin` against a real node, from a
// user's creation to their deletion. With -v it prints the session as an
// operator would see it in a terminal.
func TestFedctlManagesAUser(t *testing.T) {
	cfg := daemon.DefaultConfig()
	cfg.ListenAddr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Password = node.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}
	for _, class := range node.Classes { // one client logs in many times
		cfg.RateLimits[class] = ratelimit.Rule{Limit: 1 << 20, Window: time.Minute}
	}
	cfg.BanAfterAuthFailures = 1 << 20
	srv := openNode(t, cfg)
	cfg.ListenAddr = strings.TrimPrefix(srv.URL(), "http://")
	defer func() { srv.Close() }()

	dir := t.TempDir()
	var session strings.Builder
	// fedctl runs one command as user (each has its own token file) and
	// writes it, with what it printed, to the session.
	fedctl := func(user, stdin string, args ...string) (string, error) {
		t.Helper()
		var out, errb bytes.Buffer
		env := func(k string) string {
			switch k {
			case "FEDNODE_URL":
				return srv.URL()
			case "FEDCTL_TOKEN_FILE":
				return filepath.Join(dir, user+".token")
			}
			return ""
		}
		err := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, env)
		fmt.Fprintf(&session, "[%s]$ fedctl %s", user, strings.Join(quote(args), " "))
		if stdin != "" {
			fmt.Fprint(&session, "   (password on standard input)")
		}
		fmt.Fprintf(&session, "\n%s", out.String())
		if s := strings.TrimPrefix(errb.String(), "password: "); s != "" {
			fmt.Fprint(&session, s)
		}
		if err != nil {
			fmt.Fprintf(&session, "fedctl: %v\n", err)
		}
		return out.String(), err
	}
	// must(want)(fedctl(...)) requires want in the output;
	// refused(code)(fedctl(...)) requires a refusal naming code.
	must := func(want string) func(string, error) {
		return func(out string, err error) {
			t.Helper()
			if err != nil || !strings.Contains(out, want) {
				t.Fatalf("want %q in the output: %q %v", want, out, err)
			}
		}
	}
	refused := func(code string) func(string, error) {
		return func(_ string, err error) {
			t.Helper()
			if err == nil || !strings.Contains(err.Error(), code) {
				t.Fatalf("want refusal %s: %v", code, err)
			}
		}
	}
	defer func() { t.Logf("the session:\n%s", session.String()) }()

	// The first admin is made offline; the rest is online.
	fedctl("root", "password-root\n", "register", "root")
	srv.Close()
	fmt.Fprintln(&session, "[operator]$ fednode admin promote root   (node stopped)")
	if err := daemon.Promote(context.Background(), cfg, "root"); err != nil {
		t.Fatal(err)
	}
	srv = openNode(t, cfg)
	must("logged in")(fedctl("root", "password-root\n", "login", "root"))

	// Creation.
	must("registered dave")(fedctl("dave", "password-dave\n", "register", "dave"))
	must("logged in")(fedctl("dave", "password-dave\n", "login", "dave"))
	out, err := fedctl("root", "", "admin", "users")
	must(`"username":"root"`)(out, err)
	must(`"username":"dave"`)(out, err)
	must(`"username":"dave"`)(fedctl("root", "", "admin", "users", "-q", "av", "-limit", "10"))
	must(`"locked":false`)(fedctl("root", "", "admin", "user", "dave"))

	// A lockout, lifted.
	for range 5 {
		fedctl("dave", "not-the-password\n", "login", "dave")
	}
	refused("account_locked")(fedctl("dave", "password-dave\n", "login", "dave"))
	must(`"locked":true`)(fedctl("root", "", "admin", "user", "dave"))
	must(`"locked":false`)(fedctl("root", "", "admin", "unlock", "dave"))
	must("logged in")(fedctl("dave", "password-dave\n", "login", "dave"))

	// The admin role, granted and removed online.
	refused("forbidden")(fedctl("dave", "", "admin", "users", "-role", "admin"))
	must(`"role":"admin"`)(fedctl("root", "", "admin", "grant-admin", "dave"))
	must(`"username":"dave"`)(fedctl("dave", "", "admin", "users", "-role", "admin"))
	must(`"role":"user"`)(fedctl("root", "", "admin", "revoke-admin", "dave"))
	refused("forbidden")(fedctl("dave", "", "admin", "users", "-role", "admin"))
	refused("conflict")(fedctl("root", "", "admin", "revoke-admin", "root"))

	// Suspension.
	must(`"suspended":true`)(fedctl("root", "", "admin", "suspend", "dave", "spamming the node"))
	refused("unauthorized")(fedctl("dave", "", "inbox"))
	refused("account_suspended")(fedctl("dave", "password-dave\n", "login", "dave"))
	refused("recipient_suspended")(fedctl("root", "", "send", "dave", "are you there?"))
	must(`"suspended":false`)(fedctl("root", "", "admin", "unsuspend", "dave"))
	must("logged in")(fedctl("dave", "password-dave\n", "login", "dave"))
	must(`"status":"delivered"`)(fedctl("root", "", "send", "dave", "welcome back"))   // root keeps it
	must(`"status":"delivered"`)(fedctl("dave", "", "send", "dave", "a note to self")) // dave's alone

	// Deletion.
	refused("-yes")(fedctl("root", "", "admin", "delete-user", "dave"))
	must(`"messages_deleted":1`)(fedctl("root", "", "admin", "delete-user", "dave", "-yes"))
	refused("unauthorized")(fedctl("dave", "", "inbox"))
	refused("not_found")(fedctl("root", "", "admin", "user", "dave"))
	refused("username_taken")(fedctl("mallory", "password-mallory\n", "register", "dave"))
	out, err = fedctl("root", "", "admin", "users")
	if err != nil || strings.Contains(out, "dave") {
		t.Fatalf("dave is still listed: %q %v", out, err)
	}
}

// quote shows the arguments as a shell would need them.
func quote(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if strings.ContainsAny(a, " ?'") {
			out[i] = "'" + a + "'"
		}
	}
	return out
}
