package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
	"unicode/utf8"

	"github.com/fednode/fednode"
)

// Password length rule: NIST SP 800-63B asks for at least 8 and allowing at
// least 64; we cap at 256 code points so hashing cost stays bounded.
const (
	minPasswordLen = 8
	maxPasswordLen = 256
)

// authStore is what accounts and sessions need from a store.
type authStore interface {
	CreateUser(ctx context.Context, u fednode.User) error
	User(ctx context.Context, username string) (fednode.User, error)
	UpdateUser(ctx context.Context, username string, fn func(*fednode.User) error) error

	CreateSession(ctx context.Context, s fednode.Session, max int) ([]string, error)
	Session(ctx context.Context, id string) (fednode.Session, error)
	DeleteSession(ctx context.Context, id string) error
	DeleteUserSessions(ctx context.Context, username string) ([]string, error)
	DeleteAllSessions(ctx context.Context) ([]string, error)

	AddLoginFailure(ctx context.Context, key string, at, since time.Time) ([]time.Time, error)
	LoginFailures(ctx context.Context, key string, since time.Time) ([]time.Time, error)
	ClearLoginFailures(ctx context.Context, key string) error
}

// accounts owns registration, login, sessions and their revocation.
type accounts struct {
	store     authStore
	tokens    *tokenIssuer
	params    PasswordParams
	dummy     string // a hash to check against when the user does not exist
	maxFail   int
	window    time.Duration
	maxSess   int
	now       func() time.Time
	audit     *slog.Logger
	onRevoked func(sessionIDs []string) // closes live sockets of revoked sessions
	cache     *authCache                // verified tokens, forgotten on revocation

	signup     *signup     // registration mode and invites
	challenges *challenges // proof of work after repeated failures
}

func newAccounts(store authStore, tokens *tokenIssuer, cfg Config, audit *slog.Logger, onRevoked func([]string)) (*accounts, error) {
	dummy, err := hashPassword("fednode dummy password", cfg.Password)
	if err != nil {
		return nil, err
	}
	return &accounts{
		store: store, tokens: tokens, params: cfg.Password, dummy: dummy,
		maxFail: cfg.LoginMaxFailures, window: cfg.LoginFailureWindow, maxSess: cfg.MaxSessionsPerUser,
		now: tokens.now, audit: audit, onRevoked: onRevoked, cache: newAuthCache(),
	}, nil
}

func validatePassword(field, p string) error {
	n := utf8.RuneCountInString(p)
	switch {
	case !utf8.ValidString(p):
		return fednode.FieldError(fednode.EInvalidPassword, field, "the password must be valid UTF-8")
	case n < minPasswordLen || n > maxPasswordLen:
		return fednode.FieldError(fednode.EInvalidPassword, field, "the password must be %d to %d characters", minPasswordLen, maxPasswordLen)
	}
	return nil
}

// register creates an account, if the registration mode, the invite and
// (after repeated attempts from the client) a proof of work allow it.
func (a *accounts) register(ctx context.Context, req registration, ip string) error {
	if err := a.signup.admit(req); err != nil {
		return err
	}
	username, password := req.Username, req.Password
	if !fednode.ValidUsername(username) {
		return fednode.FieldError(fednode.EInvalidUsername, "username", "the username must be 1 to 64 letters, digits, '_' or '-'")
	}
	if err := validatePassword("password", password); err != nil {
		return err
	}
	if a.challenges.registrationNeedsProof(ctx, ip) {
		if err := a.challenges.require(ctx, req.Challenge, "register", fednode.CanonicalUsername(username), ip); err != nil {
			return err
		}
	}
	hash, err := hashPassword(password, a.params)
	if err != nil {
		return err
	}
	u := fednode.User{Username: username, PasswordHash: hash, Role: fednode.RoleUser, CreatedAt: a.now().UTC()}
	if err := a.signup.create(ctx, a.store, u, req.Invite, ip, a.now()); err != nil {
		if errors.Is(err, fednode.ErrTaken) {
			return fednode.FieldError(fednode.ETaken, "username", "that username is taken")
		}
		return fmt.Errorf("register %s: %w", username, err)
	}
	a.audit.InfoContext(ctx, "register", "user", fednode.CanonicalUsername(username), "ip", ip)
	return nil
}

