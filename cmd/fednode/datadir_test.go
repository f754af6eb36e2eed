package main_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestBinaryRefusesUnwritableDataDir is the container's first start on a
// root-owned volume: the node runs as uid 65532 (the image's user) on a
// DATA_DIR it cannot write, and exits 1 with one message that names the
// uid, the path and the fix, with no stack trace, having written nothing.
// As root the test runs the binary as uid 65532 on a root-owned directory;
// as any other user, as itself on a directory of mode 0555.
func TestBinaryRefusesUnwritableDataDir(t *testing.T) {
	bin := binary(t)
	root, err := os.MkdirTemp("", "fednode-datadir")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "data"), 0o700); os.RemoveAll(root) })
	// Readable and searchable by every user, writable only by its owner.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(root, "fednode")
	if err := copyFile(bin, exe); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(root, "data")
	cmd := exec.Command(exe)
	uid := os.Getuid()
	if uid == 0 {
		uid = 65532
		if err := os.Mkdir(data, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	} else if err := os.Mkdir(data, 0o555); err != nil {
		t.Fatal(err)
	}
	cmd.Env = []string{"DATA_DIR=" + data, "LISTEN_ADDR=127.0.0.1:0", "AUDIT_LOG=stderr"}
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
		t.Fatalf("exit %d (%v); want 1:\n%s", code, err, out)
	}
	msg := string(out)
	for _, want := range []string{
		"fednode: DATA_DIR " + data, fmt.Sprintf("uid %d", uid), "permission denied",
		fmt.Sprintf("chown -R %d %s", uid, data), "named volume",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "goroutine") || strings.Contains(msg, "panic") {
		t.Errorf("a stack trace:\n%s", msg)
	}
	if ents, _ := os.ReadDir(data); len(ents) != 0 {
		t.Errorf("wrote %v", ents)
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
