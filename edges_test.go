package fiberauth_test

// The edges of the mounted endpoints: what every route does with a hostile
// origin, an oversized body or a busy store, the JSON bodies encoding/json
// would read otherwise than a validator in front of the app, and the
// flows whose answers were once not what docs/openapi.json says. Each
// request goes through h.do, so the document checks every exchange too.

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
)

// harnessPrefixes are where newHarnessOn mounts fiberauth: without and
// with cookie mode.
var harnessPrefixes = []string{"/auth", "/web/auth"}

// auditRoutes are the routes Mount wraps in its handler checks (body limit,
// cookie mode's origin check), relative to the mount.
var auditRoutes = []struct{ method, path string }{
	{"POST", "/login"}, {"POST", "/login/2fa"}, {"POST", "/login/new-password"},
	{"POST", "/refresh"}, {"POST", "/logout"}, {"POST", "/logout/all"}, {"POST", "/revoke"},
	{"GET", "/me"}, {"GET", "/sessions"}, {"DELETE", "/sessions/some-id"},
	{"POST", "/password/change"}, {"POST", "/password/forgot"}, {"POST", "/password/reset"},
	{"POST", "/signup"}, {"POST", "/email/confirm"},
	{"POST", "/2fa/setup"}, {"POST", "/2fa/enable"}, {"POST", "/2fa/disable"}, {"POST", "/2fa/recovery-codes"},
}

// goneUsers is a store from which users can be deleted (as a host deletes
// an account row), so that what the caches still hold outlives the record.
type goneUsers struct {
	fiberauth.Store
	mu   sync.Mutex
	gone map[string]bool
}

func (s *goneUsers) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone == nil {
		s.gone = map[string]bool{}
	}
	s.gone[id] = true
}

func (s *goneUsers) check(u fiberauth.User, err error) (fiberauth.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.gone[u.ID] {
		return fiberauth.User{}, fiberauth.ErrNotFound
	}
	return u, err
}

func (s *goneUsers) UserByID(ctx context.Context, id string) (fiberauth.User, error) {
	return s.check(s.Store.UserByID(ctx, id))
}

func (s *goneUsers) UserByEmail(ctx context.Context, email string) (fiberauth.User, error) {
	return s.check(s.Store.UserByEmail(ctx, email))
}

func (s *goneUsers) UserByUsername(ctx context.Context, name string) (fiberauth.User, error) {
	return s.check(s.Store.UserByUsername(ctx, name))
}

// A user deleted while the middleware's cache (CacheTTL) still lets their
// token in: the endpoints that read the user again end the caller's access
// as the middleware will, 401 invalid_token revoked, not 404.
func TestDeletedUserIsRevoked(t *testing.T) {
	t.Parallel()
	store := &goneUsers{Store: memstore.New()}
	h := newHarnessOn(t, store, testEpoch)
	u := h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	expect(t, h.do("GET", "/auth/me", nil, bearer(p.access)...), 200, "") // cached now
	store.delete(u.ID)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/auth/me", nil},
		{"POST", "/auth/password/change", map[string]any{"previous_password": goodPassword, "proposed_password": "another long password"}},
		{"POST", "/auth/2fa/setup", map[string]any{"password": goodPassword}},
		{"POST", "/auth/2fa/disable", map[string]any{"password": goodPassword, "code": "123456"}},
		{"GET", "/web/auth/me", nil},
	} {
		expectRefused(t, h.do(c.method, c.path, c.body, bearer(p.access)...), "revoked")
	}
}

// /logout reads and checks its body with a Bearer token too; a header of
// another scheme is no access token, and the body's refresh token is used.
func TestLogoutBodies(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	for _, c := range []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"text/plain", "text/plain", "this is not JSON", 415, "unsupported_media_type"},
		{"form", "application/x-www-form-urlencoded", "refresh_token=x", 415, "unsupported_media_type"},
		{"ill-typed", "application/json", `{"refresh_token": 42}`, 400, "invalid_request"},
		{"empty", "application/json", "", 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := h.login("ada@example.com", goodPassword)
			expect(t, h.do("POST", "/auth/logout", c.body, append(bearer(p.access), "Content-Type", c.contentType)...), c.status, c.code)
			if live := h.profileStatus(p.access) == 200; live != (c.status != 200) {
				t.Fatalf("after a %d logout the session is live: %v", c.status, live)
			}
		})
	}
	p := h.login("ada@example.com", goodPassword)
	expect(t, h.do("POST", "/auth/logout", map[string]any{"refresh_token": p.refresh}, "Authorization", "Basic YWRhOnB3"), 200, "")
	expect(t, h.refresh(p.refresh), 401, "invalid_grant")
}

