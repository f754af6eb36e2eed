// fednode's browser client: plain DOM, no framework, no build step. It talks
// only to the node that served it, through the public API (docs/API.md).
// Nothing user-supplied is ever parsed as HTML: text goes in textContent.

import * as E2E from './e2e.js';

const $top = document.getElementById('top');
const $main = document.getElementById('main');
const $status = document.getElementById('status');

const TOKEN_KEY = 'fednode.token';
const PAGE = 50;

const S = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  me: null,            // GET /api/me
  contract: null,      // the node has /api/conversations: true, false, or not known yet
  convs: new Map(),    // with → {with,last_cursor,last_at,last_preview,last_from_me,unread}
  msgs: new Map(),     // id → message, every message this page has seen
  pendingStatus: new Map(), // id → status event that came before its message
  lastCursor: null,    // the newest mailbox cursor seen, for the socket's ?after=
  thread: null,        // the open conversation: {with, ids:Set, next_before, more}
  ws: null, wsAttempt: 0, wsTimer: 0, live: false,
  e2e: newE2EState(),
};

// newE2EState is what the page knows of end-to-end encryption (e2e.js).
function newE2EState() {
  return {
    keys: null,          // this browser's kept keys for S.me (E2E.loadKeys), or null
    published: null,     // GET /api/keys: {document, backup}, or null: none
    publishedError: '',  // why GET /api/keys failed (not not_found): my keys are unknown
    peers: new Map(),    // address → Promise of {pub, error}: their key document
    opened: new Map(),   // message id → {content, tags, warn} or {error}, with the from, to and signature opened
  };
}

// ---- words -----------------------------------------------------------------

// The server's error codes (docs/API.md, "Errors") in words.
const WORDS = {
  network: 'The node cannot be reached. Check your connection and try again.',
  invalid_json: 'The request was malformed.',
  unknown_field: 'The request was malformed.',
  missing_field: 'Something required is missing.',
  invalid_encoding: 'The text contains characters that cannot be sent.',
  invalid_username: 'A username is 1 to 64 letters, digits, "_" or "-".',
  invalid_password: 'A password is 8 to 256 characters.',
  invalid_content: 'A message needs 1 to 10,000 characters.',
  invalid_tags: 'Use at most 10 tags, each 1 to 32 letters, digits, "_" or "-", without duplicates (letter case is ignored).',
  invalid_address: 'Write to "user" on this node or "user@node" on another.',
  invalid_parameter: 'A parameter was malformed.',
  invalid_request: 'The request was malformed.',
  unauthorized: 'Your session has ended. Please log in again.',
  invalid_credentials: 'Wrong username or password.',
  forbidden: 'This needs the admin role.',
  account_suspended: 'An administrator suspended this account.',
  origin_not_allowed: 'The node does not accept requests from this page\'s address.',
  not_found: 'Not found.',
  method_not_allowed: 'This node does not offer that yet.',
  username_taken: 'That username is taken.',
  conflict: 'That conflicts with the current state (for example, the last admin cannot remove themselves).',
  body_too_large: 'That is too large to send.',
  unsupported_media: 'The request was malformed.',
  unknown_recipient: 'There is no such user.',
  recipient_suspended: 'That user is suspended and receives nothing.',
  recipient_refused: 'The recipient does not accept messages from you.',
  federation_disabled: 'This node does not exchange messages with that node.',
  account_locked: 'Too many failed logins: this account is locked for a while.',
  rate_limited: 'Too many requests. Wait a moment and try again.',
  banned: 'Your network address is banned from this node for now.',
  registration_closed: 'This node does not accept new registrations.',
  invite_required: 'This node needs an invite code to register.',
  invite_invalid: 'That invite code is not valid.',
  invite_used: 'That invite code was already used.',
  invite_expired: 'That invite code has expired.',
  invalid_e2e: 'The encrypted message was refused by the node.',
  invalid_user_keys: 'The node refused the keys.',
  peer_keys_invalid: 'The other node answered keys that do not verify.',
  challenge_required: 'The node asks for an anti-abuse check.',
  challenge_invalid: 'The anti-abuse check failed. Please try again.',
  unavailable: 'The node is busy or its storage is unavailable. Try again shortly.',
  internal_error: 'The node had an internal error; the operator can find it in the logs.',
};

// Delivery reason codes (docs/API.md, "Messages") in words.
const REASONS = {
  policy_refused: 'one of the two nodes does not federate with the other',
  private_address: 'the other node is on a private address',
  invalid_node_document: 'the other node is misconfigured',
  unknown_recipient: 'there is no such user there',
  recipient_suspended: 'that user is suspended',
  recipient_refused: 'the recipient does not accept messages from you',
  peer_refused: 'the other node refused it',
  gave_up: 'the other node could not be reached for too long',
};

class ApiError extends Error {
  constructor(code, status, message, field, requestID, retryAfter) {
    super(message || code);
    Object.assign(this, { code, status, field, requestID, retryAfter });
  }
}

function words(err) {
  if (!(err instanceof ApiError)) return String(err && err.message || err);
  let w = WORDS[err.code] || err.message;
  if (err.code === 'account_suspended' && err.message) w += ' ' + err.message;
  if (err.retryAfter) w += ` Try again in ${err.retryAfter} seconds.`;
  if (err.requestID && err.status >= 500) w += ` (request ${err.requestID})`;
  return w;
}

// ---- DOM -------------------------------------------------------------------

function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid == null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

let uid = 0;
// field is a label and its control, tied by id, with an optional hint.
function field(label, control, hint) {
  control.id = control.id || 'f' + (++uid);
  const out = [h('label', { for: control.id, text: label }), control];
  if (hint) {
    const hid = control.id + '-hint';
    control.setAttribute('aria-describedby', hid);
    out.push(h('div', { class: 'hint', id: hid, text: hint }));
  }
  return out;
}

function errorBox() { return h('p', { class: 'error', role: 'alert' }); }
function showError(box, err) { box.textContent = err ? words(err) : ''; }
function announce(text) { $status.textContent = text; }

function show(title, ...content) {
  document.title = title ? title + ' · fednode' : 'fednode';
  $main.replaceChildren(...content.flat());
}

function busy(button, fn) {
  return async (ev) => {
    if (ev) ev.preventDefault();
    button.disabled = true;
    try { await fn(); } finally { button.disabled = false; }
  };
}

// ---- API -------------------------------------------------------------------

async function api(method, path, body) {
  const headers = {};
  if (S.token) headers.Authorization = 'Bearer ' + S.token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError('network', 0, e.message);
  }
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const err = new ApiError(e.code || 'http_' + res.status, res.status, e.message || res.statusText, e.field, e.request_id, res.headers.get('Retry-After'));
    if (err.code === 'unauthorized' && S.token && path !== '/api/auth/logout') sessionEnded();
    throw err;
  }
  return data;
}

// absent: the node answered that the endpoint does not exist (an older node).
const absent = (err) => err instanceof ApiError && (err.code === 'not_found' || err.code === 'method_not_allowed');

// ---- proof of work ---------------------------------------------------------

// solveChallenge gets a challenge and solves it in a worker, showing
// progress, and returns the base64 solution the login or registration sends.
async function solveChallenge(progress) {
  const c = await api('GET', '/api/auth/challenge');
  progress.hidden = false;
  progress.value = 0;
  const number = await new Promise((resolve, reject) => {
    const w = new Worker('/assets/pow.js');
    w.onmessage = (ev) => {
      if (ev.data.progress !== undefined) progress.value = ev.data.progress;
      if (ev.data.done) { w.terminate(); resolve(ev.data.number); }
    };
    w.onerror = (e) => { w.terminate(); reject(new Error('the anti-abuse check could not run: ' + e.message)); };
    w.postMessage({ salt: c.salt, challenge: c.challenge, maxnumber: c.maxnumber });
  });
  progress.value = 1;
  if (number < 0) throw new ApiError('challenge_invalid', 403, 'no solution');
  return btoa(JSON.stringify({ algorithm: c.algorithm, challenge: c.challenge, number, salt: c.salt, signature: c.signature }));
}

// withChallenge sends body to path, and once more with a solved challenge
// when the node asks for one.
async function withChallenge(path, body, progress, note) {
  try {
    return await api('POST', path, body);
  } catch (err) {
    if (err.code !== 'challenge_required') throw err;
    note.textContent = 'The node asks for a short anti-abuse check; solving it…';
    const challenge = await solveChallenge(progress);
    note.textContent = 'Check solved.';
    return await api('POST', path, { ...body, challenge });
  }
}

// ---- session ---------------------------------------------------------------