// lockedFor returns how long the name is still locked out, or 0.
func (a *accounts) lockedFor(failures []time.Time, now time.Time) time.Duration {
	if len(failures) < a.maxFail {
		return 0
	}
	// Locked until enough failures leave the window to drop below the limit.
	until := failures[len(failures)-a.maxFail].Add(a.window)
	if d := until.Sub(now); d > 0 {
		return d
	}
	return 0
}

func lockedError(d time.Duration) error {
	secs := int(math.Ceil(d.Seconds()))
	return &fednode.Error{Code: fednode.ELocked, RetryAfter: secs,
		Message: fmt.Sprintf("too many failed attempts for this account; try again in %d seconds", secs)}
}

// loginProof is the proof of work a login carries ("" for none). verify
// is given one for a login, where a challenge may be required, and nil for
// a password change within a session, where it is not.
type loginProof struct{ solution string }

// verify checks username and password with the same cost whether or not the
// account exists, counting failures toward the lockout of that name. A
// locked name is refused before any hashing, existing or not, so lockout
// reveals nothing either. So is a login that needs a proof of work and
// brings none that holds.
func (a *accounts) verify(ctx context.Context, username, password, ip string, proof *loginProof) (fednode.User, error) {
	now := a.now()
	key := fednode.CanonicalUsername(username)
	since := now.Add(-a.window)
	bad := fednode.Errorf(fednode.ECredentials, "wrong username or password")
	if !fednode.ValidUsername(username) || len(password) > 4*maxPasswordLen {
		return fednode.User{}, bad
	}
	failures, err := a.store.LoginFailures(ctx, key, since)
	if err != nil {
		return fednode.User{}, fmt.Errorf("login failures: %w", err)
	}
	if d := a.lockedFor(failures, now); d > 0 {
		a.audit.WarnContext(ctx, "login.locked", "user", key, "ip", ip, "retry_after_s", int(d.Seconds()))
		return fednode.User{}, lockedError(d)
	}
	if proof != nil {
		need, err := a.challenges.loginNeedsProof(ctx, len(failures), ip, since)
		if err != nil {
			return fednode.User{}, fmt.Errorf("login: %w", err)
		}
		if need {
			if err := a.challenges.require(ctx, proof.solution, "login", key, ip); err != nil {
				return fednode.User{}, err
			}
		}
	}
	u, err := a.store.User(ctx, key)
	hash := u.PasswordHash
	if errors.Is(err, fednode.ErrNotFound) {
		hash = a.dummy
	} else if err != nil {
		return fednode.User{}, fmt.Errorf("login: %w", err)
	}
	ok, err := checkPassword(password, hash)
	if err != nil {
		return fednode.User{}, fmt.Errorf("login %s: %w", key, err)
	}
	if !ok || hash == a.dummy {
		if _, err := a.store.AddLoginFailure(ctx, key, now, since); err != nil {
			return fednode.User{}, fmt.Errorf("record login failure: %w", err)
		}
		if proof != nil {
			if err := a.challenges.loginFailed(ctx, ip, now, since); err != nil {
				return fednode.User{}, err
			}
		}
		a.audit.WarnContext(ctx, "login.failure", "user", key, "ip", ip)
		return fednode.User{}, bad
	}
	if len(failures) > 0 {
		if err := a.store.ClearLoginFailures(ctx, key); err != nil {
			return fednode.User{}, fmt.Errorf("clear login failures: %w", err)
		}
	}
	if u.Suspended() { // said only to who knows the password
		a.audit.WarnContext(ctx, "login.suspended", "user", key, "ip", ip)
		return fednode.User{}, suspendedError(u)
	}
	return u, nil
}

// login verifies the credentials and opens a session, evicting the user's
// oldest sessions beyond the per-user limit.
func (a *accounts) login(ctx context.Context, username, password, ip string, proof loginProof) (string, time.Time, error) {
	u, err := a.verify(ctx, username, password, ip, &proof)
	if err != nil {
		return "", time.Time{}, err
	}
	now := a.now().UTC()
	s := fednode.Session{
		ID:        fednode.NewID(now),
		Username:  fednode.CanonicalUsername(u.Username),
		IssuedAt:  now.Truncate(time.Second), // JWT times have second precision
		ExpiresAt: now.Add(a.tokens.ttl).Truncate(time.Second),
	}
	tok, err := a.tokens.issue(ctx, s)
	if err != nil {
		return "", time.Time{}, err
	}
	evicted, err := a.store.CreateSession(ctx, s, a.maxSess)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("login: %w", err)
	}
	if len(evicted) > 0 {
		a.onRevoked(evicted)
		a.audit.InfoContext(ctx, "session.evicted", "user", s.Username, "sessions", len(evicted))
	}
	a.audit.InfoContext(ctx, "login.success", "user", s.Username, "ip", ip, "session", s.ID)
	return tok, s.ExpiresAt, nil
}

