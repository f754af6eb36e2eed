package daemon_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/internal/testcert"
)

func TestTLSServing(t *testing.T) {
	tc := testcert.Write(t, t.TempDir())
	certPath, keyPath, pool := tc.Cert, tc.Key, tc.Pool
	n := startNode(t, func(c *daemon.Config) {
		c.TLSEnabled, c.TLSCertPath, c.TLSKeyPath = true, certPath, keyPath
	})
	if n.url[:8] != "https://" {
		t.Fatalf("URL %q is not https", n.url)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if _, err := client.Get(n.url + "/healthz"); err == nil {
		t.Fatal("TLS 1.1 must be refused")
	}
	client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(n.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("healthz over TLS: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	cfg := daemon.DefaultConfig()
	cfg.ListenAddr, cfg.DataDir, cfg.JWTSecret = "127.0.0.1:0", t.TempDir(), testSecret
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	// Test keys: real RSA-4096 generation can outlast the deadline on a loaded machine.
	opt := daemon.Options{Log: quiet, Audit: quiet, GenerateKey: nextTestKey}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, cfg, opt) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	bad := cfg
	bad.Env = "staging"
	if err := daemon.Run(context.Background(), bad, opt); err == nil {
		t.Fatal("Run must refuse a bad configuration")
	}
}
