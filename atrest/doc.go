// Package atrest encrypts message content and tags before a store writes
// them, so that a copy of the store (the bbolt file, a Redis dump or RDB)
// reveals no message text.
//
// Crypto summary. Each stored message's content and tags, as one JSON value
// {"content","tags"} (with "e2e", the end-to-end payload the node cannot
// open, for an end-to-end encrypted message), are sealed with AES-256-GCM under a data key: 32
// random bytes, made by the node and kept only in memory in clear. A data
// key is stored only wrapped by a KeyWrapper (a key-encryption key kept
// outside the store: the local file DATA_DIR/atrest.kek with RFC 5649 key
// wrap, or a Vault Transit aes256-gcm96 key that never leaves Vault), inside
// every envelope that uses it, so an envelope is self-describing and key
// rotation needs no table of keys in the store. The nonce is 96 random bits
// (NIST SP 800-38D 8.2.2); a data key is retired after MaxSeals seals, far
// below the 2^32 random-nonce bound, or after MaxAge.
//
// The additional data binds a ciphertext to where it is stored:
//
//	"fednode at rest v1" || lp(kind) || lp(message id) || lp(from) || lp(to) || lp(key id)
//
// where lp is a 4-byte big-endian length followed by the bytes. kind is
// "message". Other records (a user's end-to-end key backup) are sealed in
// the same envelope with lp(kind) || lp(owner) || lp(key id) (record.go). A message record is stored once per message id, however many
// local mailboxes hold it, so its owner is the pair (from, to) that the
// record itself names, not one mailbox. Moving a ciphertext to another
// record, or changing its from/to, makes it fail to open.
//
// What it protects: message text against a reader of the store alone (a
// stolen disk image of Redis, a backup of fednode.db, a Redis replica).
// What it does not: metadata (ids, addresses, times, statuses, conversation
// structure) stay in clear; a thief holding both the store and the key file
// (or the running node's memory) reads everything; an attacker who can write
// the store can delete or replay records (a replayed record is only ever
// served under its own id).
//
// Stored form. The sealed record keeps every field of the message except
// Content, which holds Prefix followed by the JSON envelope
// {"v":1,"k":key id,"w":wrapped data key,"n":nonce,"c":ciphertext}, and
// Tags, which is empty. Prefix starts with a NUL byte, which no accepted
// content can hold (fednode.NormalizeContent removes them), so a sealed
// record is never mistaken for a plaintext one. The store's schema upgrade
// to 3 seals every record from before this format; from then on a record in
// clear is damage like any other that does not open, never served.
package atrest
