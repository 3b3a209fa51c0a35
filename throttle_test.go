package fiberauth_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/sqlstore"
)

func expectThrottled(t testing.TB, r response, maxWait time.Duration) {
	t.Helper()
	expect(t, r, 429, "rate_limited")
	s, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || s < 1 || time.Duration(s)*time.Second > maxWait {
		t.Fatalf("Retry-After = %q, want 1..%v seconds", r.header.Get("Retry-After"), maxWait.Seconds())
	}
}

func TestLoginThrottlePerAccount(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch)
		h.createUser("ada@example.com")
		login := func(name, pw string) response {
			return h.do("POST", "/auth/login", map[string]any{"email": name, "password": pw})
		}
		// Known and unknown names are throttled alike.
		for _, name := range []string{"ada@example.com", "ghost@example.com"} {
			for range 10 {
				expect(t, login(name, "wrong password!"), 401, "invalid_credentials")
			}
			expectThrottled(t, login(name, "wrong password!"), 15*time.Minute)
			expectThrottled(t, login(name, goodPassword), 15*time.Minute)
		}
		// Other accounts are not affected.
		h.createUser("bob@example.com")
		h.login("bob@example.com", goodPassword)

		h.clock.Advance(15 * time.Minute)
		h.login("ada@example.com", goodPassword)

		// A success resets the account's count.
		for range 9 {
			expect(t, login("ada@example.com", "wrong password!"), 401, "invalid_credentials")
		}
		h.login("ada@example.com", goodPassword)
		for range 9 {
			expect(t, login("ada@example.com", "wrong password!"), 401, "invalid_credentials")
		}
		h.login("ada@example.com", goodPassword)
	})
}

func TestLoginThrottlePerIPAndProxies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *fiberauth.Config) {
		c.MaxLoginFailuresPerIP = 5
		c.TrustedProxies = []string{"0.0.0.0/32"} // app.Test's peer address
	})
	h.createUser("ada@example.com")
	from := func(ip, name string) response {
		return h.do("POST", "/auth/login", map[string]any{"email": name, "password": "wrong password!"}, "X-Forwarded-For", ip)
	}
	for i := range 5 {
		expect(t, from("203.0.113.7", "user"+strconv.Itoa(i)+"@example.com"), 401, "invalid_credentials")
	}
	expectThrottled(t, from("203.0.113.7", "another@example.com"), 15*time.Minute)
	// A proxy chain: the client is the rightmost untrusted address.
	expectThrottled(t, from("198.51.100.1, 203.0.113.7", "another@example.com"), 15*time.Minute)
	expect(t, from("203.0.113.8", "another@example.com"), 401, "invalid_credentials")

	// The session list shows the forwarded address.
	r := h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword}, "X-Forwarded-For", "192.0.2.55")
	p := pairOf(t, r)
	list := h.do("GET", "/auth/sessions", nil, bearer(p.access)...)
	if s := list.body["sessions"].([]any)[0].(map[string]any); s["ip"] != "192.0.2.55" {
		t.Fatalf("session ip = %v", s["ip"])
	}
}

// Without trusted proxies X-Forwarded-For is ignored: a client cannot dodge
// the per-IP limit by sending one.
func TestForwardedForIgnoredWithoutTrustedProxies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *fiberauth.Config) { c.MaxLoginFailuresPerIP = 3 })
	for i := range 3 {
		r := h.do("POST", "/auth/login", map[string]any{"email": "x" + strconv.Itoa(i) + "@example.com", "password": "wrong password!"},
			"X-Forwarded-For", "203.0.113."+strconv.Itoa(i))
		expect(t, r, 401, "invalid_credentials")
	}
	r := h.do("POST", "/auth/login", map[string]any{"email": "y@example.com", "password": "wrong password!"}, "X-Forwarded-For", "203.0.113.99")
	expectThrottled(t, r, 15*time.Minute)
}

// Wrong codes are counted per account and purpose: ten wrong reset codes
// make the right one wait, but touch neither email confirmation nor the
// second factor. A check with no code pending counts nothing against the
// account, and a name no account has creates no state: both count only
// against the client's network.
func TestCodeThrottle(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch, func(c *fiberauth.Config) {
			c.MaxCodeFailuresPerIP = 25
			c.TrustedProxies = []string{"0.0.0.0/32"} // app.Test's peer address
		})
		h.createUser("ada@example.com")
		secret, _ := h.enrol(h.login("ada@example.com", goodPassword))
		reset := func(name, c string) response {
			return h.do("POST", "/auth/password/reset", map[string]any{"email": name, "confirmation_code": c, "password": "reset to something long"})
		}
		// Nothing pending: never throttled per account.
		for range 12 {
			expect(t, reset("ada@example.com", "000000"), 401, "invalid_grant")
		}
		// Five wrong tries burn a code; with a new one, five more reach the
		// account's limit of ten.
		var code string
		for range 2 {
			expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"email": "ada@example.com"}), 202, "")
			code = h.lastCode("ada@example.com", fiberauth.PurposePasswordReset)
			for range fiberauth.CodeMaxAttempts {
				expect(t, reset("ada@example.com", "000000x"), 401, "invalid_grant")
			}
		}
		expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"email": "ada@example.com"}), 202, "")
		code = h.lastCode("ada@example.com", fiberauth.PurposePasswordReset)
		expectThrottled(t, reset("ada@example.com", code), 15*time.Minute)
		// Other purposes of the same account are not affected: the 2FA login
		// goes on.
		session := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
		pairOf(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": h.totpCode(secret)}))
		expect(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "ada@example.com", "code": "123456"}), 401, "invalid_grant")

		// 12 + 10 + 1 failures from this network so far, and 2 to go: unknown
		// names count against it alone.
		expect(t, reset("ghost@example.com", "000000"), 401, "invalid_grant")
		expect(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "ghost2@example.com", "code": "123456"}), 401, "invalid_grant")
		expectThrottled(t, reset("ghost3@example.com", "000000"), 15*time.Minute)
		expectThrottled(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "ada@example.com", "code": "123456"}), 15*time.Minute)
		// Another network is not.
		expect(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "ghost@example.com", "code": "123456"}, "X-Forwarded-For", "192.0.2.1"), 401, "invalid_grant")

		h.clock.Advance(15 * time.Minute)
		expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"email": "ada@example.com"}), 202, "")
		expect(t, reset("ada@example.com", h.lastCode("ada@example.com", fiberauth.PurposePasswordReset)), 200, "")
	})
}

