// Package e2e is the cryptography of end-to-end encryption between users
// (docs/PROTOCOL.md §5), done on the user's device: fedctl uses it, and
// the web client does the same with WebCrypto. The wire shapes and the
// structural checks a node can still make are in package fednode (e2e.go);
// a node never holds what this package needs a private key for.
//
// Crypto summary: end-to-end encrypted messages.
//
// Keys, made on the device: an RSA-4096 encryption key (exponent 65537)
// and an ECDSA P-256 signing key. RSA-OAEP and ECDSA P-256 are what
// WebCrypto offers in every browser without extensions; 4096 bits because
// the key is long-term (no ratchet) and wraps data keys for years. Public
// keys travel as DER SubjectPublicKeyInfo; a key id is the SHA-256 of
// those bytes (base64url), and the fingerprint people compare is the
// SHA-256 of a label and both ids (fednode.KeyID, fednode.Fingerprint).
//
// A message:
//   - a fresh 32-byte data key K and 12-byte nonce N per message (random
//     nonces are safe because each key seals exactly one message);
//   - P = {"content":..,"tags":[..]} sealed with AES-256-GCM under K and N,
//     with associated data fednode.E2EAAD: a label, the message id, the
//     sender and recipient addresses, the signing key id and the wrapped
//     key ids, "\n"-joined (none of them can hold "\n"). The AAD is rebuilt
//     by the recipient from the message's own metadata, so a ciphertext
//     cannot be replayed under another id, sender or recipient;
//   - K wrapped with RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) to the
//     recipient's encryption key and to the sender's own, so the sender's
//     other devices can read what it sent;
//   - the sender's ECDSA P-256 SHA-256 signature, r||s (WebCrypto's form),
//     over fednode.E2ESignedBytes: the AAD and every byte of the payload.
//     GCM alone authenticates only to holders of K, which include the
//     recipient's node if it were given K; the signature makes the sender,
//     not just "someone who knew K", the author. An ECDSA signature is
//     not unique (r, n-s verifies as well as r, s), so nothing may use a
//     signature as a message's identity; the id is the message id.
//
// A private-key backup, for a second device: the PKCS#8 keys sealed with
// AES-256-GCM under a key from PBKDF2-HMAC-SHA256 (600,000 iterations, the
// OWASP 2023 figure for PBKDF2-SHA256; a random 16-byte salt), with the
// owner's address and public key ids as AAD. PBKDF2 rather than a memory-
// hard KDF because WebCrypto has no Argon2 or scrypt and both clients must
// derive the same key. Clients refuse fewer iterations, so a node cannot
// lower the count to speed up a guess. The node stores the backup and
// never sees the passphrase; a weak passphrase is the backup's weak point.
//
// Threat model. It protects the content and tags of messages against: the
// operator of either node; a stolen disk, backup or Redis dump of a node;
// a peer node relaying or storing messages; an attacker on the network.
// A node that forges or alters a message is detected by the sender's
// signature, checked against the sender's key, which the client pins the
// first time it sees it (trust on first use) and warns about when it
// changes. It does NOT protect: metadata (who writes to whom, when, how
// long the messages are, which key ids are used); a compromised device
// (its keys and everything they open); a first contact whose node lies
// about the keys (TOFU: compare fingerprints out of band to close this);
// past messages once a private key leaks — there is no forward secrecy,
// the keys are long-term; messages encrypted to keys the user deleted —
// they cannot be read again by anyone.
package e2e
