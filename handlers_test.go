package fiberauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberauth/fiberauth"
)

func TestLoginTokenResponse(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{
		Email: "Ada@Example.com", Username: "Ada", DisplayName: "Ada L.", Password: goodPassword,
		Roles: []string{"editor"}, Attributes: map[string]string{"plan": "pro"}, Verified: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := h.do("POST", "/auth/login", map[string]any{"email": "ADA@example.com", "password": goodPassword}, "User-Agent", "test-agent")
	expect(t, r, 200, "")
	if r.str("access") != r.str("access_token") || r.str("refresh") != r.str("refresh_token") || r.str("access") == "" || r.str("refresh") == "" {
		t.Fatalf("access/refresh and their aliases differ or are empty: %s", r.raw)
	}
	if r.str("token_type") != "Bearer" || r.body["expires_in"] != float64(900) || r.str("user_etag") != u.ETag {
		t.Fatalf("token_type/expires_in/user_etag wrong: %s", r.raw)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control = %q, want no-store", r.header.Get("Cache-Control"))
	}
	user := r.obj("user")
	for k, want := range map[string]any{
		"id": u.ID, "email": "ada@example.com", "username": "ada", "display_name": "Ada L.",
		"email_verified": true, "mfa_enabled": false,
		"created_at": "2030-06-01T12:00:00Z", "updated_at": "2030-06-01T12:00:00Z",
	} {
		if user[k] != want {
			t.Errorf("user.%s = %v, want %v", k, user[k], want)
		}
	}
	if fmt.Sprint(user["roles"]) != "[editor]" || fmt.Sprint(user["attributes"]) != "map[plan:pro]" {
		t.Errorf("roles/attributes = %v / %v", user["roles"], user["attributes"])
	}
	for _, secret := range []string{"password", "password_hash", "hash"} {
		if _, ok := user[secret]; ok {
			t.Errorf("user carries %q", secret)
		}
	}
	s := r.obj("session")
	if s["session_family_id"] == "" || s["access_expires_at"] != "2030-06-01T12:15:00Z" || s["refresh_expires_at"] != "2030-07-01T12:00:00Z" {
		t.Fatalf("session = %v", s)
	}
	if got := h.profileStatus(r.str("access")); got != 200 {
		t.Fatalf("the new access token gets %d on a protected route", got)
	}
	if !h.sawEvent(fiberauth.EventLoginSucceeded) {
		t.Fatal("no login_succeeded event")
	}
}

func TestLoginNamesAndFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *fiberauth.Config) { c.RequireVerifiedEmail = true })
	if _, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "ada@example.com", Username: "ada", Password: goodPassword, Verified: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "new@example.com", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	off := h.createUser("off@example.com")
	if err := h.auth.DisableUser(context.Background(), off.ID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
		where  string
	}{
		{"email", map[string]any{"email": "ada@example.com", "password": goodPassword}, 200, "", ""},
		{"username", map[string]any{"username": "ADA", "password": goodPassword}, 200, "", ""},
		{"email in username field", map[string]any{"username": "ada@example.com", "password": goodPassword}, 200, "", ""},
		{"sliding", map[string]any{"email": "ada@example.com", "password": goodPassword, "sliding": true}, 200, "", ""},
		{"wrong password", map[string]any{"email": "ada@example.com", "password": "wrong password!"}, 401, "invalid_credentials", ""},
		{"unknown account", map[string]any{"email": "nobody@example.com", "password": goodPassword}, 401, "invalid_credentials", ""},
		{"unknown username", map[string]any{"username": "nobody", "password": goodPassword}, 401, "invalid_credentials", ""},
		{"disabled account", map[string]any{"email": "off@example.com", "password": goodPassword}, 401, "invalid_credentials", ""},
		{"unverified email", map[string]any{"email": "new@example.com", "password": goodPassword}, 403, "email_not_verified", ""},
		{"no name", map[string]any{"password": goodPassword}, 400, "invalid_request", "username"},
		{"no password", map[string]any{"email": "ada@example.com"}, 400, "invalid_request", "password"},
		{"empty body", "", 400, "invalid_request", "username"},
		{"password not a string", map[string]any{"email": "ada@example.com", "password": 12345678}, 400, "invalid_request", "password"},
		{"sliding not a bool", map[string]any{"email": "ada@example.com", "password": goodPassword, "sliding": "yes"}, 400, "invalid_request", "sliding"},
		{"malformed JSON", `{"email": "ada@example.com",`, 400, "invalid_request", "body"},
		{"JSON array", `[1,2]`, 400, "invalid_request", "body"},
		{"password over 1024 bytes", map[string]any{"email": "ada@example.com", "password": strings.Repeat("x", 1025)}, 400, "invalid_request", "password"},
		{"name over 254 bytes", map[string]any{"email": strings.Repeat("x", 250) + "@example.com", "password": goodPassword}, 400, "invalid_request", "email"},
		{"body over 16 KiB", `{"email":"ada@example.com","password":"` + strings.Repeat("x", 17<<10) + `"}`, 413, "payload_too_large", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("POST", "/auth/login", tc.body)
			if tc.where != "" {
				expectField(t, r, tc.where)
				return
			}
			expect(t, r, tc.status, tc.code)
			if tc.status == 200 {
				pairOf(t, r)
			} else if r.body["access_token"] != nil || r.body["refresh_token"] != nil {
				t.Fatalf("a failed login answered tokens: %s", r.raw)
			}
		})
	}
	if !h.sawEvent(fiberauth.EventLoginFailed) {
		t.Fatal("no login_failed event")
	}
}

