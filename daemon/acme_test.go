package daemon_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"

	"github.com/fednode/fednode/daemon"
	"github.com/fednode/fednode/internal/testnet"
)

// pebble is Let's Encrypt's ACME test server, run in process on loopback.
type pebble struct {
	directory string         // the ACME directory URL
	caFile    string         // PEM of the CA of its own HTTPS certificate
	roots     *x509.CertPool // the root it issues certificates under
	close     func()
}

// startPebble runs Pebble for names under zone, which its validation
// resolves to 127.0.0.1 through a DNS server of the test's own; it checks
// TLS-ALPN-01 on tlsPort, where the node listens.
func startPebble(t *testing.T, zone string, tlsPort int) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // no random sleep before validating
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // no deliberately refused nonces
	dnsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dnsSrv := &dns.Server{Listener: dnsLn, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA && dns.IsSubDomain(dns.Fqdn(zone), qq.Name) {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		w.WriteMsg(m)
	})}
	go dnsSrv.ActivateAndServe()

	logger := log.New(io.Discard, "", 0)
	if os.Getenv("FEDNODE_TEST_LOG") != "" {
		logger = log.New(os.Stderr, "pebble ", log.LstdFlags)
	}
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "rsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, 0, tlsPort, false, dnsLn.Addr().String(), store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(front.Handler())

	p := &pebble{directory: srv.URL + wfe.DirectoryPath, caFile: filepath.Join(t.TempDir(), "pebble-https.pem"), roots: x509.NewCertPool()}
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	p.roots.AddCert(authority.GetRootCert(0).Cert)
	p.close = func() { srv.Close(); dnsSrv.Shutdown() }
	t.Cleanup(p.close)
	return p
}

// TestACMECertificateFromPebble: with TLS_ACME the node gets a certificate
// for its domain from the ACME CA (TLS-ALPN-01 answered on its own
// listener), serves HTTPS with it, keeps it in DATA_DIR/acme, and after a
// restart serves it from there without asking the CA again.
func TestACMECertificateFromPebble(t *testing.T) {
	const domain = "a.fednode.test"
	port := testnet.FreePort(t)
	p := startPebble(t, "fednode.test", port)
	n := startNode(t, func(c *daemon.Config) {
		c.ListenAddr = "127.0.0.1:" + strconv.Itoa(port)
		c.NodeDomain = domain + ":" + strconv.Itoa(port)
		c.TLSACME, c.TLSACMEDirectoryURL, c.TLSACMECAFile = true, p.directory, p.caFile
		c.TLSACMEEmail = "ops@fednode.test"
	})
	if !strings.HasPrefix(n.url, "https://") {
		t.Fatalf("URL %q is not https", n.url)
	}
	// A client that trusts only Pebble's root, as a browser trusts Let's Encrypt's.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.roots, ServerName: domain},
	}}
	get := func() (*http.Response, error) {
		resp, err := client.Get(n.url + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	deadline := time.Now().Add(90 * time.Second)
	resp, err := get()
	for err != nil && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		resp, err = get()
	}
	if err != nil {
		t.Fatalf("no HTTPS with a certificate from the ACME CA: %v", err)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if !slices.Contains(leaf.DNSNames, domain) {
		t.Fatalf("certificate names %v, want %s", leaf.DNSNames, domain)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("healthz over ACME TLS: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	dir := filepath.Join(n.cfg.DataDir, "acme")
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("the ACME cache %s must be mode 0700: %v %v", dir, st, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "acme_account+key")); err != nil {
		t.Fatalf("the ACME account key is not kept: %v", err)
	}

	// A restart serves the cached certificate: the CA is gone.
	p.close()
	client.CloseIdleConnections()
	n.restart()
	resp, err = get()
	if err != nil {
		t.Fatalf("after a restart without the CA: %v", err)
	}
	if !resp.TLS.PeerCertificates[0].Equal(leaf) {
		t.Fatal("a restart must reuse the cached certificate, not order a new one")
	}
	// A handshake without a server name (a health check to an IP) gets it too.
	conn, err := tls.Dial("tcp", n.cfg.ListenAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake without SNI: %v", err)
	}
	defer conn.Close()
	if !conn.ConnectionState().PeerCertificates[0].Equal(leaf) {
		t.Fatal("a handshake without SNI must get the node's certificate")
	}
}
