package fiberauth_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/fiberauth/fiberauth"
)

// totpCode is what an authenticator app shows at the harness's time.
func (h *harness) totpCode(secret string) string {
	h.t.Helper()
	code, err := totp.GenerateCodeCustom(secret, h.clock.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		h.t.Fatal(err)
	}
	return code
}

// enrol switches 2FA on for a signed-in user and returns the secret and the
// recovery codes. The clock moves past the step the enable code used.
func (h *harness) enrol(p pair) (secret string, recovery []string) {
	h.t.Helper()
	r := h.do("POST", "/auth/2fa/setup", map[string]any{"password": goodPassword}, bearer(p.access)...)
	expect(h.t, r, 200, "")
	secret = r.str("secret")
	r = h.do("POST", "/auth/2fa/enable", map[string]any{"code": h.totpCode(secret), "password": goodPassword}, bearer(p.access)...)
	expect(h.t, r, 200, "")
	for _, c := range r.body["recovery_codes"].([]any) {
		recovery = append(recovery, c.(string))
	}
	h.clock.Advance(30 * time.Second)
	return secret, recovery
}

// challenge logs in and expects a challenge of kind.
func (h *harness) challenge(email, password, kind string) string {
	h.t.Helper()
	r := h.do("POST", "/auth/login", map[string]any{"email": email, "password": password})
	expect(h.t, r, 200, "")
	if r.str("challenge_name") != kind || r.str("session") == "" || r.body["expires_in"] != float64(300) {
		h.t.Fatalf("login answered %s, want a %s challenge", r.raw, kind)
	}
	for _, k := range []string{"access", "access_token", "refresh", "refresh_token"} {
		if _, ok := r.body[k]; ok {
			h.t.Fatalf("a challenge carries %q: %s", k, r.raw)
		}
	}
	h.keep(r.str("session"))
	return r.str("session")
}

func TestMFAEnrolAndLogin(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch, func(c *fiberauth.Config) { c.TOTPIssuer = "Example App" })
		u := h.createUser("ada@example.com")
		p := h.login("ada@example.com", goodPassword)
		other := h.login("ada@example.com", goodPassword)

		// Enrolling needs the password again: a stolen access token alone
		// cannot add the thief's authenticator.
		expectField(t, h.do("POST", "/auth/2fa/setup", nil, bearer(p.access)...), "password")
		expect(t, h.do("POST", "/auth/2fa/setup", map[string]any{"password": "not my password"}, bearer(p.access)...), 401, "invalid_credentials")
		setup := h.do("POST", "/auth/2fa/setup", map[string]any{"password": goodPassword}, bearer(p.access)...)
		expect(t, setup, 200, "")
		secret, link := setup.str("secret"), setup.str("otpauth_url")
		parsed, err := url.Parse(link)
		if err != nil || parsed.Scheme != "otpauth" || parsed.Host != "totp" || parsed.Query().Get("issuer") != "Example App" ||
			!strings.Contains(parsed.Path, "ada@example.com") || parsed.Query().Get("secret") != secret || len(secret) < 32 {
			t.Fatalf("setup answered secret %q url %q", secret, link)
		}
		expect(t, h.do("POST", "/auth/2fa/setup", map[string]any{"password": goodPassword}), 401, "invalid_token")
		expectField(t, h.do("POST", "/auth/2fa/enable", map[string]any{"password": goodPassword}, bearer(p.access)...), "code")
		code := h.totpCode(secret)
		expectField(t, h.do("POST", "/auth/2fa/enable", map[string]any{"code": code}, bearer(p.access)...), "password")
		expect(t, h.do("POST", "/auth/2fa/enable", map[string]any{"code": code, "password": "not my password"}, bearer(p.access)...), 401, "invalid_credentials")
		expect(t, h.do("POST", "/auth/2fa/enable", map[string]any{"code": "000000", "password": goodPassword}, bearer(p.access)...), 401, "invalid_grant")
		// Setting up is not enabling: login still answers tokens.
		h.login("ada@example.com", goodPassword)

		r := h.do("POST", "/auth/2fa/enable", map[string]any{"code": code, "password": goodPassword}, bearer(p.access)...)
		expect(t, r, 200, "")
		codes, _ := r.body["recovery_codes"].([]any)
		seen := map[any]bool{}
		for _, c := range codes {
			seen[c] = true
			h.keep(c.(string))
		}
		if len(codes) != 10 || len(seen) != 10 {
			t.Fatalf("recovery codes: %s", r.raw)
		}
		// The etag changed: the access token from before is stale. The
		// caller's session goes on; every other session has ended.
		expect(t, h.do("GET", "/api/profile", nil, bearer(p.access)...), 401, "invalid_token")
		p = pairOf(t, h.refresh(p.refresh))
		expect(t, h.refresh(other.refresh), 401, "invalid_grant")
		expect(t, h.do("POST", "/auth/2fa/setup", map[string]any{"password": goodPassword}, bearer(p.access)...), 409, "conflict")
		expect(t, h.do("POST", "/auth/2fa/enable", map[string]any{"code": code, "password": goodPassword}, bearer(p.access)...), 409, "conflict")

		// Login now needs the second factor; the code used to enable is spent.
		session := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
		expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": code}), 401, "invalid_grant")
		expectField(t, h.do("POST", "/auth/login/2fa", map[string]any{"code": code}), "session")
		expectField(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session}), "code")
		h.clock.Advance(30 * time.Second)
		next := h.totpCode(secret)
		r = h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": next})
		mp := pairOf(t, r)
		if r.obj("user")["mfa_enabled"] != true || r.obj("user")["id"] != u.ID {
			t.Fatalf("2fa login: %s", r.raw)
		}
		if h.profileStatus(mp.access) != 200 {
			t.Fatal("the 2fa login's token does not work")
		}
		// The session is single use, and the code too, even with a new session.
		expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": next}), 401, "invalid_grant")
		another := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
		expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": another, "code": next}), 401, "invalid_grant")
		// A code of the previous step still works (one step of skew), once.
		h.clock.Advance(30 * time.Second)
		expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": another, "code": h.totpCode(secret)}), 200, "")
		if !h.sawEvent(fiberauth.EventMFAEnabled) {
			t.Fatal("no mfa_enabled event")
		}
	})
}

