package fiberauth_test

import (
	"strings"
	"testing"

	"github.com/fiberauth/fiberauth"
)

// Every string field refuses NUL characters and values over its limit with a
// 400 naming the field.
func TestFieldLimits(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	for _, tc := range []struct {
		path  string
		field string
		limit int
		auth  bool
	}{
		{"/auth/login", "email", 254, false},
		{"/auth/login", "username", 254, false},
		{"/auth/login", "password", 1024, false},
		{"/auth/login/2fa", "session", 512, false},
		{"/auth/login/2fa", "code", 64, false},
		{"/auth/login/new-password", "new_password", 1024, false},
		{"/auth/refresh", "refresh_token", 512, false},
		{"/auth/refresh", "refresh", 512, false},
		{"/auth/refresh", "etag", 128, false},
		{"/auth/revoke", "refresh_token", 512, false},
		{"/auth/password/forgot", "email", 254, false},
		{"/auth/password/reset", "confirmation_code", 64, false},
		{"/auth/password/reset", "password", 1024, false},
		{"/auth/signup", "email", 254, false},
		{"/auth/signup", "display_name", 256, false},
		{"/auth/email/confirm", "code", 64, false},
		{"/auth/password/change", "previous_password", 1024, true},
		{"/auth/password/change", "proposed_password", 1024, true},
		{"/auth/2fa/enable", "code", 64, true},
		{"/auth/2fa/disable", "password", 1024, true},
	} {
		t.Run(tc.path+" "+tc.field, func(t *testing.T) {
			var hdr []string
			if tc.auth {
				hdr = bearer(p.access)
			}
			for _, c := range []struct {
				value, reason string
			}{
				{"ab\x00cd", "nul_byte"},
				{strings.Repeat("a", tc.limit+1), "too_long"},
			} {
				r := h.do("POST", tc.path, map[string]any{tc.field: c.value}, hdr...)
				expectField(t, r, tc.field)
				if r.str("reason") != c.reason {
					t.Fatalf("reason %q, want %q: %s", r.str("reason"), c.reason, r.raw)
				}
			}
		})
	}
	// The Authorization header: 401 invalid_token, malformed, naming where
	// (and saying why in the message).
	r := h.do("GET", "/api/profile", nil, "Authorization", "Bearer "+strings.Repeat("a", 8<<10+1))
	expectRefused(t, r, "malformed")
	if r.str("where") != "Authorization" || !strings.Contains(r.str("message"), "at most 8192 bytes") {
		t.Fatalf("oversized Authorization: %s", r.raw)
	}
}

// For an unknown account, a wrong password and a right one, login runs the
// password hasher exactly once: the answer and its cost tell nothing.
func TestLoginHashesOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	for _, tc := range []struct {
		name, email, password string
		status                int
	}{
		{"unknown account", "ghost@example.com", goodPassword, 401},
		{"wrong password", "ada@example.com", "not my password", 401},
		{"right password", "ada@example.com", goodPassword, 200},
	} {
		before := fiberauth.PasswordHashOps(h.auth)
		r := h.do("POST", "/auth/login", map[string]any{"email": tc.email, "password": tc.password})
		expect(t, r, tc.status, "")
		if n := fiberauth.PasswordHashOps(h.auth) - before; n != 1 {
			t.Fatalf("%s: the password hasher ran %d times, want 1", tc.name, n)
		}
	}
}
