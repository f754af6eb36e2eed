package federation

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbiddenAddress is returned when a peer resolves to an address the
// node may not connect to.
var ErrForbiddenAddress = errors.New("federation: peer address is private, loopback or otherwise not public")

// ClientOptions configure the outbound client.
type ClientOptions struct {
	// AllowPrivate lets the client reach loopback, private and link-local
	// addresses: for development and tests on one machine only.
	AllowPrivate bool
	// Timeout bounds a whole exchange; zero means 30 s.
	Timeout time.Duration
}

// MaxLanes is the most deliveries the outbox has in flight to one peer
// (OUTBOX_LANES_PER_PEER is at most this): the client keeps that many idle
// connections to a host, so that every lane reuses its own.
const MaxLanes = 64

// NewHTTPClient returns the one client the node uses to talk to peers. It
// never follows redirects (a 3xx is an answer, not an instruction), ignores
// proxy variables, bounds every phase with a timeout, and checks the address
// it is about to connect to at dial time, after DNS resolution, so that a
// peer name resolving (or re-resolving) to a private or loopback address is
// refused unless AllowPrivate is set. Response bodies are capped by callers.
//
// Connections are kept and reused: over TLS the client offers HTTP/2 (the
// custom dialer would otherwise turn it off), and a peer that speaks it
// carries every lane on one connection; over HTTP/1.1 up to MaxLanes idle
// connections a host are kept, one a lane. Either way a delivery pays no
// handshake while its peer is busy.
func NewHTTPClient(opt ClientOptions) *http.Client {
	timeout := opt.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	dialer := &net.Dialer{
		Timeout:   5 * time.Second,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			if opt.AllowPrivate {
				return nil
			}
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !PublicAddr(ap.Addr()) {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
			}
			return nil
		},
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            dialer.DialContext,
			TLSHandshakeTimeout:    5 * time.Second,
			ResponseHeaderTimeout:  10 * time.Second,
			ExpectContinueTimeout:  time.Second,
			MaxIdleConnsPerHost:    MaxLanes,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: 16 << 10,
			ForceAttemptHTTP2:      true, // needed for h2 with a DialContext of our own
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 could reach IPv4 private space
	netip.MustParsePrefix("2001:db8::/32"),
}

// PublicAddr reports whether a is a global unicast address outside every
// private, loopback, link-local, documentation and translation range.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// ReadCapped reads a whole answer body of at most limit bytes, failing if
// there is more.
func ReadCapped(resp *http.Response, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("federation: answer larger than %d bytes", limit)
	}
	return b, nil
}