function setToken(token) {
  S.token = token || '';
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function resetState() {
  if (S.ws) { const ws = S.ws; S.ws = null; ws.close(); }
  clearTimeout(S.wsTimer);
  Object.assign(S, { me: null, contract: null, convs: new Map(), msgs: new Map(), pendingStatus: new Map(), lastCursor: null, thread: null, wsAttempt: 0, live: false, e2e: newE2EState() });
}

function sessionEnded(text) {
  setToken('');
  resetState();
  renderTop();
  location.hash = '#/login';
  announce(text || 'Your session has ended. Please log in again.');
}

async function startSession() {
  S.me = await api('GET', '/api/me');
  await loadMyKeys();
  renderTop();
  await loadConversations();
  connectWS();
}

// ---- addresses and messages ------------------------------------------------

function myDomain() { return S.me.address.slice(S.me.address.indexOf('@') + 1); }

// canonical turns "Bob" or "bob@B.example" into a full lower-case address.
function canonical(text) {
  const t = text.trim().toLowerCase();
  if (!/^[a-z0-9_-]{1,64}(@[^@\s/]+)?$/.test(t)) return '';
  return t.includes('@') ? t : t + '@' + myDomain();
}

const cur = (c) => (c === undefined || c === null || c === '' ? Infinity : Number(c));
const peerOf = (m) => (m.from === S.me.address ? m.to : m.from);
const isRemote = (addr) => addr.slice(addr.indexOf('@') + 1) !== myDomain();
const preview = (text) => [...text].slice(0, 80).join('');

function noteCursor(c) {
  if (c === undefined || c === null || c === '') return;
  if (S.lastCursor === null || Number(c) > Number(S.lastCursor)) S.lastCursor = String(c);
}

// remember stores a message, merging what is known of it already.
function remember(m) {
  const old = S.msgs.get(m.id);
  const merged = old ? { ...old, ...m } : { ...m };
  // A frame read before a status change must not undo it: only a status
  // event moves a message back to queued (an operator's redrive).
  if (old && m.status === 'queued' && (old.status === 'delivered' || old.status === 'failed')) applyStatus(merged, old);
  const ev = S.pendingStatus.get(m.id);
  if (ev) { applyStatus(merged, ev); S.pendingStatus.delete(m.id); }
  S.msgs.set(m.id, merged);
  noteCursor(m.cursor);
  return merged;
}

function applyStatus(m, ev) {
  m.status = ev.status;
  m.reason_code = ev.reason_code;
  m.reason = ev.reason;
}

// upsertConv moves a conversation to the message if it is the newest.
function upsertConv(m, countUnread) {
  const w = peerOf(m);
  const c = S.convs.get(w) || { with: w, last_cursor: 0, unread: 0 };
  const mine = m.from === S.me.address;
  if (cur(m.cursor) >= (c.last_cursor || 0)) {
    Object.assign(c, { last_cursor: cur(m.cursor) === Infinity ? c.last_cursor : Number(m.cursor), last_at: m.created_at, last_preview: preview(m.content || ''), last_from_me: mine, e2e: !!m.e2e });
  }
  if (countUnread && !mine) c.unread = (c.unread || 0) + 1;
  S.convs.set(w, c);
}

// Read marks of nodes without the conversations API stay in this browser.
const readKey = (w) => `fednode.read.${S.me.address}.${w}`;

async function markRead(w) {
  const c = S.convs.get(w);
  if (!c) return;
  c.unread = 0;
  const upTo = Math.max(0, ...[...S.msgs.values()].filter((m) => peerOf(m) === w && cur(m.cursor) !== Infinity).map((m) => Number(m.cursor)));
  if (S.contract) {
    try { await api('POST', `/api/conversations/${encodeURIComponent(w)}/read`, { cursor: upTo }); } catch (e) { /* the mark is a convenience */ }
  } else {
    localStorage.setItem(readKey(w), String(upTo));
  }
}

async function loadConversations() {
  if (S.contract !== false) {
    try {
      const d = await api('GET', '/api/conversations?limit=200');
      S.contract = true;
      S.convs = new Map(d.conversations.map((c) => [c.with, { ...c, last_cursor: Number(c.last_cursor) }]));
      for (const c of d.conversations) noteCursor(c.last_cursor);
      if (S.lastCursor === null) S.lastCursor = '0';
      return;
    } catch (err) {
      if (!absent(err)) throw err;
      S.contract = false;
    }
  }
  // An older node: read the whole mailbox and make the conversations here.
  let after = '';
  for (let page = 0; page < 500; page++) {
    const d = await api('GET', '/api/messages?limit=200' + (after ? '&after=' + encodeURIComponent(after) : ''));
    for (const m of d.messages) {
      const mm = remember(m);
      const w = peerOf(mm);
      const mark = Number(localStorage.getItem(readKey(w)) || 0);
      upsertConv(mm, Number(mm.cursor) > mark);
    }
    if (d.messages.length === 0 || d.next === after) break;
    after = d.next;
  }
  noteCursor(after);
  if (S.lastCursor === null) S.lastCursor = '0';
}

// threadPage is a page of a conversation, newest first, before a cursor.
async function threadPage(w, before) {
  if (S.contract) {
    const q = `limit=${PAGE}` + (before ? `&before=${encodeURIComponent(before)}` : '');
    const d = await api('GET', `/api/conversations/${encodeURIComponent(w)}/messages?${q}`);
    return { messages: d.messages, next_before: d.next_before, more: d.messages.length === PAGE && !!d.next_before };
  }
  const all = [...S.msgs.values()].filter((m) => peerOf(m) === w && (!before || cur(m.cursor) < Number(before)))
    .sort((a, b) => cur(b.cursor) - cur(a.cursor));
  const page = all.slice(0, PAGE);
  const last = page[page.length - 1];
  return { messages: page, next_before: last ? last.cursor : '', more: all.length > PAGE };
}

// ---- live ------------------------------------------------------------------

function setLive(on, text) {
  S.live = on;
  const el = document.getElementById('conn');
  if (el) {
    el.textContent = text || (on ? 'Live' : 'Reconnecting…');
    el.className = on ? 'conn' : 'conn down';
    el.dataset.state = on ? 'live' : 'down';
  }
}

function connectWS() {
  if (!S.token || S.ws) return;
  clearTimeout(S.wsTimer);
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const after = S.lastCursor === null ? '' : '?after=' + encodeURIComponent(S.lastCursor);
  const ws = new WebSocket(`${scheme}//${location.host}/api/ws${after}`, ['fednode.v1', 'bearer.' + S.token]);
  S.ws = ws;
  ws.onopen = () => {
    S.wsAttempt = 0;
    setLive(true);
    refreshQueued();
  };
  ws.onmessage = (ev) => {
    let d;
    try { d = JSON.parse(ev.data); } catch (e) { return; }
    if (d.event === 'status') onStatus(d);
    else if (d.id) onMessage(d);
  };
  ws.onclose = (ev) => {
    if (S.ws !== ws) return;
    S.ws = null;
    if (ev.code === 1008) { sessionEnded('Your session was ended elsewhere. Please log in again.'); return; }
    setLive(false);
    // Back off with jitter: 0.5 s, 1 s, 2 s, … up to 10 s.
    const delay = Math.min(10000, 500 * 2 ** S.wsAttempt) * (0.5 + Math.random() / 2);
    S.wsAttempt++;
    if (S.wsAttempt > 3) api('GET', '/api/me').catch(() => {}); // a revoked token logs out
    S.wsTimer = setTimeout(connectWS, delay);
  };
}

window.addEventListener('online', () => { if (S.token && !S.ws) { S.wsAttempt = 0; connectWS(); } });

// refreshQueued asks for the state of my messages still queued: status
// events are live only, so those missed while the socket was down are read.
async function refreshQueued() {
  const queued = [...S.msgs.values()].filter((m) => m.status === 'queued' && m.from === S.me.address).slice(-50);
  for (const m of queued) {
    try {
      const fresh = await api('GET', '/api/messages/' + encodeURIComponent(m.id));
      if (fresh.status !== m.status) onStatus({ id: m.id, status: fresh.status, reason_code: fresh.reason_code, reason: fresh.reason });
    } catch (e) { /* the next reconnect tries again */ }
  }
}

function onMessage(m) {
  const viewing = S.thread && S.thread.with === peerOf(m) && document.visibilityState !== 'hidden';
  const known = S.msgs.has(m.id) && cur(S.msgs.get(m.id).cursor) !== Infinity;
  const mm = remember(m);
  if (!known) upsertConv(mm, !viewing);
  if (S.thread && S.thread.with === peerOf(mm)) {
    S.thread.ids.add(mm.id);
    renderThread();
    if (mm.from !== S.me.address) { markRead(S.thread.with); announce('New message from ' + mm.from); }
  }
  renderConvList();
}

function onStatus(ev) {
  const m = S.msgs.get(ev.id);
  if (!m) { S.pendingStatus.set(ev.id, ev); return; }
  applyStatus(m, ev);
  const li = document.querySelector(`li[data-id="${CSS.escape(ev.id)}"]`);
  if (li) li.replaceWith(messageItem(m));
  announce(`Message to ${m.to}: ${statusText(m)}`);
}

// ---- header ----------------------------------------------------------------

function renderTop() {
  if (!S.me) { $top.replaceChildren(h('span', { class: 'brand', text: 'fednode' })); return; }
  const logout = h('button', { class: 'secondary', type: 'button', text: 'Log out' });
  logout.addEventListener('click', busy(logout, async () => {
    try { await api('POST', '/api/auth/logout'); } catch (e) { /* gone either way */ }
    sessionEnded('You are logged out.');
  }));
  // A shared or borrowed browser should not keep my keys (or my pins).
  const forget = h('button', { class: 'secondary', type: 'button', id: 'logout-forget', text: 'Log out and forget my keys here' });
  forget.addEventListener('click', busy(forget, async () => {
    const me = S.me.address;
    try { await api('POST', '/api/auth/logout'); } catch (e) { /* gone either way */ }
    await forgetE2E(me);
    sessionEnded('You are logged out, and this browser forgot your keys.');
  }));
  const all = h('button', { class: 'secondary', type: 'button', text: 'Log out everywhere' });
  all.addEventListener('click', busy(all, async () => {
    try {
      await api('POST', '/api/auth/logout-all');
      sessionEnded('You are logged out on every device.');
    } catch (err) { announce(words(err)); alertTop(err); }
  }));
  $top.replaceChildren(
    h('span', { class: 'brand' }, 'fednode ', h('span', { class: 'hint', id: 'me', text: S.me.address })),
    h('span', { id: 'conn', class: 'conn down', 'data-state': 'down', role: 'status', text: 'Connecting…' }),
    h('nav', { 'aria-label': 'Main' },
      h('a', { href: '#/', text: 'Conversations' }),
      h('a', { href: '#/encryption', text: 'Encryption' }),
      h('a', { href: '#/privacy', text: 'Privacy & account' }),
      S.me.role === 'admin' && h('a', { href: '#/admin', text: 'Admin' })),
    logout, forget, all);
}

// forgetE2E removes what this browser keeps of address's end-to-end
// encryption: its private keys and its contacts' pins.
async function forgetE2E(address) {
  try { await E2E.forgetKeys(address); } catch (e) { /* nothing kept */ }
  E2E.forgetPins(address);
}

function alertTop(err) {
  const box = errorBox();
  showError(box, err);
  $main.prepend(box);
}

// ---- login and registration ------------------------------------------------

// logIn logs in (solving a challenge if asked) and opens the conversations.
async function logIn(username, password, progress, note) {
  const d = await withChallenge('/api/auth/login', { username, password }, progress, note);
  setToken(d.token);
  await startSession();
  location.hash = '#/';
  route();
}

function renderLogin() {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const progress = h('progress', { max: 1, value: 0, hidden: true, 'aria-label': 'Anti-abuse check' });
  const note = h('p', { class: 'hint', role: 'status' });
  const err = errorBox();
  const submit = h('button', { type: 'submit', text: 'Log in' });
  const form = h('form', { class: 'card', 'aria-labelledby': 'login-h' },
    h('h1', { id: 'login-h', text: 'Log in' }),
    field('Username', user), field('Password', pass), progress, note, err,
    h('div', { class: 'row' }, submit, h('a', { href: '#/register', text: 'Create an account' })));
  form.addEventListener('submit', busy(submit, async () => {
    showError(err, null);
    try {
      await logIn(user.value.trim(), pass.value, progress, note);
    } catch (e) { showError(err, e); }
  }));
  show('Log in', form);
  user.focus();
}

function renderRegister() {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', pattern: '[A-Za-z0-9_\\-]{1,64}' });
  const pass = h('input', { name: 'new-password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8, maxlength: 256 });
  const invite = h('input', { name: 'invite', autocomplete: 'off', autocapitalize: 'none' });
  const progress = h('progress', { max: 1, value: 0, hidden: true, 'aria-label': 'Anti-abuse check' });
  const note = h('p', { class: 'hint', role: 'status' });
  const err = errorBox();
  const submit = h('button', { type: 'submit', text: 'Create account' });
  const form = h('form', { class: 'card', 'aria-labelledby': 'reg-h' },
    h('h1', { id: 'reg-h', text: 'Create an account' }),
    field('Username', user, '1 to 64 letters, digits, "_" or "-".'),
    field('Password', pass, '8 to 256 characters.'),
    field('Invite code (if the node asks for one)', invite),
    progress, note, err,
    h('div', { class: 'row' }, submit, h('a', { href: '#/login', text: 'I have an account' })));
  form.addEventListener('submit', busy(submit, async () => {
    showError(err, null);
    const body = { username: user.value.trim(), password: pass.value };
    if (invite.value.trim()) body.invite = invite.value.trim();
    try {
      await withChallenge('/api/auth/register', body, progress, note);
      note.textContent = 'Account created; logging in…';
      await logIn(body.username, body.password, progress, note);
    } catch (e) { showError(err, e); }
  }));
  show('Create an account', form);
  user.focus();
}

// ---- conversations ---------------------------------------------------------

let $convList = null;

function renderConvList() {
  if (!$convList || !$convList.isConnected) return;
  const convs = [...S.convs.values()].sort((a, b) => (b.last_cursor || 0) - (a.last_cursor || 0));
  if (convs.length === 0) {
    $convList.replaceChildren(h('p', { class: 'hint', text: 'No conversations yet. Write to someone above.' }));
    return;
  }
  $convList.replaceChildren(h('ul', { id: 'conversations' }, convs.map((c) => h('li', { 'data-with': c.with },
    h('a', { href: '#/c/' + encodeURIComponent(c.with), 'aria-current': S.thread && S.thread.with === c.with ? 'page' : null },
      h('span', { class: 'who', text: c.with }),
      c.unread > 0 && h('span', { class: 'badge', 'data-unread': c.unread, 'aria-label': `${c.unread} unread`, text: String(c.unread) }),
      h('div', { class: 'preview' }, c.last_from_me ? 'You: ' : '', c.e2e ? [lockMark(), ' Encrypted message'] : (c.last_preview || '')))))));
}

function convAside() {
  const to = h('input', { name: 'to', autocomplete: 'off', autocapitalize: 'none', placeholder: 'bob or bob@other.example' });
  const err = errorBox();
  const open = h('button', { type: 'submit', text: 'Open' });
  const form = h('form', { 'aria-label': 'New conversation' }, field('Write to', to), err, h('div', { class: 'row' }, open));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const w = canonical(to.value);
    if (!w) { err.textContent = WORDS.invalid_address; return; }
    location.hash = '#/c/' + encodeURIComponent(w);
  });
  $convList = h('div', { class: 'convs' });
  const aside = h('section', { 'aria-labelledby': 'convs-h' }, h('h1', { id: 'convs-h', text: 'Conversations' }), form, $convList);
  renderConvList();
  return aside;
}

function renderHome() {
  S.thread = null;
  show('Conversations', h('div', { class: 'layout' }, convAside(),
    h('section', { 'aria-label': 'Conversation' }, h('p', { class: 'hint', text: 'Choose a conversation, or write to someone.' }))));
}

function statusText(m) {
  if (m.status === 'failed') return 'Failed: ' + (REASONS[m.reason_code] || m.reason || 'not delivered');
  if (m.status === 'queued') return 'Queued';
  if (m.status === 'delivered') return 'Delivered';
  return m.status || '';
}

function messageItem(m) {
  const mine = m.from === S.me.address;
  const del = h('button', { class: 'link', type: 'button', text: 'Delete', 'aria-label': 'Delete this message from my view' });
  del.addEventListener('click', busy(del, async () => {
    try {
      await api('DELETE', '/api/messages/' + encodeURIComponent(m.id));
      S.msgs.delete(m.id);
      if (S.thread) S.thread.ids.delete(m.id);
      renderThread();
      announce('Message deleted from your view.');
    } catch (err) { announce(words(err)); alertThread(err); }
  }));
  const when = m.created_at ? new Date(m.created_at) : null;
  const v = m.e2e ? sealedView(m) : { body: h('div', { class: 'body', text: m.content }), tags: m.tags || [], marks: [] };
  return h('li', { class: 'msg' + (mine ? ' mine' : ''), 'data-id': m.id, 'data-cursor': m.cursor || '', 'data-e2e': m.e2e ? 'yes' : null },
    v.body,
    h('div', { class: 'meta' },
      v.marks,
      h('span', { text: mine ? 'You' : m.from }),
      when && h('time', { datetime: m.created_at, text: when.toLocaleString() }),
      v.tags.map((t) => h('span', { class: 'tag', text: '#' + t })),
      mine && isRemote(m.to) && h('span', { class: 'st st-' + m.status, 'data-status': m.status, text: statusText(m) }),
      del));
}

let $thread = null;
let $threadErr = null;
let $e2eBox = null;

function alertThread(err) { if ($threadErr) showError($threadErr, err); }

function renderThread() {
  if (!$thread || !$thread.isConnected || !S.thread) return;
  const msgs = [...S.thread.ids].map((id) => S.msgs.get(id)).filter(Boolean).sort((a, b) => cur(a.cursor) - cur(b.cursor));
  const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
  $thread.replaceChildren(...msgs.map(messageItem));
  const older = document.getElementById('older');
  if (older) older.hidden = !S.thread.more;
  if (atBottom) window.scrollTo(0, document.body.scrollHeight);
}

// openConversation opens #/c/ADDRESS under its canonical address, the one
// the node writes and the AAD binds: "#/c/Bob@B.example" and "#/c/bob" move
// to "#/c/bob@b.example".
async function openConversation(escaped) {
  let text = '';
  try { text = decodeURIComponent(escaped); } catch (e) { text = ''; }
  const w = canonical(text);
  if (!w) { renderHome(); alertTop(new Error(WORDS.invalid_address)); return; }
  if (w !== text || encodeURIComponent(w) !== escaped) { location.replace('#/c/' + encodeURIComponent(w)); return; }
  await renderConversation(w);
}

async function renderConversation(w) {
  S.thread = { with: w, ids: new Set(), next_before: '', more: false, e2e: null };
  $e2eBox = h('div', { id: 'e2e-state', 'aria-live': 'polite' }, h('p', { class: 'hint', text: 'Checking end-to-end encryption…' }));
  $thread = h('ol', { class: 'thread', id: 'thread', 'aria-label': 'Messages' });
  $threadErr = errorBox();
  const older = h('button', { class: 'secondary', type: 'button', id: 'older', text: 'Load older messages', hidden: true });
  older.addEventListener('click', busy(older, () => loadPage(w)));
  const actions = h('div', { class: 'row' });
  const blockUser = h('button', { class: 'secondary', type: 'button', text: 'Block ' + w });
  blockUser.addEventListener('click', busy(blockUser, () => block({ address: w })));
  if (w !== S.me.address) actions.append(blockUser);
  if (isRemote(w)) {
    const dom = w.slice(w.indexOf('@') + 1);
    const blockNode = h('button', { class: 'secondary', type: 'button', text: 'Block node ' + dom });
    blockNode.addEventListener('click', busy(blockNode, () => block({ domain: dom })));
    actions.append(blockNode);
  }
  show(w, h('div', { class: 'layout' }, convAside(),
    h('section', { 'aria-labelledby': 'thread-h' },
      h('h1', { id: 'thread-h' }, 'With ', h('span', { text: w })), $e2eBox, actions, $threadErr, older, $thread, composer(w))));
  refreshConvE2E(w);
  await loadPage(w);
  markRead(w).then(renderConvList);
}

async function block(target) {
  try {
    await api('POST', '/api/blocks', target);
    announce(`Blocked ${target.address || target.domain}: their new messages are refused.`);
    showError($threadErr, null);
    $threadErr.append(h('span', { class: 'ok', text: `Blocked ${target.address || target.domain}.` }));
  } catch (err) { alertThread(err); }
}

async function loadPage(w) {
  try {
    const p = await threadPage(w, S.thread.next_before);
    if (!S.thread || S.thread.with !== w) return;
    for (const m of p.messages) S.thread.ids.add(remember(m).id);
    S.thread.next_before = p.next_before;
    S.thread.more = p.more;
    renderThread();
  } catch (err) { alertThread(err); }
}

// checkMessage applies the server's rules (message.go, stated once for the
// page in e2e.js) before sending, so that a mistake is explained at once;
// the server checks again.
function checkMessage(content, tagText) {
  try {
    return { text: E2E.checkContent(content), tags: E2E.checkTags(tagText.split(/[\s,]+/).filter(Boolean)) };
  } catch (e) {
    return { code: e.code, text: e.message };
  }
}

function composer(w) {
  const content = h('textarea', { name: 'content', required: true, rows: 3 });
  const tags = h('input', { name: 'tags', autocomplete: 'off', autocapitalize: 'none' });
  const count = h('span', { class: 'hint', 'aria-live': 'off', text: '0 / 10000' });
  const err = errorBox();
  const send = h('button', { type: 'submit', text: 'Send' });
  content.addEventListener('input', () => { count.textContent = `${[...content.value].length} / 10000`; });
  content.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); form.requestSubmit(); }
  });
  const form = h('form', { class: 'composer', 'aria-label': 'Write a message' },
    field('Message', content, 'Ctrl+Enter sends.'), field('Tags (optional)', tags, 'Up to 10, separated by spaces or commas.'),
    err, h('div', { class: 'row' }, send, count));
  form.addEventListener('submit', busy(send, async () => {
    showError(err, null);
    const c = checkMessage(content.value, tags.value);
    if (c.code) { err.textContent = c.text; return; }
    try {
      // The keys are looked at again for every message: a change since the
      // page opened stops it here.
      const st = await refreshConvE2E(w);
      if (st.mode === 'changed') { err.textContent = `Not sent: ${w}'s keys have changed. Compare the new fingerprint with them, then press "Accept new key".`; return; }
      if (st.mode === 'gone') { err.textContent = `Not sent: ${w}'s keys have been removed. Ask them why, then choose above.`; return; }
      if (st.mode === 'mine') { err.textContent = `Not sent: ${st.why}. Choose under Encryption.`; return; }
      if (st.mode === 'error') { err.textContent = `Not sent: ${st.why}.`; return; }
      if (st.mode !== 'e2e' && st.mode !== 'plain') { err.textContent = 'Not sent.'; return; }
      let body = { to: w, content: c.text, tags: c.tags };
      if (st.mode === 'e2e') {
        const id = E2E.newID();
        // The AAD binds the address as the node writes it: canonical.
        body = { to: w, id, e2e: await E2E.seal(id, S.me.address, w, myKeys(), st.pub, c.text, c.tags) };
        S.e2e.opened.set(id, { content: c.text, tags: c.tags, ...openedOf({ from: S.me.address, to: w, e2e: body.e2e }) });
      }
      const r = await api('POST', '/api/messages', body);
      const m = remember({ id: r.id, status: r.status, from: S.me.address, to: w, content: body.e2e ? '' : c.text, tags: body.e2e ? [] : c.tags, e2e: body.e2e, created_at: new Date().toISOString() });
      if (S.thread && S.thread.with === w) S.thread.ids.add(m.id);
      upsertConv(m, false);
      renderThread();
      renderConvList();
      content.value = '';
      tags.value = '';
      count.textContent = '0 / 10000';
      content.focus();
    } catch (e) { showError(err, e); }
  }));
  return form;
}