func TestMFARecoveryCodes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	_, recovery := h.enrol(p)
	before, _ := h.auth.UserByEmail(context.Background(), "ada@example.com")

	session := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
	r := h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": strings.ToUpper(recovery[3])})
	np := pairOf(t, r)
	if np.etag == before.ETag {
		t.Fatal("using a recovery code did not change the etag")
	}
	session = h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
	expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": recovery[3]}), 401, "invalid_grant")
	expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": "not-a-code"}), 401, "invalid_grant")
	expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": recovery[4]}), 200, "")
	if !h.sawEvent(fiberauth.EventRecoveryCodeUsed) {
		t.Fatal("no recovery_code_used event")
	}
}

func TestMFAChallengeExpiryBurnAndKind(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	secret, _ := h.enrol(h.login("ada@example.com", goodPassword))

	t.Run("expiry", func(t *testing.T) {
		session := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
		h.clock.Advance(5*time.Minute + time.Second)
		expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": h.totpCode(secret)}), 401, "invalid_grant")
	})
	t.Run("burnt after 5 wrong codes", func(t *testing.T) {
		h.clock.Advance(time.Minute)
		session := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
		for range fiberauth.CodeMaxAttempts {
			expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": "123456"}), 401, "invalid_grant")
		}
		expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": h.totpCode(secret)}), 401, "invalid_grant")
	})
	t.Run("unknown session", func(t *testing.T) {
		expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": "made-up", "code": "123456"}), 401, "invalid_grant")
	})
	t.Run("other kind", func(t *testing.T) {
		if _, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "new@example.com", Password: "temporary secret 1", TemporaryPassword: true, Verified: true}); err != nil {
			t.Fatal(err)
		}
		session := h.challenge("new@example.com", "temporary secret 1", fiberauth.ChallengeNewPassword)
		expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": "123456"}), 401, "invalid_grant")
		mfa := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
		expect(t, h.do("POST", "/auth/login/new-password", map[string]any{"session": mfa, "email": "ada@example.com", "new_password": "something else long"}), 401, "invalid_grant")
	})
}

