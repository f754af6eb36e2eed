package main_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"testing"
)

// TestBinaryHealthcheckIsLiveness: `fednode healthcheck`, the container's
// health check, asks LISTEN_ADDR's /healthz (liveness), not /readyz: a node
// that is alive but not ready (its Redis or Vault away) is healthy, not
// restarted; one whose /healthz fails, or that does not answer, is not.
func TestBinaryHealthcheckIsLiveness(t *testing.T) {
	bin := binary(t)
	probe := func(healthz int) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/healthz":
				w.WriteHeader(healthz)
			default:
				w.WriteHeader(http.StatusServiceUnavailable) // never ready
			}
		}
	}
	alive := httptest.NewServer(http.HandlerFunc(probe(http.StatusOK)))
	defer alive.Close()
	dead := httptest.NewServer(http.HandlerFunc(probe(http.StatusServiceUnavailable)))
	defer dead.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name, addr string
		healthy    bool
	}{
		{"alive, not ready: healthy", alive.Listener.Addr().String(), true},
		{"healthz fails: unhealthy", dead.Listener.Addr().String(), false},
		{"nothing listening: unhealthy", closed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, "healthcheck")
			cmd.Env = []string{"LISTEN_ADDR=" + tc.addr, "DATA_DIR=" + t.TempDir()}
			out, err := cmd.CombinedOutput()
			if (err == nil) != tc.healthy {
				t.Fatalf("exit %d:\n%s", cmd.ProcessState.ExitCode(), out)
			}
		})
	}
}