// ---- end-to-end encryption (e2e.js, docs/PROTOCOL.md §5) -------------------

// loadMyKeys reads this browser's kept keys and the keys the node publishes
// for me. Only not_found means I publish none: any other failure leaves my
// keys unknown (publishedError), and then nothing is sent until they are
// known, for a node that fails once must not turn encryption off.
async function loadMyKeys() {
  try { S.e2e.keys = await E2E.loadKeys(S.me.address); } catch (e) { S.e2e.keys = null; }
  try {
    S.e2e.published = await api('GET', '/api/keys');
    S.e2e.publishedError = '';
  } catch (err) {
    S.e2e.published = null;
    S.e2e.publishedError = err instanceof ApiError && err.code === 'not_found' ? '' : e2eWords(err);
  }
}

// myKeys is this browser's key set when it is the one I publish, else null.
function myKeys() {
  const k = S.e2e.keys, d = S.e2e.published && S.e2e.published.document;
  return k && d && k.encID === d.enc_key_id && k.sigID === d.sig_key_id ? k : null;
}

// myKeysWhy says why myKeys is null.
function myKeysWhy() {
  if (S.e2e.publishedError) return `your keys cannot be checked now (${S.e2e.publishedError})`;
  if (!S.e2e.published) return S.e2e.keys ? 'this browser has your keys, but your node publishes none' : 'you have no keys (create them under Encryption)';
  if (!S.e2e.keys) return 'this browser does not have your keys (restore them under Encryption)';
  return 'this browser\'s keys are not the ones you published (restore them under Encryption)';
}

