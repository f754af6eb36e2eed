// Package inbox receives deliveries from peer nodes: POST /federation/inbox.
//
// Checks run cheapest first, and a refused request changes nothing:
//  1. body size (Content-Length, then a capped read), per-IP limit;
//  2. the Signature header, parsed strictly: required covered headers,
//     allowed algorithm; then the per-peer limit (keyed by the keyId's node);
//  3. Date within the window, Host is this node, the peer is not blocked;
//  4. the body: Digest, then envelope shape; the keyId's node must be
//     exactly the envelope's sender, and the envelope addressed to us;
//  5. the sender's key from its node document (cached; refetched early at
//     most once per interval when verification fails, on a budget of its
//     own for requests from addresses the peer's verified deliveries came
//     from), and the signature, verified as step 2 parsed it;
//  6. per message: sender and recipient domains, replayed id, unknown
//     recipient, then RSA unwrap and GCM open, then the content rules (or
//     an end-to-end payload's structure rules).
//
// go-fed/httpsig verifies the signature bytes only; everything else above is
// ours.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/keys"
)

// Store is what the inbox needs from storage.
type Store interface {
	User(ctx context.Context, username string) (fednode.User, error)
	Message(ctx context.Context, id string) (fednode.Message, error)
	AppendMessage(ctx context.Context, m fednode.Message, mailboxes ...string) ([]uint64, error)
	// Blocked reports whether a user blocks the sender or its node.
	Blocked(ctx context.Context, username string, from fednode.Address) (bool, error)
}

// Peers resolves peer node documents. Refresh and RefreshTrusted refetch a
// peer's document early, each on its own budget (see federation.Directory).
type Peers interface {
	Peer(ctx context.Context, domain string) (*federation.Peer, error)
	Refresh(ctx context.Context, domain string) (*federation.Peer, bool, error)
	RefreshTrusted(ctx context.Context, domain string) (*federation.Peer, bool, error)
}

// Config is the inbox's part of the node configuration.
type Config struct {
	Domain     string
	DateWindow time.Duration
}

// Deps are what the inbox works with.
type Deps struct {
	Store   Store
	Peers   Peers
	Keyring keys.Keyring
	Allowed func(domain string) bool // the federation policy
	// LimitIP and LimitPeer count one delivery against the client IP's and
	// the sending node's limits; a non-nil error (an *fednode.Error) refuses.
	LimitIP   func(ctx context.Context, ip string) error
	LimitPeer func(ctx context.Context, peer string) error
	// LimitGet counts one signed GET (a user key read) against its own
	// budget, never a delivery's: key is "ip:<client IP>" before the
	// signature is parsed, then "peer:<requesting node>". Its refusals,
	// and a GET's other refusals, count toward no ban (OnRefusal is not
	// told of them), so a peer's users looking keys up can neither stop
	// that peer's deliveries nor get its address banned.
	LimitGet  func(ctx context.Context, key string) error
	Notify    func(users ...string) // wakes live sockets
	Now       func() time.Time
	Log       *slog.Logger
	OnRefusal func(ctx context.Context, code, ip string) // metrics and ban counting; may be nil
	// OnVerified is told of each request whose signature verified, with
	// the sending node: it is up (the outbox wakes its queue). May be nil;
	// it must be cheap, as it runs on every delivery.
	OnVerified func(peer string)
	// Unwraps keeps the data keys the inbox has unwrapped, so a peer that
	// reuses a data key costs one unwrap per key, not one per message. Nil
	// makes one with the default bounds.
	Unwraps *federation.UnwrapCache
}

// Inbox verifies and stores deliveries.
type Inbox struct {
	cfg Config
	Deps
	sources sources
}

// New returns an inbox.
func New(cfg Config, d Deps) *Inbox {
	if d.Unwraps == nil {
		d.Unwraps = federation.NewUnwrapCache(federation.UnwrapCacheOptions{Now: d.Now})
	}
	return &Inbox{cfg: cfg, Deps: d, sources: sources{seen: map[string]map[string]time.Time{}}}
}

func refuse(code, format string, args ...any) *fednode.Error {
	return fednode.Errorf(code, format, args...)
}

