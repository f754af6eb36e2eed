// Package web is the node's browser client: static files (HTML, two
// JavaScript modules, a worker and a style sheet) embedded in the binary and
// served at / and /assets/ under a page Content-Security-Policy stricter
// than a browser needs for anything else: scripts, styles, images and
// connections only from the node's own origin, nothing inline, no eval.
// The client talks to the node only through the public API (docs/API.md).
//
// e2e.js is the client's end-to-end encryption (docs/PROTOCOL.md §5) in
// WebCrypto, the same construction as package e2e: it makes a user's keys,
// keeps the private ones in IndexedDB as non-extractable CryptoKeys, seals
// and opens messages, wraps and unwraps the passphrase backup, and pins
// contacts' keys in localStorage (trust on first use, with the signing
// keys trusted before and the date each was replaced). app.js uses it; the
// node never sees a private key, a passphrase or an E2E plaintext.
//
// app.js never falls to clear text on its own (PROTOCOL §5.5, §5.8): a
// pinned contact whose keys disappear, or a node that cannot say what the
// user's own keys are, stops sending until the user chooses.
package web