// myKeysState is how my own keys stand: 'ok' (myKeys), 'unknown' (the node
// did not say), 'mismatch' (this browser holds keys the node does not
// publish: none, or others: a choice is needed before anything is sent),
// or 'none' (no keys here, so clear text).
function myKeysState() {
  if (S.e2e.publishedError) return 'unknown';
  if (myKeys()) return 'ok';
  return S.e2e.keys ? 'mismatch' : 'none';
}

const e2eWords = (err) => (err instanceof ApiError ? words(err) : String((err && err.message) || err));

// peerKeys is a contact's checked key document: {pub} (null when they have
// none) or {error}. Answers are kept for the page's life unless fresh.
function peerKeys(addr, fresh) {
  if (!fresh && S.e2e.peers.has(addr)) return S.e2e.peers.get(addr);
  const p = (async () => {
    try {
      return { pub: await E2E.publicKeys(await api('GET', `/api/users/${encodeURIComponent(addr)}/keys`), addr) };
    } catch (err) {
      if (err instanceof ApiError && err.code === 'not_found') return { pub: null };
      S.e2e.peers.delete(addr); // ask again next time
      return { pub: null, error: e2eWords(err) };
    }
  })();
  S.e2e.peers.set(addr, p);
  return p;
}

// convE2E decides how a message to w goes: {mode: 'e2e', pub} when both
// have keys and w's are the ones this browser trusts; 'changed' (with the
// old pin) when w's keys changed since; 'gone' (with the old pin) when w
// published keys this browser pinned and now publishes none: a key change
// too, never a quiet fall to clear text; 'mine' when my own keys here and
// on the node disagree; 'error' when keys cannot be known now; 'plain'
// with why otherwise. Nothing is sent but in 'e2e' and 'plain'.
async function convE2E(w, fresh) {
  switch (myKeysState()) {
    case 'unknown': return { mode: 'error', why: myKeysWhy() };
    case 'mismatch': return { mode: 'mine', why: myKeysWhy() };
    case 'none': return { mode: 'plain', why: myKeysWhy() };
  }
  const mine = myKeys();
  if (w === S.me.address) return { mode: 'e2e', pub: mine };
  const p = await peerKeys(w, fresh);
  if (p.error) return { mode: 'error', why: `${w}'s keys cannot be fetched now (${p.error})` };
  if (!p.pub) {
    const old = E2E.pinOf(S.me.address, w);
    if (old && old.enc_key_id) return { mode: 'gone', old };
    return { mode: 'plain', why: `${w} has no keys` };
  }
  const t = E2E.trust(S.me.address, w, p.pub);
  if (t.state === 'changed') return { mode: 'changed', pub: p.pub, old: t.old };
  return { mode: 'e2e', pub: p.pub };
}