// The host's app body limit is larger than ours by default; ours applies
// whatever the host set.
func TestBodyLimitOnEveryHandler(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	big := `{"x":"` + strings.Repeat("a", fiberauth.MaxBodySize) + `"}`
	for _, path := range []string{"/auth/login", "/auth/refresh", "/auth/logout", "/auth/revoke", "/auth/password/change",
		"/auth/password/forgot", "/auth/password/reset", "/auth/signup", "/auth/email/confirm", "/auth/logout/all"} {
		expect(t, h.do("POST", path, big), 413, "payload_too_large")
	}
}

func TestMeAndSessions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := h.createUser("ada@example.com")
	p1 := pairOf(t, h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword}, "User-Agent", "phone"))
	h.clock.Advance(time.Minute)
	p2 := pairOf(t, h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword}, "User-Agent", "laptop"))

	me := h.do("GET", "/auth/me", nil, bearer(p2.access)...)
	expect(t, me, 200, "")
	if me.obj("user")["id"] != u.ID || me.str("user_etag") != u.ETag || me.obj("session")["session_family_id"] != p2.sid ||
		me.obj("session")["access_expires_at"] != "2030-06-01T12:16:00Z" {
		t.Fatalf("/me = %s", me.raw)
	}
	expect(t, h.do("GET", "/auth/me", nil), 401, "invalid_token")

	list := h.do("GET", "/auth/sessions", nil, bearer(p2.access)...)
	expect(t, list, 200, "")
	sessions, _ := list.body["sessions"].([]any)
	if len(sessions) != 2 {
		t.Fatalf("sessions = %s", list.raw)
	}
	first, second := sessions[0].(map[string]any), sessions[1].(map[string]any)
	if first["session_family_id"] != p1.sid || first["current"] != false || first["user_agent"] != "phone" || first["ip"] != "0.0.0.0" ||
		second["session_family_id"] != p2.sid || second["current"] != true || second["created_at"] != "2030-06-01T12:01:00Z" || second["last_used_at"] == nil {
		t.Fatalf("sessions = %s", list.raw)
	}

	// Another user cannot end Ada's session; Ada can.
	h.createUser("eve@example.com")
	eve := h.login("eve@example.com", goodPassword)
	expect(t, h.do("DELETE", "/auth/sessions/"+p1.sid, nil, bearer(eve.access)...), 404, "not_found")
	expect(t, h.do("DELETE", "/auth/sessions/unknown", nil, bearer(eve.access)...), 404, "not_found")
	if h.profileStatus(p1.access) != 200 {
		t.Fatal("Eve's attempt ended Ada's session")
	}
	expect(t, h.do("DELETE", "/auth/sessions/"+p1.sid, nil, bearer(p2.access)...), 200, "")
	expect(t, h.do("GET", "/api/profile", nil, bearer(p1.access)...), 401, "invalid_token")
	expect(t, h.refresh(p1.refresh), 401, "invalid_grant")
	expect(t, h.do("DELETE", "/auth/sessions/"+p1.sid, nil, bearer(p2.access)...), 404, "not_found")
	list = h.do("GET", "/auth/sessions", nil, bearer(p2.access)...)
	if sessions, _ := list.body["sessions"].([]any); len(sessions) != 1 {
		t.Fatalf("after ending one: %s", list.raw)
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")

	t.Run("bearer", func(t *testing.T) {
		p, other := h.login("ada@example.com", goodPassword), h.login("ada@example.com", goodPassword)
		expect(t, h.do("POST", "/auth/logout", nil, bearer(p.access)...), 200, "")
		expect(t, h.do("GET", "/api/profile", nil, bearer(p.access)...), 401, "invalid_token")
		expect(t, h.refresh(p.refresh), 401, "invalid_grant")
		expect(t, h.do("POST", "/auth/logout", nil, bearer(p.access)...), 401, "invalid_token")
		if h.profileStatus(other.access) != 200 {
			t.Fatal("logout ended another session")
		}
	})
	t.Run("refresh token in body", func(t *testing.T) {
		for _, field := range []string{"refresh", "refresh_token"} {
			p := h.login("ada@example.com", goodPassword)
			r := h.do("POST", "/auth/logout", map[string]any{field: p.refresh})
			expect(t, r, 200, "")
			if r.body["ok"] != true {
				t.Fatalf("logout body %s", r.raw)
			}
			expect(t, h.do("GET", "/api/profile", nil, bearer(p.access)...), 401, "invalid_token")
			expect(t, h.do("POST", "/auth/logout", map[string]any{field: p.refresh}), 401, "invalid_grant")
		}
		expectField(t, h.do("POST", "/auth/logout", nil), "refresh_token")
		expect(t, h.do("POST", "/auth/logout", map[string]any{"refresh_token": "nope"}), 401, "invalid_grant")
	})
	t.Run("all", func(t *testing.T) {
		p1, p2 := h.login("ada@example.com", goodPassword), h.login("ada@example.com", goodPassword)
		h.createUser("bob@example.com")
		bob := h.login("bob@example.com", goodPassword)
		expect(t, h.do("POST", "/auth/logout/all", nil, bearer(p1.access)...), 200, "")
		for _, p := range []pair{p1, p2} {
			expect(t, h.do("GET", "/api/profile", nil, bearer(p.access)...), 401, "invalid_token")
			expect(t, h.refresh(p.refresh), 401, "invalid_grant")
		}
		if h.profileStatus(bob.access) != 200 {
			t.Fatal("logout/all ended another user's session")
		}
		expect(t, h.do("POST", "/auth/logout/all", nil), 401, "invalid_token")
	})
	t.Run("revoke", func(t *testing.T) {
		for _, field := range []string{"refresh", "refresh_token"} {
			p := h.login("ada@example.com", goodPassword)
			expect(t, h.do("POST", "/auth/revoke", map[string]any{field: p.refresh}), 200, "")
			expect(t, h.refresh(p.refresh), 401, "invalid_grant")
			expect(t, h.do("GET", "/api/profile", nil, bearer(p.access)...), 401, "invalid_token")
		}
		r := h.do("POST", "/auth/revoke", map[string]any{"refresh_token": "unknown-token"})
		expect(t, r, 200, "")
		if r.body["ok"] != true {
			t.Fatalf("revoke of an unknown token: %s", r.raw)
		}
		expectField(t, h.do("POST", "/auth/revoke", map[string]any{}), "refresh_token")
		expectField(t, h.do("POST", "/auth/revoke", map[string]any{"refresh_token": 7}), "refresh_token")
	})
}

