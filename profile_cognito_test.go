package fiberauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// cognitoHarness is a harness with the Cognito-style profile at /v1.
func cognitoHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.auth.Mount(h.app.Group("/v1"), fiberauth.WithProfile(fiberauth.ProfileCognito))
	return h
}

// expectMessage expects the v1 API's error: {"message", "status"}.
func expectMessage(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status || keysOf(r.body) != "message,status" || r.str("message") == "" || r.body["status"] != float64(status) {
		t.Fatalf("answered %d %s, want %d {\"message\", \"status\"}", r.status, r.raw, status)
	}
}

// A Cognito-style client: login by a username in any case, an ID token
// with every sign-in, one refresh token refreshed ten times (it does not
// rotate), refused once revoked.
func TestProfileCognito(t *testing.T) {
	t.Parallel()
	h := cognitoHarness(t)
	u, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "ada@example.com", Username: "ada", Password: goodPassword, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	r := h.do("POST", "/v1/login", map[string]any{"username": "ADA", "password": goodPassword})
	expect(t, r, 200, "")
	if keysOf(r.body) != "access_token,challenge_name,expires_in,id_token,refresh_token,session" || r.body["challenge_name"] != nil || r.body["session"] != nil || r.body["expires_in"] != float64(900) {
		t.Fatalf("login answered %s", r.raw)
	}
	if c, err := h.auth.VerifyIDToken(r.str("id_token")); err != nil || c.Subject != u.ID || c.PreferredUsername != "ada" {
		t.Fatalf("id_token: %+v %v", c, err)
	}
	refresh := r.str("refresh_token")
	h.keep(refresh)
	for i := range 10 {
		r := h.do("POST", "/v1/token-refresh", map[string]any{"username": "ada", "refresh_token": refresh})
		expect(t, r, 200, "")
		if keysOf(r.body) != "access_token,expires_in,id_token" {
			t.Fatalf("refresh %d answered %s", i, r.raw)
		}
		expect(t, h.do("GET", "/auth/me", nil, bearer(r.str("access_token"))...), 200, "")
		h.clock.Advance(61 * time.Second) // past the reuse grace window every time
	}
	expectMessage(t, h.do("POST", "/v1/token-refresh", map[string]any{"username": "bob", "refresh_token": refresh}), 401)
	expectMessage(t, h.do("POST", "/v1/token-refresh", map[string]any{"refresh_token": refresh}), 400)
	expectMessage(t, h.do("POST", "/v1/login", map[string]any{"username": "ada", "password": "wrong password"}), 401)

	r = h.do("POST", "/v1/token-revoke", map[string]any{"refresh_token": refresh})
	if r.status != 200 || keysOf(r.body) != "" {
		t.Fatalf("token-revoke answered %d %s", r.status, r.raw)
	}
	expectMessage(t, h.do("POST", "/v1/token-refresh", map[string]any{"username": "ada", "refresh_token": refresh}), 401)
}

// Its password flows: a temporary password's challenge, a change with the
// access token in the body (the refresh token stays), a reset by code.
func TestProfileCognitoPasswords(t *testing.T) {
	t.Parallel()
	h := cognitoHarness(t)
	const temp, first, second, third = "temporary secret 1", "my own long password", "another long password", "a third long password"
	h.keep(temp, first, second, third)
	if _, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "ada@example.com", Username: "ada", Password: temp, TemporaryPassword: true, Verified: true}); err != nil {
		t.Fatal(err)
	}
	r := h.do("POST", "/v1/login", map[string]any{"username": "ada", "password": temp})
	expect(t, r, 200, "")
	if r.str("challenge_name") != fiberauth.ChallengeNewPassword || r.str("session") == "" || r.body["access_token"] != nil || r.body["id_token"] != nil || r.body["refresh_token"] != nil {
		t.Fatalf("a temporary password answered %s", r.raw)
	}
	h.keep(r.str("session"))
	r = h.do("POST", "/v1/new-password-required", map[string]any{"session": r.str("session"), "username": "ada", "new_password": first})
	expect(t, r, 200, "")
	if r.str("access_token") == "" || r.str("id_token") == "" || r.str("refresh_token") == "" || r.body["challenge_name"] != nil {
		t.Fatalf("new-password-required answered %s", r.raw)
	}
	access, refresh := r.str("access_token"), r.str("refresh_token")
	other := h.login("ada@example.com", first)

	expectMessage(t, h.do("POST", "/v1/change-password", map[string]any{"previous_password": first, "proposed_password": second}), 400)
	expectMessage(t, h.do("POST", "/v1/change-password", map[string]any{"access_token": "garbage", "previous_password": first, "proposed_password": second}), 401)
	r = h.do("POST", "/v1/change-password", map[string]any{"access_token": access, "previous_password": first, "proposed_password": second})
	if r.status != 200 || keysOf(r.body) != "message" {
		t.Fatalf("change-password answered %d %s", r.status, r.raw)
	}
	expectRefused(t, h.do("GET", "/auth/me", nil, bearer(access)...), "stale")
	expectRefused(t, h.do("GET", "/auth/me", nil, bearer(other.access)...), "revoked")
	r = h.do("POST", "/v1/token-refresh", map[string]any{"username": "ada", "refresh_token": refresh})
	expect(t, r, 200, "")
	expect(t, h.do("GET", "/auth/me", nil, bearer(r.str("access_token"))...), 200, "")

	r = h.do("POST", "/v1/forgot-password", map[string]any{"username": "ada"})
	if r.status != 200 || keysOf(r.body) != "message" {
		t.Fatalf("forgot-password answered %d %s", r.status, r.raw)
	}
	h.flush()
	code := h.lastCode("ada@example.com", "password_reset")
	expectMessage(t, h.do("POST", "/v1/forgot-password-confirm", map[string]any{"username": "ada", "password": third, "confirmation_code": "000000"}), 401)
	r = h.do("POST", "/v1/forgot-password-confirm", map[string]any{"username": "ada", "password": third, "confirmation_code": code})
	if r.status != 200 || keysOf(r.body) != "message" {
		t.Fatalf("forgot-password-confirm answered %d %s", r.status, r.raw)
	}
	expect(t, h.do("POST", "/v1/login", map[string]any{"username": "ada", "password": third}), 200, "")
}