// refreshConvE2E reads my keys and w's again and shows the state in the
// conversation's header.
async function refreshConvE2E(w) {
  await loadMyKeys();
  const st = await convE2E(w, true);
  if (S.thread && S.thread.with === w) {
    S.thread.e2e = st;
    renderE2EBox(w, st);
  }
  return st;
}

// forgetOpened drops what was opened of w's messages, to open them again.
function forgetOpened(w) {
  for (const [id] of S.e2e.opened) { const m = S.msgs.get(id); if (m && m.from === w) S.e2e.opened.delete(id); }
}

function renderE2EBox(w, st) {
  if (!$e2eBox || !$e2eBox.isConnected) return;
  const whose = w === S.me.address ? 'Your fingerprint: ' : 'Their fingerprint: ';
  if (st.mode === 'e2e') {
    $e2eBox.replaceChildren(h('p', { class: 'e2e on', 'data-e2e': 'on' }, lockMark(), ' End-to-end encrypted. ', whose, h('code', { class: 'fp', text: st.pub.fingerprint })));
  } else if (st.mode === 'plain') {
    $e2eBox.replaceChildren(h('p', { class: 'e2e off', 'data-e2e': 'off', text: `Not end-to-end encrypted: ${st.why}.` }));
  } else if (st.mode === 'error') {
    const retry = h('button', { type: 'button', class: 'secondary', text: 'Try again' });
    retry.addEventListener('click', busy(retry, () => refreshConvE2E(w)));
    $e2eBox.replaceChildren(h('div', { class: 'e2e error', 'data-e2e': 'error', role: 'alert' },
      h('p', { text: `End-to-end encryption unknown: ${st.why}. Nothing is sent until it is known.` }), h('div', { class: 'row' }, retry)));
  } else if (st.mode === 'mine') {
    $e2eBox.replaceChildren(h('div', { class: 'e2e error', 'data-e2e': 'mine', role: 'alert' },
      h('p', { text: `Your keys do not match: ${st.why}. Nothing is sent until you choose, under Encryption, to restore your published keys, make new ones, or remove this browser's.` }),
      h('div', { class: 'row' }, h('a', { href: '#/encryption', text: 'Encryption' }))));
  } else if (st.mode === 'gone') {
    const plain = h('button', { type: 'button', class: 'danger', text: 'Send unencrypted from now on' });
    plain.addEventListener('click', busy(plain, async () => {
      E2E.unpin(S.me.address, w);
      await refreshConvE2E(w);
      announce(`Messages to ${w} are sent unencrypted from now on.`);
    }));
    $e2eBox.replaceChildren(h('div', { class: 'e2e changed', 'data-e2e': 'gone', role: 'alert' },
      h('p', {}, h('strong', { text: `${w}'s keys have been removed.` }),
        ' They may have removed them, or someone in between may hide them to read what you write. Ask them another way than fednode. Nothing is sent to them until you choose.'),
      h('dl', {}, h('dt', { text: 'Old fingerprint' }), h('dd', {}, h('code', { class: 'fp old', text: st.old.fingerprint }))),
      h('div', { class: 'row' }, plain)));
  } else {
    const accept = h('button', { type: 'button', text: 'Accept new key' });
    accept.addEventListener('click', busy(accept, async () => {
      E2E.pin(S.me.address, w, st.pub);
      forgetOpened(w);
      await refreshConvE2E(w);
      renderThread();
      announce(`You accepted ${w}'s new key.`);
    }));
    $e2eBox.replaceChildren(h('div', { class: 'e2e changed', 'data-e2e': 'changed', role: 'alert' },
      h('p', {}, h('strong', { text: `${w}'s keys have changed.` }),
        ' A new device can do this, and so can someone in between. Compare the new fingerprint with them (in person, or another way than fednode) before you accept it. Nothing is sent to them until you do.'),
      h('dl', {},
        h('dt', { text: 'Old fingerprint' }), h('dd', {}, h('code', { class: 'fp old', text: st.old.fingerprint })),
        h('dt', { text: 'New fingerprint' }), h('dd', {}, h('code', { class: 'fp new', text: st.pub.fingerprint }))),
      h('div', { class: 'row' }, accept)));
  }
}

// lockMark is the end-to-end mark: a padlock drawn by the style sheet
// (no emoji font needed), named for screen readers.
function lockMark() { return h('span', { class: 'lock', role: 'img', 'aria-label': 'End-to-end encrypted', title: 'End-to-end encrypted' }); }

// sealedView is how an E2E message shows: opened (with its lock), being
// opened, or why it cannot be.
function sealedView(m) {
  let o = S.e2e.opened.get(m.id);
  if (o && !sameOpened(o, m)) { S.e2e.opened.delete(m.id); o = null; } // another message under the same id
  if (!o) {
    openLater(m);
    return { body: h('div', { class: 'body e2e-pending', text: 'Decrypting…' }), tags: [], marks: [lockMark()] };
  }
  if (o.error) return { body: h('div', { class: 'body e2e-error', text: 'could not decrypt: ' + o.error }), tags: [], marks: [lockMark()] };
  return { body: h('div', { class: 'body', text: o.content }), tags: o.tags, marks: [lockMark(), o.warn && h('span', { class: 'e2e-warn', text: o.warn })] };
}

// openedOf is what an opened entry was opened from: a message is the same
// only if its id, sender, recipient and signature are.
function openedOf(m) { return { from: m.from, to: m.to, sig: m.e2e && m.e2e.signature }; }
function sameOpened(o, m) { const x = openedOf(m); return o.from === x.from && o.to === x.to && o.sig === x.sig; }

