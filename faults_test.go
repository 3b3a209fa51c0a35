package fiberauth_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
	"github.com/fiberauth/fiberauth/storetest"
)

// faultCase is one operation run with a store that fails its n-th call, for
// every n until the operation no longer reaches a failure.
type faultCase struct {
	name string
	// setup prepares the world with a healthy store and returns what act
	// needs.
	setup func(h *harness) map[string]string
	act   func(h *harness, v map[string]string) response
	want  int // the status when no call fails
}

// afterAnswer are the operations that do part of their work after
// answering: a failure there leaves the answer as it is (and, still, no
// change).
var afterAnswer = map[string]bool{"forgot": true, "signup": true}

// snapshot is what a user of the API can observe of the accounts: the parts
// of each user record that matter, and the live sessions with their current
// refresh token. (One-time credentials spent on the way, such as a
// challenge session or a TOTP step, are not part of it.)
func (h *harness) snapshot() string {
	h.t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, email := range []string{"ada@example.com", "new@example.com"} {
		u, err := h.store.UserByEmail(ctx, email)
		if err != nil {
			fmt.Fprintf(&b, "%s: none\n", email)
			continue
		}
		fmt.Fprintf(&b, "%s: hash=%s etag=%s verified=%v mfa=%v totp=%s recovery=%d temp=%v roles=%v disabled=%v\n",
			email, u.PasswordHash, u.ETag, u.EmailVerified, u.MFAEnabled, base64.StdEncoding.EncodeToString(u.TOTPSecret),
			len(u.RecoveryCodes), u.PasswordTemporary, u.Roles, u.Disabled)
		list, err := h.store.ListSessions(ctx, u.ID, h.clock.Now())
		if err != nil {
			h.t.Fatal(err)
		}
		var sessions []string
		for _, s := range list {
			sessions = append(sessions, s.ID+"/"+base64.StdEncoding.EncodeToString(s.TokenHash))
		}
		slices.Sort(sessions)
		fmt.Fprintf(&b, "  sessions %v\n", sessions)
	}
	return b.String()
}

