// Package federation is fednode's wire protocol between nodes, as written
// down in docs/PROTOCOL.md: key ids, the node document served at
// /.well-known/fednode, the encrypted envelope, HTTP Signatures (signing and
// the strict checks go-fed/httpsig leaves to us), the hardened outbound HTTP
// client, and the peer directory that fetches and caches peers' documents.
//
// It knows nothing of mailboxes or queues: package outbox sends with it and
// package inbox receives with it.
package federation