const opening = new Set();

function openLater(m) {
  if (opening.has(m.id)) return;
  opening.add(m.id);
  openMessage(m).then((o) => {
    opening.delete(m.id);
    S.e2e.opened.set(m.id, { ...o, ...openedOf(m) });
    const li = document.querySelector(`li[data-id="${CSS.escape(m.id)}"]`);
    if (li && S.msgs.has(m.id)) li.replaceWith(messageItem(S.msgs.get(m.id)));
  });
}

// openMessage opens m with this browser's keys against the sender's
// signing key: the one they publish, or one this browser pinned. A pinned
// key that has since been replaced opens only messages made (by their id's
// time) before its replacement without a warning. It never throws.
async function openMessage(m) {
  const mine = S.e2e.keys;
  if (!mine) return { error: 'this browser has no end-to-end keys (set them up under Encryption)' };
  try {
    let sender = null, warn = '';
    if (m.from === S.me.address) {
      sender = mine;
    } else {
      const sigID = m.e2e && m.e2e.sig_key;
      let p = await peerKeys(m.from, false);
      if (p.pub && p.pub.sigID !== sigID) p = await peerKeys(m.from, true);
      const pinned = E2E.pinnedSigner(S.me.address, m.from, sigID);
      if (pinned) {
        sender = pinned;
        // The pinned key trusted now is replaced once they publish others.
        const until = pinned.until || (p.pub && p.pub.sigID !== sigID ? p.pub.createdAt : '') || (!p.pub && !p.error ? 'removed' : '');
        const t = E2E.idTime(m.id);
        if (until === 'removed') warn = 'signed with a key the sender no longer publishes';
        else if (until && !(t < Date.parse(until))) warn = 'signed with an old key after it was replaced';
      } else if (p.pub && p.pub.sigID === sigID) {
        sender = p.pub;
        if (E2E.trust(S.me.address, m.from, p.pub).state === 'changed') warn = 'signed with a new key you have not accepted';
      } else if (p.error) {
        return { error: `the sender's keys cannot be fetched (${p.error})` };
      } else if (!p.pub) {
        return { error: 'the sender publishes no keys' };
      } else {
        sender = p.pub; // open says the key is not theirs
      }
    }
    return { ...(await E2E.open(m, mine, sender)), warn };
  } catch (err) {
    return { error: e2eWords(err) };
  }
}

// backupUsername is the hidden user name of the backup forms, so that a
// password manager files the passphrase under "<address> (end-to-end
// backup)", apart from the login: the passphrase must never be offered to
// the login form (the node would see it), nor the password to these forms.
function backupUsername() {
  return h('input', { type: 'text', name: 'backup-username', autocomplete: 'username', value: `${S.me.address} (end-to-end backup)`,
    readonly: true, hidden: true, tabindex: -1, 'aria-hidden': 'true' });
}

async function renderEncryption() {
  S.thread = null;
  await loadMyKeys();
  const mine = myKeys();
  const pub = S.e2e.published;

  const mineBox = h('section', { class: 'card', 'aria-labelledby': 'e2e-mine-h' }, h('h2', { id: 'e2e-mine-h', text: 'Your keys' }),
    mine ? h('p', { id: 'e2e-mine', 'data-state': 'ready' }, 'This browser has your keys. Your fingerprint: ', h('code', { class: 'fp', id: 'my-fp', text: mine.fingerprint }))
      : h('p', { id: 'e2e-mine', 'data-state': 'none', text: `Not set up in this browser: ${myKeysWhy()}.` }),
    h('p', { class: 'hint', text: 'People compare fingerprints to be sure they write to each other and not to someone in between.' }));

  // My keys are unknown (the node failed to say): no form, for "create"
  // would replace keys that may well exist. Only a retry.
  if (S.e2e.publishedError) {
    const retry = h('button', { type: 'button', text: 'Try again' });
    retry.addEventListener('click', busy(retry, renderEncryption));
    show('Encryption', h('h1', { text: 'End-to-end encryption' }), mineBox, h('div', { class: 'row' }, retry));
    return;
  }

  // Restore: the node has keys with a backup, and this browser lacks them.
  let restoreForm = null;
  if (pub && pub.backup && !mine) {
    const pass = h('input', { name: 'restore-passphrase', type: 'password', autocomplete: 'current-password', required: true });
    const note = h('p', { class: 'hint', role: 'status' });
    const err = errorBox();
    const go = h('button', { type: 'submit', text: 'Restore my keys' });
    restoreForm = h('form', { class: 'card', id: 'e2e-restore', 'aria-labelledby': 'e2e-restore-h' }, h('h2', { id: 'e2e-restore-h', text: 'Restore your keys from the backup' }),
      h('p', { class: 'hint', text: 'Your node keeps a copy of your keys sealed with your passphrase; it cannot open it.' }),
      backupUsername(), field('Passphrase', pass), note, err, h('div', { class: 'row' }, go));
    restoreForm.addEventListener('submit', busy(go, async () => {
      showError(err, null);
      note.textContent = 'Opening the backup…';
      try {
        const d = await api('GET', '/api/keys');
        if (!d.backup) throw new Error('your published keys have no backup on the node; create new keys instead');
        const keys = await E2E.openBackup(S.me.address, await E2E.publicKeys(d.document, S.me.address), d.backup, pass.value);
        await E2E.saveKeys(S.me.address, keys);
        S.e2e.opened.clear();
        announce('Your keys are restored in this browser.');
        await renderEncryption();
      } catch (e) {
        note.textContent = '';
        err.textContent = e.code === 'wrong_passphrase' ? 'Wrong passphrase. Nothing was restored; try again.' : 'Not restored: ' + e2eWords(e);
      }
    }));
  }

  // Create (or replace) keys, with the backup under a passphrase.
  const p1 = h('input', { name: 'new-passphrase', type: 'password', autocomplete: 'new-password', required: true, minlength: 10 });
  const p2 = h('input', { name: 'new-passphrase-again', type: 'password', autocomplete: 'new-password', required: true, minlength: 10 });
  const note = h('p', { class: 'hint', role: 'status' });
  const err = errorBox();
  const make = h('button', { type: 'submit', text: pub ? 'Make new keys' : 'Create my keys' });
  const createForm = h('form', { class: 'card', id: 'e2e-create', 'aria-labelledby': 'e2e-create-h' },
    h('h2', { id: 'e2e-create-h', text: pub ? 'Make new keys' : 'Create your keys' }),
    h('p', { class: 'hint', text: pub ? 'Your contacts will see that your keys changed, and messages sealed to your old keys can no longer be read here.'
      : 'Your messages to people who have keys too are then encrypted in this browser: the nodes carry them but cannot read them.' }),
    backupUsername(), field('Passphrase for the backup', p1, 'At least 10 characters. It is needed to use your keys in another browser; the node never sees it, and nobody can recover it for you.'),
    field('The passphrase again', p2), note, err, h('div', { class: 'row' }, make));
  createForm.addEventListener('submit', busy(make, async () => {
    showError(err, null);
    if ([...p1.value].length < 10) { err.textContent = 'The passphrase needs at least 10 characters.'; return; }
    if (p1.value !== p2.value) { err.textContent = 'The two passphrases differ.'; return; }
    note.textContent = 'Making your keys; this can take a few seconds…';
    try {
      const g = await E2E.generate();
      const backup = await E2E.sealBackup(S.me.address, g.keys, g.encPkcs8, g.sigPkcs8, p1.value);
      g.encPkcs8.fill(0);
      g.sigPkcs8.fill(0);
      S.e2e.published = await api('PUT', '/api/keys', { enc_key: E2E.b64(g.keys.enc), sig_key: E2E.b64(g.keys.sig), backup });
      await E2E.saveKeys(S.me.address, g.keys);
      S.e2e.opened.clear();
      announce('Your keys are ready.');
      await renderEncryption();
    } catch (e) {
      note.textContent = '';
      err.textContent = 'No keys made: ' + e2eWords(e);
    }
  }));

  // Remove: the node's copy and this browser's.
  const delErr = errorBox();
  const del = (pub || S.e2e.keys) && h('section', { class: 'card', 'aria-labelledby': 'e2e-del-h' }, h('h2', { id: 'e2e-del-h', text: 'Remove your keys' }),
    h('p', { class: 'hint', text: 'Your messages are sent in clear again, and encrypted messages you have can no longer be read here.' }), delErr,
    h('div', { class: 'row' }, confirmButton('Remove my keys', 'Remove my end-to-end keys', async () => {
      if (pub) await api('DELETE', '/api/keys');
      await E2E.forgetKeys(S.me.address);
      S.e2e.opened.clear();
      announce('Your keys are removed.');
      await renderEncryption();
    }, delErr)));

  show('Encryption', [h('h1', { text: 'End-to-end encryption' }), mineBox, restoreForm, createForm, del].filter(Boolean));
}

