package fiberauth_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/fiberauth/fiberauth"
)

// keysOf is the sorted keys of a JSON object.
func keysOf(m map[string]any) string {
	return strings.Join(slices.Sorted(maps.Keys(m)), ",")
}

// misakaHarness is a harness with the Misaka profile at /v3/session (and
// one whose user shape types is_staff at /typed).
func misakaHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.auth.Mount(h.app.Group("/v3/session"), fiberauth.WithProfile(fiberauth.ProfileMisaka))
	h.auth.Mount(h.app.Group("/typed"), fiberauth.WithProfile(fiberauth.ProfileMisaka), fiberauth.WithUserShape(func(u *fiberauth.User, f map[string]any) {
		f["first_name"] = u.Attributes["first_name"]
		f["is_staff"] = u.Attributes["is_staff"] == "true"
	}))
	return h
}

// expectDetail expects Misaka's error: status, and a body of "detail" alone.
func expectDetail(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status || keysOf(r.body) != "detail" || r.str("detail") == "" {
		t.Fatalf("answered %d %s, want %d {\"detail\": …}", r.status, r.raw, status)
	}
}

// A Misaka v3 client: the requests it sends and the keys it reads, exactly.
func TestProfileMisaka(t *testing.T) {
	t.Parallel()
	h := misakaHarness(t)
	ctx := context.Background()
	u, err := h.auth.CreateUser(ctx, fiberauth.NewUser{Email: "ada@example.com", Username: "ada", DisplayName: "Ada", Password: goodPassword, Verified: true,
		Attributes: map[string]string{"first_name": "Ada", "last_name": "Lovelace", "country": "GB", "is_staff": "true"}})
	if err != nil {
		t.Fatal(err)
	}

	// Login: email wins over username; sliding_token only when sliding.
	r := h.do("POST", "/v3/session/login", map[string]any{"username": "nobody", "email": "ada@example.com", "password": goodPassword})
	expect(t, r, 200, "")
	if got := keysOf(r.body); got != "access,access_token,refresh,refresh_token,sliding_token,user,user_etag" {
		t.Fatalf("login keys %s", got)
	}
	if r.body["sliding_token"] != nil || r.str("access") != r.str("access_token") || r.str("refresh") != r.str("refresh_token") {
		t.Fatalf("login answer %s", r.raw)
	}
	user := r.obj("user")
	if keysOf(user) != "country,display_name,email,first_name,id,is_staff,last_name,username" || user["id"] != u.ID || user["is_staff"] != "true" {
		t.Fatalf("user %v", user)
	}
	first := r
	r = h.do("POST", "/typed/login", map[string]any{"username": "ada", "password": goodPassword, "sliding": true})
	expect(t, r, 200, "")
	if r.str("sliding_token") == "" || r.str("sliding_token") != r.str("refresh") {
		t.Fatalf("sliding login: %s", r.raw)
	}
	if user := r.obj("user"); keysOf(user) != "display_name,email,first_name,id,is_staff,username" || user["is_staff"] != true {
		t.Fatalf("shaped user %v", user)
	}

	// Errors: {"detail"} with the status, a short password refused on input.
	expectDetail(t, h.do("POST", "/v3/session/login", map[string]any{"email": "ada@example.com", "password": "12345"}), 400)
	expectDetail(t, h.do("POST", "/v3/session/login", map[string]any{"email": "ada@example.com", "password": "wrong password"}), 401)
	expectDetail(t, h.do("POST", "/v3/session/login", "not json", "Content-Type", "text/plain"), 415)
	r = h.do("GET", "/v3/session/me", nil)
	expectDetail(t, r, 401)
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}

	// Refresh: the user only when the etag is not current.
	r = h.do("POST", "/v3/session/refresh", map[string]any{"refresh": first.str("refresh"), "etag": first.str("user_etag")})
	expect(t, r, 200, "")
	if got := keysOf(r.body); got != "access,refresh,user_etag" {
		t.Fatalf("refresh keys %s", got)
	}
	r = h.do("POST", "/v3/session/refresh", map[string]any{"refresh": r.str("refresh"), "etag": "stale"})
	if got := keysOf(r.body); r.status != 200 || got != "access,refresh,user,user_etag" {
		t.Fatalf("refresh with a stale etag: %d %s", r.status, r.raw)
	}
	expectDetail(t, h.do("POST", "/v3/session/refresh", map[string]any{"refresh": first.str("refresh")}), 401) // reused

	// Me, change-password, logout.
	p := pairOf(t, h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword}))
	r = h.do("GET", "/v3/session/me", nil, bearer(p.access)...)
	if got := keysOf(r.body); r.status != 200 || got != "session_family_id,user,user_etag" || r.str("session_family_id") != p.sid {
		t.Fatalf("me: %d %s", r.status, r.raw)
	}
	expectDetail(t, h.do("POST", "/v3/session/change-password", map[string]any{"old_password": "wrong password", "new_password": "a new long password"}, bearer(p.access)...), 401)
	r = h.do("POST", "/v3/session/change-password", map[string]any{"old_password": goodPassword, "new_password": "a new long password"}, bearer(p.access)...)
	if got := keysOf(r.body); r.status != 200 || got != "access,refresh,user,user_etag" {
		t.Fatalf("change-password: %d %s", r.status, r.raw)
	}
	h.keep("a new long password")
	r = h.do("POST", "/v3/session/logout", nil, bearer(r.str("access"))...)
	if r.status != 200 || keysOf(r.body) != "detail" {
		t.Fatalf("logout: %d %s", r.status, r.raw)
	}
	expect(t, h.refresh(p.refresh), 401, "")
}

