package fiberauth

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// MiddlewareConfig configures Middleware, in the shape of Fiber's own
// middleware and jwtware.
type MiddlewareConfig struct {
	// Next skips the middleware when it returns true.
	// Optional. Default: nil (never skip).
	Next func(c *fiber.Ctx) bool

	// Roles, when set, lets a request through only if the user has at least
	// one of them; others get 403 forbidden.
	// Optional. Default: none (any signed-in user).
	Roles []string

	// SuccessHandler runs for a request the middleware lets through.
	// Optional. Default: c.Next().
	SuccessHandler fiber.Handler

	// ErrorHandler answers a request the middleware refuses. err is a
	// *RequestError (errors.Is finds the sentinel: ErrInvalidToken,
	// ErrForbidden, ErrCSRF, ErrUnavailable). Return err to hand it to the
	// app's fiber.Config.ErrorHandler: it carries a *fiber.Error with the
	// status, and its text is the message for the client.
	// Optional. Default: fiberauth's JSON error (Auth.WriteError).
	ErrorHandler fiber.ErrorHandler

	// TokenLookup says where the access token is: "<source>:<name>"
	// pairs, comma-separated, tried in order: "header:<name>" or
	// "cookie:<name>". The query string is not a source: URLs end up in
	// logs and Referer headers. A token from a cookie, which a browser
	// sends by itself, needs the family's CSRF token (the csrf_token of
	// cookie-mode token responses) in X-CSRF-Token on unsafe methods, and
	// passes the Origin and Sec-Fetch-Site checks of cookie mode.
	// Optional. Default: "header:Authorization".
	TokenLookup string

	// AuthScheme is the scheme before the token in a header source,
	// matched case-insensitively; "" for a header that holds the bare
	// token. A 401's WWW-Authenticate challenge names it (Bearer when it is
	// "", or with only cookie sources).
	// Optional. Default: "Bearer" for the Authorization header, "" for
	// others.
	AuthScheme *string
}

// Middleware protects routes: it answers 401 invalid_token (with a reason,
// missing, malformed, expired, revoked or stale, and WWW-Authenticate's
// error_description; docs/api.md) unless the request carries a valid access token whose
// etag is the user's current etag and whose session family is live, and 503
// when the store cannot tell (Authenticate). Handlers behind it read the
// caller with ClaimsFrom, UserIDFrom, SessionIDFrom and HasRole, and code
// that has only the request's context with ClaimsFromContext. It panics
// on a TokenLookup it cannot parse, as Fiber's middleware do on bad
// configuration.
func (a *Auth) Middleware(config ...MiddlewareConfig) fiber.Handler {
	var cfg MiddlewareConfig
	if len(config) > 0 {
		cfg = config[0]
	}
	roles := slices.Clone(cfg.Roles)
	sources, err := parseTokenLookup(cfg.TokenLookup, cfg.AuthScheme)
	if err != nil {
		panic(err)
	}
	scheme := challengeScheme(sources)
	refuse := func(c *fiber.Ctx, err error) error {
		status, b := prepareError(c, a.log, err)
		if scheme != "Bearer" {
			if h := c.GetRespHeader(fiber.HeaderWWWAuthenticate); h != "" {
				c.Set(fiber.HeaderWWWAuthenticate, scheme+strings.TrimPrefix(h, "Bearer"))
			}
		}
		if cfg.ErrorHandler == nil {
			return c.Status(status).JSON(b)
		}
		return cfg.ErrorHandler(c, &RequestError{Status: status, Code: b.Error, Reason: b.Reason, Where: b.Where, Message: b.Message, err: err})
	}
	return func(c *fiber.Ctx) error {
		if cfg.Next != nil && cfg.Next(c) {
			return c.Next()
		}
		p, err := a.principalFrom(c, sources)
		if err != nil {
			return refuse(c, err)
		}
		if len(roles) > 0 && !slices.ContainsFunc(roles, p.user.hasRole) {
			return refuse(c, ErrForbidden)
		}
		if cfg.SuccessHandler != nil {
			return cfg.SuccessHandler(c)
		}
		return c.Next()
	}
}

// RequireRole is Middleware that also requires one of roles.
func (a *Auth) RequireRole(roles ...string) fiber.Handler {
	return a.Middleware(MiddlewareConfig{Roles: roles})
}

// principal authenticates the request by its bearer token once and keeps
// the result in its Locals and as its user context (c.UserContext());
// later calls on the same request reuse it.
func (a *Auth) principal(c *fiber.Ctx) (*principal, error) {
	return a.principalFrom(c, defaultTokenSources)
}

