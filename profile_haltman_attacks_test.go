package fiberauth_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberauth/fiberauth"
)

func haltmanJar(t *testing.T) (*harness, func(email string) jar) {
	t.Helper()
	h := newHarness(t)
	h.auth.Mount(h.app.Group("/halt"), fiberauth.WithProfile(fiberauth.ProfileHaltman))
	guarded := h.auth.Middleware(fiberauth.MiddlewareConfig{TokenLookup: "header:Authorization,cookie:" + fiberauth.AccessCookie})
	for _, m := range []string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"} {
		h.app.Add(m, "/page", guarded, func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"ok": true}) })
	}
	login := func(email string) jar {
		t.Helper()
		r := h.do("POST", "/halt/login", map[string]any{"email": email, "password": goodPassword})
		expect(t, r, 200, "")
		j := cookiesOf(t, r)
		h.keep(j.value[fiberauth.RefreshCookie], j.value[fiberauth.AccessCookie], j.value[fiberauth.CSRFCookie])
		for _, v := range j.value {
			if strings.Contains(r.raw, v) {
				t.Fatalf("a cookie's value is in the body: %s", r.raw)
			}
		}
		return j
	}
	return h, login
}

// the CSRF token is required (and bound to the family) on /refresh,
// /logout and every unsafe method through the middleware; cross-site
// requests are refused; a refused CSRF changes nothing.
func TestProfilesHaltmanCSRF(t *testing.T) {
	t.Parallel()
	h, login := haltmanJar(t)
	h.createUser("ada@example.com")
	h.createUser("eve@example.com")
	ada, eve := login("ada@example.com"), login("eve@example.com")
	cookie := "Cookie"

	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		expect(t, h.do(m, "/page", nil, cookie, ada.header()), 403, "csrf_failed")
		expect(t, h.do(m, "/page", nil, cookie, ada.header(), fiberauth.CSRFHeader, eve.value[fiberauth.CSRFCookie]), 403, "csrf_failed")
		expect(t, h.do(m, "/page", nil, cookie, ada.header(), fiberauth.CSRFHeader, ada.value[fiberauth.CSRFCookie], "Sec-Fetch-Site", "cross-site"), 403, "csrf_failed")
		expect(t, h.do(m, "/page", nil, cookie, ada.header(), fiberauth.CSRFHeader, ada.value[fiberauth.CSRFCookie], "Origin", "https://evil.example"), 403, "csrf_failed")
		expect(t, h.do(m, "/page", nil, cookie, ada.header(), fiberauth.CSRFHeader, ada.value[fiberauth.CSRFCookie]), 200, "")
	}
	for _, m := range []string{"GET", "HEAD", "OPTIONS"} {
		if r := h.do(m, "/page", nil, cookie, ada.header(), "Sec-Fetch-Site", "cross-site"); r.status != 403 {
			t.Errorf("%s cross-site with the cookie: %d", m, r.status)
		}
	}
	// A Method-Override header is not honoured (Fiber has none by default).
	expect(t, h.do("GET", "/page", nil, cookie, ada.header(), "X-HTTP-Method-Override", "DELETE"), 200, "")

	for _, path := range []string{"/halt/refresh", "/halt/logout"} {
		expect(t, h.do("POST", path, nil, cookie, ada.header()), 403, "csrf_failed")
		expect(t, h.do("POST", path, nil, cookie, ada.header(), fiberauth.CSRFHeader, eve.value[fiberauth.CSRFCookie]), 403, "csrf_failed")
		expect(t, h.do("POST", path, nil, cookie, ada.header(), fiberauth.CSRFHeader, ada.value[fiberauth.CSRFCookie], "Sec-Fetch-Site", "cross-site"), 403, "csrf_failed")
		expect(t, h.do("POST", path, nil, cookie, ada.header(), fiberauth.CSRFHeader, ada.value[fiberauth.CSRFCookie], "Origin", "null"), 403, "csrf_failed")
		r := h.do("POST", path, "a=b", cookie, ada.header(), fiberauth.CSRFHeader, ada.value[fiberauth.CSRFCookie], "Content-Type", "text/plain")
		expect(t, r, 415, "unsupported_media_type")
		if len(r.header["Set-Cookie"]) != 0 {
			t.Errorf("%s refused for CSRF/media type set cookies: %v", path, r.header["Set-Cookie"])
		}
	}
	// The session is untouched by all of the above.
	expect(t, h.do("GET", "/auth/me", nil, bearer(ada.value[fiberauth.AccessCookie])...), 200, "")

	// The body's tokens are not read: eve's refresh token in the body and
	// ada's cookie refresh ada's family; the body alone refreshes nothing.
	r := h.do("POST", "/halt/refresh", map[string]any{"refresh_token": eve.value[fiberauth.RefreshCookie]}, cookie, ada.header(), fiberauth.CSRFHeader, ada.value[fiberauth.CSRFCookie])
	expect(t, r, 200, "")
	if r.obj("session")["session_family_id"] == nil {
		t.Fatal(r.raw)
	}
	ada2 := cookiesOf(t, r)
	h.keep(ada2.value[fiberauth.RefreshCookie], ada2.value[fiberauth.AccessCookie])
	expect(t, h.do("POST", "/halt/refresh", map[string]any{"refresh_token": eve.value[fiberauth.RefreshCookie]}, fiberauth.CSRFHeader, eve.value[fiberauth.CSRFCookie]), 401, "invalid_grant")
	expect(t, h.do("GET", "/auth/me", nil, bearer(eve.value[fiberauth.AccessCookie])...), 200, "")
}

