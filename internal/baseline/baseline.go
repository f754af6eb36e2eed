// Package baseline is the plain net/http handler performance goals are
// measured against (docs/PERFORMANCE.md): it decodes a send request's JSON
// body, as large as the node allows, and answers 202 with a body of the
// node's shape, doing nothing else. The in-process benchmarks of daemon/
// and the goals of bench/ use this one handler, so they measure against
// the same baseline.
package baseline

import (
	"encoding/json"
	"net/http"
)

// Send is the plain handler of POST /api/messages.
var Send http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	var v struct {
		To      string   `json:"to"`
		Content string   `json:"content"`
		Tags    []string `json:"tags"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 96<<10)).Decode(&v); err != nil {
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	w.Write([]byte(`{"id":"x","status":"delivered"}`))
})
