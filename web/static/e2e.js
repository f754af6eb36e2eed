// End-to-end encryption between users, in the browser (docs/PROTOCOL.md §5,
// the Go contract in e2e.go). Everything here is WebCrypto; nothing is
// written by hand but the byte layouts the spec fixes.
//
// Crypto summary. A message's {"content","tags"} JSON is sealed with
// AES-256-GCM under a fresh 32-byte data key and 12-byte nonce; the data
// key is wrapped with RSA-OAEP-SHA256 (RSA-4096) to the recipient's and the
// sender's own encryption keys; the AAD binds the message id, both
// addresses, the signing key id and the wrapped keys' ids, so a node cannot
// move a payload to another message, person or key. The sender's ECDSA
// P-256 key signs the AAD with every byte of the payload, so a node that
// holds the recipient's public key cannot forge a message either. The node
// sees only the payload. Private keys live in this browser's IndexedDB as
// non-extractable CryptoKeys: a script running later can use them but not
// read them. Their one export (PKCS#8, at creation) is sealed at once into
// the backup: AES-256-GCM under PBKDF2-HMAC-SHA256(passphrase, 600000
// iterations, the OWASP 2023 figure for SHA-256), whose AAD binds the
// address and the key ids, so the node, which keeps the backup, learns
// nothing and cannot hand one user's backup to another.

const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });
const subtle = () => crypto.subtle;

export const VERSION = 1;
export const BACKUP_KDF = 'PBKDF2-HMAC-SHA256';
export const BACKUP_MIN_ITER = 600000; // fednode.BackupMinIter
export const BACKUP_MAX_ITER = 10000000; // fednode.BackupMaxIter
export const MAX_CONTENT_CHARS = 10000; // fednode.MaxContentChars
export const MAX_TAGS = 10; // fednode.MaxTags
const WRAPPED_LEN = 512; // fednode.E2EWrappedLen
const MAX_KEYS = 4; // fednode.E2EMaxKeys
const NONCE_LEN = 12; // fednode.E2ENonceLen
const SIGNATURE_LEN = 64; // fednode.E2ESignatureLen
const MAX_CIPHERTEXT = 64 << 10; // fednode.E2EMaxCiphertext
const MIN_SALT = 16, MAX_SALT = 64; // fednode.BackupMinSalt, BackupMaxSalt
const KEY_ID = /^[A-Za-z0-9_-]{43}$/; // fednode.ValidKeyID
const ID_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford base32, as message.go

const RSA = { name: 'RSA-OAEP', hash: 'SHA-256' };
const EC = { name: 'ECDSA', namedCurve: 'P-256' };
const ECSIGN = { name: 'ECDSA', hash: 'SHA-256' };

// E2EError is a failure to say in words: code is stable for tests and
// programs, message is for people.
export class E2EError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// ---- bytes -------------------------------------------------------------------

export function b64(bytes) {
  const b = new Uint8Array(bytes);
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

export function unb64(text, what) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new E2EError('bad_encoding', `${what || 'a value'} is not standard base64`);
  }
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function b64url(bytes) { return b64(bytes).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, ''); }

function hex(bytes) { return [...new Uint8Array(bytes)].map((x) => x.toString(16).padStart(2, '0')).join(''); }

function random(n) { return crypto.getRandomValues(new Uint8Array(n)); }

// ---- ids -----------------------------------------------------------------------

// keyID is fednode.KeyID: base64url-nopad(SHA-256(SPKI DER)).
export async function keyID(spki) { return b64url(await subtle().digest('SHA-256', spki)); }

// fingerprint is fednode.Fingerprint: SHA-256 of the two key ids, in hex
// groups of four.
export async function fingerprint(encID, sigID) {
  const x = hex(await subtle().digest('SHA-256', te.encode('fednode-e2e-fingerprint/1\n' + encID + '\n' + sigID)));
  return x.match(/.{4}/g).join(' ');
}

// newID is fednode.NewID: 48 bits of milliseconds and 80 random bits, as
// 26 characters of Crockford base32 (the top two of 130 bits are zero).
export function newID(now) {
  let v = BigInt(now === undefined ? Date.now() : now) & ((1n << 48n) - 1n);
  for (const x of random(10)) v = (v << 8n) | BigInt(x);
  let s = '';
  for (let i = 0; i < 26; i++) { s = ID_ALPHABET[Number(v & 31n)] + s; v >>= 5n; }
  return s;
}

