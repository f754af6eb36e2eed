// Package vaulttest starts a real Vault dev server for tests on a random
// loopback port, with Transit enabled and KV version 2 at secret/, and
// hands out tokens and AppRole credentials limited to a policy. The
// binary is built from the Go module proxy by scripts/vault-build (Vault is
// not packaged for Debian); a test needing Vault fails, never skips, when it
// is missing: .ci/run builds it.
package vaulttest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// Server is a running dev server.
type Server struct {
	Addr      string // http://127.0.0.1:port
	Token     string // the root token
	UnsealKey string
	cmd       *exec.Cmd
}

// Binary finds the Vault binary: $VAULT_BIN, else .tools/bin/vault in the
// repository.
func Binary(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs a Vault server: the full suite (make test) runs it; -short skips it")
	}
	if p := os.Getenv("VAULT_BIN"); p != "" {
		return p
	}
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, ".tools", "bin", "vault")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !strings.Contains(dir, "tools") {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	tb.Fatalf("no Vault binary: run scripts/vault-build (it builds .tools/bin/vault; .ci/run does it)")
	return ""
}

var unsealRE = regexp.MustCompile(`Unseal Key: (\S+)`)

// Start starts a dev server and stops it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tok := make([]byte, 12)
	rand.Read(tok)
	s := &Server{Addr: "http://" + addr, Token: "root-" + hex.EncodeToString(tok)}
	s.cmd = exec.Command(Binary(tb), "server", "-dev", "-dev-listen-address="+addr, "-dev-root-token-id="+s.Token, "-dev-no-store-token")
	s.cmd.Env = append(os.Environ(), "VAULT_DISABLE_MLOCK=true", "HOME="+tb.TempDir())
	out, _ := s.cmd.StdoutPipe()
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		tb.Fatalf("vault: %v", err)
	}
	tb.Cleanup(func() { s.cmd.Process.Kill(); s.cmd.Wait() })
	keyCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := unsealRE.FindStringSubmatch(sc.Text()); m != nil {
				keyCh <- m[1]
			}
		}
		io.Copy(io.Discard, out)
	}()
	c := s.Client(tb)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if h, err := c.Sys().Health(); err == nil && h.Initialized && !h.Sealed {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatal("vault dev server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case s.UnsealKey = <-keyCh:
	case <-time.After(10 * time.Second):
		tb.Fatal("vault dev server printed no unseal key")
	}
	if err := c.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
		tb.Fatalf("enable transit: %v", err)
	}
	return s
}

// Client is a root client.
func (s *Server) Client(tb testing.TB) *vault.Client {
	cfg := vault.DefaultConfig()
	cfg.Address = s.Addr
	c, err := vault.NewClient(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	c.SetToken(s.Token)
	return c
}

// Seal seals the server; Unseal unseals it with the dev unseal key.
func (s *Server) Seal(tb testing.TB) {
	if err := s.Client(tb).Sys().Seal(); err != nil {
		tb.Fatalf("seal: %v", err)
	}
}

func (s *Server) Unseal(tb testing.TB) {
	if _, err := s.Client(tb).Sys().Unseal(s.UnsealKey); err != nil {
		tb.Fatalf("unseal: %v", err)
	}
}

// TokenWithPolicy writes policy as name and returns a renewable token that
// has that policy and no other (not Vault's "default"), lasting ttl per
// renewal and an hour at most: a node's token as docs/OPERATIONS.md makes
// it.
func (s *Server) TokenWithPolicy(tb testing.TB, name, policy, ttl string) string {
	tb.Helper()
	c := s.Client(tb)
	if err := c.Sys().PutPolicy(name, policy); err != nil {
		tb.Fatalf("policy %s: %v", name, err)
	}
	sec, err := c.Auth().Token().Create(&vault.TokenCreateRequest{
		Policies: []string{name}, NoDefaultPolicy: true, TTL: ttl, ExplicitMaxTTL: "1h", Renewable: boolPtr(true),
	})
	if err != nil {
		tb.Fatalf("token with policy %s: %v", name, err)
	}
	return sec.Auth.ClientToken
}

func boolPtr(b bool) *bool { return &b }

// AppRole enables AppRole auth and makes a role name whose tokens have
// policy (written as name) and no other, not even Vault's "default", and
// returns its role id and a secret id. tokenTTL is the TTL of tokens the
// role issues.
func (s *Server) AppRole(tb testing.TB, name, policy, tokenTTL string) (roleID, secretID string) {
	tb.Helper()
	c := s.Client(tb)
	ctx := context.Background()
	if err := c.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil && !strings.Contains(err.Error(), "already in use") {
		tb.Fatal(err)
	}
	if err := c.Sys().PutPolicyWithContext(ctx, name, policy); err != nil {
		tb.Fatalf("policy %s: %v", name, err)
	}
	if _, err := c.Logical().Write("auth/approle/role/"+name, map[string]any{
		"token_policies": name, "token_no_default_policy": true, "token_ttl": tokenTTL, "token_max_ttl": "1h",
	}); err != nil {
		tb.Fatal(err)
	}
	r, err := c.Logical().Read("auth/approle/role/" + name + "/role-id")
	if err != nil {
		tb.Fatal(err)
	}
	sid, err := c.Logical().Write("auth/approle/role/"+name+"/secret-id", nil)
	if err != nil {
		tb.Fatal(err)
	}
	return fmt.Sprint(r.Data["role_id"]), fmt.Sprint(sid.Data["secret_id"])
}