// One valid code submitted 20 times at once signs in once: on one challenge
// session, and on 20 different ones.
func TestMFAParallelSubmissions(t *testing.T) {
	t.Parallel()
	// The losers' failures would trip the code limit; that is tested apart.
	h := newHarness(t, func(c *fiberauth.Config) { c.MaxCodeFailures = -1 })
	h.createUser("ada@example.com")
	secret, _ := h.enrol(h.login("ada@example.com", goodPassword))

	run := func(sessions []string, code string) int {
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			ok    int
			start = make(chan struct{})
		)
		for _, s := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := h.do("POST", "/auth/login/2fa", map[string]any{"session": s, "code": code})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case r.status == 200:
					ok++
				case r.status != 401 || r.str("error") != "invalid_grant":
					t.Errorf("parallel submission answered %d %s", r.status, r.raw)
				}
			}()
		}
		close(start)
		wg.Wait()
		return ok
	}

	one := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
	same := make([]string, 20)
	for i := range same {
		same[i] = one
	}
	if got := run(same, h.totpCode(secret)); got != 1 {
		t.Fatalf("20 submissions on one session: %d succeeded, want 1", got)
	}
	h.clock.Advance(30 * time.Second)
	many := make([]string, 20)
	for i := range many {
		many[i] = h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
	}
	if got := run(many, h.totpCode(secret)); got != 1 {
		t.Fatalf("one code on 20 sessions: %d succeeded, want 1", got)
	}
}

func TestMFADisable(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch)
		h.createUser("ada@example.com")
		p := h.login("ada@example.com", goodPassword)
		secret, recovery := h.enrol(p)
		p = pairOf(t, h.refresh(p.refresh))
		disable := func(body map[string]any, hdr ...string) response {
			return h.do("POST", "/auth/2fa/disable", body, hdr...)
		}

		// The password and a current code, both: a stolen access token alone
		// cannot switch the second factor off.
		expectField(t, disable(map[string]any{"code": h.totpCode(secret)}, bearer(p.access)...), "password")
		expectField(t, disable(map[string]any{"password": goodPassword}, bearer(p.access)...), "code")
		expect(t, disable(map[string]any{"password": "not my password", "code": h.totpCode(secret)}, bearer(p.access)...), 401, "invalid_credentials")
		expect(t, disable(map[string]any{"password": goodPassword, "code": "000000"}, bearer(p.access)...), 401, "invalid_grant")
		expect(t, disable(map[string]any{"password": goodPassword, "code": "aaaaa-bbbbb"}, bearer(p.access)...), 401, "invalid_grant")
		expect(t, disable(map[string]any{"password": goodPassword, "code": h.totpCode(secret)}), 401, "invalid_token")
		h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)

		expect(t, disable(map[string]any{"password": goodPassword, "code": recovery[0]}, bearer(p.access)...), 200, "")
		expect(t, h.do("GET", "/api/profile", nil, bearer(p.access)...), 401, "invalid_token")
		np := h.login("ada@example.com", goodPassword)
		if np.etag == p.etag {
			t.Fatal("disabling 2FA did not change the etag")
		}
		// Enrolling again starts from a new secret, and a TOTP code disables.
		secret, _ = h.enrol(np)
		h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
		np = pairOf(t, h.refresh(np.refresh))
		expect(t, disable(map[string]any{"password": goodPassword, "code": h.totpCode(secret)}, bearer(np.access)...), 200, "")
		h.login("ada@example.com", goodPassword)
	})
}

// New recovery codes take the password and a current code; the old ones
// stop working.
func TestMFARegenerateRecoveryCodes(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch)
		h.createUser("ada@example.com")
		p := h.login("ada@example.com", goodPassword)
		// Without 2FA there are no recovery codes to replace.
		expect(t, h.do("POST", "/auth/2fa/recovery-codes", map[string]any{"password": goodPassword, "code": "000000"}, bearer(p.access)...), 400, "invalid_request")
		secret, old := h.enrol(p)
		p = pairOf(t, h.refresh(p.refresh))
		regen := func(body map[string]any) response {
			return h.do("POST", "/auth/2fa/recovery-codes", body, bearer(p.access)...)
		}
		expectField(t, regen(map[string]any{"code": h.totpCode(secret)}), "password")
		expectField(t, regen(map[string]any{"password": goodPassword}), "code")
		expect(t, regen(map[string]any{"password": "not my password", "code": h.totpCode(secret)}), 401, "invalid_credentials")
		expect(t, regen(map[string]any{"password": goodPassword, "code": "000000"}), 401, "invalid_grant")
		r := regen(map[string]any{"password": goodPassword, "code": h.totpCode(secret)})
		expect(t, r, 200, "")
		codes, _ := r.body["recovery_codes"].([]any)
		if len(codes) != 10 {
			t.Fatalf("new recovery codes: %s", r.raw)
		}
		for _, c := range codes {
			h.keep(c.(string))
		}
		session := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
		expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": old[0]}), 401, "invalid_grant")
		expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": codes[0]}), 200, "")
		if !h.sawEvent(fiberauth.EventRecoveryCodesRegenerated) {
			t.Fatal("no recovery_codes_regenerated event")
		}
	})
}

