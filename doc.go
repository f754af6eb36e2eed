// Package fednode holds the domain of a fednode node: the types every other
// package speaks (addresses, users, sessions, messages), the validation rules
// for anything a user or a peer sends, and the one error type that carries a
// stable code and a safe message.
//
// It imports nothing of ours. Adapters are named after their technology
// (bolt/ for the embedded store, later redis/), the HTTP service lives in
// node/, and cmd/ only wires them together.
package fednode