// Cookie clearing on refusals.
func TestProfilesHaltmanClearing(t *testing.T) {
	t.Parallel()
	h, login := haltmanJar(t)
	h.createUser("ada@example.com")
	ada := login("ada@example.com")

	// A dead refresh cookie: /refresh clears all three, with __Host- attributes.
	expect(t, h.do("POST", "/auth/logout", nil, bearer(ada.value[fiberauth.AccessCookie])...), 200, "")
	r := h.do("POST", "/halt/refresh", nil, "Cookie", ada.header(), fiberauth.CSRFHeader, ada.value[fiberauth.CSRFCookie])
	expect(t, r, 401, "invalid_grant")
	if c := cookiesOf(t, r); len(c.value) != 3 {
		t.Errorf("a refused refresh cleared %v", c.value)
	}

	// No refresh cookie at all (it expired, or was dropped), the access
	// and CSRF cookies still there: the refused refresh expires them too
	// (docs/profiles.md: "a refused refresh (401) expires the cookies").
	ada = login("ada@example.com")
	only := fiberauth.AccessCookie + "=" + ada.value[fiberauth.AccessCookie] + "; " + fiberauth.CSRFCookie + "=" + ada.value[fiberauth.CSRFCookie]
	r = h.do("POST", "/halt/refresh", nil, "Cookie", only, fiberauth.CSRFHeader, ada.value[fiberauth.CSRFCookie])
	expect(t, r, 401, "invalid_grant")
	if n := len(r.header["Set-Cookie"]); n != 3 {
		t.Errorf("refresh without the refresh cookie: 401 with %d Set-Cookie (the access and CSRF cookies stay)", n)
	}
	// /logout with the access cookie but no refresh cookie ends the family
	// the access cookie names (with the CSRF token), and expires the cookies.
	r = h.do("POST", "/halt/logout", nil, "Cookie", only, fiberauth.CSRFHeader, ada.value[fiberauth.CSRFCookie])
	expect(t, r, 200, "")
	if n := len(r.header["Set-Cookie"]); n != 3 {
		t.Errorf("logout by the access cookie: %d Set-Cookie, want the 3 expired", n)
	}
	if me := h.do("GET", "/auth/me", nil, bearer(ada.value[fiberauth.AccessCookie])...); me.status == 200 {
		t.Errorf("the family of the access cookie is still live after a logout that expired its cookies (%d)", r.status)
	}
}

// The haltman cookies and the 2FA step: no token ever in a body; the
// challenge session only (it is no token of the user's).
func TestProfilesHaltmanTwoFactor(t *testing.T) {
	t.Parallel()
	h, _ := haltmanJar(t)
	h.createUser("ada@example.com")
	secret, _ := h.enrol(h.login("ada@example.com", goodPassword))
	r := h.do("POST", "/halt/login", map[string]any{"email": "ada@example.com", "password": goodPassword})
	expect(t, r, 200, "")
	if len(r.header["Set-Cookie"]) != 0 || r.str("action") != "challenge" {
		t.Fatalf("challenge: %v %s", r.header["Set-Cookie"], r.raw)
	}
	session := r.str("session")
	h.keep(session)
	// Cross-site second step refused.
	expect(t, h.do("POST", "/halt/login/2fa", map[string]any{"session": session, "code": h.totpCode(secret)}, "Sec-Fetch-Site", "cross-site"), 403, "csrf_failed")
	for range 4 {
		expect(t, h.do("POST", "/halt/login/2fa", map[string]any{"session": session, "code": "000000"}), 401, "invalid_grant")
	}
	r = h.do("POST", "/halt/login/2fa", map[string]any{"session": session, "code": h.totpCode(secret)})
	expect(t, r, 200, "")
	j := cookiesOf(t, r)
	h.keep(j.value[fiberauth.RefreshCookie], j.value[fiberauth.AccessCookie])
	for _, v := range j.value {
		if strings.Contains(r.raw, v) {
			t.Fatal("a token in the body")
		}
	}
	// Spent.
	expect(t, h.do("POST", "/halt/login/2fa", map[string]any{"session": session, "code": h.totpCode(secret)}), 401, "invalid_grant")
	_ = http.StatusOK
	_ = time.Second
}
