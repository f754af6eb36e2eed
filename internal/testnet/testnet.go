// Package testnet hands tests loopback addresses. A test that must name a
// port before the server that will listen on it starts (an ACME CA told
// where to validate, a README with fixed ports rewritten) takes one that
// was free a moment ago; another process could take it in between, which
// on loopback in a test is rare enough.
package testnet

import (
	"net"
	"strconv"
	"testing"
)

// FreePort is a loopback port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FreeAddr is 127.0.0.1:FreePort.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(tb)))
}