// Misaka's second step, and its email confirmation.
func TestProfileMisakaTwoFactorAndConfirm(t *testing.T) {
	t.Parallel()
	h := misakaHarness(t)
	h.createUser("ada@example.com")
	secret, _ := h.enrol(h.login("ada@example.com", goodPassword))
	r := h.do("POST", "/v3/session/login", map[string]any{"email": "ada@example.com", "password": goodPassword})
	if got := keysOf(r.body); r.status != 200 || got != "challenge,challenge_name,expires_in" || r.str("challenge_name") != fiberauth.ChallengeMFA {
		t.Fatalf("login with 2FA: %d %s", r.status, r.raw)
	}
	expectDetail(t, h.do("POST", "/v3/session/login/2fa", map[string]any{"challenge": r.str("challenge"), "code": "000000"}), 401)
	r = h.do("POST", "/v3/session/login/2fa", map[string]any{"challenge": r.str("challenge"), "code": h.totpCode(secret)})
	if got := keysOf(r.body); r.status != 200 || got != "access,access_token,refresh,refresh_token,sliding_token,user,user_etag" {
		t.Fatalf("login/2fa: %d %s", r.status, r.raw)
	}

	expect(t, h.do("POST", "/auth/signup", map[string]any{"email": "bob@example.com", "password": "bob's long password"}), 202, "")
	h.keep("bob's long password")
	code := h.lastCode("bob@example.com", "email_confirm")
	expectDetail(t, h.do("POST", "/v3/session/confirm-email", map[string]any{"email": "bob@example.com", "code": "wrong"}), 401)
	r = h.do("POST", "/v3/session/confirm-email", map[string]any{"email": "bob@example.com", "code": code})
	if r.status != 200 || keysOf(r.body) != "detail" {
		t.Fatalf("confirm-email: %d %s", r.status, r.raw)
	}
}

// WithIDTokens: fiberauth's own answers and Misaka's carry an ID token of
// the user signed in, at login and refresh; without it they carry none.
func TestWithIDTokens(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.auth.Mount(h.app.Group("/idt"), fiberauth.WithIDTokens())
	h.auth.Mount(h.app.Group("/idm"), fiberauth.WithProfile(fiberauth.ProfileMisaka), fiberauth.WithIDTokens())
	u := h.createUser("ada@example.com")
	check := func(what string, r response) {
		t.Helper()
		expect(t, r, 200, "")
		c, err := h.auth.VerifyIDToken(r.str("id_token"))
		if err != nil || c.Subject != u.ID {
			t.Fatalf("%s: id_token %v %v in %s", what, c, err, r.raw)
		}
	}
	r := h.do("POST", "/idt/login", map[string]any{"email": "ada@example.com", "password": goodPassword})
	check("login", r)
	check("refresh", h.do("POST", "/idt/refresh", map[string]any{"refresh_token": r.str("refresh_token")}))
	r = h.do("POST", "/idm/login", map[string]any{"email": "ada@example.com", "password": goodPassword})
	check("Misaka login", r)
	check("Misaka refresh", h.do("POST", "/idm/refresh", map[string]any{"refresh": r.str("refresh")}))
	if r := h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword}); r.body["id_token"] != nil {
		t.Fatalf("an ID token without WithIDTokens: %s", r.raw)
	}
}

