// Package clientip says who a request comes from, for rate limits, bans and
// the audit log.
//
// The address is the socket's peer, unless that peer is a configured trusted
// proxy: then X-Forwarded-For is read from the right, skipping trusted
// proxies, and the first address that is not one is the client. Headers from
// anyone else change nothing, so a client cannot forge its way out of a
// limit. IPv4-mapped IPv6 addresses count as IPv4, and IPv6 clients are
// grouped by their /64, the smallest block one subscriber usually holds.
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver resolves client addresses behind trusted proxies.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a resolver trusting the given CIDRs (or single addresses).
func New(trusted []string) (*Resolver, error) {
	r := &Resolver{}
	for _, t := range trusted {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		p, err := netip.ParsePrefix(t)
		if err != nil {
			a, aerr := netip.ParseAddr(t)
			if aerr != nil {
				return nil, fmt.Errorf("clientip: %q is not a CIDR or address", t)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r, nil
}

func (r *Resolver) isTrusted(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Addr returns the client's address.
func (r *Resolver) Addr(req *http.Request) netip.Addr {
	peer := socketAddr(req.RemoteAddr)
	if !peer.IsValid() || !r.isTrusted(peer) {
		return peer
	}
	hops := forwardedFor(req.Header.Values("X-Forwarded-For"))
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			return peer // a malformed hop: stop at what we know
		}
		a = a.Unmap()
		if !r.isTrusted(a) {
			return a
		}
		peer = a
	}
	return peer // everyone on the path is trusted: the leftmost proxy
}

// Key returns the client key limits and bans count under: the address for
// IPv4, the /64 for IPv6.
func (r *Resolver) Key(req *http.Request) string { return KeyOf(r.Addr(req)) }

// KeyOf is the client key of an address.
func KeyOf(a netip.Addr) string {
	a = a.Unmap()
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

// ParseKey validates a client key given by an operator (an address, or an
// IPv6 /64) and returns it in canonical form.
func ParseKey(s string) (string, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if !p.Addr().Is6() || p.Bits() != 64 {
			return "", fmt.Errorf("clientip: %q: only IPv6 /64 prefixes are keys", s)
		}
		return p.Masked().String(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", fmt.Errorf("clientip: %q is not an IP address or IPv6 /64", s)
	}
	return KeyOf(a), nil
}

func socketAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// forwardedFor flattens X-Forwarded-For headers into hops, left to right.
func forwardedFor(values []string) []string {
	var hops []string
	for _, v := range values {
		for _, h := range strings.Split(v, ",") {
			h = strings.TrimSpace(h)
			if strings.HasPrefix(h, "[") { // [v6]:port
				if end := strings.IndexByte(h, ']'); end > 0 {
					h = h[1:end]
				}
			} else if strings.Count(h, ":") == 1 { // v4:port
				h, _, _ = strings.Cut(h, ":")
			}
			if h != "" {
				hops = append(hops, h)
			}
		}
	}
	return hops
}