// Receive checks and processes one delivery. An error is a refusal of the
// whole request (an *fednode.Error) or an internal failure.
func (in *Inbox) Receive(ctx context.Context, r *http.Request, clientIP string) (federation.Answer, error) {
	resp, err := in.receive(ctx, r, clientIP)
	if err != nil && in.OnRefusal != nil {
		in.OnRefusal(ctx, fednode.ErrorCode(err), clientIP)
	}
	return resp, err
}

func (in *Inbox) receive(ctx context.Context, r *http.Request, clientIP string) (federation.Answer, error) {
	// 1. Size and per-IP limit.
	if r.ContentLength > federation.MaxEnvelopeBytes {
		return federation.Answer{}, refuse(fednode.EBodyTooLarge, "the body must be at most %d bytes", federation.MaxEnvelopeBytes)
	}
	if err := in.LimitIP(ctx, clientIP); err != nil {
		return federation.Answer{}, err
	}
	// 2 and 3. Signature parameters, per-peer limit, Date, Host, policy.
	params, keyDomain, err := in.checkRequest(ctx, r, federation.SignedHeaders, in.LimitPeer)
	if err != nil {
		return federation.Answer{}, err
	}
	// 4. Body, digest, envelope.
	body, err := io.ReadAll(io.LimitReader(r.Body, federation.MaxEnvelopeBytes+1))
	if err != nil {
		return federation.Answer{}, fmt.Errorf("inbox: read body: %w", err)
	}
	if len(body) > federation.MaxEnvelopeBytes {
		return federation.Answer{}, refuse(fednode.EBodyTooLarge, "the body must be at most %d bytes", federation.MaxEnvelopeBytes)
	}
	if !federation.DigestMatches(r.Header.Get("Digest"), body) {
		return federation.Answer{}, refuse(fednode.EDigest, "the Digest header is missing or is not the SHA-256 of the body")
	}
	env, err := federation.DecodeEnvelope(body)
	if err != nil {
		return federation.Answer{}, refuse(fednode.EEnvelope, "%v", err)
	}
	if env.FromNode != keyDomain {
		return federation.Answer{}, refuse(fednode.EKeyIDMismatch, "the request is signed by a key of %s but the envelope is from %s", keyDomain, env.FromNode)
	}
	if env.ToNode != in.cfg.Domain {
		return federation.Answer{}, refuse(fednode.EWrongNode, "the envelope is for %s; this node is %s", env.ToNode, in.cfg.Domain)
	}
	// 5. Key and signature.
	if err := in.verify(ctx, r, params, keyDomain, clientIP); err != nil {
		return federation.Answer{}, err
	}
	in.sources.add(keyDomain, clientIP, in.Now())
	if in.OnVerified != nil {
		in.OnVerified(keyDomain)
	}
	// 6. Messages.
	out := federation.Answer{Results: make([]federation.Result, 0, len(env.Messages))}
	var woken []string
	var keysDown error
	for _, o := range in.acceptAll(ctx, env) {
		if o.err != nil { // the key service is down: the sender must retry
			keysDown = o.err
			continue // the others were judged all the same: wake whoever got one
		}
		out.Results = append(out.Results, o.res)
		if o.user != "" {
			woken = append(woken, o.user)
		}
	}
	if len(woken) > 0 {
		in.Notify(woken...)
	}
	if keysDown != nil {
		in.Log.Warn("inbox: keys unavailable", "err", keysDown)
		// What was stored is deduplicated when the sender retries.
		return federation.Answer{}, &fednode.Error{Code: fednode.EUnavailable, Message: "this node cannot decrypt right now; retry later", RetryAfter: 10}
	}
	return out, nil
}