// authenticate returns the live session and user a bearer token stands for.
func (a *accounts) authenticate(ctx context.Context, token string) (fednode.Session, fednode.User, error) {
	if s, u, ok := a.cache.get(token, a.now()); ok {
		return s, u, nil
	}
	unauth := fednode.Errorf(fednode.EUnauthorized, "the token is missing, invalid, expired or revoked")
	id, sub, err := a.tokens.parse(ctx, token)
	if err != nil {
		unauth.Err = err
		return fednode.Session{}, fednode.User{}, unauth
	}
	s, err := a.store.Session(ctx, id)
	if errors.Is(err, fednode.ErrNotFound) {
		unauth.Err = fmt.Errorf("%w: session %s revoked", errToken, id)
		return fednode.Session{}, fednode.User{}, unauth
	} else if err != nil {
		return fednode.Session{}, fednode.User{}, fmt.Errorf("session: %w", err)
	}
	if s.Username != sub || !a.now().Before(s.ExpiresAt) {
		unauth.Err = fmt.Errorf("%w: session %s does not match", errToken, id)
		return fednode.Session{}, fednode.User{}, unauth
	}
	u, err := a.store.User(ctx, sub)
	if err != nil {
		if errors.Is(err, fednode.ErrNotFound) {
			return fednode.Session{}, fednode.User{}, unauth
		}
		return fednode.Session{}, fednode.User{}, fmt.Errorf("session user: %w", err)
	}
	if u.Suspended() { // a session a login opened while the suspension revoked the others
		unauth.Err = fmt.Errorf("%w: user %s is suspended", errToken, sub)
		return fednode.Session{}, fednode.User{}, unauth
	}
	a.cache.put(token, s, u, a.now())
	return s, u, nil
}

// logout revokes one session.
func (a *accounts) logout(ctx context.Context, s fednode.Session, ip string) error {
	if err := a.store.DeleteSession(ctx, s.ID); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	a.onRevoked([]string{s.ID})
	a.audit.InfoContext(ctx, "logout", "user", s.Username, "ip", ip, "session", s.ID)
	return nil
}

// changePassword checks the current password, stores the new hash and
// revokes every session of the user, this one included.
func (a *accounts) changePassword(ctx context.Context, s fednode.Session, current, next, ip string) error {
	if err := validatePassword("new_password", next); err != nil {
		return err
	}
	if _, err := a.verify(ctx, s.Username, current, ip, nil); err != nil {
		if fednode.ErrorCode(err) == fednode.ECredentials {
			return fednode.FieldError(fednode.ECredentials, "current_password", "the current password is wrong")
		}
		return err
	}
	hash, err := hashPassword(next, a.params)
	if err != nil {
		return err
	}
	if err := a.store.UpdateUser(ctx, s.Username, func(u *fednode.User) error { u.PasswordHash = hash; return nil }); err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	ids, err := a.store.DeleteUserSessions(ctx, s.Username)
	if err != nil {
		return fmt.Errorf("change password: revoke sessions: %w", err)
	}
	a.onRevoked(ids)
	a.audit.InfoContext(ctx, "password.changed", "user", s.Username, "ip", ip, "sessions_revoked", len(ids))
	return nil
}

// revokeAll revokes every session of every user.
func (a *accounts) revokeAll(ctx context.Context, by, ip string) (int, error) {
	ids, err := a.store.DeleteAllSessions(ctx)
	if err != nil {
		return 0, fmt.Errorf("revoke all sessions: %w", err)
	}
	a.onRevoked(ids)
	a.audit.WarnContext(ctx, "sessions.revoked_all", "by", by, "ip", ip, "sessions", len(ids))
	return len(ids), nil
}

// suspendedError refuses a login to a suspended account.
func suspendedError(u fednode.User) error {
	msg := "this account is suspended"
	if u.SuspendReason != "" {
		msg += ": " + u.SuspendReason
	}
	return fednode.Errorf(fednode.ESuspended, "%s", msg)
}
