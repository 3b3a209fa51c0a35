package fiberauth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ID tokens: who signed in, for the client to show (OpenID Connect Core
// §2, in the shape Cognito-style clients read). The profiles' sign-in
// answers carry one. An ID token is never an access token: its header's
// typ is "JWT" and its token_use "id", and the middleware, which takes
// only typ at+jwt, refuses it; VerifyIDToken refuses an access token.

// idTokenType is the typ of an ID token's header.
const idTokenType = "JWT"

// IDClaims are the claims of an ID token. The times are Unix seconds.
type IDClaims struct {
	Issuer            string   `json:"iss"`
	Subject           string   `json:"sub"` // the user id
	Audience          Audience `json:"aud"`
	IssuedAt          int64    `json:"iat"`
	ExpiresAt         int64    `json:"exp"`
	TokenUse          string   `json:"token_use"` // always "id"
	Email             string   `json:"email"`
	EmailVerified     bool     `json:"email_verified"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Name              string   `json:"name,omitempty"` // the display name
}

// GetExpirationTime implements jwt.Claims.
func (c *IDClaims) GetExpirationTime() (*jwt.NumericDate, error) { return numericDate(c.ExpiresAt) }

// GetIssuedAt implements jwt.Claims.
func (c *IDClaims) GetIssuedAt() (*jwt.NumericDate, error) { return numericDate(c.IssuedAt) }

// GetNotBefore implements jwt.Claims: an ID token has no nbf.
func (c *IDClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }

// GetIssuer implements jwt.Claims.
func (c *IDClaims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c *IDClaims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c *IDClaims) GetAudience() (jwt.ClaimStrings, error) { return jwt.ClaimStrings(c.Audience), nil }

var errNotIDToken = errors.New("not an ID token (typ JWT, token_use id)")

// idToken signs an ID token for u at now, as long-lived as an access
// token, with the access tokens' key.
func (a *Auth) idToken(u *User, now time.Time) (string, error) {
	s := &a.tokens
	c := &IDClaims{
		Issuer: s.issuer, Subject: u.ID, Audience: Audience{s.idAudience},
		IssuedAt: now.Unix(), ExpiresAt: now.Add(s.ttl).Unix(), TokenUse: "id",
		Email: u.Email, EmailVerified: u.EmailVerified, PreferredUsername: u.Username, Name: u.DisplayName,
	}
	signed, err := s.signJWT(c, idTokenType, now)
	if err != nil {
		return "", fmt.Errorf("%w: signing ID token: %w", ErrUnavailable, err)
	}
	return signed, nil
}

// VerifyIDToken checks an ID token fiberauth issued, as a client or
// another service would: its signature (with the key that signs access
// tokens), issuer, audience, expiry and iat, typ "JWT" and token_use "id".
// An access token is refused (ErrInvalidToken), as the middleware refuses
// an ID token. It does not check that the user or session is still there:
// an ID token says who signed in, not who may act.
func (a *Auth) VerifyIDToken(raw string) (*IDClaims, error) {
	if err := checkTokenShape(raw); err != nil {
		return nil, err
	}
	s := &a.tokens
	keyFunc := func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != idTokenType {
			return nil, errNotIDToken
		}
		if _, ok := t.Header["crit"]; ok {
			return nil, errCrit
		}
		if s.ring != nil {
			return s.ring.keyOf(t)
		}
		return s.key, nil
	}
	c := new(IDClaims)
	t, err := s.idParser.ParseWithClaims(raw, c, keyFunc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if s.ring != nil {
		// A retired key verifies no more ID tokens than access tokens.
		if k := s.ring.verifiedBy(t); k == nil || !k.live(s.ring.now()) {
			return nil, fmt.Errorf("%w: %w", ErrInvalidToken, errKeyRetired)
		}
	}
	if c.TokenUse != "id" || c.Subject == "" || c.IssuedAt == 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, errNotIDToken)
	}
	if c.ExpiresAt > c.IssuedAt+s.maxLife {
		return nil, fmt.Errorf("%w: exp is more than AccessTTL + Leeway after iat", ErrInvalidToken)
	}
	return c, nil
}

// IssueIDToken signs an ID token for u, for a host that answers sign-ins
// from its own routes (the profiles' answers carry one already).
func (a *Auth) IssueIDToken(u User) (string, error) { return a.idToken(&u, a.now()) }
