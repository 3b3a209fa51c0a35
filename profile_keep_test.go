package fiberauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// The non-rotating policy (RefreshInput.Keep) is chosen per request, by
// the mount; reuse detection holds across mounts all the same: a token the
// family has moved on from is reuse wherever it is presented.

func allProfiles(t *testing.T, configure ...func(*fiberauth.Config)) *harness {
	t.Helper()
	h := newHarness(t, configure...)
	h.auth.Mount(h.app.Group("/v1"), fiberauth.WithProfile(fiberauth.ProfileCognito))
	h.auth.Mount(h.app.Group("/v3/session"), fiberauth.WithProfile(fiberauth.ProfileMisaka))
	h.auth.Mount(h.app.Group("/halt"), fiberauth.WithProfile(fiberauth.ProfileHaltman))
	return h
}

func (h *harness) countEvents(typ fiberauth.EventType) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// Baseline: on the rotating mounts, a thief who uses a stolen refresh
// token gets caught when the victim comes back: the family is revoked.
func TestProfilesRotatingBaselineDetectsTheft(t *testing.T) {
	t.Parallel()
	h := allProfiles(t)
	h.createUser("ada@example.com")
	victim := h.login("ada@example.com", goodPassword)
	thief := pairOf(t, h.refresh(victim.refresh)) // the thief rotates first
	h.clock.Advance(2 * time.Minute)              // past ReuseGrace
	expect(t, h.refresh(victim.refresh), 401, "") // the victim's refresh is reuse
	if h.countEvents(fiberauth.EventRefreshReused) != 1 {
		t.Fatal("no reuse event")
	}
	expectRefused(t, h.do("GET", "/auth/me", nil, bearer(thief.access)...), "revoked")
}

// A stolen refresh token of a rotating family (signed in on /auth), used
// through /v1/token-refresh: once the victim has rotated, the thief's copy
// is reuse on /v1 as on the rotating mounts: the family ends.
func TestProfilesKeepMountSilencesReuseDetectionOfRotatingFamilies(t *testing.T) {
	t.Parallel()
	h := allProfiles(t)
	h.createUser("ada@example.com")
	victim := h.login("ada@example.com", goodPassword) // rotating family (fiberauth's own API)
	r := h.do("POST", "/v1/token-refresh", map[string]any{"username": "ada@example.com", "refresh_token": victim.refresh})
	expect(t, r, 200, "")
	next := pairOf(t, h.refresh(victim.refresh))
	h.clock.Advance(2 * time.Minute)
	expectMessage(t, h.do("POST", "/v1/token-refresh", map[string]any{"username": "ada@example.com", "refresh_token": victim.refresh}), 401)
	expectRefused(t, h.do("GET", "/auth/me", nil, bearer(next.access)...), "revoked")
	if n := h.countEvents(fiberauth.EventRefreshReused); n != 1 {
		t.Errorf("%d reuse events, want 1", n)
	}
}

// A Cognito client's family rotated by a thief on a rotating mount: the
// client's next kept refresh is reuse, and the family ends for the thief
// too, at once, within the grace window or not.
func TestProfilesRotatingMountHijacksKeptFamily(t *testing.T) {
	t.Parallel()
	h := allProfiles(t)
	h.createUser("ada@example.com")
	r := h.do("POST", "/v1/login", map[string]any{"username": "ada@example.com", "password": goodPassword})
	expect(t, r, 200, "")
	victimRefresh := r.str("refresh_token")
	thief := pairOf(t, h.refresh(victimRefresh)) // within the grace window from here
	expectMessage(t, h.do("POST", "/v1/token-refresh", map[string]any{"username": "ada@example.com", "refresh_token": victimRefresh}), 401)
	expect(t, h.refresh(thief.refresh), 401, "invalid_grant")
	expectRefused(t, h.do("GET", "/auth/me", nil, bearer(thief.access)...), "revoked")
	if n := h.countEvents(fiberauth.EventRefreshReused); n != 1 {
		t.Errorf("%d reuse events, want 1", n)
	}
}

