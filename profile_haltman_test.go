package fiberauth_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberauth/fiberauth"
)

// jar is what a browser keeps of a response's cookies: name → value, and
// whether each is HttpOnly.
type jar struct {
	value    map[string]string
	httpOnly map[string]bool
}

func cookiesOf(t *testing.T, r response) jar {
	t.Helper()
	j := jar{value: map[string]string{}, httpOnly: map[string]bool{}}
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteStrictMode {
			t.Fatalf("cookie %s is not a strict __Host- cookie: %v", c.Name, c)
		}
		j.value[c.Name], j.httpOnly[c.Name] = c.Value, c.HttpOnly
	}
	return j
}

// header is the Cookie header of the jar's three cookies.
func (j jar) header() string {
	return fiberauth.RefreshCookie + "=" + j.value[fiberauth.RefreshCookie] + "; " +
		fiberauth.AccessCookie + "=" + j.value[fiberauth.AccessCookie] + "; " +
		fiberauth.CSRFCookie + "=" + j.value[fiberauth.CSRFCookie]
}

// A haltman-style browser client: it never sees a token in a body, keeps
// cookies, and sends the CSRF cookie's value back in X-CSRF-Token.
func TestProfileHaltman(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.auth.Mount(h.app.Group("/halt"), fiberauth.WithProfile(fiberauth.ProfileHaltman))
	guarded := h.auth.Middleware(fiberauth.MiddlewareConfig{TokenLookup: "cookie:" + fiberauth.AccessCookie})
	h.app.Get("/page", guarded, func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"user_id": fiberauth.UserIDFrom(c)}) })
	h.app.Post("/page", guarded, func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"ok": true}) })
	u := h.createUser("ada@example.com")

	signedIn := func(r response, action string) jar {
		t.Helper()
		expect(t, r, 200, "")
		if keysOf(r.body) != "action,ok,refreshed,session" || r.body["ok"] != true || r.str("action") != action ||
			r.body["refreshed"] != (action == "refresh") || keysOf(r.obj("session")) != "access_expires_at,refresh_expires_at,session_family_id" {
			t.Fatalf("%s answered %s", action, r.raw)
		}
		j := cookiesOf(t, r)
		if j.value[fiberauth.RefreshCookie] == "" || j.value[fiberauth.AccessCookie] == "" || j.value[fiberauth.CSRFCookie] == "" ||
			!j.httpOnly[fiberauth.RefreshCookie] || !j.httpOnly[fiberauth.AccessCookie] || j.httpOnly[fiberauth.CSRFCookie] {
			t.Fatalf("%s set cookies %v (HttpOnly %v)", action, j.value, j.httpOnly)
		}
		for name, v := range j.value {
			if strings.Contains(r.raw, v) {
				t.Fatalf("the body of %s carries the %s cookie's value", action, name)
			}
		}
		h.keep(j.value[fiberauth.RefreshCookie], j.value[fiberauth.AccessCookie])
		return j
	}

	j := signedIn(h.do("POST", "/halt/login", map[string]any{"email": "ada@example.com", "password": goodPassword}), "login")
	sid := ""
	// The access cookie lets the page in; an unsafe method needs the CSRF token.
	if r := h.do("GET", "/page", nil, "Cookie", j.header()); r.status != 200 || r.str("user_id") != u.ID {
		t.Fatalf("GET /page with the cookie: %d %s", r.status, r.raw)
	}
	expect(t, h.do("POST", "/page", nil, "Cookie", j.header()), 403, "csrf_failed")
	expect(t, h.do("POST", "/page", nil, "Cookie", j.header(), fiberauth.CSRFHeader, j.value[fiberauth.CSRFCookie]), 200, "")

	// Refresh with the cookie and the CSRF header alone.
	expect(t, h.do("POST", "/halt/refresh", nil, "Cookie", j.header()), 403, "csrf_failed")
	r := h.do("POST", "/halt/refresh", nil, "Cookie", j.header(), fiberauth.CSRFHeader, j.value[fiberauth.CSRFCookie])
	next := signedIn(r, "refresh")
	sid = r.obj("session")["session_family_id"].(string)
	if next.value[fiberauth.RefreshCookie] == j.value[fiberauth.RefreshCookie] || next.value[fiberauth.CSRFCookie] != j.value[fiberauth.CSRFCookie] {
		t.Fatal("a refresh did not rotate the refresh cookie, or changed the family's CSRF token")
	}
	// The same user and session in fiberauth's own API.
	if r := h.do("GET", "/auth/me", nil, bearer(next.value[fiberauth.AccessCookie])...); r.status != 200 || r.obj("session")["session_family_id"] != sid {
		t.Fatalf("/auth/me with the access cookie's token: %d %s", r.status, r.raw)
	}

	// Errors are fiberauth's own, validation errors with where and reason.
	r = h.do("POST", "/halt/login", map[string]any{"email": 5, "password": goodPassword})
	expect(t, r, 400, "invalid_request")
	if r.str("where") != "email" || r.str("reason") != "wrong_type" || r.str("message") == "" || r.body["code"] != float64(400) {
		t.Fatalf("validation error %s", r.raw)
	}
	expect(t, h.do("POST", "/halt/login", map[string]any{"email": "ada@example.com", "password": "wrong password"}), 401, "invalid_credentials")
	expect(t, h.do("POST", "/halt/login", map[string]any{"email": "ada@example.com", "password": goodPassword}, "Origin", "https://evil.example"), 403, "csrf_failed")

	// Logout expires the cookies; the family has ended for every profile.
	r = h.do("POST", "/halt/logout", nil, "Cookie", next.header(), fiberauth.CSRFHeader, next.value[fiberauth.CSRFCookie])
	expect(t, r, 200, "")
	if keysOf(r.body) != "action,ok,refreshed,session" || r.str("action") != "logout" || r.body["session"] != nil {
		t.Fatalf("logout answered %s", r.raw)
	}
	if cleared := cookiesOf(t, r); cleared.value[fiberauth.RefreshCookie] != "" || cleared.value[fiberauth.AccessCookie] != "" || cleared.value[fiberauth.CSRFCookie] != "" || len(cleared.value) != 3 {
		t.Fatalf("logout left cookies %v", cleared.value)
	}
	expectRefused(t, h.do("GET", "/auth/me", nil, bearer(next.value[fiberauth.AccessCookie])...), "revoked")
	r = h.do("POST", "/halt/refresh", nil, "Cookie", next.header(), fiberauth.CSRFHeader, next.value[fiberauth.CSRFCookie])
	expect(t, r, 401, "invalid_grant")
}