// checkRequest does steps 2 and 3 for a request that must sign required:
// it parses the Signature header strictly, charges the per-peer limit of
// the keyId's node, and checks Date, Host and the federation policy. It
// returns the signature parameters and the requesting node.
func (in *Inbox) checkRequest(ctx context.Context, r *http.Request, required []string, limitPeer func(context.Context, string) error) (federation.SignatureParams, string, error) {
	sigHeaders := r.Header.Values("Signature")
	if len(sigHeaders) == 0 || sigHeaders[0] == "" {
		return federation.SignatureParams{}, "", refuse(fednode.ESigMissing, "the request is not signed")
	}
	if len(sigHeaders) > 1 {
		return federation.SignatureParams{}, "", refuse(fednode.ESigMalformed, "the request has more than one Signature header")
	}
	params, err := federation.ParseSignature(sigHeaders[0])
	if err != nil {
		return federation.SignatureParams{}, "", refuse(fednode.ESigMalformed, "the Signature header does not parse: %v", err)
	}
	if missing := federation.MissingHeaders(params, required); len(missing) > 0 {
		return federation.SignatureParams{}, "", refuse(fednode.ESigHeaders, "the signature must cover %s", strings.Join(missing, ", "))
	}
	if bad := federation.UncoveredHeaders(r, params); len(bad) > 0 {
		return federation.SignatureParams{}, "", refuse(fednode.ESigHeaders, "the signature covers %s, which the request must carry exactly once", strings.Join(bad, ", "))
	}
	if !federation.AlgorithmAllowed(params.Algorithm) {
		return federation.SignatureParams{}, "", refuse(fednode.ESigAlgorithm, "algorithm %q is not allowed for RSA keys; use hs2019 or rsa-sha256", params.Algorithm)
	}
	keyDomain, _, err := federation.ParseKeyID(params.KeyID)
	if err != nil {
		return federation.SignatureParams{}, "", refuse(fednode.ESigMalformed, "keyId must be <node domain>#<key id>")
	}
	if err := limitPeer(ctx, keyDomain); err != nil {
		return federation.SignatureParams{}, "", err
	}
	// 3. Date, Host, policy.
	date, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		return federation.SignatureParams{}, "", refuse(fednode.EDate, "the Date header is missing or malformed")
	}
	if skew := in.Now().Sub(date); skew > in.cfg.DateWindow || skew < -in.cfg.DateWindow {
		return federation.SignatureParams{}, "", refuse(fednode.EDate, "Date is %s away from this node's clock; at most %s is accepted", skew.Round(time.Second), in.cfg.DateWindow)
	}
	if err := federation.CheckSignatureTime(params, in.Now()); err != nil {
		return federation.SignatureParams{}, "", refuse(fednode.EDate, "%v", err)
	}
	if r.Host != in.cfg.Domain {
		return federation.SignatureParams{}, "", refuse(fednode.EWrongHost, "this node is %s, not %s", in.cfg.Domain, r.Host)
	}
	if !in.Allowed(keyDomain) {
		return federation.SignatureParams{}, "", refuse(fednode.EPeerBlocked, "this node does not federate with %s", keyDomain)
	}
	return params, keyDomain, nil
}

// AuthenticateGet checks a signed bodiless GET from a peer node (the user
// keys endpoint): LimitGet per IP, then steps 2, 3 and 5 with
// federation.SignedGetHeaders and LimitGet per requesting node. It
// returns the requesting node, or a refusal as for a delivery, which
// counts toward no ban.
func (in *Inbox) AuthenticateGet(ctx context.Context, r *http.Request, clientIP string) (string, error) {
	if err := in.LimitGet(ctx, "ip:"+clientIP); err != nil {
		return "", err
	}
	limitPeer := func(ctx context.Context, peer string) error { return in.LimitGet(ctx, "peer:"+peer) }
	params, keyDomain, err := in.checkRequest(ctx, r, federation.SignedGetHeaders, limitPeer)
	if err != nil {
		return "", err
	}
	if err := in.verify(ctx, r, params, keyDomain, clientIP); err != nil {
		return "", err
	}
	in.sources.add(keyDomain, clientIP, in.Now())
	return keyDomain, nil
}

