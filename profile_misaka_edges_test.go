package fiberauth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fiberauth/fiberauth"
)

// WithUserShape's hook gets a copy of the user without its secrets: a hook
// that changes it (normalising a field for display, say) changes neither
// the four fields the shape cannot replace nor the signed ID token, and it
// never sees the password hash, the sealed TOTP secret or the recovery
// codes' hashes.
func TestProfilesUserShapeMutatesIDToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.auth.Mount(h.app.Group("/m"), fiberauth.WithProfile(fiberauth.ProfileMisaka), fiberauth.WithIDTokens(),
		fiberauth.WithUserShape(func(u *fiberauth.User, f map[string]any) {
			f["has_hash"] = u.PasswordHash != ""
			u.Email = strings.ToUpper(u.Email) // "for display"
			u.ID = "admin"
			u.EmailVerified = true
		}))
	ctx := context.Background()
	if _, err := h.auth.CreateUser(ctx, fiberauth.NewUser{Email: "ada@example.com", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	r := h.do("POST", "/m/login", map[string]any{"email": "ada@example.com", "password": goodPassword})
	expect(t, r, 200, "")
	h.keep(r.str("refresh"))
	if r.obj("user")["has_hash"] == true {
		t.Log("the shape hook sees the password hash")
	}
	if r.obj("user")["id"] == "admin" {
		t.Errorf("the shape replaced user.id: %v", r.obj("user"))
	}
	c, err := h.auth.VerifyIDToken(r.str("id_token"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject == "admin" || c.Email == "ADA@EXAMPLE.COM" || c.EmailVerified {
		t.Errorf("the shape hook changed the signed ID token: sub %q email %q email_verified %v", c.Subject, c.Email, c.EmailVerified)
	}
}

// Misaka's errors say nothing of account existence or token
// internals; the 6-character rule; email wins; attributes cannot replace
// the four fields.
func TestProfilesMisakaErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.auth.Mount(h.app.Group("/m"), fiberauth.WithProfile(fiberauth.ProfileMisaka))
	ctx := context.Background()
	u, err := h.auth.CreateUser(ctx, fiberauth.NewUser{Email: "ada@example.com", Username: "ada", Password: goodPassword, Verified: true,
		Attributes: map[string]string{"id": "admin", "email": "x@evil", "ID": "admin", "username": "root", "display_name": "Root"}})
	if err != nil {
		t.Fatal(err)
	}
	known := h.do("POST", "/m/login", map[string]any{"email": "ada@example.com", "password": "wrong password"})
	unknown := h.do("POST", "/m/login", map[string]any{"email": "nobody@example.com", "password": "wrong password"})
	if known.status != unknown.status || known.raw != unknown.raw {
		t.Errorf("known %d %s, unknown %d %s", known.status, known.raw, unknown.status, unknown.raw)
	}
	// 6 code points, not bytes: "ééé" is 6 bytes.
	expectDetail(t, h.do("POST", "/m/login", map[string]any{"email": "ada@example.com", "password": "ééé"}), 400)
	expectDetail(t, h.do("POST", "/m/login", map[string]any{"email": "ada@example.com", "password": "éééééé"}), 401)
	// Refused tokens: the detail is one of the reasons, nothing else.
	for _, tok := range []string{"garbage", "a.b.c", strings.Repeat("A", 9000)} {
		r := h.do("GET", "/m/me", nil, bearer(tok)...)
		if r.status != 401 || strings.Contains(strings.ToLower(r.raw), "signature") || strings.Contains(strings.ToLower(r.raw), "key") {
			t.Errorf("refused token: %d %s", r.status, r.raw)
		}
	}
	// Email wins; attributes cannot replace the four fields.
	r := h.do("POST", "/m/login", map[string]any{"username": "nobody", "email": "ada@example.com", "password": goodPassword})
	expect(t, r, 200, "")
	h.keep(r.str("refresh"))
	user := r.obj("user")
	if user["id"] != u.ID || user["email"] != "ada@example.com" || user["username"] != "ada" || user["display_name"] != "" {
		t.Errorf("attributes replaced a field: %v", user)
	}
	t.Logf("user object: %v", user)
	// sliding_token is null unless sliding; with sliding it is the refresh token and rotates away.
	r = h.do("POST", "/m/login", map[string]any{"email": "ada@example.com", "password": goodPassword, "sliding": true})
	expect(t, r, 200, "")
	st := r.str("sliding_token")
	h.keep(st)
	r2 := h.do("POST", "/m/refresh", map[string]any{"refresh": st})
	expect(t, r2, 200, "")
	h.keep(r2.str("refresh"))
	if _, ok := r2.body["sliding_token"]; ok {
		t.Log("refresh answers a sliding_token")
	}
}

// WithIDTokens adds an ID token to Misaka's password-change answer too, as
// docs/profiles.md says.
func TestProfilesMisakaChangePasswordIDToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.auth.Mount(h.app.Group("/m"), fiberauth.WithProfile(fiberauth.ProfileMisaka), fiberauth.WithIDTokens())
	h.createUser("ada@example.com")
	r := h.do("POST", "/m/login", map[string]any{"email": "ada@example.com", "password": goodPassword})
	expect(t, r, 200, "")
	h.keep(r.str("refresh"))
	const np = "zz another long password"
	h.keep(np)
	r = h.do("POST", "/m/change-password", map[string]any{"old_password": goodPassword, "new_password": np}, bearer(r.str("access"))...)
	expect(t, r, 200, "")
	h.keep(r.str("refresh"))
	if r.str("id_token") == "" {
		t.Errorf("WithIDTokens: Misaka's change-password answered no id_token: keys %s", keysOf(r.body))
	}
}
