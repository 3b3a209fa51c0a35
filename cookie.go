package fiberauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// RefreshCookie is the cookie that carries the refresh token in cookie mode.
// The __Host- prefix makes browsers refuse it unless it is Secure, has
// Path=/ and no Domain, so no other site or subdomain can plant it.
const RefreshCookie = "__Host-refresh"

// CSRFHeader carries the csrf_token on cookie-authenticated calls.
const CSRFHeader = "X-CSRF-Token"

// MountOption changes how Mount serves its handlers.
type MountOption func(*mountConfig)

type mountConfig struct {
	cookie bool
}

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

type cookieModeKey struct{}

func cookieMode(c *fiber.Ctx) bool {
	on, _ := c.Locals(cookieModeKey{}).(bool)
	return on
}

// csrfToken is the OWASP signed double-submit token of a session family: an
// HMAC of its id under a key derived from the secret, the same for the
// family's life, so it survives rotation and dies with the family.
func (a *Auth) csrfToken(sessionID string) string {
	m := hmac.New(sha256.New, a.csrfKey)
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF compares the request's X-CSRF-Token with the family's token in
// constant time.
func (a *Auth) checkCSRF(c *fiber.Ctx, s *Session) error {
	got := c.Get(CSRFHeader)
	if got == "" || !hmac.Equal([]byte(got), []byte(a.csrfToken(s.ID))) {
		return fmt.Errorf("%w: session %s", ErrCSRF, s.ID)
	}
	return nil
}

// refreshFromCookie returns the cookie's refresh token, copied out of
// Fiber's buffers; ErrInvalidGrant when there is none.
func refreshFromCookie(c *fiber.Ctx) (string, error) {
	t := c.Cookies(RefreshCookie)
	if t == "" || len(t) > 512 {
		return "", ErrInvalidGrant
	}
	return strings.Clone(t), nil
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

// respond answers a sign-in result: a challenge as it is, tokens in the
// mount's transport.
func (a *Auth) respond(c *fiber.Ctx, v any) error {
	resp, ok := v.(tokenResponse)
	if !ok {
		return c.JSON(v)
	}
	if cookieMode(c) {
		setRefreshCookie(c, resp.RefreshToken, resp.Session.RefreshExpiresAt)
		resp.Refresh, resp.RefreshToken = "", ""
		resp.CSRFToken = a.csrfToken(resp.Session.SessionFamilyID)
	}
	return c.JSON(resp)
}