// verify finds the signing key in the peer's document, refetching it early
// when the key is unknown or the signature fails. A request from an address
// the peer's verified deliveries came from spends the budget only the peer
// can spend, so forgers flooding under its name (from elsewhere) cannot
// make its rotation wait for the next interval.
func (in *Inbox) verify(ctx context.Context, r *http.Request, params federation.SignatureParams, domain, clientIP string) error {
	keyID := params.KeyID
	peer, err := in.Peers.Peer(ctx, domain)
	if err != nil {
		in.Log.Warn("inbox: peer document", "peer", domain, "err", err)
		return &fednode.Error{Code: fednode.EKeyUnavailable, Message: "the sending node's document cannot be fetched now", RetryAfter: 30}
	}
	check := func(p *federation.Peer) error {
		pub, ok := p.SigKeys[keyID]
		if !ok {
			return refuse(fednode.EUnknownKey, "%s is not a signing key of %s", keyID, domain)
		}
		if err := federation.VerifySignature(r, params, pub); err != nil {
			return refuse(fednode.ESigInvalid, "the signature does not verify")
		}
		return nil
	}
	err = check(peer)
	if err == nil {
		return nil
	}
	refresh := in.Peers.Refresh
	if in.sources.known(domain, clientIP, in.Now()) {
		refresh = in.Peers.RefreshTrusted
	}
	fresh, refetched, ferr := refresh(ctx, domain)
	if !refetched || ferr != nil {
		return err
	}
	return check(fresh)
}

// sources remembers, per peer, the client addresses its verified deliveries
// came from. A forger cannot send from them (the address is the TCP peer's,
// or a trusted proxy's report of it).
type sources struct {
	mu   sync.Mutex
	seen map[string]map[string]time.Time // peer -> client address -> last verified delivery
}

// Bounds: addresses kept per peer, and how long one counts.
const (
	maxSourcesPerPeer = 32
	sourceTTL         = 7 * 24 * time.Hour
)

func (s *sources) known(peer, client string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.seen[peer][client]
	return ok && now.Sub(at) < sourceTTL
}

func (s *sources) add(peer, client string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.seen[peer]
	if m == nil {
		m = map[string]time.Time{}
		s.seen[peer] = m
	}
	if _, ok := m[client]; !ok && len(m) >= maxSourcesPerPeer {
		oldest := ""
		for c, at := range m {
			if oldest == "" || at.Before(m[oldest]) {
				oldest = c
			}
		}
		delete(m, oldest)
	}
	m[client] = now
}

// accept processes one message; it returns the recipient to wake when the
// message was stored, and an error only when the key service is down.
func (in *Inbox) accept(ctx context.Context, env federation.Envelope, m federation.EncryptedMessage) (federation.Result, string, error) {
	refused := func(code, format string, args ...any) (federation.Result, string, error) {
		return federation.Result{ID: m.ID, Status: federation.StatusRefused, Code: code, Message: fmt.Sprintf(format, args...)}, "", nil
	}
	from, _ := fednode.ParseAddress(m.From, "")
	to, _ := fednode.ParseAddress(m.To, "")
	if from.Domain != env.FromNode {
		return refused(federation.CodeSenderMismatch, "%s is not a user of the sending node %s", m.From, env.FromNode)
	}
	if to.Domain != in.cfg.Domain {
		return refused(federation.CodeRecipientMismatch, "%s is not a user of this node", m.To)
	}
	if existing, err := in.Store.Message(ctx, m.ID); err == nil {
		if existing.From.Domain == env.FromNode {
			return federation.Result{ID: m.ID, Status: federation.StatusDuplicate}, "", nil // a redelivery or a replay: stored once already
		}
		return refused(federation.CodeIDConflict, "another node already used this message id")
	} else if !errors.Is(err, fednode.ErrNotFound) {
		return in.unavailable(m.ID, err)
	}
	if err := fednode.CheckRecipient(ctx, in.Store, to, from); err != nil {
		var e *fednode.Error
		if errors.As(err, &e) {
			return refused(e.Code, "%s", e.Message)
		}
		return in.unavailable(m.ID, err)
	}
	pt, err := in.Unwraps.OpenMessage(ctx, in.Keyring, env, m)
	switch {
	case errors.Is(err, keys.ErrUnavailable):
		return federation.Result{}, "", err
	case errors.Is(err, federation.ErrUnwrap):
		return refused(federation.CodeUnwrapFailed, "the data key does not unwrap with a current encryption key of this node")
	case err != nil:
		return refused(federation.CodeOpenFailed, "the ciphertext does not open")
	}
	msg, err := messageOf(m, from, to, pt)
	if err != nil {
		return refused(fednode.ErrorCode(err), "%s", fednode.ErrorMessage(err))
	}
	if _, err := in.Store.AppendMessage(ctx, msg, to.User); errors.Is(err, fednode.ErrDuplicate) {
		return federation.Result{ID: m.ID, Status: federation.StatusDuplicate}, "", nil // raced with a concurrent redelivery
	} else if err != nil {
		return in.unavailable(m.ID, err)
	}
	return federation.Result{ID: m.ID, Status: federation.StatusAccepted}, to.User, nil
}

