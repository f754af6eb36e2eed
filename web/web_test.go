package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/fednode/fednode/web"
)

func get(t *testing.T, method, path string) *http.Response {
	t.Helper()
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	rec := httptest.NewRecorder()
	web.Handler(notFound).ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func TestHandlerServesThePageUnderItsPolicy(t *testing.T) {
	for path, ctype := range map[string]string{
		"/":                 "text/html; charset=utf-8",
		"/assets/app.js":    "text/javascript; charset=utf-8",
		"/assets/e2e.js":    "text/javascript; charset=utf-8",
		"/assets/pow.js":    "text/javascript; charset=utf-8",
		"/assets/app.css":   "text/css; charset=utf-8",
		"/assets/./app.css": "text/css; charset=utf-8",
	} {
		resp := get(t, http.MethodGet, path)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ctype || len(body) == 0 {
			t.Fatalf("%s: %d %q, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		if resp.Header.Get("Content-Security-Policy") != web.PageCSP {
			t.Fatalf("%s: CSP %q", path, resp.Header.Get("Content-Security-Policy"))
		}
	}
	if resp := get(t, http.MethodHead, "/"); resp.StatusCode != 200 || resp.ContentLength > 0 {
		t.Fatalf("HEAD /: %d, %d", resp.StatusCode, resp.ContentLength)
	}
}

func TestHandlerHandsUnknownPathsToNotFound(t *testing.T) {
	for _, path := range []string{"/assets/", "/assets/nope.js", "/assets/../web.go", "/assets/%2e%2e/web.go", "/index.html", "/web.go"} {
		if resp := get(t, http.MethodGet, path); resp.StatusCode != http.StatusTeapot {
			t.Fatalf("%s: %d, want the notFound handler", path, resp.StatusCode)
		}
	}
}

// The policy forbids inline code: the page must carry none, nor any
// reference to another origin.
func TestPageHasNothingInlineNorRemote(t *testing.T) {
	resp := get(t, http.MethodGet, "/")
	page, _ := io.ReadAll(resp.Body)
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`(?:src|href)="(?:https?:)?//`),
	} {
		if bad.Match(page) {
			t.Fatalf("index.html matches %s", bad)
		}
	}
	for _, name := range []string{"app.js", "e2e.js"} {
		js, _ := io.ReadAll(get(t, http.MethodGet, "/assets/"+name).Body)
		for _, bad := range []string{"eval(", "new Function", "innerHTML", "insertAdjacentHTML", "document.write", "http://", "https://"} {
			if strings.Contains(string(js), bad) {
				t.Fatalf("%s uses %q", name, bad)
			}
		}
	}
}