// idTime is fednode.IDTime: the milliseconds newID wrote into id, or NaN.
export function idTime(id) {
  if (typeof id !== 'string' || !/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/.test(id)) return NaN;
  let ms = 0;
  for (const c of id.slice(0, 10)) ms = ms * 32 + ID_ALPHABET.indexOf(c);
  return ms;
}

// ---- the byte layouts of the spec ---------------------------------------------

// aad is fednode.E2EAAD: lines joined by "\n", no final newline.
export function aad(id, from, to, sigKeyID, keyIDs) {
  return te.encode(aadLines(id, from, to, sigKeyID, keyIDs).join('\n'));
}

// aadLines are the lines of fednode.E2EAAD, stated once for the AAD and
// for the signed bytes.
function aadLines(id, from, to, sigKeyID, keyIDs) {
  return ['fednode-e2e/1', id, from, to, sigKeyID, ...keyIDs];
}

// signedBytes is fednode.E2ESignedBytes: the AAD, then the nonce, the
// ciphertext and each wrapped key in standard base64, a line each.
export function signedBytes(id, from, to, e) {
  // Each value is decoded and encoded again, so that the bytes signed are
  // the canonical encoding Go's E2ESignedBytes writes.
  const std = (x, what) => b64(unb64(x, what));
  const head = aadLines(id, from, to, e.sig_key, e.keys.map((k) => k.key_id));
  return te.encode([...head, std(e.nonce, 'nonce'), std(e.ciphertext, 'ciphertext'), ...e.keys.map((k) => std(k.wrapped, 'wrapped'))].join('\n'));
}

function backupAAD(address, encID, sigID) {
  return te.encode('fednode-e2e-backup/1\n' + address + '\n' + encID + '\n' + sigID);
}

// ---- content rules (message.go) ----------------------------------------------

// BLANK is Go's unicode.IsSpace set, which strings.TrimSpace (and so
// fednode.NormalizeContent) trims: not JavaScript's trim(), which also
// trims U+FEFF and would refuse a message Go accepts.
const BLANK = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

// isBlank is strings.TrimSpace(s) === "".
export function isBlank(s) { return BLANK.test(s); }

// checkContent is fednode.NormalizeContent: NULs removed, not blank, at
// most MAX_CONTENT_CHARS characters, well-formed text. The composer applies
// it to every message, sealed or not; the page applies it to what it opens.
export function checkContent(s) {
  if (typeof s !== 'string') throw new E2EError('invalid_content', 'The message is not text.');
  const text = s.replaceAll('\u0000', '');
  if (text.isWellFormed && !text.isWellFormed()) throw new E2EError('invalid_encoding', 'The text contains characters that cannot be sent.');
  if (isBlank(text)) throw new E2EError('invalid_content', 'The message is empty.');
  const n = [...text].length;
  if (n > MAX_CONTENT_CHARS) throw new E2EError('invalid_content', `A message is at most 10,000 characters; this one has ${n}.`);
  return text;
}

// checkTags is fednode.ValidateTags.
export function checkTags(tags) {
  if (!Array.isArray(tags)) throw new E2EError('invalid_tags', 'The tags are not a list.');
  if (tags.length > MAX_TAGS) throw new E2EError('invalid_tags', `At most ${MAX_TAGS} tags; there are ${tags.length}.`);
  const seen = new Set();
  for (const t of tags) {
    if (typeof t !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(t)) throw new E2EError('invalid_tags', `The tag "${t}" must be 1 to 32 letters, digits, "_" or "-".`);
    if (seen.has(t.toLowerCase())) throw new E2EError('invalid_tags', `The tag "${t}" is there twice (letter case is ignored).`);
    seen.add(t.toLowerCase());
  }
  return tags;
}

// ---- keys ----------------------------------------------------------------------

