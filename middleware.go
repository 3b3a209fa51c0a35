package fiberauth

import (
	"context"
	"fmt"
	"slices"
	"strings"

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

// Middleware protects routes: it answers 401 invalid_token (with a reason,
// missing, malformed, expired, revoked or stale, and WWW-Authenticate's
// error_description; docs/api.md) unless the request carries a valid access token whose
// etag is the user's current etag and whose session family is live, and 503
// when the store cannot tell (Authenticate). Handlers behind it read the
// caller with ClaimsFrom, UserIDFrom, SessionIDFrom and HasRole, and code
// that has only the request's context with ClaimsFromContext.
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

// principal authenticates the request once and keeps the result in its
// Locals and as its user context (c.UserContext()); later calls on the same
// request reuse it.
func (a *Auth) principal(c *fiber.Ctx) (*principal, error) {
	if p := principalOf(c); p != nil {
		return p, nil
	}
	raw, err := bearerToken(c.Get(fiber.HeaderAuthorization))
	if err != nil {
		return nil, err
	}
	ctx := c.UserContext()
	p, err := a.authenticate(ctx, raw)
	if err != nil {
		return nil, err
	}
	c.Locals(principalKey{}, p)
	c.SetUserContext(p)
	return p, nil
}

// principalOf is the request's caller, as Middleware found it: from Locals,
// so that a host that replaces the user context later does not lose it.
func principalOf(c *fiber.Ctx) *principal {
	p, _ := c.Locals(principalKey{}).(*principal)
	return p
}

// bearerToken extracts the token from an Authorization header value. The
// scheme is matched case-insensitively (RFC 7235).
func bearerToken(h string) (string, error) {
	const prefix = "bearer "
	if len(h) > maxTokenLength+len(prefix) {
		return "", &FieldError{Where: fiber.HeaderAuthorization, Reason: "malformed", Err: ErrInvalidToken,
			Msg: fmt.Sprintf("The Authorization header must be at most %d bytes.", maxTokenLength)}
	}
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", fmt.Errorf("%w: %w", ErrInvalidToken, errTokenMissing)
	}
	return strings.TrimSpace(h[len(prefix):]), nil
}

// ClaimsFrom returns the verified claims of the request's access token, set
// by Middleware; ok is false on a route it does not protect. The value is
// the caller's own copy.
func ClaimsFrom(c *fiber.Ctx) (claims Claims, ok bool) {
	if p := principalOf(c); p != nil {
		return p.claimsCopy(), true
	}
	return Claims{}, false
}

// ClaimsFromContext is ClaimsFrom for code that has only the request's
// context: c.UserContext() as Middleware left it, or a context derived
// from it.
func ClaimsFromContext(ctx context.Context) (claims Claims, ok bool) {
	p, ok := ctx.Value(principalKey{}).(*principal)
	if !ok {
		return Claims{}, false
	}
	return p.claimsCopy(), true
}

// UserIDFrom returns the signed-in user's id, or "" where Middleware did not
// run.
func UserIDFrom(c *fiber.Ctx) string {
	if p := principalOf(c); p != nil {
		return p.claims.Subject
	}
	return ""
}

// SessionIDFrom returns the session family id of the request's access token,
// or "" where Middleware did not run.
func SessionIDFrom(c *fiber.Ctx) string {
	if p := principalOf(c); p != nil {
		return p.claims.SessionID
	}
	return ""
}

// HasRole reports whether the signed-in user has role (as of the user record
// the middleware checked the etag against).
func HasRole(c *fiber.Ctx, role string) bool {
	p := principalOf(c)
	return p != nil && p.user.hasRole(role)
}