func TestSecondFactorThrottle(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch)
		h.createUser("ada@example.com")
		secret, _ := h.enrol(h.login("ada@example.com", goodPassword))
		for range 2 {
			session := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
			for range 5 {
				expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": "000000"}), 401, "invalid_grant")
			}
		}
		session := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
		expectThrottled(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": h.totpCode(secret)}), 15*time.Minute)
	})
}

// /password/forgot sends at most MaxCodeSends codes an hour, and answers 202
// all the same.
func TestForgotSendThrottle(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch)
		h.createUser("ada@example.com")
		count := func() int {
			h.flush()
			h.mu.Lock()
			defer h.mu.Unlock()
			n := 0
			for _, m := range h.outbox {
				if m.Purpose == fiberauth.PurposePasswordReset {
					n++
				}
			}
			return n
		}
		for range 8 {
			expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"email": "ada@example.com"}), 202, "")
		}
		if n := count(); n != 5 {
			t.Fatalf("%d reset codes sent in an hour, want 5", n)
		}
		h.clock.Advance(time.Hour)
		expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"email": "ada@example.com"}), 202, "")
		if n := count(); n != 6 {
			t.Fatalf("after an hour: %d codes sent, want 6", n)
		}
	})
}

// An IPv6 client is limited per /64, which its owner holds whole; IPv4
// stays per address.
func TestLoginThrottlePerIPv6Network(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch, func(c *fiberauth.Config) {
			c.MaxLoginFailuresPerIP = 3
			c.TrustedProxies = []string{"0.0.0.0/32"} // app.Test's peer address
		})
		from := func(ip string, i int) response {
			return h.do("POST", "/auth/login", map[string]any{"email": "user" + strconv.Itoa(i) + "@example.com", "password": "wrong password!"}, "X-Forwarded-For", ip)
		}
		for i, ip := range []string{"2001:db8:aa:bb::1", "2001:db8:aa:bb::2", "2001:db8:aa:bb:ffff:ffff:ffff:ffff"} {
			expect(t, from(ip, i), 401, "invalid_credentials")
		}
		expectThrottled(t, from("2001:db8:aa:bb:1234::9", 9), 15*time.Minute)
		expect(t, from("2001:db8:aa:bc::1", 10), 401, "invalid_credentials")
		// IPv4-mapped IPv6 is the IPv4 address.
		for i, ip := range []string{"198.51.100.1", "::ffff:198.51.100.1", "198.51.100.1"} {
			expect(t, from(ip, 20+i), 401, "invalid_credentials")
		}
		expectThrottled(t, from("198.51.100.1", 30), 15*time.Minute)
		expect(t, from("198.51.100.2", 31), 401, "invalid_credentials")
	})
}

// Names no account has leave no state behind in the flows that send or
// check codes: only the client's network is counted, so a flood of made-up
// names grows nothing per name (on SQL, only the network's window rows).
func TestUnknownNamesMakeNoState(t *testing.T) {
	for _, kind := range storeKinds {
		if kind.name == "memory" {
			continue // BenchmarkDistinctNamesFlood measures memstore's heap
		}
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			db := kind.open(t).(*sqlstore.Store)
			h := newHarnessOn(t, db, testEpoch)
			h.createUser("ada@example.com")
			before := storedRows(t, db)
			for i := range 20 {
				name := "nobody" + strconv.Itoa(i) + "@example.com"
				expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"email": name}), 202, "")
				expect(t, h.do("POST", "/auth/password/reset", map[string]any{"email": name, "confirmation_code": "123456", "password": "a new long passphrase"}), 401, "invalid_grant")
				expect(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": name, "code": "123456"}), 401, "invalid_grant")
			}
			h.flush()
			after := storedRows(t, db)
			// One window for the network's resets, one for its wrong codes.
			if got := after["fiberauth_attempts"] - before["fiberauth_attempts"]; got != 2 {
				t.Fatalf("60 requests for 20 unknown names added %d attempt windows, want 2 (the network's): %v → %v", got, before, after)
			}
			for _, table := range []string{"fiberauth_users", "fiberauth_codes", "fiberauth_sessions", "fiberauth_challenges"} {
				if after[table] != before[table] {
					t.Fatalf("requests for unknown names changed %s: %v → %v", table, before, after)
				}
			}
		})
	}
}
