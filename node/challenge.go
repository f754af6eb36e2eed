package node

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/internal/pow"
	"github.com/fednode/fednode/ratelimit"
)

// The proof-of-work challenge (internal/pow has its crypto summary): who
// must solve one, how a solution is checked and spent.
//
// A login needs one when its username, or the client it comes from (an IP
// or IPv6 /64), has CHALLENGE_AFTER_LOGIN_FAILURES failed logins within
// LOGIN_FAILURE_WINDOW (the client's failures are kept beside the names'
// as "ip:<client>", which no username can be). A registration needs one
// once the client has made CHALLENGE_AFTER_REGISTRATIONS attempts within
// ChallengeRegistrationWindow, counted by the shared limiter. The check
// comes before any password is hashed: that is the work it saves.

// ChallengeRegistrationWindow is the window registration attempts per
// client are counted in.
const ChallengeRegistrationWindow = time.Hour

// challengeKeyLabel is the HKDF label (info) of the challenge HMAC key:
// derived from the token secret, so every replica has it and it rotates
// with that secret, but never equal to it.
const challengeKeyLabel = "fednode challenge hmac v1"

// challengeSkew is how long a spent challenge stays spent after its expiry,
// for replicas whose clocks run behind the one that spent it.
const challengeSkew = time.Minute

// challengeStore is what challenges need from a store.
type challengeStore interface {
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	LoginFailures(ctx context.Context, key string, since time.Time) ([]time.Time, error)
	AddLoginFailure(ctx context.Context, key string, at, since time.Time) ([]time.Time, error)
}

type challenges struct {
	cfg     Config
	secrets TokenSecrets
	store   challengeStore
	limiter ratelimit.Limiter
	now     func() time.Time
	audit   *slog.Logger
}

func challengeKey(secret []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, challengeKeyLabel, sha256.Size)
}

// issue makes a challenge under the current token secret.
func (c *challenges) issue(ctx context.Context) (pow.Challenge, error) {
	kid, secret, err := c.secrets.current(ctx)
	if err != nil {
		return pow.Challenge{}, fmt.Errorf("challenge: %w", err)
	}
	key, err := challengeKey(secret)
	if err != nil {
		return pow.Challenge{}, fmt.Errorf("challenge: %w", err)
	}
	return pow.New(key, kid, c.cfg.ChallengeMaxNumber, c.now().Add(c.cfg.ChallengeTTL))
}

// ipFailures is the login-failure record of a client, beside the names'.
func ipFailures(client string) string { return "ip:" + client }

// loginNeedsProof reports whether a login must carry a solution, given the
// failures of its username within the window that starts at since.
func (c *challenges) loginNeedsProof(ctx context.Context, nameFailures int, client string, since time.Time) (bool, error) {
	if nameFailures >= c.cfg.ChallengeAfterLoginFailures {
		return true, nil
	}
	if client == "" {
		return false, nil
	}
	f, err := c.store.LoginFailures(ctx, ipFailures(client), since)
	if err != nil {
		return false, fmt.Errorf("client login failures: %w", err)
	}
	return len(f) >= c.cfg.ChallengeAfterLoginFailures, nil
}

// loginFailed counts a failed login against the client.
func (c *challenges) loginFailed(ctx context.Context, client string, at, since time.Time) error {
	if client == "" {
		return nil
	}
	if _, err := c.store.AddLoginFailure(ctx, ipFailures(client), at, since); err != nil {
		return fmt.Errorf("record client login failure: %w", err)
	}
	return nil
}

// registrationNeedsProof counts one registration attempt of a client and
// reports whether it must carry a solution. A limiter that cannot answer
// asks for one: that fails safe without refusing anyone.
func (c *challenges) registrationNeedsProof(ctx context.Context, client string) bool {
	if c.cfg.ChallengeAfterRegistrations == 0 {
		return true
	}
	d, err := c.limiter.Allow(ctx, "challenge:register:"+client, ratelimit.Rule{Limit: c.cfg.ChallengeAfterRegistrations, Window: ChallengeRegistrationWindow})
	return err != nil || !d.Allowed
}

// howToSolve ends every challenge refusal: where to get one, where to put it.
const howToSolve = "get a challenge from GET /api/auth/challenge, solve it, and send the solution as \"challenge\" in the body"

// require checks and spends the solution a request carries, where one is
// required for action ("login" or "register").
func (c *challenges) require(ctx context.Context, solution, action, user, ip string) error {
	if solution == "" {
		c.audit.WarnContext(ctx, "challenge.required", "action", action, "user", user, "ip", ip)
		return fednode.FieldError(fednode.EChallengeRequired, "challenge", "too many attempts: this %s needs a proof of work; %s", action, howToSolve)
	}
	err := c.spend(ctx, solution)
	if fednode.ErrorCode(err) == fednode.EChallengeInvalid {
		c.audit.WarnContext(ctx, "challenge.failed", "action", action, "user", user, "ip", ip, "reason", fednode.ErrorMessage(err))
	}
	return err
}

// spend verifies a solution and marks it used on every replica: a lease on
// its challenge, held by nobody else, until after its expiry.
func (c *challenges) spend(ctx context.Context, payload string) error {
	invalid := func(msg string, err error) error {
		return &fednode.Error{Code: fednode.EChallengeInvalid, Field: "challenge", Message: msg + "; " + howToSolve, Err: err}
	}
	s, err := pow.ParseSolution(payload)
	if err != nil {
		return invalid("the challenge solution does not parse", err)
	}
	now := c.now()
	err = pow.Verify(s, func(kid string) ([]byte, error) {
		secret, err := c.secrets.lookup(ctx, kid)
		if err != nil {
			return nil, err
		}
		return challengeKey(secret)
	}, now)
	switch {
	case errors.Is(err, pow.ErrExpired):
		return invalid("the challenge has expired", err)
	case errors.Is(err, pow.ErrForged):
		return invalid("the challenge was not issued by this node, or was issued under a retired key", err)
	case errors.Is(err, pow.ErrWrong):
		return invalid("the number does not solve the challenge", err)
	case err != nil:
		return invalid("the challenge solution is malformed", err)
	}
	expires, _, _ := pow.SaltParams(s.Salt)
	first, err := c.store.AcquireLease(ctx, "challenge:"+s.Challenge, fednode.NewID(now), expires.Sub(now)+challengeSkew)
	if err != nil {
		return fmt.Errorf("challenge: spend: %w", err)
	}
	if !first {
		return invalid("this challenge has already been used", nil)
	}
	return nil
}

func (s *Server) handleChallenge(w http.ResponseWriter, r *http.Request) {
	c, err := s.challenges.issue(r.Context())
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