// messageOf is the message to store for an opened one: its content and
// tags checked by the content rules, or its end-to-end payload by its
// structure rules (with no content or tags beside it). A message that
// breaks them is refused with the rule's code.
func messageOf(m federation.EncryptedMessage, from, to fednode.Address, pt federation.Plaintext) (fednode.Message, error) {
	created, _ := time.Parse(time.RFC3339Nano, m.CreatedAt)
	msg := fednode.Message{ID: m.ID, From: from, To: to, CreatedAt: created.UTC(), Status: fednode.StatusDelivered}
	if pt.E2E != nil {
		if pt.Content != "" || len(pt.Tags) > 0 {
			return msg, fednode.Errorf(fednode.EInvalidE2E, "an end-to-end encrypted message has no content or tags beside e2e")
		}
		if err := pt.E2E.Validate(); err != nil {
			return msg, err
		}
		// The signed id carries the send time (fednode.CheckE2EID held it
		// to the sender node's clock): a created_at far from it is a lie
		// about when the message was sent that the signature cannot catch.
		if t, ok := fednode.IDTime(m.ID); !ok || created.Sub(t).Abs() > fednode.E2EIDWindow {
			return msg, fednode.Errorf(fednode.EInvalidE2E, "an end-to-end encrypted message's created_at must be within %v of the time in its id", fednode.E2EIDWindow)
		}
		msg.E2E = pt.E2E
		return msg, nil
	}
	content, err := fednode.NormalizeContent(pt.Content)
	if err != nil {
		return msg, err
	}
	if err := fednode.ValidateTags(pt.Tags); err != nil {
		return msg, err
	}
	msg.Content, msg.Tags = content, pt.Tags
	if msg.Tags == nil {
		msg.Tags = []string{}
	}
	return msg, nil
}

// unavailable answers a message the node could not process for an internal
// reason; the sender retries it (an unknown status is retried).
func (in *Inbox) unavailable(id string, err error) (federation.Result, string, error) {
	in.Log.Error("inbox: store", "message", id, "err", err)
	return federation.Result{ID: id, Status: federation.StatusRetry, Code: fednode.EUnavailable, Message: "try again later"}, "", nil
}

// judgement is what accept said of one message.
type judgement struct {
	res  federation.Result
	user string // the recipient to wake, when the message was stored
	err  error  // the key service is down
}

// acceptAll runs accept on every message of env and returns what it said
// of each, in the envelope's order. Opening a message costs an RSA
// unwrap, so up to GOMAXPROCS messages (at least two, so that a remote
// key service's round trips overlap) are judged at once. The appends of
// the messages accepted wait until every message has been judged, and are
// then committed together, in the envelope's order (a pair's messages
// reach the mailbox in the order they were sent): in one fsynced
// transaction when the store can (bolt's AppendMessages), else
// concurrently, one mailbox's in order. A refused or duplicate message is
// answered as on its own and changes nothing else.
func (in *Inbox) acceptAll(ctx context.Context, env federation.Envelope) []judgement {
	out := make([]judgement, len(env.Messages))
	if len(env.Messages) == 1 {
		out[0].res, out[0].user, out[0].err = in.accept(ctx, env, env.Messages[0])
		return out
	}
	c := &envelopeCommit{Store: in.Store, pending: len(env.Messages), committed: make(chan struct{}),
		slots: make(chan struct{}, max(runtime.GOMAXPROCS(0), 2))}
	view := &Inbox{cfg: in.cfg, Deps: in.Deps} // accept's inbox, storing through c
	view.Store = c
	var wg sync.WaitGroup
	var panicMu sync.Mutex
	var panicked any
	for i, m := range env.Messages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					panicMu.Lock()
					panicked = p
					panicMu.Unlock()
				}
			}()
			t := &turn{index: i}
			defer c.judged(ctx, t) // the message is judged, whatever happened
			c.slots <- struct{}{}
			out[i].res, out[i].user, out[i].err = view.accept(context.WithValue(ctx, turnKey{}, t), env, m)
		}()
	}
	wg.Wait()
	if panicked != nil {
		panic(panicked) // where net/http recovers it, as it did before
	}
	return out
}

