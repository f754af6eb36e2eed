package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// acmeDir is where, under DATA_DIR, the ACME account key and the
// certificates are kept (autocert.DirCache; mode 0700, files 0600).
const acmeDir = "acme"

// acmeCerts obtains and renews the node's certificates from an ACME CA
// (TLS_ACME) with autocert: the first handshake naming one of the domains
// (or warm, at start) orders a certificate; autocert renews it 30 days
// before it expires, and keeps the account key and certificates in
// DATA_DIR/acme so a restart reuses them instead of ordering again (CAs
// rate-limit orders).
//
// Challenges: TLS-ALPN-01 only, answered by the node's own HTTPS listener
// (the "acme-tls/1" protocol in tlsConfig), so the CA must reach the
// listener on port 443 of each domain: LISTEN_ADDR=:443, or a TCP (not
// TLS-terminating) forward from 443. HTTP-01 would need a second listener
// on port 80; DNS-01 needs DNS credentials; neither is offered.
type acmeCerts struct {
	m       *autocert.Manager
	domains []string
}

func newACMECerts(cfg Config) (*acmeCerts, error) {
	dir := filepath.Join(cfg.DataDir, acmeDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("TLS_ACME: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil { // it holds the account's private key
		return nil, fmt.Errorf("TLS_ACME: %w", err)
	}
	client := &acme.Client{DirectoryURL: cfg.TLSACMEDirectoryURL} // empty: acme.LetsEncryptURL
	if cfg.TLSACMECAFile != "" {
		pem, err := os.ReadFile(cfg.TLSACMECAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS_ACME_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS_ACME_CA_FILE: no PEM certificate in %s", cfg.TLSACMECAFile)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		client.HTTPClient = &http.Client{Transport: tr}
	}
	domains := cfg.acmeDomainList()
	return &acmeCerts{domains: domains, m: &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(dir),
		HostPolicy: autocert.HostWhitelist(domains...),
		Email:      cfg.TLSACMEEmail,
		Client:     client,
	}}, nil
}

// tlsConfig serves the managed certificates and answers TLS-ALPN-01. A
// handshake without a server name (a health check to an IP address) gets
// the first domain's certificate instead of failing.
func (a *acmeCerts) tlsConfig() *tls.Config {
	c := a.m.TLSConfig()
	c.MinVersion = tls.VersionTLS12
	c.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if hello.ServerName == "" {
			h := *hello
			h.ServerName = a.domains[0]
			hello = &h
		}
		return a.m.GetCertificate(hello)
	}
	return c
}

// warm obtains (or loads from the cache) every domain's certificate right
// after the listener is up, so the first user does not wait for the CA and
// a CA or network problem shows in the log at start.
func (a *acmeCerts) warm(log *slog.Logger) {
	for _, d := range a.domains {
		start := time.Now()
		// Hello as a modern client says it: autocert then orders the ECDSA
		// certificate clients will ask for, not a second (RSA) one whose
		// challenge would race the first's.
		cert, err := a.m.GetCertificate(&tls.ClientHelloInfo{ServerName: d,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, SupportedCurves: []tls.CurveID{tls.CurveP256},
			SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}})
		if err != nil {
			log.Error("acme: no certificate yet; the next handshake for this domain tries again", "domain", d, "err", err)
			continue
		}
		log.Info("acme: certificate ready", "domain", d, "expires", cert.Leaf.NotAfter, "took_ms", time.Since(start).Milliseconds())
	}
}

// acmeDomainList is TLS_ACME_DOMAINS, or NODE_DOMAIN's host.
func (c Config) acmeDomainList() []string {
	if len(c.TLSACMEDomains) > 0 {
		return c.TLSACMEDomains
	}
	if c.NodeDomain == "" {
		return nil
	}
	if host, _, err := net.SplitHostPort(c.NodeDomain); err == nil {
		return []string{host}
	}
	return []string{c.NodeDomain}
}

// acmeProblems are the rules between TLS_ACME and the other options.
func (c Config) acmeProblems() []error {
	if !c.TLSACME {
		return nil
	}
	var errs []error
	if c.TLSEnabled || c.TLSCertPath != "" || c.TLSKeyPath != "" {
		errs = append(errs, errors.New("TLS_ACME: set either TLS_ACME=true or TLS_ENABLED with TLS_CERT_PATH and TLS_KEY_PATH, not both"))
	}
	if c.TLSTerminatedByProxy {
		errs = append(errs, errors.New("TLS_ACME: a proxy that terminates TLS answers the CA's TLS-ALPN-01 challenge, not the node; let the proxy get the certificates, or drop TLS_TERMINATED_BY_PROXY"))
	}
	domains := c.acmeDomainList()
	if len(domains) == 0 {
		errs = append(errs, errors.New("TLS_ACME_DOMAINS: required with TLS_ACME=true when NODE_DOMAIN is not set"))
	} else if err := acmeDomains(domains); err != nil {
		errs = append(errs, fmt.Errorf("TLS_ACME_DOMAINS (or NODE_DOMAIN): %w", err))
	}
	if c.TLSACMECAFile != "" {
		if _, err := os.Stat(c.TLSACMECAFile); err != nil {
			errs = append(errs, fmt.Errorf("TLS_ACME_CA_FILE: %w", err))
		}
	}
	return errs
}

// acmeDomains is the rule of certificate names: a CA issues for DNS
// names with at least one dot, never for IP addresses or ports.
func acmeDomains(l []string) error {
	for _, d := range l {
		if net.ParseIP(d) != nil || !strings.Contains(d, ".") || strings.ContainsAny(d, ":/ *") || strings.HasSuffix(d, ".") {
			return fmt.Errorf("%q is not a DNS name such as chat.example.org (ACME certificates are for names, not IP addresses or ports)", d)
		}
	}
	return nil
}

// httpsURL is the rule of an optional URL that must be https://.
func httpsURL(s string) error {
	if s == "" {
		return nil
	}
	if u, err := url.Parse(s); err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an https:// URL", s)
	}
	return nil
}
