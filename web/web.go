package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// PageCSP is the Content-Security-Policy of the client's pages and assets
// (the API keeps its own, stricter one). connect-src 'self' covers the
// WebSocket to the same origin (ws: and wss: match 'self' in CSP Level 3).
const PageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; worker-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// AssetsPrefix is the path under which the client's files are served.
const AssetsPrefix = "/assets/"

//go:embed static
var static embed.FS

// Handler serves the client: index.html at / and the files of static/ under
// AssetsPrefix, each with PageCSP. Anything else goes to notFound (the
// node's JSON 404).
func Handler(notFound http.Handler) http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := ""
		switch {
		case r.URL.Path == "/":
			name = "index.html"
		case strings.HasPrefix(r.URL.Path, AssetsPrefix):
			name = strings.TrimPrefix(path.Clean(r.URL.Path), AssetsPrefix)
		}
		if name == "" || !fs.ValidPath(name) {
			notFound.ServeHTTP(w, r)
			return
		}
		body, err := fs.ReadFile(files, name)
		if err != nil {
			notFound.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", PageCSP)
		h.Set("Content-Type", contentType(name))
		h.Set("Cache-Control", "no-cache")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}

// contentType is the type of the client's few kinds of file.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}