// publicKeys describes a key document (GET /api/users/{address}/keys) after
// checking, here, that its ids and fingerprint are its keys': the page
// trusts its node for the node signature, not for arithmetic.
export async function publicKeys(doc, address) {
  if (!doc || doc.address !== address) throw new E2EError('bad_document', `the key document is not for ${address}`);
  const enc = unb64(doc.enc_key, 'enc_key'), sig = unb64(doc.sig_key, 'sig_key');
  await checkKinds(enc, sig);
  const encID = await keyID(enc), sigID = await keyID(sig);
  const fp = await fingerprint(encID, sigID);
  if (encID !== doc.enc_key_id || sigID !== doc.sig_key_id || fp !== doc.fingerprint) {
    throw new E2EError('bad_document', 'the key document\'s ids or fingerprint are not its keys\'');
  }
  return { address, enc, sig, encID, sigID, fingerprint: fp, createdAt: String(doc.created_at || '') };
}

// checkKinds is fednode.CheckPublicKeys (§5.2): enc is an RSA-4096 key with
// exponent 65537, sig an ECDSA P-256 key, both as SPKI. A key of another
// size or curve would otherwise be used as given.
export async function checkKinds(enc, sig) {
  let e;
  try { e = await subtle().importKey('spki', enc, RSA, true, ['encrypt']); } catch (err) {
    throw new E2EError('bad_key_kind', 'the encryption key is not an RSA key');
  }
  const x = e.algorithm.publicExponent;
  if (e.algorithm.modulusLength !== 4096 || hex(x).replace(/^(00)+/, '') !== '010001') {
    throw new E2EError('bad_key_kind', 'the encryption key is not RSA-4096 with exponent 65537');
  }
  try { await subtle().importKey('spki', sig, EC, false, ['verify']); } catch (err) {
    throw new E2EError('bad_key_kind', 'the signing key is not an ECDSA P-256 key');
  }
}

// generate makes a new key pair of each kind. The private keys come back
// as PKCS#8 (for the backup, once) and as non-extractable CryptoKeys (to
// keep).
export async function generate() {
  const encPair = await subtle().generateKey({ ...RSA, modulusLength: 4096, publicExponent: new Uint8Array([1, 0, 1]) }, true, ['encrypt', 'decrypt']);
  const sigPair = await subtle().generateKey(EC, true, ['sign', 'verify']);
  const enc = new Uint8Array(await subtle().exportKey('spki', encPair.publicKey));
  const sig = new Uint8Array(await subtle().exportKey('spki', sigPair.publicKey));
  const encPkcs8 = new Uint8Array(await subtle().exportKey('pkcs8', encPair.privateKey));
  const sigPkcs8 = new Uint8Array(await subtle().exportKey('pkcs8', sigPair.privateKey));
  const keys = await importPrivate(enc, sig, encPkcs8, sigPkcs8);
  return { keys, encPkcs8, sigPkcs8 };
}

// importPrivate makes the kept form of a key set from PKCS#8: private keys
// that cannot be exported again.
export async function importPrivate(enc, sig, encPkcs8, sigPkcs8) {
  let encPriv, sigPriv;
  try {
    encPriv = await subtle().importKey('pkcs8', encPkcs8, RSA, false, ['decrypt']);
    sigPriv = await subtle().importKey('pkcs8', sigPkcs8, EC, false, ['sign']);
  } catch (e) {
    throw new E2EError('bad_private_key', 'the private keys cannot be read: ' + e.message);
  }
  const encID = await keyID(enc), sigID = await keyID(sig);
  return { enc, sig, encID, sigID, fingerprint: await fingerprint(encID, sigID), encPriv, sigPriv };
}

// ---- backup ------------------------------------------------------------------

async function kek(passphrase, salt, iterations, usage) {
  // NFC first (§5.7): the same passphrase typed on two keyboards, composed
  // or decomposed, makes the same key, here and in fedctl.
  const base = await subtle().importKey('raw', te.encode(passphrase.normalize('NFC')), 'PBKDF2', false, ['deriveKey']);
  return subtle().deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, base, { name: 'AES-GCM', length: 256 }, false, [usage]);
}

// sealBackup is a fednode.KeyBackup of the PKCS#8 keys under passphrase.
export async function sealBackup(address, keys, encPkcs8, sigPkcs8, passphrase) {
  const salt = random(16), nonce = random(12);
  const plain = te.encode(JSON.stringify({ enc: b64(encPkcs8), sig: b64(sigPkcs8) }));
  const k = await kek(passphrase, salt, BACKUP_MIN_ITER, 'encrypt');
  const ct = await subtle().encrypt({ name: 'AES-GCM', iv: nonce, additionalData: backupAAD(address, keys.encID, keys.sigID) }, k, plain);
  return { v: VERSION, kdf: BACKUP_KDF, iterations: BACKUP_MIN_ITER, salt: b64(salt), nonce: b64(nonce), ciphertext: b64(ct) };
}

