package fiberauth_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// browser is what a browser keeps in cookie mode: the cookie (not readable
// by the page) and the csrf token the page holds.
type browser struct {
	cookie string // the __Host-refresh value
	csrf   string
	access string
}

// refreshCookie returns the __Host-refresh cookie the response set.
func refreshCookie(t testing.TB, r response) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == fiberauth.RefreshCookie {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", fiberauth.RefreshCookie, r.header["Set-Cookie"])
	return nil
}

// cookieTokens checks a cookie-mode token response and returns the browser
// state it leaves.
func cookieTokens(t testing.TB, r response) browser {
	t.Helper()
	expect(t, r, 200, "")
	for _, k := range []string{"refresh", "refresh_token"} {
		if _, ok := r.body[k]; ok {
			t.Fatalf("cookie mode put %q in the body: %s", k, r.raw)
		}
	}
	c := refreshCookie(t, r)
	raw := strings.Join(r.header["Set-Cookie"], "\n")
	for _, attr := range []string{"secure", "httponly", "samesite=strict", "path=/"} {
		if !strings.Contains(strings.ToLower(raw), attr) {
			t.Fatalf("Set-Cookie %q lacks %s", raw, attr)
		}
	}
	if strings.Contains(strings.ToLower(raw), "domain=") {
		t.Fatalf("Set-Cookie %q names a domain", raw)
	}
	if c.Value == "" || r.str("csrf_token") == "" || r.str("access_token") == "" {
		t.Fatalf("cookie %q, body %s", c.Value, r.raw)
	}
	if exp := r.obj("session")["refresh_expires_at"]; c.Expires.UTC().Format(time.RFC3339) != exp {
		t.Fatalf("cookie expires %v, session says %v", c.Expires, exp)
	}
	return browser{cookie: c.Value, csrf: r.str("csrf_token"), access: r.str("access_token")}
}

func (h *harness) cookieLogin(email string) browser {
	h.t.Helper()
	r := h.do("POST", "/web/auth/login", map[string]any{"email": email, "password": goodPassword})
	b := cookieTokens(h.t, r)
	h.mu.Lock()
	h.secrets = append(h.secrets, b.cookie, b.csrf)
	h.mu.Unlock()
	return b
}

// post sends a cookie-mode call with the cookie and, when csrf is not "",
// the header.
func (h *harness) post(path, cookie, csrf string, body any) response {
	h.t.Helper()
	hdr := []string{}
	if cookie != "" {
		hdr = append(hdr, "Cookie", fiberauth.RefreshCookie+"="+cookie)
	}
	if csrf != "" {
		hdr = append(hdr, fiberauth.CSRFHeader, csrf)
	}
	return h.do("POST", path, body, hdr...)
}

func TestCookieLoginAndRefresh(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	b := h.cookieLogin("ada@example.com")
	if h.profileStatus(b.access) != 200 {
		t.Fatal("the cookie-mode access token does not work")
	}

	r := h.post("/web/auth/refresh", b.cookie, b.csrf, nil)
	nb := cookieTokens(t, r)
	if nb.cookie == b.cookie || nb.access == b.access {
		t.Fatal("refresh did not rotate")
	}
	if nb.csrf != b.csrf {
		t.Fatal("the csrf token changed with rotation; it must last the family's life")
	}
	// A retry within the grace window gets the same pair, cookie included.
	again := cookieTokens(t, h.post("/web/auth/refresh", b.cookie, b.csrf, nil))
	if again != nb {
		t.Fatalf("replay in cookie mode gave another pair")
	}

	// In cookie mode a refresh token in the body is not accepted.
	bodyMode := h.login("ada@example.com", goodPassword)
	expect(t, h.post("/web/auth/refresh", "", "", map[string]any{"refresh_token": bodyMode.refresh}), 401, "invalid_grant")
	// And body mode ignores the cookie.
	expectField(t, h.post("/auth/refresh", nb.cookie, nb.csrf, nil), "refresh_token")
}

func TestCookieCSRFRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	h.createUser("eve@example.com")
	victim := h.cookieLogin("ada@example.com")
	other := h.cookieLogin("ada@example.com")
	attacker := h.cookieLogin("eve@example.com")

	for _, tc := range []struct {
		name, path, cookie, csrf string
	}{
		{"refresh without token", "/web/auth/refresh", victim.cookie, ""},
		{"refresh with a wrong token", "/web/auth/refresh", victim.cookie, "not-the-token"},
		{"refresh with another family's token", "/web/auth/refresh", victim.cookie, other.csrf},
		{"planted cookie without its token", "/web/auth/refresh", attacker.cookie, ""},
		{"planted cookie with the victim's token", "/web/auth/refresh", attacker.cookie, victim.csrf},
		{"logout without token", "/web/auth/logout", victim.cookie, ""},
		{"logout with another family's token", "/web/auth/logout", victim.cookie, other.csrf},
		{"revoke without token", "/web/auth/revoke", victim.cookie, ""},
		{"revoke with a wrong token", "/web/auth/revoke", victim.cookie, strings.Repeat("A", 43)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.post(tc.path, tc.cookie, tc.csrf, nil)
			expect(t, r, 403, "csrf_failed")
			if len(r.header["Set-Cookie"]) != 0 {
				t.Fatalf("a refused call set a cookie: %v", r.header["Set-Cookie"])
			}
		})
	}
	// None of it changed anything: every family still refreshes.
	for _, b := range []browser{victim, other, attacker} {
		cookieTokens(t, h.post("/web/auth/refresh", b.cookie, b.csrf, nil))
	}
	// A refused CSRF check never triggers reuse detection either.
	h.clock.Advance(time.Minute)
	expect(t, h.post("/web/auth/refresh", victim.cookie, "", nil), 403, "csrf_failed")
	if h.profileStatus(victim.access) != 200 {
		t.Fatal("a CSRF-refused replay revoked the family")
	}
}

func TestCookieLogout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	b := h.cookieLogin("ada@example.com")
	b = cookieTokens(t, h.post("/web/auth/refresh", b.cookie, b.csrf, nil))

	r := h.post("/web/auth/logout", b.cookie, b.csrf, nil)
	expect(t, r, 200, "")
	if c := refreshCookie(t, r); c.Value != "" || c.Expires.After(time.Now()) {
		t.Fatalf("logout did not expire the cookie: %+v", c)
	}
	expect(t, h.do("GET", "/api/profile", nil, bearer(b.access)...), 401, "invalid_token")
	r = h.post("/web/auth/refresh", b.cookie, b.csrf, nil)
	expect(t, r, 401, "invalid_grant")
	if refreshCookie(t, r).Value != "" {
		t.Fatal("a refused refresh kept the dead cookie")
	}
	// The csrf token died with its family: a new login has another.
	if nb := h.cookieLogin("ada@example.com"); nb.csrf == b.csrf {
		t.Fatal("a new family got the old csrf token")
	}
	expect(t, h.post("/web/auth/logout", "", "", nil), 401, "invalid_grant")

	// Logout with the bearer token needs no CSRF (nothing ambient) and
	// expires the cookie too.
	nb := h.cookieLogin("ada@example.com")
	r = h.do("POST", "/web/auth/logout", nil, bearer(nb.access)...)
	expect(t, r, 200, "")
	if refreshCookie(t, r).Value != "" {
		t.Fatal("bearer logout in cookie mode kept the cookie")
	}
	expect(t, h.post("/web/auth/refresh", nb.cookie, nb.csrf, nil), 401, "invalid_grant")

	// Revoke with the cookie and its token.
	rb := h.cookieLogin("ada@example.com")
	expect(t, h.post("/web/auth/revoke", rb.cookie, rb.csrf, nil), 200, "")
	expect(t, h.post("/web/auth/refresh", rb.cookie, rb.csrf, nil), 401, "invalid_grant")
	expect(t, h.post("/web/auth/revoke", "", "", nil), 200, "")
}

func TestCookiePasswordChangeAndMFA(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	b := h.cookieLogin("ada@example.com")
	r := h.do("POST", "/web/auth/password/change", map[string]any{"previous_password": goodPassword, "proposed_password": "a new long passphrase"}, bearer(b.access)...)
	nb := cookieTokens(t, r)
	if nb.csrf != b.csrf {
		t.Fatal("the csrf token of the same family changed")
	}
	cookieTokens(t, h.post("/web/auth/refresh", nb.cookie, nb.csrf, nil))

	// The second factor in cookie mode answers the cookie too.
	h.createUser("bob@example.com")
	secret, _ := h.enrol(h.login("bob@example.com", goodPassword))
	r = h.do("POST", "/web/auth/login", map[string]any{"email": "bob@example.com", "password": goodPassword})
	if r.str("challenge_name") != fiberauth.ChallengeMFA || len(r.header["Set-Cookie"]) != 0 {
		t.Fatalf("cookie-mode challenge: %s %v", r.raw, r.header["Set-Cookie"])
	}
	cookieTokens(t, h.do("POST", "/web/auth/login/2fa", map[string]any{"session": r.str("session"), "code": h.totpCode(secret)}))
}