func TestPasswordChange(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := h.createUser("ada@example.com")
	cur, other := h.login("ada@example.com", goodPassword), h.login("ada@example.com", goodPassword)
	const next = "a brand new passphrase"

	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
		code   string
		where  string
	}{
		{"wrong previous", map[string]any{"previous_password": "not my password", "proposed_password": next}, 401, "invalid_credentials", ""},
		{"missing previous", map[string]any{"proposed_password": next}, 400, "", "previous_password"},
		{"missing proposed", map[string]any{"previous_password": goodPassword}, 400, "", "proposed_password"},
		{"too short", map[string]any{"previous_password": goodPassword, "proposed_password": "short"}, 400, "", "proposed_password"},
		{"too common", map[string]any{"previous_password": goodPassword, "proposed_password": "Password123"}, 400, "", "proposed_password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("POST", "/auth/password/change", tc.body, bearer(cur.access)...)
			if tc.where != "" {
				expectField(t, r, tc.where)
			} else {
				expect(t, r, tc.status, tc.code)
			}
		})
	}
	expect(t, h.do("POST", "/auth/password/change", map[string]any{"previous_password": goodPassword, "proposed_password": next}), 401, "invalid_token")
	if h.profileStatus(cur.access) != 200 || h.profileStatus(other.access) != 200 {
		t.Fatal("a refused change ended a session")
	}

	r := h.do("POST", "/auth/password/change", map[string]any{"previous_password": goodPassword, "proposed_password": next}, bearer(cur.access)...)
	np := pairOf(t, r)
	if np.sid != cur.sid || np.etag == u.ETag || np.refresh == cur.refresh {
		t.Fatalf("change must answer a new pair of the same session with a new etag: %s", r.raw)
	}
	// Old access tokens die at once, the current session's too; the other
	// session is revoked; the new pair works.
	expect(t, h.do("GET", "/api/profile", nil, bearer(cur.access)...), 401, "invalid_token")
	expect(t, h.do("GET", "/api/profile", nil, bearer(other.access)...), 401, "invalid_token")
	expect(t, h.refresh(other.refresh), 401, "invalid_grant")
	if h.profileStatus(np.access) != 200 {
		t.Fatal("the new access token does not work")
	}
	pairOf(t, h.refresh(np.refresh))
	expect(t, h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword}), 401, "invalid_credentials")
	h.login("ada@example.com", next)
	if !h.sawEvent(fiberauth.EventPasswordChanged) {
		t.Fatal("no password_changed event")
	}
}