// TestStoreFaults fails each store call of each operation in turn: the
// operation answers 503 unavailable, and once the store is healthy again
// nothing it did is visible; or the failure is past its last call and it
// succeeds. Each operation's setup runs once; every run starts from a
// snapshot of the store it left.
func TestStoreFaults(t *testing.T) {
	t.Parallel()
	loggedIn := func(h *harness) map[string]string {
		h.createUser("ada@example.com")
		p := h.login("ada@example.com", goodPassword)
		other := h.login("ada@example.com", goodPassword)
		return map[string]string{"access": p.access, "refresh": p.refresh, "sid": p.sid, "other": other.sid}
	}
	enrolled := func(h *harness) map[string]string {
		v := loggedIn(h)
		secret, recovery := h.enrol(pair{access: v["access"]})
		v["secret"], v["recovery"] = secret, recovery[0]
		v["session"] = h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
		return v
	}
	body := func(kv ...string) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []faultCase{
		{"login", loggedIn, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/login", body("email", "ada@example.com", "password", goodPassword))
		}, 200},
		{"failed login", loggedIn, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/login", body("email", "ada@example.com", "password", "wrong password!"))
		}, 401},
		{"refresh", loggedIn, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/refresh", body("refresh_token", v["refresh"]))
		}, 200},
		{"refresh reuse", func(h *harness) map[string]string {
			v := loggedIn(h)
			pairOf(h.t, h.refresh(v["refresh"]))
			h.clock.Advance(time.Minute)
			return v
		}, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/refresh", body("refresh_token", v["refresh"]))
		}, 401},
		{"cookie refresh", func(h *harness) map[string]string {
			h.createUser("ada@example.com")
			b := h.cookieLogin("ada@example.com")
			return map[string]string{"cookie": b.cookie, "csrf": b.csrf}
		}, func(h *harness, v map[string]string) response {
			return h.post("/web/auth/refresh", v["cookie"], v["csrf"], nil)
		}, 200},
		{"logout", loggedIn, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/logout", nil, bearer(v["access"])...)
		}, 200},
		{"logout with refresh token", loggedIn, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/logout", body("refresh", v["refresh"]))
		}, 200},
		{"logout all", loggedIn, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/logout/all", nil, bearer(v["access"])...)
		}, 200},
		{"revoke", loggedIn, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/revoke", body("refresh_token", v["refresh"]))
		}, 200},
		{"end a session", loggedIn, func(h *harness, v map[string]string) response {
			return h.do("DELETE", "/auth/sessions/"+v["other"], nil, bearer(v["access"])...)
		}, 200},
		{"me", loggedIn, func(h *harness, v map[string]string) response {
			return h.do("GET", "/auth/me", nil, bearer(v["access"])...)
		}, 200},
		{"sessions", loggedIn, func(h *harness, v map[string]string) response {
			return h.do("GET", "/auth/sessions", nil, bearer(v["access"])...)
		}, 200},
		{"protected route", loggedIn, func(h *harness, v map[string]string) response {
			return h.do("GET", "/api/profile", nil, bearer(v["access"])...)
		}, 200},
		{"password change", loggedIn, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/password/change", body("previous_password", goodPassword, "proposed_password", "a new long passphrase"), bearer(v["access"])...)
		}, 200},
		{"forgot", loggedIn, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/password/forgot", body("email", "ada@example.com"))
		}, 202},
		{"reset", func(h *harness) map[string]string {
			v := loggedIn(h)
			expect(h.t, h.do("POST", "/auth/password/forgot", body("email", "ada@example.com")), 202, "")
			v["code"] = h.lastCode("ada@example.com", fiberauth.PurposePasswordReset)
			return v
		}, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/password/reset", body("email", "ada@example.com", "confirmation_code", v["code"], "password", "reset to something long"))
		}, 200},
		{"signup", func(h *harness) map[string]string { return nil }, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/signup", body("email", "new@example.com", "password", goodPassword))
		}, 202},
		{"confirm", func(h *harness) map[string]string {
			expect(h.t, h.do("POST", "/auth/signup", body("email", "new@example.com", "password", goodPassword)), 202, "")
			return map[string]string{"code": h.lastCode("new@example.com", fiberauth.PurposeEmailConfirm)}
		}, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/email/confirm", body("email", "new@example.com", "code", v["code"]))
		}, 200},
		{"2fa setup", loggedIn, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/2fa/setup", body("password", goodPassword), bearer(v["access"])...)
		}, 200},
		{"2fa enable", func(h *harness) map[string]string {
			v := loggedIn(h)
			v["secret"] = h.do("POST", "/auth/2fa/setup", body("password", goodPassword), bearer(v["access"])...).str("secret")
			return v
		}, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/2fa/enable", body("code", h.totpCode(v["secret"]), "password", goodPassword), bearer(v["access"])...)
		}, 200},
		{"2fa login", enrolled, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/login/2fa", body("session", v["session"], "code", h.totpCode(v["secret"])))
		}, 200},
		{"2fa login with a recovery code", enrolled, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/login/2fa", body("session", v["session"], "code", v["recovery"]))
		}, 200},
		{"2fa disable", func(h *harness) map[string]string {
			v := enrolled(h)
			v["access"] = pairOf(h.t, h.do("POST", "/auth/login/2fa", body("session", v["session"], "code", v["recovery"]))).access
			return v
		}, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/2fa/disable", body("password", goodPassword, "code", h.totpCode(v["secret"])), bearer(v["access"])...)
		}, 200},
		{"new recovery codes", func(h *harness) map[string]string {
			v := enrolled(h)
			v["access"] = pairOf(h.t, h.do("POST", "/auth/login/2fa", body("session", v["session"], "code", v["recovery"]))).access
			return v
		}, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/2fa/recovery-codes", body("password", goodPassword, "code", h.totpCode(v["secret"])), bearer(v["access"])...)
		}, 200},
		{"new password", func(h *harness) map[string]string {
			if _, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "new@example.com", Password: "temporary secret 1", TemporaryPassword: true, Verified: true}); err != nil {
				h.t.Fatal(err)
			}
			return map[string]string{"session": h.challenge("new@example.com", "temporary secret 1", fiberauth.ChallengeNewPassword)}
		}, func(h *harness, v map[string]string) response {
			return h.do("POST", "/auth/login/new-password", body("session", v["session"], "email", "new@example.com", "new_password", "my own long password"))
		}, 200},
	}
	noCache := func(c *fiberauth.Config) {
		c.CacheTTL = -1        // every check reaches the store
		c.CleanupInterval = -1 // no store call the test did not make
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The world before the operation is made once; each run starts
			// from a copy of it, with a new Auth over a store that fails
			// its n-th call.
			base := newHarness(t, noCache)
			v := tc.setup(base)
			prepared, at := base.store.(*memstore.Store).Clone(), base.clock.Now()
			for n := 1; ; n++ {
				if n > 40 {
					t.Fatal("the operation still reaches a failure after 40 store calls")
				}
				store := prepared.Clone()
				faulty := storetest.NewFaulty(store)
				h := newHarnessOn(t, store, at, noCache, func(c *fiberauth.Config) { c.Store = faulty })
				before := h.snapshot()
				faulty.FailNth(n)
				r := tc.act(h, v)
				h.flush()
				if !faulty.Heal() {
					// Past the last call: the operation ran clean.
					expect(t, r, tc.want, "")
					return
				}
				if (r.status != 503 || r.str("error") != "unavailable") && !(afterAnswer[tc.name] && r.status == tc.want) {
					t.Fatalf("store call %d failed: answered %d %s, want 503 unavailable", n, r.status, r.raw)
				}
				if after := h.snapshot(); after != before {
					t.Fatalf("store call %d failed, yet the operation left a change:\nbefore:\n%safter:\n%s", n, before, after)
				}
			}
		})
	}
}
