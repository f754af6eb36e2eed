package node

// Crypto summary: session tokens.
//
// What it protects: that a request comes from a user who logged in, for as
// long as that login lives.
// Against whom: anyone who can send requests but does not hold a token.
// Construction: a JWT (RFC 7519) with HMAC-SHA-256 (or -384/-512, per
// JWT_ALGORITHM) under JWT_SECRET, at least 32 characters in production.
// Claims: iss (this node's domain), sub (canonical username), iat, exp, jti
// (the session id). Parsing pins the algorithm to the configured one, so
// "alg":"none" and algorithm confusion are refused by the library before any
// key is used; exp and iat are required; a token is honoured only while its
// jti names a live session in the store, so logout and revocation take effect
// at once, not at exp.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fednode/fednode"
)

// maxTokenLen bounds what we parse; our tokens are about 300 bytes.
const maxTokenLen = 4096

type tokenIssuer struct {
	secrets TokenSecrets
	alg     string
	ttl     time.Duration
	issuer  string
	now     func() time.Time
}

type tokenClaims struct {
	jwt.RegisteredClaims
}

// issue signs a token for session s with the current secret; a rotatable
// secret's version goes in the kid header.
func (t *tokenIssuer) issue(ctx context.Context, s fednode.Session) (string, error) {
	c := tokenClaims{jwt.RegisteredClaims{
		Issuer:    t.issuer,
		Subject:   s.Username,
		IssuedAt:  jwt.NewNumericDate(s.IssuedAt),
		ExpiresAt: jwt.NewNumericDate(s.ExpiresAt),
		ID:        s.ID,
	}}
	kid, secret, err := t.secrets.current(ctx)
	if err != nil {
		return "", err
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(t.alg), c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	signed, err := tok.SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return signed, nil
}

var errToken = errors.New("token refused")

// parse verifies a token and returns its session id and subject. Every
// refusal is errToken wrapped with the reason, for the log only.
func (t *tokenIssuer) parse(ctx context.Context, s string) (id, sub string, err error) {
	if len(s) > maxTokenLen {
		return "", "", fmt.Errorf("%w: too long", errToken)
	}
	var c tokenClaims
	_, err = jwt.ParseWithClaims(s, &c, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		return t.secrets.lookup(ctx, kid)
	},
		jwt.WithValidMethods([]string{t.alg}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(t.issuer),
		jwt.WithTimeFunc(t.now),
		jwt.WithLeeway(5*time.Second),
		jwt.WithStrictDecoding(),
	)
	switch {
	case err != nil:
		return "", "", fmt.Errorf("%w: %v", errToken, err)
	case c.IssuedAt == nil:
		return "", "", fmt.Errorf("%w: no iat", errToken)
	case c.ID == "" || len(c.ID) > 64:
		return "", "", fmt.Errorf("%w: bad jti", errToken)
	case !fednode.ValidUsername(c.Subject):
		return "", "", fmt.Errorf("%w: bad sub", errToken)
	}
	return c.ID, c.Subject, nil
}
