// Package federation is fednode's wire protocol between nodes, as written
// down in docs/PROTOCOL.md: key ids, the node document served at
// /.well-known/fednode, the encrypted envelope, HTTP Signatures (signing and
// the strict checks go-fed/httpsig leaves to us), the hardened outbound HTTP
// client, the client side of a delivery (Deliver), the peer directory
// that fetches and caches peers' documents, the sender's data keys (Sealer)
// and the receiver's unwrapped ones (UnwrapCache).
//
// It knows nothing of mailboxes or queues: package outbox sends with it and
// package inbox receives with it.
//
// Crypto summary: how nodes authenticate each other's requests.
//
// What it protects: that a delivery comes from the node its envelope names
// (from_node), is meant for the node that receives it, carries exactly the
// body its sender signed, and was signed a few minutes ago at most. The
// content itself is sealed separately (package crypto's summary); this is
// what makes the receiver believe who sent it.
// Against whom: anyone on the network path or terminating TLS in front of
// either node (who can read and replay a request, but not alter it); any
// other node, which may run hostile code and hold its own valid keys but
// must not speak for another node or its users; a receiver passing a
// sender's request on to a third node; and forgers flooding requests under
// a peer's name to make the receiver fetch documents.
// Construction:
//   - the signature: HTTP Signatures (draft-cavage-http-signatures-12,
//     SignRequest), RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017) under the
//     sending node's current sig key, RSA-4096 with e = 65537, a pair of its
//     own, never the enc pair. What is verified is our strict parse of the
//     Signature header (ParseSignature) and nothing else: VerifySignature
//     hands go-fed a canonical header rebuilt from the parse and only the
//     headers it covers, so no second reading of the peer's bytes counts;
//   - the covered headers: at least (request-target) host date digest
//     (SignedHeaders), which bind the method, path and query; the receiver;
//     the time; and the body. A covered header must be sent exactly once;
//   - the body: Digest is SHA-256 of the exact body (RFC 3230), compared in
//     constant time with the body as read (DigestMatches); the signature
//     covers Digest, so it covers the envelope;
//   - the time: Date (IMF-fixdate) within ±5 minutes of the receiver's
//     clock; created, when given, at most 5 s ahead (createdSlack), and
//     expires, when given, not past;
//   - the receiver: Host is the receiver's domain (signed), and so is the
//     envelope's to_node (signed through Digest); either refuses a request
//     meant for another node with 421;
//   - the sender: keyId is "<domain>#<kid>" with a canonical domain
//     (ParseKeyID) that must be exactly the envelope's from_node, and every
//     message's from must be a user of from_node. The key is looked up only
//     in that domain's own node document, fetched from
//     https://<domain>/.well-known/fednode (no redirects, public addresses
//     only, refused unless it is for that domain, byte for byte), among its
//     live sig keys;
//   - replay: the receiver stores a message under the sender's id and
//     answers a second copy from the same node duplicate, so a request
//     replayed within the Date window (a redelivery or an attacker's) is
//     verified again but stored once; the window refuses it later, and Host
//     and to_node refuse it at any other node.
//
// Constants, and why:
//   - RSA-4096, e = 65537: the size of the enc keys, read by the one strict
//     key parser (crypto.ParsePublicKeyPEM), a size Vault Transit can hold
//     and sign with; beyond the 128-bit security NIST SP 800-57 gives
//     RSA-3072, for keys that live for months;
//   - RSASSA-PKCS1-v1_5 with SHA-256: what draft-cavage's rsa-sha256 names,
//     and what hs2019 means for an RSA key in go-fed and other servers. It is
//     deterministic, so a key in memory (go-fed) and in Transit produce
//     byte-identical headers (pinned by a test), and Go's verifier compares
//     the whole encoded block, leaving nothing to mis-parse. We send hs2019,
//     accept rsa-sha256 as the same, and refuse any other algorithm, so the
//     key, never the header, decides;
//   - SHA-256 for Digest: collision resistance as strong as the signature's
//     hash; another algorithm in the header is ignored, SHA-256 must be there;
//   - ±5 minutes (FEDERATION_DATE_WINDOW): independently run servers drift
//     apart; the window tolerates a badly synchronised peer and is all the
//     time a captured request stays usable. createdSlack is 5 s, tighter than
//     go-fed's own 10 s, so go-fed never refuses what the inbox accepted;
//   - 4 KiB for the Signature header, 1 MiB for the body: parsing and
//     hashing are bounded before any document is fetched;
//   - key ids of 128 bits (the first 16 bytes of SHA-256 over the key's
//     SPKI): a name, not a credential. Keys are looked up only among the
//     keyId domain's own keys, so a collision with another node's id is
//     harmless, and 128 bits rule out one within a node;
//   - documents cached for 1 hour (PEER_KEY_TTL), refetched early when a
//     signature names an unknown key or fails, at most once a minute per
//     peer (PEER_KEY_REFETCH_INTERVAL) on each of two budgets (Directory):
//     a rotation heals within a minute, and forged requests cannot turn the
//     receiver into a fetcher or delay the peer's own refetch.
//
// What it does not prevent:
//   - a replay within the window costs the receiver a verification and
//     counts against its rate limits; and a message that was not stored the
//     first time is judged again: one refused as unknown_recipient is stored
//     if that user registered in between, though its sender recorded it as
//     failed;
//   - the inbox's answer is not signed: the sender believes "accepted" as
//     far as TLS to the receiver's domain goes, so whoever terminates that
//     TLS could answer for messages it drops;
//   - trust is the web PKI's: whoever controls a domain's DNS and obtains a
//     certificate for it serves its document, and so its keys. There is no
//     pinning; with FEDERATION_PLAIN_HTTP (development) there is not even
//     that;
//   - a stolen sig key signs for its node for as long as the document
//     lists it: a rotation keeps the old key verifying for its overlap
//     (KEY_ROTATION_OVERLAP, 7 days by default);
//   - who writes to whom (from, to, created_at, ids) is in clear in the
//     envelope, for whoever terminates TLS.
//
// Crypto summary: reusing data keys.
//
// What it protects: nothing new. Content stays sealed as package crypto's
// summary says (AES-256-GCM under a data key wrapped with RSA-OAEP to the
// recipient's enc key, bound through the AAD to message id, sender,
// recipient, time, enc key id and data key id); the envelope and the AAD are
// unchanged. What changes is the cost: a sender reuses a data key across
// messages and requests, so the receiver does one RSA-4096 decryption (or
// one Vault Transit call) per data key instead of one per message, without
// giving up what the summary protects beyond the bounds below.
// Against whom: the adversaries of package crypto's summary, and a peer
// that would make the receiver serve it a data key it did not wrap, or use
// a key the receiver has retired.
// Construction:
//   - the sender (Sealer) keeps one data key per recipient node, for the
//     enc key it is wrapped to: one random 32-byte key, one random 128-bit
//     id (k-<32 hex>), one RSA-OAEP wrapped copy. It makes a new one when
//     the kept key has sealed DataKeyMaxMessages (2^20) messages, is
//     DataKeyMaxAge (1 hour) old (or the clock went back), when the peer's
//     document names another current enc key (a rotation seen on refetch,
//     or the old key expiring), or the same id with another public key, and
//     when the peer answers unwrap_failed (Forget). Each message still has
//     its own random 96-bit nonce and its own AAD, which names the data key
//     id, and each envelope carries the keys entry of every data key its
//     messages name. An id is never given to another data key;
//   - the receiver (UnwrapCache) keeps unwrapped data keys keyed by the
//     full enc key id and SHA-256 of the wrapped bytes, never by the
//     sender's id: RSA-OAEP decryption is a function of the private key and
//     those bytes, so an entry is exactly what unwrapping them again would
//     give, whoever sends them. The same id with other wrapped bytes is
//     unwrapped afresh, and a message whose AAD names another id fails GCM.
//     An entry is served only while its enc key is among the keyring's live
//     keys (checked on every use; a retired key's entries are dropped and
//     the keyring refuses), for at most UnwrapCacheTTL after its first
//     unwrap, at most UnwrapCacheSize of them, least recently used out
//     first; failures are not kept; concurrent misses wait for one unwrap.
//   - nothing is negotiated: a receiver that unwraps every time opens
//     reused keys (the envelope always let messages share a keys entry),
//     and envelopes with a fresh key per message open through the cache.
//
// Constants, and why:
//   - 2^20 messages per data key: with random 96-bit nonces the chance that
//     two of n messages share a nonce is about n^2/2^97. NIST SP 800-38D
//     allows 2^32 (the protocol's limit); at 2^20 it is about 2^-57. The
//     bound also caps what one leaked data key opens;
//   - 1 hour per data key: one RSA operation an hour per peer is already
//     nothing next to one per message, so the bound is about exposure, not
//     cost; it is the horizon of the sender's view of the peer's keys (the
//     document cache, PEER_KEY_TTL, is 1 hour), and spent keys are swept
//     from memory (at the next use, at most once a minute);
//   - 70 minutes per unwrapped key (UnwrapCacheTTL): the sender seals
//     under a key for 1 hour after making it, and the receiver first
//     unwraps it after it was made, so an hour from the first unwrap covers
//     every message sealed under it but those still in flight at the
//     hour, which the 10 minutes of slack cover with room to spare (a
//     request is abandoned after 30 s). Correctness never depends on it: a
//     key gone from the cache is unwrapped again;
//   - 4,096 unwrapped keys (UnwrapCacheSize): about one current key per
//     peer for as many peers as a node serves at once, under 1 MiB; an
//     evicted key costs one more unwrap;
//   - SHA-256 of the wrapped bytes: no two wrapped keys share an entry;
//   - 128-bit random data key ids: no two keys of one sender share an id.
//
// Why not a key per message derived with HKDF from the data key: it would
// need negotiation (a receiver of today cannot derive), and it protects
// only against a leaked per-message key, which nothing here exposes apart
// from its data key; against a leaked data key, the real risk, derivation
// changes nothing. GCM's own limit, 2^32 random nonces, is 4,096 times the
// bound. So it would buy little for a protocol change.
//
// What it costs, and does not prevent:
//   - a data key and its messages are tied: whoever learns one data key (a
//     memory disclosure of either node, a core dump, a bug that logs it)
//     opens every message of that sender-to-recipient-key stream sealed
//     under it, up to 2^20 messages within one hour, where it used to open
//     one. The recipient's enc private key still opens everything wrapped
//     to it, as before;
//   - the receiver holds up to 4,096 unwrapped data keys in memory for
//     about 70 minutes, and the sender one per peer for about an hour (a
//     spent key leaves at the next sweep: the first use a minute or more
//     after the last, so an idle node keeps it until its next delivery);
//     Go cannot reliably erase them. Both nodes store the plaintexts anyway,
//     but swap or a core dump now holds the keys to an hour of traffic
//     captured on the wire;
//   - a cached unwrap is hundreds of times faster than RSA: whoever
//     holds a wrapped key (its sender, or whoever terminates TLS in front
//     of the receiver) can tell by timing whether the receiver unwrapped it
//     recently; that says nothing about the key;
//   - a peer sending many distinct wrapped keys evicts other peers'
//     entries; each costs the receiver one RSA decryption, as every message
//     did before, within the inbox's rate limits;
//   - no forward secrecy, as before: RSA key transport.
package federation
