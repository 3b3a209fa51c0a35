package fiberauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// MiddlewareConfig configures Middleware.
type MiddlewareConfig struct {
	// Next skips the middleware when it returns true.
	// Optional. Default: nil (never skip).
	Next func(c *fiber.Ctx) bool

	// Roles, when set, lets a request through only if the user has at least
	// one of them; others get 403 forbidden.
	// Optional. Default: none (any signed-in user).
	Roles []string
}

// Middleware protects routes: it answers 401 invalid_token (with
// WWW-Authenticate) unless the request carries a valid access token whose
// etag is the user's current etag and whose session family is live, and 503
// when the store cannot tell. Handlers behind it read the caller with
// ClaimsFrom, UserIDFrom and SessionIDFrom.
func (a *Auth) Middleware(config ...MiddlewareConfig) fiber.Handler {
	var cfg MiddlewareConfig
	if len(config) > 0 {
		cfg = config[0]
	}
	roles := slices.Clone(cfg.Roles)
	return func(c *fiber.Ctx) error {
		if cfg.Next != nil && cfg.Next(c) {
			return c.Next()
		}
		p, err := a.principal(c)
		if err != nil {
			return a.writeError(c, err)
		}
		if len(roles) > 0 && !slices.ContainsFunc(roles, p.user.hasRole) {
			return a.writeError(c, ErrForbidden)
		}
		return c.Next()
	}
}

// RequireRole is Middleware that also requires one of roles.
func (a *Auth) RequireRole(roles ...string) fiber.Handler {
	return a.Middleware(MiddlewareConfig{Roles: roles})
}

// principal is what the middleware learnt about the caller.
type principal struct {
	claims *Claims
	user   userState
}

type principalKey struct{}

// ClaimsFrom returns the verified claims of the request's access token, set
// by Middleware; ok is false on a route it does not protect. The claims are
// shared with other requests bearing the same token: read them, do not
// change them.
func ClaimsFrom(c *fiber.Ctx) (claims *Claims, ok bool) {
	p, ok := c.Locals(principalKey{}).(*principal)
	if !ok {
		return nil, false
	}
	return p.claims, true
}

// UserIDFrom returns the signed-in user's id, or "" where Middleware did not
// run.
func UserIDFrom(c *fiber.Ctx) string {
	if cl, ok := ClaimsFrom(c); ok {
		return cl.Subject
	}
	return ""
}

// SessionIDFrom returns the session family id of the request's access token,
// or "" where Middleware did not run.
func SessionIDFrom(c *fiber.Ctx) string {
	if cl, ok := ClaimsFrom(c); ok {
		return cl.SessionID
	}
	return ""
}

// HasRole reports whether the signed-in user has role (as of the user record
// the middleware checked the etag against).
func HasRole(c *fiber.Ctx, role string) bool {
	p, ok := c.Locals(principalKey{}).(*principal)
	return ok && p.user.hasRole(role)
}

// principal authenticates the request once; later calls on the same request
// reuse the result.
func (a *Auth) principal(c *fiber.Ctx) (*principal, error) {
	if p, ok := c.Locals(principalKey{}).(*principal); ok {
		return p, nil
	}
	raw, err := bearerToken(c.Get(fiber.HeaderAuthorization))
	if err != nil {
		return nil, err
	}
	claims, err := a.verifiedClaims(raw)
	if err != nil {
		return nil, err
	}
	ctx := c.UserContext()
	user, err := a.userState(ctx, claims.Subject)
	if err != nil {
		return nil, err
	}
	if user.disabled || user.etag != claims.ETag {
		return nil, fmt.Errorf("%w: stale etag", ErrInvalidToken)
	}
	sess, err := a.sessionState(ctx, claims.SessionID)
	if err != nil {
		return nil, err
	}
	if !sess.live(a.now()) || sess.userID != claims.Subject {
		return nil, fmt.Errorf("%w: session not live", ErrInvalidToken)
	}
	p := &principal{claims: claims, user: user}
	c.Locals(principalKey{}, p)
	return p, nil
}