// principalFrom is principal with the token from sources.
func (a *Auth) principalFrom(c *fiber.Ctx, sources []tokenSource) (*principal, error) {
	if p := principalOf(c); p != nil && p.auth == a {
		if p.fromCookie {
			// The method may have changed since (an override that routes
			// the request anew).
			if err := a.checkCookieRequest(c, p); err != nil {
				return nil, err
			}
		}
		return p, nil
	}
	raw, fromCookie, err := lookupToken(c, sources)
	if err != nil {
		return nil, err
	}
	ctx := c.UserContext()
	p, err := a.authenticate(ctx, raw)
	if err != nil {
		return nil, err
	}
	if fromCookie {
		cp := *p // not the principal requests share
		cp.fromCookie = true
		p = &cp
		if err := a.checkCookieRequest(c, p); err != nil {
			return nil, err
		}
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

// bearerToken extracts the token from an Authorization header value.
func bearerToken(h string) (string, error) {
	return schemeToken(fiber.HeaderAuthorization, "Bearer ", h)
}

// schemeToken extracts the token from the value h of header: prefix (the
// scheme and a space), matched case-insensitively (RFC 7235), then the
// token. errTokenMissing when h is of another scheme, or has no token.
func schemeToken(header, prefix, h string) (string, error) {
	if len(h) > maxTokenLength+len(prefix) {
		return "", &FieldError{Where: header, Reason: "malformed", Err: ErrInvalidToken,
			Msg: fmt.Sprintf("The %s header must be at most %d bytes.", header, maxTokenLength)}
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

// checkCookieRequest is what a request whose access token came from a
// cookie, which the browser sends by itself, must also pass: the origin
// checks of cookie mode, and on an unsafe method the family's CSRF token,
// which only the page that signed in has.
func (a *Auth) checkCookieRequest(c *fiber.Ctx, p *principal) error {
	if err := a.checkOrigin(c); err != nil {
		return err
	}
	if safeMethod(c.Method()) {
		return nil
	}
	sent := c.Get(CSRFHeader)
	if sent == "" || !hmac.Equal([]byte(sent), []byte(a.csrfToken(p.claims.SessionID))) {
		return fmt.Errorf("%w: access token from a cookie without the session's CSRF token", ErrCSRF)
	}
	return nil
}

// tokenSource is one place TokenLookup names: a header (with its scheme,
// or none) or a cookie.
type tokenSource struct {
	header, cookie string
	prefix         string // the scheme and a space; "" for a bare token
}

// defaultTokenSources is the Authorization header's bearer token.
var defaultTokenSources = []tokenSource{{header: fiber.HeaderAuthorization, prefix: "Bearer "}}

// challengeScheme is the scheme a 401's WWW-Authenticate names: that of
// the first source with one (AuthScheme), else Bearer.
func challengeScheme(sources []tokenSource) string {
	for _, s := range sources {
		if s.prefix != "" {
			return strings.TrimSpace(s.prefix)
		}
	}
	return "Bearer"
}

// parseTokenLookup parses MiddlewareConfig.TokenLookup and AuthScheme.
func parseTokenLookup(lookup string, scheme *string) ([]tokenSource, error) {
	if lookup == "" {
		lookup = "header:" + fiber.HeaderAuthorization
	}
	var sources []tokenSource
	for part := range strings.SplitSeq(lookup, ",") {
		kind, name, ok := strings.Cut(part, ":")
		kind, name = strings.TrimSpace(kind), strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("fiberauth: TokenLookup %q: want source:name pairs, such as header:Authorization or cookie:access_token", lookup)
		}
		switch kind {
		case "header":
			s := tokenSource{header: name}
			switch {
			case scheme != nil && *scheme != "":
				s.prefix = *scheme + " "
			case scheme == nil && strings.EqualFold(name, fiber.HeaderAuthorization):
				s.prefix = "Bearer "
			}
			sources = append(sources, s)
		case "cookie":
			sources = append(sources, tokenSource{cookie: name})
		default:
			return nil, fmt.Errorf("fiberauth: TokenLookup %q: source %q is not header or cookie (the query string is not one: URLs are logged)", lookup, kind)
		}
	}
	return sources, nil
}

// lookupToken returns the token of the first source that has one, and
// whether it came from a cookie; errTokenMissing when none has.
func lookupToken(c *fiber.Ctx, sources []tokenSource) (token string, fromCookie bool, err error) {
	for _, s := range sources {
		if s.cookie != "" {
			if v := c.Cookies(s.cookie); v != "" {
				if len(v) > maxTokenLength {
					return "", true, fmt.Errorf("%w: token too long", ErrInvalidToken)
				}
				return v, true, nil
			}
			continue
		}
		v := c.Get(s.header)
		if v == "" {
			continue
		}
		if s.prefix == "" {
			if len(v) > maxTokenLength {
				return "", false, &FieldError{Where: s.header, Reason: "malformed", Err: ErrInvalidToken,
					Msg: fmt.Sprintf("The %s header must be at most %d bytes.", s.header, maxTokenLength)}
			}
			return strings.TrimSpace(v), false, nil
		}
		t, err := schemeToken(s.header, s.prefix, v)
		if errors.Is(err, errTokenMissing) {
			continue // another scheme: not this source's
		}
		return t, false, err
	}
	return "", false, fmt.Errorf("%w: %w", ErrInvalidToken, errTokenMissing)
}

// safeMethod reports whether a request of method changes nothing (RFC
// 9110), so needs no CSRF token.
func safeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}