// openBackup opens a backup for the published keys pub (publicKeys) and
// returns the kept key set. A wrong passphrase is E2EError
// wrong_passphrase, and nothing is returned.
export async function openBackup(address, pub, backup, passphrase) {
  if (!backup || backup.v !== VERSION || backup.kdf !== BACKUP_KDF) throw new E2EError('bad_backup', 'the backup is of an unknown kind');
  if (!Number.isInteger(backup.iterations) || backup.iterations < BACKUP_MIN_ITER || backup.iterations > BACKUP_MAX_ITER) {
    throw new E2EError('bad_backup', `the backup's key derivation has ${backup.iterations} iterations; at least ${BACKUP_MIN_ITER} are needed`);
  }
  const salt = unb64(backup.salt, 'backup.salt'), nonce = unb64(backup.nonce, 'backup.nonce'), ct = unb64(backup.ciphertext, 'backup.ciphertext');
  if (salt.length < MIN_SALT || salt.length > MAX_SALT || nonce.length !== NONCE_LEN || ct.length < 17) throw new E2EError('bad_backup', 'the backup is malformed');
  const k = await kek(passphrase, salt, backup.iterations, 'decrypt');
  let plain;
  try {
    plain = await subtle().decrypt({ name: 'AES-GCM', iv: nonce, additionalData: backupAAD(address, pub.encID, pub.sigID) }, k, ct);
  } catch (e) {
    throw new E2EError('wrong_passphrase', 'wrong passphrase (or the backup is not of your current keys)');
  }
  let p;
  try { p = strictObject(JSON.parse(td.decode(plain)), ['enc', 'sig']); } catch (e) {
    throw new E2EError('bad_backup', 'the backup\'s contents are malformed');
  }
  const keys = await importPrivate(pub.enc, pub.sig, unb64(p.enc, 'enc'), unb64(p.sig, 'sig'));
  if (!(await matches(keys, pub))) throw new E2EError('bad_backup', 'the backup holds other keys than the published ones');
  return keys;
}

// matches reports whether the private keys of keys are pub's, without
// exporting them: random bytes signed with one verify with the other, and
// random bytes sealed to pub.enc open with keys.encPriv.
async function matches(keys, pub) {
  try {
    const probe = random(32);
    const sigPub = await subtle().importKey('spki', pub.sig, EC, false, ['verify']);
    if (!(await subtle().verify(ECSIGN, sigPub, await subtle().sign(ECSIGN, keys.sigPriv, probe), probe))) return false;
    const encPub = await subtle().importKey('spki', pub.enc, RSA, false, ['encrypt']);
    const back = new Uint8Array(await subtle().decrypt(RSA, keys.encPriv, await subtle().encrypt(RSA, encPub, probe)));
    return back.length === probe.length && back.every((b, i) => b === probe[i]);
  } catch (err) {
    return false;
  }
}

function strictObject(v, names) {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
  const got = Object.keys(v).sort().join(','), want = [...names].sort().join(',');
  if (got !== want) throw new Error(`members ${got}, want ${want}`);
  return v;
}

// ---- messages ----------------------------------------------------------------

// seal makes the e2e payload of a message id from me (my kept keys) to the
// recipient (their publicKeys, or null when writing to myself).
export async function seal(id, from, to, mine, theirs, content, tags) {
  const plain = te.encode(JSON.stringify({ content: checkContent(content), tags: checkTags(tags || []) }));
  const dataKey = random(32), nonce = random(12);
  const recipients = [];
  if (theirs && theirs.encID !== mine.encID) recipients.push(theirs);
  recipients.push(mine);
  const keys = [];
  for (const r of recipients) {
    const pub = await subtle().importKey('spki', r.enc, RSA, false, ['encrypt']);
    keys.push({ key_id: r.encID, wrapped: b64(await subtle().encrypt(RSA, pub, dataKey)) });
  }
  const aesKey = await subtle().importKey('raw', dataKey, 'AES-GCM', false, ['encrypt']);
  const ct = await subtle().encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad(id, from, to, mine.sigID, keys.map((k) => k.key_id)) }, aesKey, plain);
  const e = { v: VERSION, sig_key: mine.sigID, keys, nonce: b64(nonce), ciphertext: b64(ct), signature: '' };
  e.signature = b64(await subtle().sign(ECSIGN, mine.sigPriv, signedBytes(id, from, to, e)));
  return e;
}