// verifiedClaims returns the claims of a token whose signature and claims
// check out: from the cache of tokens already verified (re-checking expiry,
// the one check time can change), or by verifying it now.
func (a *Auth) verifiedClaims(raw string) (*Claims, error) {
	c, shard := a.verified.get(raw)
	if c != nil {
		if a.now().Add(-a.cfg.Leeway).Unix() > c.ExpiresAt {
			return nil, fmt.Errorf("%w: token is expired", ErrInvalidToken)
		}
		return c, nil
	}
	c, err := a.tokens.verify(raw)
	if err != nil {
		return nil, err
	}
	shard.put(raw, c)
	return c, nil
}

// bearerToken extracts the token from an Authorization header value. The
// scheme is matched case-insensitively (RFC 7235).
func bearerToken(h string) (string, error) {
	const prefix = "bearer "
	if len(h) > maxTokenLength+len(prefix) {
		return "", &FieldError{Where: fiber.HeaderAuthorization, Reason: "too_long", Err: ErrInvalidToken,
			Msg: fmt.Sprintf("The Authorization header must be at most %d bytes.", maxTokenLength)}
	}
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", fmt.Errorf("%w: no bearer token", ErrInvalidToken)
	}
	return strings.TrimSpace(h[len(prefix):]), nil
}

// userState is what the middleware needs of a user, cached by id.
type userState struct {
	etag     string
	disabled bool
	roles    []string
}

func (u userState) hasRole(r string) bool { return slices.Contains(u.roles, r) }

// sessionState is what the middleware needs of a session family, cached by id.
type sessionState struct {
	userID    string
	expiresAt time.Time // the earlier of ExpiresAt and AbsoluteExpiresAt
	revoked   bool
}

func (s sessionState) live(now time.Time) bool { return !s.revoked && now.Before(s.expiresAt) }

// missingUser is cached for an id the store does not know, so that tokens of
// a deleted user do not reach the store on every request.
var missingUser = userState{disabled: true}

func (a *Auth) userState(ctx context.Context, id string) (userState, error) {
	if v, ok := a.users.Get(id); ok {
		return v.(userState), nil
	}
	u, err := a.store.UserByID(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		a.users.SetDefault(id, missingUser)
		return missingUser, nil
	case err != nil:
		return userState{}, storeErr("user by id", err)
	}
	return a.cacheUser(&u), nil
}

// cacheUser records u as this process now knows it. Every change this
// process makes to a user goes through here, so its own middleware sees the
// change at once.
func (a *Auth) cacheUser(u *User) userState {
	s := userState{etag: u.ETag, disabled: u.Disabled, roles: slices.Clone(u.Roles)}
	a.users.SetDefault(u.ID, s)
	return s
}

func (a *Auth) sessionState(ctx context.Context, id string) (sessionState, error) {
	if v, ok := a.sessions.Get(id); ok {
		return v.(sessionState), nil
	}
	s, err := a.store.SessionByID(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		st := sessionState{revoked: true}
		a.sessions.SetDefault(id, st)
		return st, nil
	case err != nil:
		return sessionState{}, storeErr("session by id", err)
	}
	return a.cacheSession(&s), nil
}

func (a *Auth) cacheSession(s *Session) sessionState {
	exp := s.ExpiresAt
	if s.AbsoluteExpiresAt.Before(exp) {
		exp = s.AbsoluteExpiresAt
	}
	st := sessionState{userID: s.UserID, expiresAt: exp, revoked: !s.RevokedAt.IsZero()}
	a.sessions.SetDefault(s.ID, st)
	return st
}

// forgetSessions marks families revoked in this process's cache.
func (a *Auth) forgetSessions(ids ...string) {
	for _, id := range ids {
		a.sessions.SetDefault(id, sessionState{revoked: true})
	}
}