// A password reset never switches 2FA off.
func TestResetKeepsMFA(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	h.enrol(h.login("ada@example.com", goodPassword))
	expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"email": "ada@example.com"}), 202, "")
	code := h.lastCode("ada@example.com", fiberauth.PurposePasswordReset)
	expect(t, h.do("POST", "/auth/password/reset", map[string]any{"email": "ada@example.com", "confirmation_code": code, "password": "reset to something long"}), 200, "")
	h.challenge("ada@example.com", "reset to something long", fiberauth.ChallengeMFA)
}

func TestNewPasswordRequired(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const temp, real = "temporary secret 1", "my very own password"
	if _, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "new@example.com", Username: "newbie", Password: temp, TemporaryPassword: true, Verified: true}); err != nil {
		t.Fatal(err)
	}
	h.keep(temp, real)
	session := h.challenge("new@example.com", temp, fiberauth.ChallengeNewPassword)

	np := func(body map[string]any) response { return h.do("POST", "/auth/login/new-password", body) }
	expectField(t, np(map[string]any{"email": "new@example.com", "new_password": real}), "session")
	expectField(t, np(map[string]any{"session": session, "new_password": real}), "username")
	expectField(t, np(map[string]any{"session": session, "email": "new@example.com", "new_password": "short"}), "new_password")
	expectField(t, np(map[string]any{"session": session, "email": "new@example.com", "new_password": "password123"}), "new_password")
	h.createUser("other@example.com")
	expect(t, np(map[string]any{"session": session, "email": "other@example.com", "new_password": real}), 401, "invalid_grant")

	r := np(map[string]any{"session": session, "username": "NEWBIE", "new_password": real})
	p := pairOf(t, r)
	if h.profileStatus(p.access) != 200 {
		t.Fatal("the new-password login's token does not work")
	}
	expect(t, np(map[string]any{"session": session, "email": "new@example.com", "new_password": "yet another phrase"}), 401, "invalid_grant")
	expect(t, h.do("POST", "/auth/login", map[string]any{"email": "new@example.com", "password": temp}), 401, "invalid_credentials")
	h.login("new@example.com", real)
}

func TestTemporaryPasswordExpires(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const temp = "temporary secret 1"
	if _, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "new@example.com", Password: temp, TemporaryPassword: true, Verified: true}); err != nil {
		t.Fatal(err)
	}
	h.keep(temp)
	h.clock.Advance(7*24*time.Hour - time.Minute)
	h.challenge("new@example.com", temp, fiberauth.ChallengeNewPassword)
	h.clock.Advance(time.Minute)
	expect(t, h.do("POST", "/auth/login", map[string]any{"email": "new@example.com", "password": temp}), 401, "invalid_credentials")
}

// A challenge dies with the state it was issued for: any change of the
// user since (a password set or reset) refuses it, whatever the answer.
func TestChallengeBoundToUserState(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch)
		const temp = "temporary secret 1"
		h.keep(temp)
		if _, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "new@example.com", Password: temp, TemporaryPassword: true, Verified: true}); err != nil {
			t.Fatal(err)
		}
		// An attacker with the temporary password takes a challenge; the owner
		// takes another and sets their password. The attacker's is dead.
		stale := h.challenge("new@example.com", temp, fiberauth.ChallengeNewPassword)
		mine := h.challenge("new@example.com", temp, fiberauth.ChallengeNewPassword)
		pairOf(t, h.do("POST", "/auth/login/new-password", map[string]any{"session": mine, "email": "new@example.com", "new_password": "the owner's own password"}))
		expect(t, h.do("POST", "/auth/login/new-password", map[string]any{"session": stale, "email": "new@example.com", "new_password": "the attacker's password"}), 401, "invalid_grant")
		h.login("new@example.com", "the owner's own password")

		// An MFA challenge taken before a password reset does not survive it.
		h.createUser("ada@example.com")
		secret, _ := h.enrol(h.login("ada@example.com", goodPassword))
		before := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
		expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"email": "ada@example.com"}), 202, "")
		code := h.lastCode("ada@example.com", fiberauth.PurposePasswordReset)
		expect(t, h.do("POST", "/auth/password/reset", map[string]any{"email": "ada@example.com", "confirmation_code": code, "password": "reset to something long"}), 200, "")
		expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": before, "code": h.totpCode(secret)}), 401, "invalid_grant")
		after := h.challenge("ada@example.com", "reset to something long", fiberauth.ChallengeMFA)
		pairOf(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": after, "code": h.totpCode(secret)}))
	})
}