// validate is fednode.E2E.Validate: the structure rules, before any
// cryptography, so that a payload a node would refuse is refused here too.
export function validate(e) {
  const bad = (why) => { throw new E2EError('malformed', 'the payload is malformed: ' + why); };
  if (!e || typeof e !== 'object' || Array.isArray(e)) bad('not an object');
  try { strictObject(e, ['v', 'sig_key', 'keys', 'nonce', 'ciphertext', 'signature']); } catch (err) { bad(err.message); }
  if (e.v !== VERSION) bad(`v must be ${VERSION}`);
  if (typeof e.sig_key !== 'string' || !KEY_ID.test(e.sig_key)) bad('sig_key is not a key id');
  if (!Array.isArray(e.keys) || e.keys.length < 1 || e.keys.length > MAX_KEYS) bad(`keys must hold 1 to ${MAX_KEYS} wrapped keys`);
  const len = (x, what) => unb64(x, what).length;
  if (len(e.nonce, 'nonce') !== NONCE_LEN) bad(`the nonce must be ${NONCE_LEN} bytes`);
  const n = len(e.ciphertext, 'ciphertext');
  if (n < 17 || n > MAX_CIPHERTEXT) bad(`the ciphertext must be 17 to ${MAX_CIPHERTEXT} bytes`);
  if (len(e.signature, 'signature') !== SIGNATURE_LEN) bad(`the signature must be ${SIGNATURE_LEN} bytes`);
  const seen = new Set();
  for (const k of e.keys) {
    if (!k || typeof k !== 'object' || typeof k.key_id !== 'string' || !KEY_ID.test(k.key_id)) bad('a wrapped key has no key id');
    if (seen.has(k.key_id)) bad('a key id appears twice');
    if (len(k.wrapped, 'wrapped') !== WRAPPED_LEN) bad(`a wrapped key must be ${WRAPPED_LEN} bytes`);
    seen.add(k.key_id);
  }
  return e;
}

// open opens message m's payload with my kept keys, checking it against the
// sender's publicKeys (sender). It returns {content, tags} or throws an
// E2EError saying why.
export async function open(m, mine, sender) {
  const e = validate(m.e2e);
  const mineWrapped = e.keys.find((k) => k && k.key_id === mine.encID);
  if (!mineWrapped) throw new E2EError('not_for_this_key', 'not for this device\'s key');
  if (e.sig_key !== sender.sigID) throw new E2EError('unknown_signing_key', 'signed with a key the sender does not publish (now)');
  const sigKey = await subtle().importKey('spki', sender.sig, EC, false, ['verify']);
  const ok = await subtle().verify(ECSIGN, sigKey, unb64(e.signature, 'signature'), signedBytes(m.id, m.from, m.to, e));
  if (!ok) throw new E2EError('bad_signature', 'the signature does not verify');
  let dataKey;
  try {
    dataKey = await subtle().decrypt(RSA, mine.encPriv, unb64(mineWrapped.wrapped, 'wrapped'));
  } catch (err) {
    throw new E2EError('unwrap_failed', 'the data key cannot be unwrapped with this device\'s key');
  }
  if (dataKey.byteLength !== 32) throw new E2EError('unwrap_failed', 'the data key has the wrong length');
  const aesKey = await subtle().importKey('raw', dataKey, 'AES-GCM', false, ['decrypt']);
  let plain;
  try {
    plain = await subtle().decrypt({ name: 'AES-GCM', iv: unb64(e.nonce, 'nonce'), additionalData: aad(m.id, m.from, m.to, e.sig_key, e.keys.map((k) => k.key_id)) },
      aesKey, unb64(e.ciphertext, 'ciphertext'));
  } catch (err) {
    throw new E2EError('open_failed', 'the ciphertext does not open (altered, or moved from another message)');
  }
  let p;
  try {
    p = JSON.parse(td.decode(plain));
    // tags may be absent or null, as Go's plaintext allows (§5.3).
    strictObject(p, 'tags' in p ? ['content', 'tags'] : ['content']);
  } catch (err) {
    throw new E2EError('malformed', 'the sealed message is malformed');
  }
  return { content: checkContent(p.content), tags: checkTags(p.tags ?? []) };
}

