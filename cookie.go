package fiberauth

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Cookie mode: the transport for browsers, where the refresh token lives in
// a cookie scripts cannot read and the flows' CSRF check (RefreshInput)
// guards every call that reads it.

// RefreshCookie is the cookie that carries the refresh token in cookie mode.
// The __Host- prefix makes browsers refuse it unless it is Secure, has
// Path=/ and no Domain, so no other site or subdomain can plant it.
const RefreshCookie = "__Host-refresh"

// CSRFHeader carries the csrf_token on cookie-authenticated calls.
const CSRFHeader = "X-CSRF-Token"

// WithCookieTransport mounts the handlers for browsers: the refresh token
// travels only in the __Host-refresh cookie (Secure, HttpOnly,
// SameSite=Strict, Path=/), never in a body; token responses carry a
// csrf_token instead, which every call that reads the cookie (/refresh,
// /logout, /revoke) must echo in the X-CSRF-Token header, or it gets 403
// csrf_failed. The same Auth can be mounted in body mode and in cookie mode
// on two groups. Cookie mode needs HTTPS in production, and the page and the
// API on the same site.
func WithCookieTransport() MountOption {
	return func(m *mountConfig) { m.cookie = true }
}

// refreshInput is the refresh token a request presents: in cookie mode the
// cookie's, with the CSRF header to check (ErrInvalidGrant without a
// cookie); in body mode the body's.
func (m *mount) refreshInput(c *fiber.Ctx, req *refreshRequest) (RefreshInput, error) {
	if !m.cookie {
		t := req.RefreshToken
		if t == "" {
			t = req.Refresh
		}
		return RefreshInput{RefreshToken: t}, nil
	}
	t := c.Cookies(RefreshCookie)
	if t == "" || len(t) > maxRefreshTokenLength {
		return RefreshInput{}, ErrInvalidGrant
	}
	// Copied: Fiber reuses the buffers these point into.
	return RefreshInput{RefreshToken: strings.Clone(t), RequireCSRF: true, CSRFToken: strings.Clone(c.Get(CSRFHeader))}, nil
}

func setRefreshCookie(c *fiber.Ctx, token string, expires time.Time) {
	c.Cookie(&fiber.Cookie{
		Name: RefreshCookie, Value: token, Path: "/", Expires: expires,
		Secure: true, HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode,
	})
}

// clearRefreshCookie expires the cookie; it must carry the same attributes,
// or browsers ignore a __Host- cookie.
func clearRefreshCookie(c *fiber.Ctx) {
	setRefreshCookie(c, "", time.Unix(1, 0))
}

// checkOrigin refuses a cookie-mode call from another site's page: a
// Sec-Fetch-Site of cross-site, or an Origin that is not allowed
// (Config.AllowedOrigins; by default the request's own host). A request
// without either (not from a browser, or an old one) passes: the CSRF
// token and SameSite=Strict guard it still.
func (a *Auth) checkOrigin(c *fiber.Ctx) error {
	if strings.EqualFold(c.Get("Sec-Fetch-Site"), "cross-site") {
		return fmt.Errorf("%w: cross-site request", ErrCSRF)
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return nil
	}
	if len(a.cfg.AllowedOrigins) > 0 {
		for _, o := range a.cfg.AllowedOrigins {
			if strings.EqualFold(o, origin) {
				return nil
			}
		}
		return fmt.Errorf("%w: origin not allowed", ErrCSRF)
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, c.Hostname()) {
		return nil
	}
	return fmt.Errorf("%w: origin not allowed", ErrCSRF)
}
