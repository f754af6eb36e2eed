package node

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
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
			accessLog(log, tt.h).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/.well-known/fednode", nil))
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
