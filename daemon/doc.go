// Package daemon is fednode's composition root: the one place that reads
// the environment (options.go holds the table of every variable, from
// which the README's configuration table is generated), checks it, and
// wires a node from it: the embedded bbolt store or Redis, local keys or
// Vault Transit, the JWT secret from the environment, Vault KV or a
// development file, the shared or in-process rate limiter and event
// broker, the TLS listener. It hands them to node.New, serves the node's
// handler, and closes what it opened. The offline admin commands
// (promote, revoke sessions, key migration, the Vault policy, the store's
// check, creation and repair) live here too, because they open the same
// things. cmd/fednode calls Load and Run; only this package and cmd import
// the storage adapters.
package daemon