func TestPasswordForgotAndReset(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	const next = "reset to something long"

	// Known and unknown accounts get the same answer.
	for _, body := range []map[string]any{{"email": "ada@example.com"}, {"email": "nobody@example.com"}, {"username": "nobody"}} {
		r := h.do("POST", "/auth/password/forgot", body)
		expect(t, r, 202, "")
		if r.body["ok"] != true {
			t.Fatalf("forgot: %s", r.raw)
		}
	}
	expectField(t, h.do("POST", "/auth/password/forgot", map[string]any{}), "username")
	code := h.lastCode("ada@example.com", fiberauth.PurposePasswordReset)
	if len(code) < 6 {
		t.Fatalf("code %q is shorter than 6 digits", code)
	}

	reset := func(body map[string]any) response { return h.do("POST", "/auth/password/reset", body) }
	expectField(t, reset(map[string]any{"email": "ada@example.com", "confirmation_code": code, "password": "short"}), "password")
	expectField(t, reset(map[string]any{"email": "ada@example.com", "password": next}), "confirmation_code")
	expect(t, reset(map[string]any{"email": "nobody@example.com", "confirmation_code": code, "password": next}), 401, "invalid_grant")
	expect(t, reset(map[string]any{"email": "ada@example.com", "confirmation_code": "000000x", "password": next}), 401, "invalid_grant")
	if h.profileStatus(p.access) != 200 {
		t.Fatal("a failed reset ended the session")
	}

	r := reset(map[string]any{"email": "ada@example.com", "confirmation_code": code, "password": next})
	expect(t, r, 200, "")
	if r.body["ok"] != true {
		t.Fatalf("reset: %s", r.raw)
	}
	expect(t, h.do("GET", "/api/profile", nil, bearer(p.access)...), 401, "invalid_token")
	expect(t, h.refresh(p.refresh), 401, "invalid_grant")
	expect(t, reset(map[string]any{"email": "ada@example.com", "confirmation_code": code, "password": "yet another phrase"}), 401, "invalid_grant")
	h.login("ada@example.com", next)
	if !h.sawEvent(fiberauth.EventPasswordReset) {
		t.Fatal("no password_reset event")
	}
}