// ---- privacy and account ---------------------------------------------------

async function renderPrivacy() {
  S.thread = null;
  const blocksBox = h('div');
  const blocksErr = errorBox();
  const kind = h('select', { name: 'kind' }, h('option', { value: 'address', text: 'A person (user@node)' }), h('option', { value: 'domain', text: 'A whole node (node.example)' }));
  const target = h('input', { name: 'target', autocomplete: 'off', autocapitalize: 'none' });
  const add = h('button', { type: 'submit', text: 'Block' });
  const blockForm = h('form', { 'aria-label': 'Block' }, field('What to block', kind), field('Address or node', target), blocksErr, h('div', { class: 'row' }, add));

  async function loadBlocks() {
    try {
      const d = await api('GET', '/api/blocks');
      blocksBox.replaceChildren(d.blocks.length === 0 ? h('p', { class: 'hint', text: 'You block nobody.' }) :
        h('ul', { id: 'blocks' }, d.blocks.map((b) => {
          const what = b.address || b.domain;
          const rm = h('button', { class: 'link', type: 'button', text: 'Unblock', 'aria-label': 'Unblock ' + what });
          rm.addEventListener('click', busy(rm, async () => {
            try {
              await api('DELETE', '/api/blocks?' + (b.address ? 'address=' : 'domain=') + encodeURIComponent(what));
              await loadBlocks();
            } catch (err) { showError(blocksErr, err); }
          }));
          return h('li', {}, h('span', { text: (b.domain ? 'node ' : '') + what + ' ' }), rm);
        })));
    } catch (err) { showError(blocksErr, err); }
  }
  blockForm.addEventListener('submit', busy(add, async () => {
    showError(blocksErr, null);
    const v = target.value.trim().toLowerCase();
    const body = kind.value === 'address' ? { address: canonical(v) } : { domain: v };
    if (!body.address && !body.domain) { blocksErr.textContent = WORDS.invalid_address; return; }
    try { await api('POST', '/api/blocks', body); target.value = ''; await loadBlocks(); } catch (err) { showError(blocksErr, err); }
  }));

  const exportErr = errorBox();
  const exp = h('button', { type: 'button', text: 'Download my data (JSON)' });
  exp.addEventListener('click', busy(exp, async () => {
    showError(exportErr, null);
    try {
      const res = await fetch('/api/me/export', { headers: { Authorization: 'Bearer ' + S.token }, cache: 'no-store' });
      if (!res.ok) {
        let e = {};
        try { e = (await res.json()).error || {}; } catch (x) { /* no body */ }
        throw new ApiError(e.code || 'http_' + res.status, res.status, e.message);
      }
      const url = URL.createObjectURL(await res.blob());
      const a = h('a', { href: url, download: `fednode-export-${S.me.username}.json` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      announce('Your data is downloading.');
    } catch (err) { showError(exportErr, err); }
  }));

  const pw = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const sure = h('input', { name: 'sure', type: 'checkbox', required: true });
  const delErr = errorBox();
  const del = h('button', { class: 'danger', type: 'submit', text: 'Delete my account' });
  const delForm = h('form', { class: 'card', 'aria-labelledby': 'del-h' },
    h('h2', { id: 'del-h', text: 'Delete my account' }),
    h('p', { class: 'hint', text: 'Your messages, sessions and account are removed for good; the name cannot be registered again.' }),
    field('Password', pw), h('div', { class: 'row' }, sure, h('label', { for: (sure.id = 'f' + (++uid)), text: 'I understand this cannot be undone' })), delErr, h('div', { class: 'row' }, del));
  delForm.addEventListener('submit', busy(del, async () => {
    showError(delErr, null);
    try {
      const me = S.me.address; // the socket's close can end the session first
      await api('DELETE', '/api/me', { password: pw.value });
      await forgetE2E(me);
      sessionEnded('Your account is deleted.');
    } catch (err) { showError(delErr, err); }
  }));

  show('Privacy & account',
    h('h1', { text: 'Privacy & account' }),
    h('section', { class: 'card', 'aria-labelledby': 'blocks-h' }, h('h2', { id: 'blocks-h', text: 'Blocked people and nodes' }),
      h('p', { class: 'hint', text: 'Messages from them to you are refused. Messages you already have stay until you delete them.' }), blocksBox, blockForm),
    h('section', { class: 'card', 'aria-labelledby': 'exp-h' }, h('h2', { id: 'exp-h', text: 'Export my data' }), exp, exportErr),
    delForm);
  await loadBlocks();
}

// ---- admin -----------------------------------------------------------------

function table(headers, rows) {
  return h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col', text: x })))),
    h('tbody', {}, rows)));
}

function actionButton(text, label, fn, errBox, cls) {
  const b = h('button', { class: cls || 'secondary', type: 'button', text, 'aria-label': label });
  b.addEventListener('click', busy(b, async () => {
    showError(errBox, null);
    try { await fn(); } catch (err) { showError(errBox, err); }
  }));
  return b;
}

