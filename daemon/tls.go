package daemon

import (
	"crypto/tls"
	"fmt"
	"log/slog"
)

// ServesTLS reports whether this process serves HTTPS itself.
func (c Config) ServesTLS() bool { return c.TLSEnabled || c.TLSACME }

// serverTLS is the listener's TLS configuration: from the certificate
// files (TLS_ENABLED), from an ACME CA (TLS_ACME, with the manager that
// renews them), or nil for plain HTTP.
func serverTLS(cfg Config) (*tls.Config, *acmeCerts, error) {
	switch {
	case cfg.TLSEnabled:
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertPath, cfg.TLSKeyPath)
		if err != nil {
			return nil, nil, fmt.Errorf("tls: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil, nil
	case cfg.TLSACME:
		certs, err := newACMECerts(cfg)
		if err != nil {
			return nil, nil, err
		}
		return certs.tlsConfig(), certs, nil
	}
	return nil, nil, nil
}

// publicScheme is the scheme users and peers reach the node over when
// PUBLIC_URL does not say: what this process serves, or https when the
// operator says a proxy terminates TLS in front of it. The node document
// advertises its inbox with PUBLIC_URL's scheme, so a node never
// advertises an https:// inbox it does not serve (Validate refuses an
// https:// PUBLIC_URL on plain HTTP without a proxy).
func publicScheme(cfg Config, served string) string {
	if cfg.TLSTerminatedByProxy {
		return "https"
	}
	return served
}

// warnPlainInbox says, at start, what a plain-HTTP development node means
// for federation: it advertises an http:// inbox, which only peers running
// with FEDERATION_PLAIN_HTTP=true use, while it reaches peers over https.
func warnPlainInbox(cfg Config, served string, log *slog.Logger) {
	if served == "http" && !cfg.TLSTerminatedByProxy && !cfg.FederationPlainHTTP {
		log.Warn("this node serves plain HTTP: its node document advertises an http:// inbox that only peers with FEDERATION_PLAIN_HTTP=true deliver to, and it reaches peers over https; for two development nodes set FEDERATION_PLAIN_HTTP=true on both, for production serve TLS",
			"public_url", cfg.PublicURL)
	}
}