// the kept refresh respects logout, revocation, password reset,
// DisableUser, the idle expiry (no slide) and the absolute expiry.
func TestProfilesKeepRespectsEndsAndExpiry(t *testing.T) {
	t.Parallel()
	h := allProfiles(t, func(c *fiberauth.Config) {
		c.RefreshIdleTTL = 2 * time.Hour
		c.RefreshMaxTTL = 3 * time.Hour
	})
	ctx := context.Background()
	u, err := h.auth.CreateUser(ctx, fiberauth.NewUser{Email: "ada@example.com", Username: "ada", Password: goodPassword, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	cognito := func() string {
		r := h.do("POST", "/v1/login", map[string]any{"username": "ada", "password": goodPassword})
		expect(t, r, 200, "")
		h.keep(r.str("refresh_token"))
		return r.str("refresh_token")
	}
	kept := func(tok string) response {
		return h.do("POST", "/v1/token-refresh", map[string]any{"username": "ada", "refresh_token": tok})
	}

	// Idle expiry: a kept refresh does not slide it.
	tok := cognito()
	h.clock.Advance(time.Hour)
	expect(t, kept(tok), 200, "")
	h.clock.Advance(time.Hour + time.Second)
	expectMessage(t, kept(tok), 401)

	// Absolute expiry of a sliding family slid by the rotating mount, then
	// refreshed kept: still bounded.
	r := h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword, "sliding": true})
	p := pairOf(t, r)
	for range 2 {
		h.clock.Advance(time.Hour)
		p = pairOf(t, h.refresh(p.refresh))
	}
	expect(t, kept(p.refresh), 200, "") // at 2h; the idle expiry slid to 3h (the absolute bound)
	h.clock.Advance(59 * time.Minute)
	expect(t, kept(p.refresh), 200, "")
	h.clock.Advance(time.Minute + time.Second) // past 3h absolute
	expectMessage(t, kept(p.refresh), 401)

	// Logout through another profile.
	tok = cognito()
	expect(t, h.do("POST", "/v3/session/logout", map[string]any{"refresh": tok}), 200, "")
	expectMessage(t, kept(tok), 401)

	// Password reset.
	tok = cognito()
	expect(t, h.do("POST", "/v1/forgot-password", map[string]any{"username": "ada"}), 200, "")
	code := h.lastCode("ada@example.com", "password_reset")
	const np = "a brand new long password"
	h.keep(np)
	expect(t, h.do("POST", "/v1/forgot-password-confirm", map[string]any{"username": "ada", "password": np, "confirmation_code": code}), 200, "")
	expectMessage(t, kept(tok), 401)

	// DisableUser.
	r = h.do("POST", "/v1/login", map[string]any{"username": "ada", "password": np})
	expect(t, r, 200, "")
	tok = r.str("refresh_token")
	h.keep(tok)
	if err := h.auth.DisableUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, kept(tok), 401)
}

// The username check of /v1/token-refresh: a blank username ("  ", which
// required() lets through) folds to "", the Username of a user without
// one, and must not pass for them (docs/profiles.md: "The username must
// name the token's user (401 otherwise)").
func TestProfilesCognitoRefreshBlankUsername(t *testing.T) {
	t.Parallel()
	h := allProfiles(t)
	h.createUser("ada@example.com") // no username
	r := h.do("POST", "/v1/login", map[string]any{"username": "ada@example.com", "password": goodPassword})
	expect(t, r, 200, "")
	tok := r.str("refresh_token")
	h.keep(tok)
	expectMessage(t, h.do("POST", "/v1/token-refresh", map[string]any{"username": "bob@example.com", "refresh_token": tok}), 401)
	r = h.do("POST", "/v1/token-refresh", map[string]any{"username": "   ", "refresh_token": tok})
	if r.status == 200 {
		t.Errorf("a blank username (\"   \") named the token's user: %d, keys %s", r.status, keysOf(r.body))
	}
}

// A kept password change ends the other families and makes the caller's
// old access tokens stale; the kept refresh token goes on, and so does any
// copy of it a thief holds (docs/profiles.md says so: a user who changes
// the password because someone got in signs out everywhere too).
func TestProfilesKeepPasswordChange(t *testing.T) {
	t.Parallel()
	h := allProfiles(t)
	h.createUser("ada@example.com")
	// The caller's family started on the rotating API, changed on /v1.
	p := h.login("ada@example.com", goodPassword)
	other := h.login("ada@example.com", goodPassword)
	const np = "another long password 2"
	h.keep(np)
	r := h.do("POST", "/v1/change-password", map[string]any{"access_token": p.access, "previous_password": goodPassword, "proposed_password": np})
	expect(t, r, 200, "")
	expectRefused(t, h.do("GET", "/auth/me", nil, bearer(p.access)...), "stale")
	expectRefused(t, h.do("GET", "/auth/me", nil, bearer(other.access)...), "revoked")
	expect(t, h.refresh(other.refresh), 401, "")
	// The thief's copy of p.refresh (same string as the victim's) still works.
	thief := pairOf(t, h.refresh(p.refresh))
	expect(t, h.do("GET", "/auth/me", nil, bearer(thief.access)...), 200, "")
	t.Log("a copy of the caller's refresh token survives /v1/change-password")
}