func TestResetCodeBurnAndExpiry(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	const next = "reset to something long"
	reset := func(code string) response {
		return h.do("POST", "/auth/password/reset", map[string]any{"username": "ada@example.com", "confirmation_code": code, "password": next})
	}

	expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"username": "ada@example.com"}), 202, "")
	code := h.lastCode("ada@example.com", fiberauth.PurposePasswordReset)
	for range fiberauth.CodeMaxAttempts {
		expect(t, reset("999999x"), 401, "invalid_grant")
	}
	expect(t, reset(code), 401, "invalid_grant")

	expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"email": "ada@example.com"}), 202, "")
	code = h.lastCode("ada@example.com", fiberauth.PurposePasswordReset)
	h.clock.Advance(10*time.Minute + time.Second)
	expect(t, reset(code), 401, "invalid_grant")

	expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"email": "ada@example.com"}), 202, "")
	code = h.lastCode("ada@example.com", fiberauth.PurposePasswordReset)
	h.clock.Advance(9 * time.Minute)
	expect(t, reset(code), 200, "")
}

func TestSignupAndEmailConfirm(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch, func(c *fiberauth.Config) { c.RequireVerifiedEmail = true })
		r := h.do("POST", "/auth/signup", map[string]any{"email": "Ada@Example.com", "username": "ada", "password": goodPassword})
		expect(t, r, 202, "")
		if r.raw != `{"ok":true}` {
			t.Fatalf("signup: %s", r.raw)
		}
		h.flush()
		created, err := h.auth.UserByEmail(context.Background(), "ada@example.com")
		if err != nil || created.EmailVerified || created.Username != "ada" {
			t.Fatalf("the signed-up user: %+v, %v", created, err)
		}
		etag := created.ETag

		for _, tc := range []struct {
			name   string
			body   map[string]any
			status int
			code   string
			where  string
		}{
			{"taken username", map[string]any{"email": "x@example.com", "username": "Ada", "password": goodPassword}, 409, "username_taken", ""},
			{"bad email", map[string]any{"email": "not-an-email", "password": goodPassword}, 400, "", "email"},
			{"no email", map[string]any{"password": goodPassword}, 400, "", "email"},
			{"username with @", map[string]any{"email": "y@example.com", "username": "a@b", "password": goodPassword}, 400, "", "username"},
			{"username too long", map[string]any{"email": "y@example.com", "username": strings.Repeat("u", 65), "password": goodPassword}, 400, "", "username"},
			{"common password", map[string]any{"email": "y@example.com", "password": "qwertyuiop"}, 400, "", "password"},
			{"short password", map[string]any{"email": "y@example.com", "password": "ab12"}, 400, "", "password"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := h.do("POST", "/auth/signup", tc.body)
				if tc.where != "" {
					expectField(t, r, tc.where)
				} else {
					expect(t, r, tc.status, tc.code)
				}
			})
		}

		expectField(t, h.do("POST", "/auth/signup", "{\"email\":\"y@example.com\",\"password\":\"abc\xff\xfeabcdef\"}"), "body")

		// A taken email gets exactly a new one's answer; its owner gets a
		// notice, and no second account or code is made.
		r = h.do("POST", "/auth/signup", map[string]any{"email": " ADA@example.com ", "password": "another good passphrase"})
		expect(t, r, 202, "")
		if r.raw != `{"ok":true}` {
			t.Fatalf("signup with a taken email: %s", r.raw)
		}
		if code := h.lastCode("ada@example.com", fiberauth.PurposeAccountExists); code != "" {
			t.Fatalf("the notice to the owner carries a code: %q", code)
		}
		if again, _ := h.auth.UserByEmail(context.Background(), "ada@example.com"); again.ETag != etag || again.PasswordHash != created.PasswordHash {
			t.Fatal("a signup with a taken email changed the account")
		}

		expect(t, h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword}), 403, "email_not_verified")
		code := h.lastCode("ada@example.com", fiberauth.PurposeEmailConfirm)
		expect(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "ada@example.com", "code": "x" + code}), 401, "invalid_grant")
		expect(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "nobody@example.com", "code": code}), 401, "invalid_grant")
		expectField(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "ada@example.com"}), "code")
		expectField(t, h.do("POST", "/auth/email/confirm", map[string]any{"code": code}), "email")
		r = h.do("POST", "/auth/email/confirm", map[string]any{"email": "ADA@example.com", "code": code})
		expect(t, r, 200, "")
		if r.body["ok"] != true {
			t.Fatalf("confirm: %s", r.raw)
		}
		expect(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "ada@example.com", "code": code}), 401, "invalid_grant")
		p := h.login("ada@example.com", goodPassword)
		if p.etag == etag {
			t.Fatal("confirming the email did not change the etag")
		}
	})
}

