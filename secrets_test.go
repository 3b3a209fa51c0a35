package fiberauth_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// TestNoSecretInLogs runs every flow, failures included, with the logger at
// debug level, and then looks for every password, token, code, hash and key
// in what was logged. (The harness checks its own list at cleanup too.)
func TestNoSecretInLogs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *fiberauth.Config) { c.RequireVerifiedEmail = true })
	const p1, p2, p3 = "first long passphrase", "second long passphrase", "third long passphrase"
	secrets := []string{p1, p2, p3, string(testSecret)}
	keep := func(r response) response {
		for _, k := range []string{"access_token", "refresh_token", "csrf_token", "session", "secret", "otpauth_url"} {
			secrets = append(secrets, r.str(k))
		}
		codes, _ := r.body["recovery_codes"].([]any)
		for _, c := range codes {
			secrets = append(secrets, c.(string))
		}
		for _, c := range r.header["Set-Cookie"] {
			secrets = append(secrets, c)
		}
		return r
	}
	code := func(email, purpose string) string {
		c := h.lastCode(email, purpose)
		secrets = append(secrets, c)
		return c
	}

	expect(t, keep(h.do("POST", "/auth/signup", map[string]any{"email": "ada@example.com", "password": p1})), 202, "")
	h.flush()
	expect(t, keep(h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": p1})), 403, "email_not_verified")
	expect(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "ada@example.com", "code": "999999"}), 401, "invalid_grant")
	expect(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "ada@example.com", "code": code("ada@example.com", fiberauth.PurposeEmailConfirm)}), 200, "")
	expect(t, h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": p2}), 401, "invalid_credentials")
	p := pairOf(t, keep(h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": p1})))
	p = pairOf(t, keep(h.refresh(p.refresh)))

	setup := keep(h.do("POST", "/auth/2fa/setup", map[string]any{"password": p1}, bearer(p.access)...))
	secret := setup.str("secret")
	enable := keep(h.do("POST", "/auth/2fa/enable", map[string]any{"code": h.totpCode(secret), "password": p1}, bearer(p.access)...))
	h.clock.Advance(30 * time.Second)
	session := keep(h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": p1})).str("session")
	expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": "000000"}), 401, "invalid_grant")
	p = pairOf(t, keep(h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": h.totpCode(secret)})))
	session = keep(h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": p1})).str("session")
	rc := enable.body["recovery_codes"].([]any)[0].(string)
	p = pairOf(t, keep(h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": rc})))

	p = pairOf(t, keep(h.do("POST", "/auth/password/change", map[string]any{"previous_password": p1, "proposed_password": p2}, bearer(p.access)...)))
	expect(t, h.do("POST", "/auth/password/change", map[string]any{"previous_password": p3, "proposed_password": p1}, bearer(p.access)...), 401, "invalid_credentials")
	expect(t, h.do("POST", "/auth/2fa/disable", map[string]any{"password": p3, "code": "000000"}, bearer(p.access)...), 401, "invalid_credentials")
	h.clock.Advance(30 * time.Second)
	expect(t, h.do("POST", "/auth/2fa/disable", map[string]any{"password": p2, "code": h.totpCode(secret)}, bearer(p.access)...), 200, "")
	expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"email": "ada@example.com"}), 202, "")
	expect(t, h.do("POST", "/auth/password/reset", map[string]any{"email": "ada@example.com", "confirmation_code": "000000", "password": p3}), 401, "invalid_grant")
	expect(t, h.do("POST", "/auth/password/reset", map[string]any{"email": "ada@example.com", "confirmation_code": code("ada@example.com", fiberauth.PurposePasswordReset), "password": p3}), 200, "")
	expect(t, h.refresh(p.refresh), 401, "invalid_grant")

	web := keep(h.do("POST", "/web/auth/login", map[string]any{"email": "ada@example.com", "password": p3}))
	b := cookieTokens(t, web)
	expect(t, h.post("/web/auth/refresh", b.cookie, "wrong", nil), 403, "csrf_failed")
	nb := cookieTokens(t, keep(h.post("/web/auth/refresh", b.cookie, b.csrf, nil)))
	h.clock.Advance(time.Minute)
	expect(t, h.post("/web/auth/refresh", b.cookie, b.csrf, nil), 401, "refresh_token_reused")
	expect(t, h.post("/web/auth/logout", nb.cookie, nb.csrf, nil), 401, "invalid_grant")
	expect(t, h.do("GET", "/api/profile", nil, bearer(nb.access)...), 401, "invalid_token")

	u, err := h.auth.UserByEmail(context.Background(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, u.PasswordHash, base64.StdEncoding.EncodeToString(u.TOTPSecret))

	logs := h.logs.String()
	if !strings.Contains(logs, "login_succeeded") || !strings.Contains(logs, "refresh_reused") {
		t.Fatalf("the logger saw none of the flow, so this test checks nothing:\n%s", logs)
	}
	for _, s := range secrets {
		if len(s) >= 6 && strings.Contains(logs, s) {
			t.Errorf("a secret reached the log: %q", s)
		}
	}
}
