package node

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/fednode/fednode"

	"github.com/fednode/fednode/clientip"
)

// TestAccessLogStatus: a handler that writes a body without calling
// WriteHeader (the node document, the metrics handler) is logged with the
// 200 it sent, not 0.
func TestAccessLogStatus(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    http.HandlerFunc
		want int
	}{
		{"implicit 200", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) }, 200},
		{"explicit 404", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404); w.Write([]byte("{}")) }, 404},
		{"nothing written", func(w http.ResponseWriter, r *http.Request) {}, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ips, _ := clientip.New(nil)
			(&observer{log: log, ips: ips}).wrap(tt.h).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/.well-known/fednode", nil))
			var line struct{ Status int }
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("%v: %s", err, buf.Bytes())
			}
			if line.Status != tt.want {
				t.Fatalf("logged status %d, want %d", line.Status, tt.want)
			}
		})
	}
}

// TestAccessLogLine: every request is logged at info with its id, the
// client address the clientip resolver decides (behind a trusted proxy:
// the forwarded one), the route template (never the raw path as the
// route), the method, the status and the duration; the id is answered in
// X-Request-Id and a sane incoming one is kept.
func TestAccessLogLine(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil)) // info: the access log must show at the default level
	ips, _ := clientip.New([]string{"192.0.2.0/24"})
	r := mux.NewRouter()
	r.Use(labelRoute)
	r.HandleFunc("/api/messages/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := (&observer{log: log, ips: ips, router: r}).wrap(r)

	for _, tt := range []struct {
		name, incoming string
		keep           bool
	}{
		{"a sane incoming id is kept", "abc-123_X.y", true},
		{"none is made", "", false},
		{"an insane one is replaced", "bad id\r\nX-Evil: 1", false},
		{"a too long one is replaced", strings.Repeat("a", 65), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			req := httptest.NewRequest("GET", "/api/messages/01ABC", nil)
			req.RemoteAddr = "192.0.2.9:4000"
			req.Header.Set("X-Forwarded-For", "198.51.100.7")
			if tt.incoming != "" {
				req.Header.Set(HeaderRequestID, tt.incoming)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("%v: %s", err, buf.Bytes())
			}
			id := rec.Header().Get(HeaderRequestID)
			if !validRequestID(id) || (tt.keep && id != tt.incoming) || (!tt.keep && id == tt.incoming) {
				t.Fatalf("X-Request-Id %q for incoming %q", id, tt.incoming)
			}
			want := map[string]any{"level": "INFO", "msg": "request", "request_id": id, "client": "198.51.100.7", "method": "GET",
				"route": "/api/messages/{id}", "path": "/api/messages/01ABC", "status": float64(http.StatusTeapot)}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("%s = %v, want %v (line %s)", k, line[k], v, buf.Bytes())
				}
			}
			if d, ok := line["duration_ms"].(float64); !ok || d < 0 {
				t.Errorf("duration_ms = %v", line["duration_ms"])
			}
		})
	}
	t.Run("an unmatched path is labelled unmatched", func(t *testing.T) {
		buf.Reset()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/no/such/thing", nil))
		if !strings.Contains(buf.String(), `"route":"unmatched"`) {
			t.Fatalf("line: %s", buf.Bytes())
		}
	})
}

// FuzzRequestID: an incoming X-Request-Id either is kept, and then is
// short and of the safe alphabet, or is replaced.
func FuzzRequestID(f *testing.F) {
	for _, s := range []string{"", "abc", "0f8fad5b-d9cb-469f-a165-70867728950e", "a b", "x\r\ny", strings.Repeat("z", 80), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !validRequestID(s) {
			return
		}
		if len(s) > 64 || strings.ContainsAny(s, " \r\n\t\"{}:;,=") || !utf8.ValidString(s) {
			t.Fatalf("accepted %q", s)
		}
	})
}

// TestTopPeers: the outbox metrics name at most N peers, the deepest
// (ties by name), and sum the rest under "other" with the oldest age; a
// peer literally named "other" goes there too, so no series repeats.
func TestTopPeers(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	peers := []fednode.PeerQueue{
		{Peer: "a.example", Depth: 5, Oldest: t0.Add(3 * time.Hour)},
		{Peer: "b.example", Depth: 9, Oldest: t0.Add(2 * time.Hour)},
		{Peer: "c.example", Depth: 5, Oldest: t0.Add(time.Hour)},
		{Peer: "other", Depth: 100, Oldest: t0.Add(4 * time.Hour)},
		{Peer: "d.example", Depth: 1, Oldest: t0},
	}
	named, other := topPeers(peers, 2)
	if len(named) != 2 || named[0].Peer != "b.example" || named[1].Peer != "a.example" {
		t.Fatalf("named %+v", named)
	}
	if other.Peer != "other" || other.Depth != 106 || !other.Oldest.Equal(t0) {
		t.Fatalf("other %+v", other)
	}
	if named, other := topPeers(nil, 2); len(named) != 0 || other.Depth != 0 || !other.Oldest.IsZero() {
		t.Fatalf("no peers: %+v %+v", named, other)
	}
}