async function renderAdmin() {
  S.thread = null;
  const usersErr = errorBox(), bansErr = errorBox(), polErr = errorBox(), deadErr = errorBox(), invErr = errorBox(), keyErr = errorBox();
  const usersBox = h('div'), bansBox = h('div'), deadBox = h('div'), invBox = h('div'), keyOut = h('p', { role: 'status' });

  const q = h('input', { name: 'q', autocomplete: 'off', autocapitalize: 'none' });
  const reason = h('input', { name: 'reason', maxlength: 500 });
  const usersForm = h('form', { 'aria-label': 'Find users' }, field('Name contains', q), h('div', { class: 'row' }, h('button', { type: 'submit', text: 'Search' })));
  async function loadUsers() {
    const d = await api('GET', '/api/admin/users?limit=200' + (q.value.trim() ? '&q=' + encodeURIComponent(q.value.trim()) : ''));
    usersBox.replaceChildren(table(['User', 'Role', 'State', 'Actions'], d.users.map((u) => {
      const n = encodeURIComponent(u.username);
      // body is read when the button is pressed (the reason field may change).
      const act = (method, path, body) => async () => { await api(method, `/api/admin/users/${n}${path}`, body && body()); await loadUsers(); };
      return h('tr', { 'data-user': u.username },
        h('td', { text: u.address }), h('td', { text: u.role }),
        h('td', { text: [u.suspended && 'suspended' + (u.suspend_reason ? ` (${u.suspend_reason})` : ''), u.locked && 'locked'].filter(Boolean).join(', ') || 'active' }),
        h('td', {}, h('div', { class: 'row' },
          u.suspended ? actionButton('Unsuspend', 'Unsuspend ' + u.username, act('POST', '/unsuspend'), usersErr)
            : actionButton('Suspend', 'Suspend ' + u.username, act('POST', '/suspend', () => (reason.value.trim() ? { reason: reason.value.trim() } : {})), usersErr),
          u.locked && actionButton('Unlock', 'Unlock ' + u.username, act('POST', '/unlock'), usersErr),
          actionButton(u.role === 'admin' ? 'Make user' : 'Make admin', 'Change the role of ' + u.username, act('PUT', '/role', () => ({ role: u.role === 'admin' ? 'user' : 'admin' })), usersErr),
          confirmButton('Delete', 'Delete ' + u.username, act('DELETE', ''), usersErr))));
    })));
  }
  usersForm.addEventListener('submit', async (ev) => { ev.preventDefault(); try { await loadUsers(); } catch (err) { showError(usersErr, err); } });

  const banKey = h('input', { name: 'key', autocomplete: 'off', placeholder: '203.0.113.9 or 2001:db8:1:2::/64' });
  const banDur = h('input', { name: 'duration', autocomplete: 'off', placeholder: '1h' });
  const banReason = h('input', { name: 'ban-reason', autocomplete: 'off' });
  const banForm = h('form', { 'aria-label': 'Ban an address' }, field('Address or /64', banKey), field('Duration (empty: automatic escalation)', banDur), field('Reason', banReason),
    h('div', { class: 'row' }, h('button', { type: 'submit', text: 'Ban' })));
  async function loadBans() {
    const d = await api('GET', '/api/admin/bans');
    bansBox.replaceChildren(table(['Key', 'Until', 'Reason', 'Active', ''], d.bans.map((b) => h('tr', {},
      h('td', { text: b.key }), h('td', { text: b.until }), h('td', { text: b.reason || '' }), h('td', { text: b.active ? 'yes' : 'no' }),
      h('td', {}, actionButton('Lift', 'Lift the ban of ' + b.key, async () => { await api('DELETE', '/api/admin/bans?key=' + encodeURIComponent(b.key)); await loadBans(); }, bansErr))))));
  }
  banForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(bansErr, null);
    const body = { key: banKey.value.trim() };
    if (banDur.value.trim()) body.duration = banDur.value.trim();
    if (banReason.value.trim()) body.reason = banReason.value.trim();
    try { await api('POST', '/api/admin/bans', body); await loadBans(); } catch (err) { showError(bansErr, err); }
  });

  const mode = h('select', { name: 'mode' }, h('option', { value: 'open', text: 'Open: every node but the blocklist' }), h('option', { value: 'allowlist', text: 'Allowlist: only the listed nodes' }));
  const allow = h('textarea', { name: 'allowlist', rows: 3 });
  const deny = h('textarea', { name: 'blocklist', rows: 3 });
  const polForm = h('form', { 'aria-label': 'Federation policy' }, field('Mode', mode), field('Allowlist (one node a line)', allow), field('Blocklist (one node a line)', deny), polErr,
    h('div', { class: 'row' }, h('button', { type: 'submit', text: 'Save policy' }),
      actionButton('Reset to configuration', 'Reset the federation policy to the configuration', async () => { showPolicy(await api('DELETE', '/api/admin/federation')); }, polErr)));
  const lines = (t) => t.value.split(/[\s,]+/).map((x) => x.trim().toLowerCase()).filter(Boolean);
  function showPolicy(p) { mode.value = p.mode; allow.value = (p.allowlist || []).join('\n'); deny.value = (p.blocklist || []).join('\n'); }
  polForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(polErr, null);
    try { showPolicy(await api('PUT', '/api/admin/federation', { mode: mode.value, allowlist: lines(allow), blocklist: lines(deny) })); announce('Policy saved.'); } catch (err) { showError(polErr, err); }
  });

  async function loadDead() {
    const d = await api('GET', '/api/admin/outbox/dead?limit=200');
    const op = (kind, body) => async () => { const r = await api('POST', '/api/admin/outbox/dead/' + kind, body); announce(`${kind}: ${r.redriven ?? r.purged}`); await loadDead(); };
    deadBox.replaceChildren(
      h('div', { class: 'row' }, actionButton('Redrive all', 'Redrive every dead letter', op('redrive', { all: true }), deadErr), actionButton('Purge all', 'Purge every dead letter', op('purge', { all: true }), deadErr, 'danger')),
      d.dead_letters.length === 0 ? h('p', { class: 'hint', text: 'No dead letters.' }) :
        table(['Message', 'Peer', 'Reason', 'Attempts', 'Failed at', ''], d.dead_letters.map((x) => h('tr', {},
          h('td', { text: x.message_id }), h('td', { text: x.peer }), h('td', { text: `${x.code}: ${x.reason}` }), h('td', { text: String(x.attempts) }), h('td', { text: x.failed_at }),
          h('td', {}, h('div', { class: 'row' }, actionButton('Redrive', 'Redrive ' + x.message_id, op('redrive', { message_id: x.message_id }), deadErr),
            actionButton('Purge', 'Purge ' + x.message_id, op('purge', { message_id: x.message_id }), deadErr)))))));
  }

  const invCount = h('input', { name: 'count', type: 'number', min: 1, max: 100, value: '1' });
  const invExp = h('input', { name: 'expires_in', autocomplete: 'off', placeholder: '168h' });
  const invForm = h('form', { 'aria-label': 'Create invites' }, field('How many', invCount), field('Valid for (e.g. 168h)', invExp), h('div', { class: 'row' }, h('button', { type: 'submit', text: 'Create invites' })));
  async function loadInvites() {
    const d = await api('GET', '/api/admin/invites');
    invBox.replaceChildren(table(['Code', 'State', 'Expires', 'Used by', ''], d.invites.map((i) => h('tr', {},
      h('td', {}, h('code', { text: i.code })), h('td', { text: i.state }), h('td', { text: i.expires_at }), h('td', { text: i.used_by || '' }),
      h('td', {}, i.state === 'unused' && actionButton('Revoke', 'Revoke invite ' + i.code, async () => { await api('DELETE', '/api/admin/invites/' + encodeURIComponent(i.code)); await loadInvites(); }, invErr))))));
  }
  invForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(invErr, null);
    const body = { count: Number(invCount.value) || 1 };
    if (invExp.value.trim()) body.expires_in = invExp.value.trim();
    try { await api('POST', '/api/admin/invites', body); await loadInvites(); } catch (err) { showError(invErr, err); }
  });

  const keyUse = h('select', { name: 'use' }, h('option', { value: 'sig', text: 'Signing key' }), h('option', { value: 'enc', text: 'Encryption key' }));
  const overlap = h('input', { name: 'overlap', autocomplete: 'off', placeholder: '168h' });
  const keyForm = h('form', { 'aria-label': 'Rotate keys' }, field('Key', keyUse), field('Old key stays usable for (empty: the configured overlap)', overlap), keyErr, keyOut,
    h('div', { class: 'row' }, h('button', { type: 'submit', text: 'Rotate key' }),
      confirmButton('Rotate the JWT secret', 'Rotate the JWT secret', async () => { const r = await api('POST', '/api/admin/jwt/rotate'); keyOut.textContent = `JWT secret version ${r.version}; the previous one is accepted until ${r.previous_accepted_until}.`; }, keyErr)));
  keyForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(keyErr, null);
    const body = { use: keyUse.value };
    if (overlap.value.trim()) body.overlap = overlap.value.trim();
    try { const r = await api('POST', '/api/admin/keys/rotate', body); keyOut.textContent = `New ${r.use} key ${r.id}.`; } catch (err) { showError(keyErr, err); }
  });

  const sec = (id, title, ...kids) => h('section', { 'aria-labelledby': id }, h('h2', { id, text: title }), kids);
  show('Admin', h('h1', { text: 'Administration' }),
    sec('adm-users', 'Users', usersForm, field('Reason for a suspension', reason), usersErr, usersBox),
    sec('adm-inv', 'Invites', invForm, invErr, invBox),
    sec('adm-bans', 'Bans', banForm, bansErr, bansBox),
    sec('adm-fed', 'Federation policy', polForm),
    sec('adm-dead', 'Dead letters', deadErr, deadBox),
    sec('adm-keys', 'Key rotation', keyForm));
  const load = async (fn, box) => { try { await fn(); } catch (err) { showError(box, err); } };
  await Promise.all([load(loadUsers, usersErr), load(loadBans, bansErr), load(loadInvites, invErr), load(loadDead, deadErr),
    load(async () => showPolicy(await api('GET', '/api/admin/federation')), polErr)]);
}

// confirmButton asks for a second press before a destructive action.
function confirmButton(text, label, fn, errBox) {
  const b = h('button', { class: 'danger', type: 'button', text, 'aria-label': label });
  let armed = false;
  b.addEventListener('click', busy(b, async () => {
    if (!armed) { armed = true; b.textContent = 'Press again to confirm'; return; }
    armed = false;
    b.textContent = text;
    showError(errBox, null);
    try { await fn(); } catch (err) { showError(errBox, err); }
  }));
  return b;
}

// ---- routing ---------------------------------------------------------------

async function route() {
  const hash = location.hash || '#/';
  if (!S.token) {
    if (hash === '#/register') renderRegister();
    else renderLogin();
    return;
  }
  if (!S.me) return; // boot finishes first
  try {
    if (hash.startsWith('#/c/')) await openConversation(hash.slice(4));
    else if (hash === '#/privacy') await renderPrivacy();
    else if (hash === '#/encryption') await renderEncryption();
    else if (hash === '#/admin' && S.me.role === 'admin') await renderAdmin();
    else renderHome();
  } catch (err) { alertTop(err); }
  $main.focus({ preventScroll: true });
}

window.addEventListener('hashchange', route);

// A violation of the page's policy is a bug: make it loud in the console.
document.addEventListener('securitypolicyviolation', (ev) => {
  console.error(`Content-Security-Policy violation: ${ev.violatedDirective} ${ev.blockedURI}`);
});

async function boot() {
  renderTop();
  if (S.token) {
    try { await startSession(); } catch (err) {
      if (S.token) { show('Error', h('p', { class: 'error', role: 'alert', text: words(err) })); return; }
    }
  }
  route();
}

boot();
