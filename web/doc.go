// Package web is the node's browser client: static files (HTML, one
// JavaScript module, a worker and a style sheet) embedded in the binary and
// served at / and /assets/ under a page Content-Security-Policy stricter
// than a browser needs for anything else: scripts, styles, images and
// connections only from the node's own origin, nothing inline, no eval.
// The client talks to the node only through the public API (docs/API.md).
package web
