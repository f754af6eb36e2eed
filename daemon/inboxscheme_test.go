package daemon_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/internal/testcert"
	"github.com/fednode/fednode/node"
)

// advertisedInbox is the inbox URL in a node's document.
func advertisedInbox(t *testing.T, n *testNode, pool *x509.CertPool) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(n.url + federation.WellKnownPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct{ Inbox string }
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc.Inbox
}

// A node advertises the inbox it serves: never https:// on plain HTTP
// (issue 12), whatever FEDERATION_PLAIN_HTTP says about reaching peers.
func TestNodeAdvertisesTheSchemeItServes(t *testing.T) {
	cert := testcert.Write(t, t.TempDir())
	for name, tc := range map[string]struct {
		set  func(*daemon.Config)
		want string
	}{
		"plain HTTP, peers over https": {func(c *daemon.Config) { c.FederationPlainHTTP = false }, "http://"},
		"plain HTTP, peers over http":  {func(c *daemon.Config) {}, "http://"},
		"TLS, peers over http": {func(c *daemon.Config) {
			c.TLSEnabled, c.TLSCertPath, c.TLSKeyPath = true, cert.Cert, cert.Key
		}, "https://"},
		"TLS, peers over https": {func(c *daemon.Config) {
			c.TLSEnabled, c.TLSCertPath, c.TLSKeyPath, c.FederationPlainHTTP = true, cert.Cert, cert.Key, false
		}, "https://"},
		"behind a TLS proxy": {func(c *daemon.Config) { c.TLSTerminatedByProxy, c.FederationPlainHTTP = true, false }, "https://"},
	} {
		t.Run(name, func(t *testing.T) {
			n := startNode(t, tc.set)
			got := advertisedInbox(t, n, cert.Pool)
			host := strings.TrimPrefix(strings.TrimPrefix(n.url, "http://"), "https://")
			if got != tc.want+host+federation.InboxPath {
				t.Fatalf("advertised inbox %q, want %s%s%s", got, tc.want, host, federation.InboxPath)
			}
		})
	}
}

func TestHTTPSPublicURLOnPlainHTTPIsRefused(t *testing.T) {
	cfg := daemon.DefaultConfig()
	cfg.PublicURL = "https://chat.example.org"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "PUBLIC_URL") || !strings.Contains(err.Error(), "TLS_TERMINATED_BY_PROXY") {
		t.Fatalf("an https:// PUBLIC_URL on plain HTTP must be refused, naming the fix: %v", err)
	}
	cfg.TLSTerminatedByProxy = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("behind a TLS proxy it is the operator's statement: %v", err)
	}
	cfg.TLSTerminatedByProxy, cfg.Env = false, node.EnvProduction
	cfg.TLSACME, cfg.NodeDomain, cfg.JWTSecret = true, "chat.example.org", strings.Repeat("s", 40)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("production with TLS_ACME: %v", err)
	}
}
