package node

import (
	"context"
	"net"
	"net/http"

	"github.com/fednode/fednode"
)

type principalKey struct{}

// principal is who a request is authenticated as.
type principal struct {
	Session fednode.Session
	User    fednode.User
}

func newContextWithPrincipal(ctx context.Context, p principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

func principalFromContext(ctx context.Context) (principal, bool) {
	p, ok := ctx.Value(principalKey{}).(principal)
	return p, ok
}

// clientIP is the client key protect resolved (the address, or the IPv6
// /64, behind trusted proxies only), for logs and audit records.
func clientIP(r *http.Request) string {
	if k := clientFromContext(r.Context()); k != "" {
		return k
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