// ---- storage: IndexedDB (keys), localStorage (pins) -------------------------

const DB = 'fednode-e2e', STORE = 'keys';

function db() {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function tx(mode, fn) {
  const d = await db();
  try {
    return await new Promise((resolve, reject) => {
      const t = d.transaction(STORE, mode);
      const req = fn(t.objectStore(STORE));
      t.oncomplete = () => resolve(req.result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  } finally { d.close(); }
}

// saveKeys keeps a key set (importPrivate) for address in this browser.
export function saveKeys(address, keys) { return tx('readwrite', (s) => s.put(keys, address)); }

// loadKeys is address's kept key set, or null.
export async function loadKeys(address) { return (await tx('readonly', (s) => s.get(address))) || null; }

export function forgetKeys(address) { return tx('readwrite', (s) => s.delete(address)); }

// Pins: what this browser has seen of each contact's keys (trust on first
// use), per logged-in address: contact → {enc_key_id, sig_key_id,
// fingerprint, sig_key, previous}. previous lists the signing keys trusted
// before, each with until, when the contact's next document was made:
// messages signed earlier still verify, later ones only with a warning. A
// pin without enc_key_id is a contact whose keys were let go ("send
// unencrypted"); only its previous keys are kept.
const pinsKey = (me) => 'fednode.e2e.pins.' + me;

function pins(me) {
  try { return JSON.parse(localStorage.getItem(pinsKey(me)) || '{}'); } catch (e) { return {}; }
}

function savePins(me, p) { localStorage.setItem(pinsKey(me), JSON.stringify(p)); }

export function pinOf(me, contact) { return pins(me)[contact] || null; }

// retire is old's signing keys, the current one trusted until until.
function retire(old, until) {
  const prev = (old && Array.isArray(old.previous)) ? old.previous.slice() : [];
  if (old && old.sig_key_id && old.sig_key) prev.push({ sig_key_id: old.sig_key_id, sig_key: old.sig_key, until });
  return prev;
}

// pin trusts pub (publicKeys) as contact's keys, keeping the keys trusted
// before as previous, valid until pub's document was made.
export function pin(me, contact, pub) {
  const p = pins(me);
  const old = p[contact];
  const previous = old && old.sig_key_id !== pub.sigID ? retire(old, pub.createdAt || new Date().toISOString()) : ((old && old.previous) || []);
  p[contact] = { enc_key_id: pub.encID, sig_key_id: pub.sigID, fingerprint: pub.fingerprint, sig_key: b64(pub.sig), previous };
  savePins(me, p);
}

// unpin lets contact's keys go, when they publish none any more and the
// user chose to write in clear: the keys trusted so far stay, as previous.
export function unpin(me, contact) {
  const p = pins(me);
  if (!p[contact]) return;
  p[contact] = { previous: retire(p[contact], new Date().toISOString()) };
  savePins(me, p);
}

// forgetPins drops every pin this browser keeps for me.
export function forgetPins(me) { localStorage.removeItem(pinsKey(me)); }

// trust compares a contact's current keys with the pin, pinning them the
// first time: {state: 'new'|'same'|'changed', old?: pin}.
export function trust(me, contact, pub) {
  const old = pinOf(me, contact);
  if (!old || !old.enc_key_id) { pin(me, contact, pub); return { state: 'new' }; }
  if (old.enc_key_id === pub.encID && old.sig_key_id === pub.sigID) return { state: 'same' };
  return { state: 'changed', old };
}

// pinnedSigner finds the signing key sigID among contact's pinned keys:
// {sig, until} (until: '' while it is the key trusted now), or null.
export function pinnedSigner(me, contact, sigID) {
  const p = pinOf(me, contact);
  if (!p) return null;
  if (p.sig_key_id === sigID && p.sig_key) return { sigID, sig: unb64(p.sig_key, 'sig_key'), until: '' };
  for (const x of p.previous || []) {
    if (x && x.sig_key_id === sigID && x.sig_key) return { sigID, sig: unb64(x.sig_key, 'sig_key'), until: x.until || '' };
  }
  return null;
}