// envelopeCommit is the store accept sees while an envelope is judged:
// reads go to the node's store; an append waits until every message of
// the envelope has been judged, then all of them are committed together.
type envelopeCommit struct {
	Store
	slots     chan struct{} // messages being judged at once
	mu        sync.Mutex
	pending   int // messages not judged yet
	parked    []*parkedAppend
	committed chan struct{} // closed once the parked appends are committed
}

// A turn is one message's: judged once, its slot freed once.
type turn struct {
	index  int // in the envelope
	judged bool
}

type turnKey struct{}

type parkedAppend struct {
	index     int
	m         fednode.Message
	mailboxes []string
	cursors   []uint64
	err       error
}

// groupAppender is a store that commits several appends in one
// transaction, each with its own outcome (bolt.Store: one fsync for an
// envelope instead of one a message).
type groupAppender interface {
	AppendMessages(ctx context.Context, msgs []fednode.Message, mailboxes [][]string) ([][]uint64, []error)
}

// errNotCommitted answers an append whose commit did not run to the end.
var errNotCommitted = errors.New("inbox: the envelope's appends were not committed")

func (c *envelopeCommit) AppendMessage(ctx context.Context, m fednode.Message, mailboxes ...string) ([]uint64, error) {
	t, _ := ctx.Value(turnKey{}).(*turn)
	if t == nil {
		return c.Store.AppendMessage(ctx, m, mailboxes...)
	}
	p := &parkedAppend{index: t.index, m: m, mailboxes: mailboxes, err: errNotCommitted}
	c.mu.Lock()
	c.parked = append(c.parked, p)
	c.mu.Unlock()
	c.judged(ctx, t)
	<-c.committed
	return p.cursors, p.err
}

// judged records that t's message has been judged (parked, or answered
// without storing anything), freeing its slot; the last one commits.
func (c *envelopeCommit) judged(ctx context.Context, t *turn) {
	c.mu.Lock()
	if t.judged {
		c.mu.Unlock()
		return
	}
	t.judged = true
	<-c.slots
	c.pending--
	last := c.pending == 0
	c.mu.Unlock()
	if last {
		c.commit(ctx)
	}
}

// commit stores the parked appends, in the envelope's order. Every
// message has been judged, so none is added meanwhile.
func (c *envelopeCommit) commit(ctx context.Context) {
	defer close(c.committed)
	if len(c.parked) == 0 {
		return
	}
	slices.SortFunc(c.parked, func(a, b *parkedAppend) int { return a.index - b.index })
	if g, ok := c.Store.(groupAppender); ok {
		msgs, boxes := make([]fednode.Message, len(c.parked)), make([][]string, len(c.parked))
		for i, p := range c.parked {
			msgs[i], boxes[i] = p.m, p.mailboxes
		}
		cursors, errs := g.AppendMessages(ctx, msgs, boxes)
		for i, p := range c.parked {
			p.cursors, p.err = cursors[i], errs[i]
		}
		return
	}
	byMailboxes := map[string][]*parkedAppend{}
	for _, p := range c.parked {
		k := strings.Join(p.mailboxes, "\n")
		byMailboxes[k] = append(byMailboxes[k], p)
	}
	var wg sync.WaitGroup
	for _, ps := range byMailboxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range ps {
				p.cursors, p.err = c.Store.AppendMessage(ctx, p.m, p.mailboxes...)
			}
		}()
	}
	wg.Wait()
}