// In cookie mode a logout whose access token is refused keeps the refresh
// cookie (the client can still end the session with it), and a refresh or
// logout refused for the cookie's own token expires it (it is dead).
func TestCookieKeptUntilLogout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	b := h.cookieLogin("ada@example.com")
	h.clock.Advance(time.Hour) // the access token expires; the session does not
	r := h.do("POST", "/web/auth/logout", nil, bearer(b.access)...)
	expectRefused(t, r, "expired")
	if r.header.Get("Set-Cookie") != "" {
		t.Fatalf("a refused logout expired the cookie: %q", r.header.Get("Set-Cookie"))
	}
	r = h.post("/web/auth/logout", b.cookie, b.csrf, nil)
	expect(t, r, 200, "")
	if !strings.Contains(r.header.Get("Set-Cookie"), fiberauth.RefreshCookie+"=;") {
		t.Fatalf("logout did not expire the cookie: %q", r.header.Get("Set-Cookie"))
	}
	for _, path := range []string{"/web/auth/refresh", "/web/auth/logout"} {
		r = h.post(path, b.cookie, b.csrf, nil)
		expect(t, r, 401, "invalid_grant")
		if !strings.Contains(r.header.Get("Set-Cookie"), fiberauth.RefreshCookie+"=;") {
			t.Fatalf("%s refused a dead cookie without expiring it: %q", path, r.header.Get("Set-Cookie"))
		}
	}
}

// null for a field is the field absent, as the document says.
func TestNullFields(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	r := h.do("POST", "/auth/login", `{"email": "ada@example.com", "password": "`+goodPassword+`", "username": null, "sliding": null}`)
	expect(t, r, 200, "")
	if r.str("access_token") == "" {
		t.Fatalf("no tokens: %s", r.raw)
	}
}

// A body must be one JSON object, each of whose fields is spelled as the
// document spells it, once: encoding/json would read null as nothing, a
// field in another case as the field, and the last of two spellings, which
// a validator, proxy or WAF in front of the app would read otherwise.
func TestBodiesReadAsValidatorsRead(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	for _, c := range []struct {
		name, path, body, where, reason string
	}{
		{"null body", "/auth/revoke", `null`, "body", "malformed_json"},
		{"array body", "/auth/refresh", `[]`, "body", "malformed_json"},
		{"string body", "/auth/refresh", `"x"`, "body", "malformed_json"},
		{"upper case", "/auth/2fa/setup", `{"PASSWORD": "` + goodPassword + `"}`, "PASSWORD", "wrong_case"},
		{"title case", "/auth/signup", `{"Email": "new@example.com", "Password": "a long new password"}`, "Email", "wrong_case"},
		{"long s", "/auth/2fa/setup", `{"pa\u017Fsword": "` + goodPassword + `"}`, "pa\u017fsword", "wrong_case"},
		{"another key", "/auth/2fa/setup", `{"password": "` + goodPassword + `", "passwords": "x"}`, "", ""},
		{"twice", "/auth/2fa/setup", `{"password": "wrong", "password": "` + goodPassword + `"}`, "password", "duplicate_field"},
		{"both cases", "/auth/login", `{"email": "ada@example.com", "password": "x", "PASSWORD": "` + goodPassword + `"}`, "PASSWORD", "wrong_case"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.do("POST", c.path, c.body, bearer(p.access)...)
			if c.where == "" {
				// Not a name of this request: ignored, like any other key.
				if r.status == 400 && r.str("reason") == "wrong_case" {
					t.Fatalf("an unrelated key was refused: %s", r.raw)
				}
				return
			}
			expect(t, r, 400, "invalid_request")
			if r.str("where") != c.where || r.str("reason") != c.reason {
				t.Fatalf("where %q reason %q, want %q %q: %s", r.str("where"), r.str("reason"), c.where, c.reason, r.raw)
			}
		})
	}
	// The cookie mode's refresh reads its body too.
	b := h.cookieLogin("ada@example.com")
	expect(t, h.post("/web/auth/refresh", b.cookie, b.csrf, "null"), 400, "invalid_request")
}

