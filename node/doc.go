// Package node is a fednode node's service: accounts and sessions (argon2id
// passwords, JWTs honoured only while their session lives), messages and
// mailboxes, live delivery over WebSockets, the federation inbox and
// outbox, the operator's admin API, rate limits and bans, health and
// metrics; all of it behind one http.Handler.
//
// It is built by New from what it is handed (node.Deps: a store, a rate
// limiter, an event broker, a keyring, token secrets, a clock, loggers) and
// never picks them itself: the composition root, package daemon, reads the
// configuration and opens bbolt or Redis, local keys or Vault Transit.
// Tests build it from fakes where a real store adds nothing.
//
// Everything that reaches a user is a *fednode.Error with a stable code,
// mapped to an HTTP status in one place (statusOf in http.go).
package node