func TestEmailCodeLivesOneDay(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	expect(t, h.do("POST", "/auth/signup", map[string]any{"email": "a@example.com", "password": goodPassword}), 202, "")
	expect(t, h.do("POST", "/auth/signup", map[string]any{"email": "b@example.com", "password": goodPassword}), 202, "")
	codeA := h.lastCode("a@example.com", fiberauth.PurposeEmailConfirm)
	codeB := h.lastCode("b@example.com", fiberauth.PurposeEmailConfirm)
	h.clock.Advance(23 * time.Hour)
	expect(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "a@example.com", "code": codeA}), 200, "")
	h.clock.Advance(time.Hour)
	expect(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "b@example.com", "code": codeB}), 401, "invalid_grant")
}

func TestSignupDisabled(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *fiberauth.Config) { c.AllowSignup = false })
	expect(t, h.do("POST", "/auth/signup", map[string]any{"email": "a@example.com", "password": goodPassword}), 403, "forbidden")
	if _, err := h.auth.UserByEmail(context.Background(), "a@example.com"); err == nil {
		t.Fatal("disabled signup created a user")
	}
}

func TestPasswordMinLengthConfig(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *fiberauth.Config) { c.PasswordMinLength = 12 })
	expectField(t, h.do("POST", "/auth/signup", map[string]any{"email": "a@example.com", "password": "elevenchars"}), "password")
	// Length counts code points, not bytes.
	expectField(t, h.do("POST", "/auth/signup", map[string]any{"email": "a@example.com", "password": "ééééééééééé"}), "password")
	expect(t, h.do("POST", "/auth/signup", map[string]any{"email": "a@example.com", "password": "twelve chars"}), 202, "")
}

// Look-alike spellings of a name are the same name (NFKC, then lowercase):
// they cannot make a second account that looks like the first, nor a
// login, limit or reset that misses it.
func TestUnicodeNamesFold(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch)
		if _, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "ada@example.com", Username: "josé", Password: goodPassword, Verified: true}); err != nil {
			t.Fatal(err)
		}
		const fullwidth = "ａｄａ@ｅｘａｍｐｌｅ.ｃｏｍ" // fullwidth letters
		const decomposed = "jose\u0301"     // e + combining acute
		if _, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: fullwidth, Password: goodPassword}); !errors.Is(err, fiberauth.ErrConflict) {
			t.Fatalf("a fullwidth spelling of a taken email: %v, want ErrConflict", err)
		}
		if _, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "other@example.com", Username: "JOSE\u0301", Password: goodPassword}); !errors.Is(err, fiberauth.ErrConflict) {
			t.Fatalf("a decomposed spelling of a taken username: %v, want ErrConflict", err)
		}
		expect(t, h.do("POST", "/auth/signup", map[string]any{"email": "x@example.com", "username": decomposed, "password": goodPassword}), 409, "username_taken")
		h.login(fullwidth, goodPassword)
		pairOf(t, h.do("POST", "/auth/login", map[string]any{"username": decomposed, "password": goodPassword}))
		// Failures under one spelling count for every spelling.
		for range 10 {
			expect(t, h.do("POST", "/auth/login", map[string]any{"email": fullwidth, "password": "wrong password!"}), 401, "invalid_credentials")
		}
		expectThrottled(t, h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword}), 15*time.Minute)
	})
}