// A username padded past 64 characters is trimmed, and fits.
func TestSignupUsernameTrimmed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	name := "ada" + strings.Repeat(" ", 70)
	expect(t, h.do("POST", "/auth/signup", map[string]any{"email": "new@example.com", "username": name, "password": "a long new password"}), 202, "")
}

// Without 2FA on, /2fa/disable takes the password alone (and forgets the
// secret /2fa/setup made); with it on, the code is asked for.
func TestDisableWithoutMFA(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	expect(t, h.do("POST", "/auth/2fa/setup", map[string]any{"password": goodPassword}, bearer(p.access)...), 200, "")
	expect(t, h.do("POST", "/auth/2fa/disable", map[string]any{"password": goodPassword}, bearer(p.access)...), 200, "")
}

// Cookie mode's origin check runs for every route of the mount
// (m.handler): a cross-site request is 403 csrf_failed everywhere, as the
// document's 403 says. No other test reaches it on most routes.
func TestEdgeCookieModeCrossSiteEverywhere(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, rt := range auditRoutes {
		for _, hdr := range [][]string{{"Origin", "https://evil.example"}, {"Sec-Fetch-Site", "cross-site"}, {"Origin", "null"}} {
			r := h.do(rt.method, "/web/auth"+rt.path, nil, hdr...)
			if r.status != 403 || r.str("error") != "csrf_failed" {
				t.Errorf("%s /web/auth%s with %s: %d %s, want 403 csrf_failed", rt.method, rt.path, hdr[0], r.status, r.raw)
			}
		}
		// The same request in body mode is not refused for its origin.
		if r := h.do(rt.method, "/auth"+rt.path, nil, "Origin", "https://evil.example"); r.status == 403 && r.str("error") == "csrf_failed" {
			t.Errorf("%s /auth%s: body mode checked the origin", rt.method, rt.path)
		}
	}
}

// Every route of the mount, in both modes, answers a body over
// 16 KiB with 413 payload_too_large before anything else (GET and DELETE
// included).
func TestEdgePayloadTooLargeEverywhere(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	body := `{"x":"` + strings.Repeat("a", fiberauth.MaxBodySize) + `"}`
	for _, prefix := range harnessPrefixes {
		for _, rt := range auditRoutes {
			r := h.do(rt.method, prefix+rt.path, body, "Origin", "https://evil.example")
			if r.status != 413 || r.str("error") != "payload_too_large" {
				t.Errorf("%s %s%s: %d %s, want 413 payload_too_large", rt.method, prefix, rt.path, r.status, r.raw)
			}
		}
	}
}

// GET /sessions and DELETE /sessions/{id} without a token, or
// with a bad one: 401 invalid_token with WWW-Authenticate, in both modes.
func TestEdgeSessionsUnauthorized(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, prefix := range harnessPrefixes {
		expectRefused(t, h.do("GET", prefix+"/sessions", nil), "missing")
		expectRefused(t, h.do("DELETE", prefix+"/sessions/abc", nil), "missing")
		expectRefused(t, h.do("GET", prefix+"/sessions", nil, bearer("not.a.token")...), "malformed")
		expectRefused(t, h.do("DELETE", prefix+"/sessions/abc", nil, bearer("not.a.token")...), "malformed")
	}
}

// The signed-in endpoints in cookie mode (Bearer tokens work the
// same there), which no other test calls: 200s as documented.
func TestEdgeCookieModeSignedIn(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	b := h.cookieLogin("ada@example.com")
	other := h.cookieLogin("ada@example.com")
	auth := bearer(b.access)
	r := h.do("GET", "/web/auth/me", nil, auth...)
	expect(t, r, 200, "")
	r = h.do("GET", "/web/auth/sessions", nil, auth...)
	expect(t, r, 200, "")
	if n := len(r.body["sessions"].([]any)); n != 2 {
		t.Fatalf("%d sessions, want 2: %s", n, r.raw)
	}
	otherSID := ""
	for _, s := range r.body["sessions"].([]any) {
		if m := s.(map[string]any); m["current"] == false {
			otherSID = m["session_family_id"].(string)
		}
	}
	expect(t, h.do("DELETE", "/web/auth/sessions/"+otherSID, nil, auth...), 200, "")
	expect(t, h.do("DELETE", "/web/auth/sessions/"+otherSID, nil, auth...), 404, "not_found")
	if h.profileStatus(other.access) != 401 {
		t.Fatal("the ended session's token still works")
	}
	expect(t, h.do("POST", "/web/auth/2fa/setup", map[string]any{"password": goodPassword}, auth...), 200, "")
	expect(t, h.do("POST", "/web/auth/logout/all", nil, auth...), 200, "")
	expectRefused(t, h.do("GET", "/web/auth/me", nil, auth...), "revoked")
}