// One Auth, one set of sessions: signed in through Misaka, signed out
// through fiberauth's own API, and the other way round.
func TestProfilesShareSessions(t *testing.T) {
	t.Parallel()
	h := misakaHarness(t)
	h.createUser("ada@example.com")
	r := h.do("POST", "/v3/session/login", map[string]any{"email": "ada@example.com", "password": goodPassword})
	expect(t, r, 200, "")
	access := r.str("access")
	expect(t, h.do("GET", "/auth/me", nil, bearer(access)...), 200, "")
	expect(t, h.do("POST", "/auth/logout", nil, bearer(access)...), 200, "")
	expectDetail(t, h.do("GET", "/v3/session/me", nil, bearer(access)...), 401)

	p := h.login("ada@example.com", goodPassword)
	r = h.do("POST", "/v3/session/logout", map[string]any{"refresh": p.refresh})
	expect(t, r, 200, "")
	expectRefused(t, h.do("GET", "/auth/me", nil, bearer(p.access)...), "revoked")
}

// Every profile on one Auth: a session started through one is the same
// session in the others, and ended through one, it is ended for all.
func TestProfilesShareSessionsAll(t *testing.T) {
	t.Parallel()
	h := misakaHarness(t)
	h.auth.Mount(h.app.Group("/halt"), fiberauth.WithProfile(fiberauth.ProfileHaltman))
	h.auth.Mount(h.app.Group("/v1"), fiberauth.WithProfile(fiberauth.ProfileCognito))
	u := h.createUser("ada@example.com")

	// Cognito signs in; Misaka and fiberauth's own API see the session;
	// haltman's logout (its refresh cookie) ends it; Cognito's refresh fails.
	r := h.do("POST", "/v1/login", map[string]any{"username": "ada@example.com", "password": goodPassword})
	expect(t, r, 200, "")
	access, refresh := r.str("access_token"), r.str("refresh_token")
	h.keep(refresh)
	me := h.do("GET", "/v3/session/me", nil, bearer(access)...)
	if me.status != 200 || me.obj("user")["id"] != u.ID {
		t.Fatalf("Misaka /me with Cognito's token: %s", me.raw)
	}
	own := h.do("GET", "/auth/me", nil, bearer(access)...)
	expect(t, own, 200, "")
	sid := own.obj("session")["session_family_id"].(string)
	if me.str("session_family_id") != sid {
		t.Fatalf("two sessions: %s and %s", me.str("session_family_id"), sid)
	}
	csrf := h.do("POST", "/web/auth/refresh", nil, "Cookie", fiberauth.RefreshCookie+"="+refresh)
	expect(t, csrf, 403, "csrf_failed") // a cookie needs its CSRF token, which only a sign-in in cookie mode hands out
	b := h.cookieLogin("ada@example.com")
	r = h.do("POST", "/halt/logout", nil, "Cookie", fiberauth.RefreshCookie+"="+b.cookie, fiberauth.CSRFHeader, b.csrf)
	expect(t, r, 200, "")
	expectRefused(t, h.do("GET", "/auth/me", nil, bearer(b.access)...), "revoked")

	expect(t, h.do("POST", "/v3/session/logout", map[string]any{"refresh": refresh}), 200, "")
	expectMessage(t, h.do("POST", "/v1/token-refresh", map[string]any{"username": "ada@example.com", "refresh_token": refresh}), 401)
	expectRefused(t, h.do("GET", "/auth/me", nil, bearer(access)...), "revoked")
}