// mounted lists the routes Mount registered under prefix, as "METHOD
// /path", without the HEAD routes Fiber adds for each GET.
func mounted(app *fiber.App, prefix string) []string {
	var out []string
	for _, r := range app.GetRoutes(true) {
		if r.Method != fiber.MethodHead && strings.HasPrefix(r.Path, prefix+"/") {
			out = append(out, r.Method+" "+strings.TrimPrefix(r.Path, prefix))
		}
	}
	slices.Sort(out)
	return out
}

// Mount serves every endpoint by default, only the groups WithEndpoints
// names, and never the ones that send codes without Config.SendCode (New
// says so once); an endpoint not mounted is the host's 404.
func TestMountEndpointSets(t *testing.T) {
	t.Parallel()
	all := []string{
		"DELETE /sessions/:id", "GET /me", "GET /openapi.json", "GET /sessions",
		"POST /2fa/disable", "POST /2fa/enable", "POST /2fa/recovery-codes", "POST /2fa/setup",
		"POST /email/confirm", "POST /login", "POST /login/2fa", "POST /login/new-password",
		"POST /logout", "POST /logout/all", "POST /password/change", "POST /password/forgot",
		"POST /password/reset", "POST /refresh", "POST /revoke", "POST /signup",
	}
	h := newHarness(t)
	app := fiber.New()
	h.auth.Mount(app.Group("/all"))
	h.auth.Mount(app.Group("/some"), fiberauth.WithEndpoints(fiberauth.EndpointsSignIn|fiberauth.EndpointsSessions))
	h.auth.Mount(app.Group("/no2fa"), fiberauth.WithEndpoints(fiberauth.EndpointsAll&^fiberauth.EndpointsTwoFactor))
	if got := mounted(app, "/all"); !slices.Equal(got, all) {
		t.Fatalf("Mount serves %v, want all 20: %v", got, all)
	}
	if got, want := mounted(app, "/some"), []string{"DELETE /sessions/:id", "GET /me", "GET /sessions", "POST /login", "POST /login/2fa", "POST /login/new-password", "POST /logout", "POST /logout/all", "POST /refresh", "POST /revoke"}; !slices.Equal(got, want) {
		t.Fatalf("sign-in and sessions: %v, want %v", got, want)
	}
	if got := mounted(app, "/no2fa"); len(got) != 16 || slices.ContainsFunc(got, func(r string) bool { return strings.Contains(r, "/2fa/") }) {
		t.Fatalf("all but 2FA: %v", got)
	}

	quiet := newHarness(t, func(c *fiberauth.Config) { c.AllowSignup, c.SendCode = false, nil })
	app = fiber.New()
	quiet.auth.Mount(app.Group("/x"))
	quiet.auth.Mount(app.Group("/y"), fiberauth.WithEndpoints(fiberauth.EndpointsPasswordReset|fiberauth.EndpointsSignIn))
	for _, r := range mounted(app, "/x") {
		if strings.Contains(r, "/password/forgot") || strings.Contains(r, "/password/reset") || strings.Contains(r, "/signup") || strings.Contains(r, "/email/confirm") {
			t.Fatalf("without SendCode Mount serves %s", r)
		}
	}
	if got := mounted(app, "/x"); len(got) != 16 {
		t.Fatalf("without SendCode: %v", got)
	}
	if got := mounted(app, "/y"); slices.ContainsFunc(got, func(r string) bool { return strings.Contains(r, "/password/") }) {
		t.Fatalf("WithEndpoints(EndpointsPasswordReset) without SendCode serves %v", got)
	}
	if n := strings.Count(quiet.logs.String(), "Config.SendCode is not set"); n != 1 {
		t.Fatalf("New says %d times that the code flows are left out: %s", n, quiet.logs.String())
	}
	res, err := app.Test(httptest.NewRequest("POST", "/x/password/forgot", strings.NewReader(`{"email":"a@example.com"}`)))
	if err != nil || res.StatusCode != 404 {
		t.Fatalf("POST /password/forgot not mounted: %v %v", res.StatusCode, err)
	}
}
