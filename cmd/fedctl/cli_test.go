package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fednode/fednode/internal/testnet"
)

func env(kv ...string) func(string) string {
	return func(k string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}
}

func TestHelpAndVersionExitZero(t *testing.T) {
	for _, arg := range []string{"help", "-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(context.Background(), []string{arg}, nil, &out, io.Discard, env()); err != nil {
				t.Fatalf("%s must succeed: %v", arg, err)
			}
			for _, want := range []string{"fedctl register", "FEDNODE_URL", "FEDNODE_TOKEN", "FEDCTL_TOKEN_FILE", "$HOME/.config/fednode/token", "--version"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("usage does not mention %q:\n%s", want, out.String())
				}
			}
		})
	}
	for _, arg := range []string{"version", "--version"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{arg}, nil, &out, io.Discard, env()); err != nil {
			t.Fatalf("%s must succeed: %v", arg, err)
		}
		if !strings.HasPrefix(out.String(), "fedctl ") || !strings.Contains(out.String(), runtime.Version()) {
			t.Fatalf("%s printed %q", arg, out.String())
		}
	}
	if err := run(context.Background(), nil, nil, io.Discard, io.Discard, env()); err == nil || !strings.Contains(err.Error(), "usage:") {
		t.Fatalf("no command must be a usage error: %v", err)
	}
}

func TestUnreachableNodeHintsAtFEDNODE_URL(t *testing.T) {
	dir := t.TempDir()
	refused := "http://" + testnet.FreeAddr(t)
	for name, tc := range map[string]struct {
		url, want string
	}{
		"refused":      {refused, "hint: no node answers at FEDNODE_URL=" + refused},
		"unknown host": {"http://no-such-host.invalid:8080", "hint: the host name does not resolve in FEDNODE_URL=http://no-such-host.invalid:8080"},
	} {
		t.Run(name, func(t *testing.T) {
			err := run(context.Background(), []string{"inbox"}, nil, io.Discard, io.Discard, env("FEDNODE_URL", tc.url, "FEDCTL_TOKEN_FILE", dir+"/t"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q in %v", tc.want, err)
			}
		})
	}
	// Unset: the hint says the default was used.
	err := withHint(fmt.Errorf("wrapped: %w", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", unix.ECONNREFUSED)}), env())
	if err == nil || !strings.Contains(err.Error(), "FEDNODE_URL is not set") || !strings.Contains(err.Error(), defaultURL) {
		t.Fatalf("unset FEDNODE_URL: %v", err)
	}
	if err := withHint(io.ErrUnexpectedEOF, env()); err != io.ErrUnexpectedEOF {
		t.Fatalf("other errors must pass unchanged: %v", err)
	}
}

// openPTY opens a pseudo-terminal pair: the program reads from the
// returned terminal, the test types into (and reads the echo from) ptm.
func openPTY(t *testing.T) (ptm, tty *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal to test with: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return ptm, tty
}

func echoOn(t *testing.T, tty *os.File) bool {
	t.Helper()
	tios, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tios.Lflag&unix.ECHO != 0
}

func TestPasswordFromTerminalIsNotEchoed(t *testing.T) {
	ptm, tty := openPTY(t)
	if !echoOn(t, tty) {
		t.Fatal("a fresh terminal echoes; the test would prove nothing")
	}
	echoed := make(chan string, 1)
	go func() { b, _ := io.ReadAll(ptm); echoed <- string(b) }() // ends with EIO when tty closes

	type result struct {
		pw  string
		err error
	}
	done := make(chan result, 1)
	var prompt bytes.Buffer
	go func() { pw, err := readPassword(tty, &prompt); done <- result{pw, err} }()
	// Type only once echo is off, as a person would after the prompt.
	deadline := time.Now().Add(5 * time.Second)
	for echoOn(t, tty) {
		if time.Now().After(deadline) {
			t.Fatal("reading a password from a terminal did not turn echo off")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := ptm.Write([]byte("s3cret-pw\r")); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.pw != "s3cret-pw" {
		t.Fatalf("read %q, %v", r.pw, r.err)
	}
	if !echoOn(t, tty) {
		t.Fatal("echo must be restored after the password")
	}
	tty.Close()
	if got := <-echoed; strings.Contains(got, "s3cret") {
		t.Fatalf("the terminal echoed the password: %q", got)
	}
	if prompt.String() != "password: \n" {
		t.Fatalf("prompt %q", prompt.String())
	}
}

func TestPasswordFromPipeIsOneLine(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() { w.Write([]byte("piped pw\r\nrest\n")); w.Close() }()
	if pw, err := readPassword(r, io.Discard); err != nil || pw != "piped pw" {
		t.Fatalf("read %q, %v", pw, err)
	}
	if _, err := readPassword(strings.NewReader(""), io.Discard); err == nil {
		t.Fatal("no password on standard input must be an error")
	}
}
