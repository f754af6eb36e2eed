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
//     recipient, then RSA unwrap and GCM open, then the content rules.
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
	Notify    func(users ...string) // wakes live sockets
	Now       func() time.Time
	Log       *slog.Logger
	OnRefusal func(ctx context.Context, code, ip string) // metrics and ban counting; may be nil
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
	// 2. Signature parameters.
	sigHeaders := r.Header.Values("Signature")
	if len(sigHeaders) == 0 || sigHeaders[0] == "" {
		return federation.Answer{}, refuse(fednode.ESigMissing, "the request is not signed")
	}
	if len(sigHeaders) > 1 {
		return federation.Answer{}, refuse(fednode.ESigMalformed, "the request has more than one Signature header")
	}
	params, err := federation.ParseSignature(sigHeaders[0])
	if err != nil {
		return federation.Answer{}, refuse(fednode.ESigMalformed, "the Signature header does not parse: %v", err)
	}
	if missing := federation.MissingSignedHeaders(params); len(missing) > 0 {
		return federation.Answer{}, refuse(fednode.ESigHeaders, "the signature must cover %s", strings.Join(missing, ", "))
	}
	if bad := federation.UncoveredHeaders(r, params); len(bad) > 0 {
		return federation.Answer{}, refuse(fednode.ESigHeaders, "the signature covers %s, which the request must carry exactly once", strings.Join(bad, ", "))
	}
	if !federation.AlgorithmAllowed(params.Algorithm) {
		return federation.Answer{}, refuse(fednode.ESigAlgorithm, "algorithm %q is not allowed for RSA keys; use hs2019 or rsa-sha256", params.Algorithm)
	}
	keyDomain, _, err := federation.ParseKeyID(params.KeyID)
	if err != nil {
		return federation.Answer{}, refuse(fednode.ESigMalformed, "keyId must be <node domain>#<key id>")
	}
	if err := in.LimitPeer(ctx, keyDomain); err != nil {
		return federation.Answer{}, err
	}
	// 3. Date, Host, policy.
	date, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		return federation.Answer{}, refuse(fednode.EDate, "the Date header is missing or malformed")
	}
	if skew := in.Now().Sub(date); skew > in.cfg.DateWindow || skew < -in.cfg.DateWindow {
		return federation.Answer{}, refuse(fednode.EDate, "Date is %s away from this node's clock; at most %s is accepted", skew.Round(time.Second), in.cfg.DateWindow)
	}
	if err := federation.CheckSignatureTime(params, in.Now()); err != nil {
		return federation.Answer{}, refuse(fednode.EDate, "%v", err)
	}
	if r.Host != in.cfg.Domain {
		return federation.Answer{}, refuse(fednode.EWrongHost, "this node is %s, not %s", in.cfg.Domain, r.Host)
	}
	if !in.Allowed(keyDomain) {
		return federation.Answer{}, refuse(fednode.EPeerBlocked, "this node does not federate with %s", keyDomain)
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
	// 6. Messages.
	out := federation.Answer{Results: make([]federation.Result, 0, len(env.Messages))}
	var woken []string
	var keysDown error
	for _, m := range env.Messages {
		res, user, err := in.accept(ctx, env, m)
		if err != nil { // the key service is down: the sender must retry
			keysDown = err
			break
		}
		out.Results = append(out.Results, res)
		if user != "" {
			woken = append(woken, user)
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
	if _, err := in.Store.User(ctx, to.User); errors.Is(err, fednode.ErrNotFound) {
		return refused(fednode.ERecipient, "there is no user %s", m.To)
	} else if err != nil {
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
	content, err := fednode.NormalizeContent(pt.Content)
	if err != nil {
		return refused(fednode.ErrorCode(err), "%s", fednode.ErrorMessage(err))
	}
	if err := fednode.ValidateTags(pt.Tags); err != nil {
		return refused(fednode.ErrorCode(err), "%s", fednode.ErrorMessage(err))
	}
	created, _ := time.Parse(time.RFC3339Nano, m.CreatedAt)
	tags := pt.Tags
	if tags == nil {
		tags = []string{}
	}
	msg := fednode.Message{ID: m.ID, From: from, To: to, Content: content, Tags: tags, CreatedAt: created.UTC(), Status: fednode.StatusDelivered}
	if _, err := in.Store.AppendMessage(ctx, msg, to.User); errors.Is(err, fednode.ErrDuplicate) {
		return federation.Result{ID: m.ID, Status: federation.StatusDuplicate}, "", nil // raced with a concurrent redelivery
	} else if err != nil {
		return in.unavailable(m.ID, err)
	}
	return federation.Result{ID: m.ID, Status: federation.StatusAccepted}, to.User, nil
}

// unavailable answers a message the node could not process for an internal
// reason; the sender retries it (an unknown status is retried).
func (in *Inbox) unavailable(id string, err error) (federation.Result, string, error) {
	in.Log.Error("inbox: store", "message", id, "err", err)
	return federation.Result{ID: id, Status: federation.StatusRetry, Code: fednode.EUnavailable, Message: "try again later"}, "", nil
}
