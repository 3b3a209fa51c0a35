package fiberauth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// Every JSON endpoint refuses a body that is not JSON by its Content-Type,
// unread: a cross-site form can post text/plain without a preflight, so a
// hostile page could otherwise sign a visitor into the attacker's account.
func TestJSONOnly(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := h.createUser("ada@example.com")
	login := `{"email":"ada@example.com","password":"` + goodPassword + `"}`
	for _, path := range []string{"/auth/login", "/web/auth/login"} {
		for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "", "application/jsonx", "json"} {
			r := h.do("POST", path, login, "Content-Type", ct)
			expect(t, r, 415, "unsupported_media_type")
		}
	}
	if list, err := h.store.ListSessions(context.Background(), u.ID, h.clock.Now()); err != nil || len(list) != 0 {
		t.Fatalf("a refused body started sessions: %v, %v", list, err)
	}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "application/x-amz-json-1.1", "application/vnd.api+json"} {
		pairOf(t, h.do("POST", "/auth/login", login, "Content-Type", ct))
	}
	// The other JSON endpoints too (signed in where they need it: the
	// access token is checked first); a body-less call needs no type.
	p := h.login("ada@example.com", goodPassword)
	for _, path := range jsonEndpoints {
		hdr := []string{"Content-Type", "text/plain"}
		if !strings.HasSuffix(path, "/logout") { // a Bearer logout reads no body
			hdr = append(hdr, bearer(p.access)...)
		}
		expect(t, h.do("POST", path, `{}`, hdr...), 415, "unsupported_media_type")
	}
	expect(t, h.do("POST", "/auth/logout", nil, bearer(p.access)...), 200, "")
}

// Cookie mode refuses a call from another site's page, by its Origin or
// Sec-Fetch-Site, before anything else (login CSRF included); body mode,
// which a page cannot use with ambient credentials, does not look.
func TestCookieModeOrigin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	body := map[string]any{"email": "ada@example.com", "password": goodPassword}
	for _, tc := range []struct {
		name    string
		headers []string
		status  int
	}{
		{"no origin (not a browser)", nil, 200},
		{"same origin", []string{"Origin", "http://example.com"}, 200},
		{"same origin, fetch metadata", []string{"Origin", "http://example.com", "Sec-Fetch-Site", "same-origin"}, 200},
		{"another origin", []string{"Origin", "https://evil.example"}, 403},
		{"another port", []string{"Origin", "http://example.com:8080"}, 403},
		{"null origin", []string{"Origin", "null"}, 403},
		{"cross-site", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"cross-site with a forged origin", []string{"Origin", "http://example.com", "Sec-Fetch-Site", "cross-site"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("POST", "/web/auth/login", body, tc.headers...)
			if tc.status == 403 {
				expect(t, r, 403, "csrf_failed")
				if len(r.header["Set-Cookie"]) != 0 {
					t.Fatal("a refused cross-site login set a cookie")
				}
				return
			}
			cookieTokens(t, r)
			// Body mode does not look at the origin.
			pairOf(t, h.do("POST", "/auth/login", body, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"))
		})
	}

	allowed := newHarness(t, func(c *fiberauth.Config) { c.AllowedOrigins = []string{"https://app.example.com"} })
	allowed.createUser("ada@example.com")
	cookieTokens(t, allowed.do("POST", "/web/auth/login", body, "Origin", "https://app.example.com"))
	expect(t, allowed.do("POST", "/web/auth/login", body, "Origin", "http://example.com"), 403, "csrf_failed")
}

// Every answer that may carry a token or a code is not to be cached by
// anything on the way (RFC 6749 §5.1).
func TestNoStore(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	for _, r := range []response{
		h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword}),
		h.refresh(p.refresh),
		h.do("POST", "/auth/2fa/setup", map[string]any{"password": goodPassword}, bearer(p.access)...),
		h.do("POST", "/web/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword}),
		h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": "wrong password!"}),
	} {
		if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
			t.Fatalf("answered %d with Cache-Control %q, Pragma %q", r.status, r.header.Get("Cache-Control"), r.header.Get("Pragma"))
		}
	}
}

// Half through a login (the password right, the second factor not yet
// given) a user has nothing the middleware or the refresh endpoint takes.
func TestNothingHalfAuthenticated(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch)
		u := h.createUser("ada@example.com")
		h.enrol(h.login("ada@example.com", goodPassword))
		before, err := h.store.ListSessions(context.Background(), u.ID, h.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		session := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
		after, err := h.store.ListSessions(context.Background(), u.ID, h.clock.Now())
		if err != nil || len(after) != len(before) {
			t.Fatalf("the password step started a session: %d before, %d after (%v)", len(before), len(after), err)
		}
		expect(t, h.do("GET", "/api/profile", nil, bearer(session)...), 401, "invalid_token")
		expect(t, h.do("GET", "/auth/me", nil, bearer(session)...), 401, "invalid_token")
		expect(t, h.refresh(session), 401, "invalid_grant")
		expect(t, h.do("POST", "/auth/logout", map[string]any{"refresh_token": session}), 401, "invalid_grant")
	})
}

// Every spelling of a path that reaches a handler reaches its limits too:
// they count per account and network, not per path.
func TestPathVariantsShareLimits(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch)
		h.createUser("ada@example.com")
		wrong := map[string]any{"email": "ada@example.com", "password": "wrong password!"}
		// Fiber routes these to the login handler (case-insensitive, no strict
		// trailing slash, as by default); "//login" routes nowhere (404).
		for _, path := range []string{"/auth/login/", "/auth/LOGIN", "/AUTH/Login", "/auth/login"} {
			expect(t, h.do("POST", path, wrong), 401, "invalid_credentials")
		}
		for range 10 {
			if r := h.do("POST", "/auth/Login/", wrong); r.status != 401 && r.status != 429 {
				t.Fatalf("a path variant answered %d", r.status)
			}
		}
		expectThrottled(t, h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword}), 15*time.Minute)
		expectThrottled(t, h.do("POST", "/auth/LOGIN/", map[string]any{"email": "ada@example.com", "password": goodPassword}), 15*time.Minute)
	})
}
