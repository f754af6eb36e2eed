package federation

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// countConns counts the connections srv accepts.
func countConns(srv *httptest.Server) *atomic.Int32 {
	var n atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

func trusting(c *http.Client, srv *httptest.Server) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool}
	return c
}

func post(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Post(url, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Error(err)
		return nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestClientSpeaksHTTP2OverTLS: against a TLS peer that offers HTTP/2, the
// client, with its own dialer, negotiates h2 and carries concurrent
// deliveries on one connection; the dialer still refuses a private
// address on that path.
func TestClientSpeaksHTTP2OverTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	srv.EnableHTTP2 = true
	conns := countConns(srv)
	srv.StartTLS()
	defer srv.Close()
	c := trusting(NewHTTPClient(ClientOptions{AllowPrivate: true}), srv)
	if resp := post(t, c, srv.URL); resp == nil || resp.ProtoMajor != 2 {
		t.Fatalf("the client did not negotiate HTTP/2: %+v", resp)
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp := post(t, c, srv.URL); resp != nil && resp.ProtoMajor != 2 {
				t.Errorf("protocol %s", resp.Proto)
			}
		}()
	}
	wg.Wait()
	if n := conns.Load(); n != 1 {
		t.Fatalf("17 requests over HTTP/2 took %d connections, want 1", n)
	}
	if _, err := trusting(NewHTTPClient(ClientOptions{}), srv).Get(srv.URL); !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("a loopback TLS peer without AllowPrivate: %v", err)
	}
}

// TestClientKeepsAConnectionPerLane: over HTTP/1.1, MaxLanes deliveries in
// flight at once, again and again, use MaxLanes connections in all: each
// lane's stays open between its requests.
func TestClientKeepsAConnectionPerLane(t *testing.T) {
	var mu sync.Mutex
	arrived, gate := 0, make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		g := gate
		if arrived++; arrived == MaxLanes { // all of this round are in flight at once
			arrived, gate = 0, make(chan struct{})
			close(g)
		}
		mu.Unlock()
		<-g
	}))
	conns := countConns(srv)
	srv.Start()
	defer srv.Close()
	c := NewHTTPClient(ClientOptions{AllowPrivate: true})
	for range 3 {
		var wg sync.WaitGroup
		for range MaxLanes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if resp := post(t, c, srv.URL); resp != nil && resp.ProtoMajor != 1 {
					t.Errorf("protocol %s", resp.Proto)
				}
			}()
		}
		wg.Wait()
	}
	if n := conns.Load(); n != MaxLanes {
		t.Fatalf("3 rounds of %d concurrent requests took %d connections, want %d", MaxLanes, n, MaxLanes)
	}
}
