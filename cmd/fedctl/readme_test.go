package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/internal/testnet"
	"github.com/fednode/fednode/node"
)

// step is one command of the README: what it is given on standard input
// (echo '…' |), its environment (NAME=value …), the program and its
// arguments.
type step struct {
	line  string
	stdin string
	env   map[string]string
	prog  string
	args  []string
}

// readmeSteps reads the shell blocks of one README section, in order.
func readmeSteps(t *testing.T, section string) []step {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, text, ok := strings.Cut(string(b), "\n## "+section+"\n")
	if !ok {
		t.Fatalf("README has no section %q", section)
	}
	text, _, _ = strings.Cut(text, "\n## ")
	var steps []step
	for _, block := range strings.Split(text, "```sh\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
			steps = append(steps, parseStep(t, line))
		}
	}
	return steps
}

// parseStep splits one command line as the shell would, for the subset
// the README uses: words, 'single-quoted words', one leading echo pipe.
func parseStep(t *testing.T, line string) step {
	t.Helper()
	var words []string
	for rest := strings.TrimSpace(line); rest != ""; rest = strings.TrimSpace(rest) {
		if rest[0] == '\'' {
			w, after, ok := strings.Cut(rest[1:], "'")
			if !ok {
				t.Fatalf("README: unclosed quote in %q", line)
			}
			words, rest = append(words, w), after
			continue
		}
		end := strings.IndexAny(rest, " '")
		if end < 0 {
			end = len(rest)
		}
		words, rest = append(words, rest[:end]), rest[end:]
	}
	s := step{line: line, env: map[string]string{}}
	if len(words) >= 3 && words[0] == "echo" && words[2] == "|" {
		s.stdin, words = words[1]+"\n", words[3:]
	}
	for len(words) > 0 && strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(words[0], "=")
		s.env[k], words = v, words[1:]
	}
	if len(words) == 0 {
		t.Fatalf("README: no command in %q", line)
	}
	s.prog, s.args = words[0], words[1:]
	return s
}

// TestREADMETwoNodes runs the README's "Two nodes on one machine" exactly
// as written, on random ports and in a temporary directory: the nodes get
// their configuration through daemon.Load as cmd/fednode does, and fedctl
// runs with the environment, arguments and standard input the README
// gives. The README cannot drift from what works.
func TestREADMETwoNodes(t *testing.T) {
	dir := t.TempDir()
	ports := map[string]string{"127.0.0.1:8080": testnet.FreeAddr(t), "127.0.0.1:8081": testnet.FreeAddr(t)}
	local := func(s string) string { // random ports, relative paths in dir
		for from, to := range ports {
			s = strings.ReplaceAll(s, from, to)
		}
		if strings.HasPrefix(s, "./") {
			s = filepath.Join(dir, s)
		}
		return s
	}
	var nodes, sends, inboxes int
	var content string // what the README sends
	for _, s := range readmeSteps(t, "Two nodes on one machine") {
		env := map[string]string{}
		for k, v := range s.env {
			env[k] = local(v)
		}
		getenv := func(k string) string { return env[k] }
		args := make([]string, len(s.args))
		for i, a := range s.args {
			args[i] = local(a)
		}
		switch {
		case s.prog == "make" && len(args) == 1 && args[0] == "build":
			// The test runs both programs in process.
		case s.prog == "./bin/fednode" && len(args) == 0:
			cfg, err := daemon.Load(getenv)
			if err != nil {
				t.Fatalf("%s: %v", s.line, err)
			}
			cfg.Password = node.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}
			d := openNode(t, cfg)
			t.Cleanup(func() { d.Close() })
			nodes++
		case s.prog == "./bin/fedctl":
			var out bytes.Buffer
			do := func() error {
				out.Reset()
				return run(context.Background(), args, strings.NewReader(s.stdin), &out, io.Discard, getenv)
			}
			if err := do(); err != nil {
				t.Fatalf("%s: %v", s.line, err)
			}
			switch args[0] {
			case "send":
				sends, content = sends+1, args[2]
				if !strings.Contains(out.String(), `"status":"queued"`) {
					t.Fatalf("%s: %s", s.line, out.String())
				}
			case "inbox": // delivery is in the background: wait for it, as the README says
				inboxes++
				want := `"from":"alice@` + ports["127.0.0.1:8080"] + `"`
				for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), want) && time.Now().Before(deadline); {
					time.Sleep(100 * time.Millisecond)
					if err := do(); err != nil {
						t.Fatalf("%s: %v", s.line, err)
					}
				}
				if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), `"content":"`+content+`"`) {
					t.Fatalf("%s: bob's inbox on B shows no message from alice on A: %q", s.line, out.String())
				}
			}
		default:
			t.Fatalf("README step the test does not know how to run: %q", s.line)
		}
	}
	if nodes != 2 || sends != 1 || inboxes != 1 {
		t.Fatalf("the README section must start two nodes, send once and read the inbox: %d nodes, %d sends, %d inboxes", nodes, sends, inboxes)
	}
}

// TestREADMEDocumentsFedctlEnvironment: the README's fedctl section names
// every variable of the usage text, with its default.
func TestREADMEDocumentsFedctlEnvironment(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(b), "\n## fedctl\n")
	section, _, _ = strings.Cut(section, "\n## ")
	for _, want := range []string{"`FEDNODE_URL` | `" + defaultURL + "`", "`FEDNODE_TOKEN`", "`FEDCTL_TOKEN_FILE` | `$HOME/.config/fednode/token`", "--version", "--help",
		"`FEDCTL_E2E_KEYS` | `$HOME/.config/fednode/e2e-keys.json`", "`FEDCTL_KNOWN_KEYS` | `$HOME/.config/fednode/known-keys.json`", "`FEDCTL_PASSPHRASE_FILE`"} {
		if !strings.Contains(section, want) || !strings.Contains(environment+usage, strings.Trim(strings.Split(want, " |")[0], "`")) {
			t.Errorf("the README's fedctl section and the usage text must both mention %q", want)
		}
	}
}