// /login/new-password in cookie mode: tokens with the cookie and
// the csrf token, no refresh token in the body.
func TestEdgeCookieModeNewPassword(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if _, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "new@example.com", Password: "temporary secret 1", TemporaryPassword: true, Verified: true}); err != nil {
		t.Fatal(err)
	}
	r := h.do("POST", "/web/auth/login", map[string]any{"email": "new@example.com", "password": "temporary secret 1"})
	expect(t, r, 200, "")
	if r.str("challenge_name") != fiberauth.ChallengeNewPassword {
		t.Fatalf("want a NEW_PASSWORD_REQUIRED challenge: %s", r.raw)
	}
	cookieTokens(t, h.do("POST", "/web/auth/login/new-password", map[string]any{"session": r.str("session"), "email": "new@example.com", "new_password": "my own long password"}))
}

// /password/forgot over MaxResetRequestsPerIP: 429 rate_limited
// with Retry-After (no other test reaches it over HTTP).
func TestEdgeForgotThrottled(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *fiberauth.Config) { c.MaxResetRequestsPerIP = 3 })
	for range 3 {
		expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"email": "ada@example.com"}), 202, "")
	}
	r := h.do("POST", "/auth/password/forgot", map[string]any{"email": "ada@example.com"})
	expectThrottled(t, r, time.Hour)
	// The network's window is shared by both mounts.
	expectThrottled(t, h.do("POST", "/web/auth/password/forgot", map[string]any{"email": "ada@example.com"}), time.Hour)
	h.flush()
}

// /2fa/enable over the second-factor limit (wrong codes of the
// new authenticator): 429 rate_limited, even with the right code.
func TestEdgeEnableThrottled(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *fiberauth.Config) { c.MaxCodeFailures = 2 })
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	r := h.do("POST", "/auth/2fa/setup", map[string]any{"password": goodPassword}, bearer(p.access)...)
	expect(t, r, 200, "")
	secret := r.str("secret")
	right := h.totpCode(secret)
	wrong := "000000"
	if wrong == right {
		wrong = "111111"
	}
	for range 2 {
		expect(t, h.do("POST", "/auth/2fa/enable", map[string]any{"password": goodPassword, "code": wrong}, bearer(p.access)...), 401, "invalid_grant")
	}
	r = h.do("POST", "/auth/2fa/enable", map[string]any{"password": goodPassword, "code": right}, bearer(p.access)...)
	expectThrottled(t, r, 15*time.Minute)
	if s, _ := strconv.Atoi(r.header.Get("Retry-After")); s != 900 {
		t.Fatalf("Retry-After %d, want 900", s)
	}
}

// busySessions refuses ListSessions with ErrBusy while busy is set, as
// sqlstore does with too many writes queued.
type busySessions struct {
	fiberauth.Store
	busy atomic.Bool
}

func (s *busySessions) ListSessions(ctx context.Context, userID string, now time.Time) ([]fiberauth.Session, error) {
	if s.busy.Load() {
		return nil, fiberauth.ErrBusy
	}
	return s.Store.ListSessions(ctx, userID, now)
}

// A busy store (ErrBusy): 503 unavailable with Retry-After: 1,
// the documented Unavailable answer no handler test reaches.
func TestEdgeBusyStore(t *testing.T) {
	t.Parallel()
	store := &busySessions{Store: memstore.New()}
	h := newHarnessOn(t, store, testEpoch)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	store.busy.Store(true)
	for _, prefix := range harnessPrefixes {
		r := h.do("GET", prefix+"/sessions", nil, bearer(p.access)...)
		expect(t, r, 503, "unavailable")
		if r.header.Get("Retry-After") != "1" {
			t.Fatalf("Retry-After %q, want 1", r.header.Get("Retry-After"))
		}
	}
	store.busy.Store(false)
	expect(t, h.do("GET", "/auth/sessions", nil, bearer(p.access)...), 200, "")
}
