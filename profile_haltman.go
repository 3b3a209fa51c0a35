package fiberauth

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"
)

// ProfileHaltman: haltman's cookie sessions (docs/profiles.md). The
// browser never sees a token: the refresh token travels in the
// __Host-refresh cookie and the access token in the HttpOnly
// __Host-access cookie, which the middleware reads when told to
// (TokenLookup "cookie:__Host-access"); the family's CSRF token is in the
// readable __Host-csrf cookie, for the X-CSRF-Token header. Answers are
// {"ok", "action", "refreshed", "session"}; errors are fiberauth's own.

// AccessCookie is the cookie that carries the access token with
// ProfileHaltman (HttpOnly: the page's scripts cannot read it).
const AccessCookie = "__Host-access"

// CSRFCookie is the cookie that carries the session family's CSRF token
// with ProfileHaltman, for the page to send back as X-CSRF-Token (it is
// readable by the page's scripts, and by no other site's).
const CSRFCookie = "__Host-csrf"

// haltmanAccessSource is where haltman's logout finds an access token
// without a refresh cookie: the access cookie (whose CSRF check the
// middleware's cookie source applies).
var haltmanAccessSource = []tokenSource{{cookie: AccessCookie}}

func (m *mount) haltmanRoutes() []route {
	return []route{
		// fiberauth's own handlers, whose signIn answers in this profile.
		{EndpointsSignIn, fiber.MethodPost, "/login", m.login},
		{EndpointsSignIn, fiber.MethodPost, "/login/2fa", m.loginMFA},
		{EndpointsSignIn, fiber.MethodPost, "/refresh", m.haltmanRefresh},
		{EndpointsSignIn, fiber.MethodPost, "/logout", m.haltmanLogout},
	}
}

// haltmanSignIn answers a sign-in step: a challenge (its session is no
// token of the user's: it only lets the second step be tried), or the
// cookies and {"ok", "action": "login"}.
func (m *mount) haltmanSignIn(c *fiber.Ctx, res SignIn) error {
	if ch := res.Challenge; ch != nil {
		return c.JSON(fiber.Map{"ok": true, "action": "challenge", "refreshed": false,
			"challenge_name": ch.Name, "session": ch.Session, "expires_in": secondsUntil(ch.ExpiresAt, m.a.now())})
	}
	return m.haltmanTokens(c, res.Tokens, "login")
}

func (m *mount) haltmanRefresh(c *fiber.Ctx) error {
	var req tokenRequest // the body's tokens are not read: the cookie's is
	if err := decode(c, &req); err != nil {
		return err
	}
	in, err := m.refreshInput(c, req.refreshRequest())
	var t Tokens
	if err == nil {
		t, err = m.a.Refresh(c.UserContext(), in)
	}
	if err != nil {
		if !errors.Is(err, ErrCSRF) && !errors.Is(err, ErrUnavailable) {
			clearHaltmanCookies(c) // the cookie's token is dead, or there is none
		}
		return err
	}
	return m.haltmanTokens(c, &t, "refresh")
}

// haltmanLogout ends the family of the refresh cookie, or without one of
// the access cookie (with the CSRF token either way), and expires the
// cookies.
func (m *mount) haltmanLogout(c *fiber.Ctx) error {
	var req tokenRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	var err error
	if c.Cookies(RefreshCookie) == "" && c.Cookies(AccessCookie) != "" {
		var p *principal
		if p, err = m.a.principalFrom(c, haltmanAccessSource); err == nil {
			err = m.a.Logout(c.UserContext(), LogoutInput{Caller: p.claims})
		}
		if err != nil {
			return err // the cookies stay: the session may be live
		}
	} else {
		var in RefreshInput
		if in, err = m.refreshInput(c, req.refreshRequest()); err == nil {
			err = m.a.Logout(c.UserContext(), LogoutInput{Refresh: in})
		}
	}
	if errors.Is(err, ErrInvalidGrant) {
		clearHaltmanCookies(c) // dead already
	}
	if err != nil {
		return err
	}
	clearHaltmanCookies(c)
	return c.JSON(fiber.Map{"ok": true, "action": "logout", "refreshed": false, "session": nil})
}

// haltmanTokens sets the cookies of t and answers {"ok", "action",
// "refreshed", "session"}: no token in the body.
func (m *mount) haltmanTokens(c *fiber.Ctx, t *Tokens, action string) error {
	refreshExpires := wireTime(t.Session.ExpiresAt)
	setRefreshCookie(c, t.RefreshToken, refreshExpires)
	setHostCookie(c, AccessCookie, t.AccessToken, t.AccessExpiresAt, true)
	setHostCookie(c, CSRFCookie, m.a.csrfToken(t.Session.ID), refreshExpires, false)
	return c.JSON(fiber.Map{"ok": true, "action": action, "refreshed": action == "refresh", "session": sessionJSON{
		SessionFamilyID:  t.Session.ID,
		AccessExpiresAt:  wireTime(t.AccessExpiresAt),
		RefreshExpiresAt: refreshExpires,
	}})
}

// setHostCookie sets a __Host- cookie: Secure, Path=/, no Domain,
// SameSite=Strict.
func setHostCookie(c *fiber.Ctx, name, value string, expires time.Time, httpOnly bool) {
	c.Cookie(&fiber.Cookie{Name: name, Value: value, Path: "/", Expires: expires, Secure: true, HTTPOnly: httpOnly, SameSite: fiber.CookieSameSiteStrictMode})
}

// clearHaltmanCookies expires the three cookies, with the attributes they
// were set with (or browsers ignore a __Host- cookie).
func clearHaltmanCookies(c *fiber.Ctx) {
	clearRefreshCookie(c)
	setHostCookie(c, AccessCookie, "", time.Unix(1, 0), true)
	setHostCookie(c, CSRFCookie, "", time.Unix(1, 0), false)
}
