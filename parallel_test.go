package fiberauth_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// Limits hold under parallel attack: an attempt is reserved before the work
// it limits, so a burst is evaluated up to the limit and no further, on
// every store.

// burst sends n requests at once and counts the answers by status.
func (h *harness) burst(n int, send func(i int) response) map[int]int {
	h.t.Helper()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[int]int{}
		start  = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			r := send(i)
			mu.Lock()
			defer mu.Unlock()
			counts[r.status]++
		})
	}
	close(start)
	wg.Wait()
	return counts
}

func TestParallelWrongLogins(t *testing.T) {
	t.Parallel()
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch)
		h.createUser("ada@example.com")
		before := fiberauth.PasswordHashOps(h.auth)
		got := h.burst(200, func(int) response {
			return h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": "wrong password!"})
		})
		evaluated := fiberauth.PasswordHashOps(h.auth) - before
		if got[401] != 10 || got[429] != 190 || evaluated != 10 {
			t.Fatalf("200 parallel wrong logins: answers %v, %d passwords hashed; want 10 × 401 and 190 × 429, 10 hashed; first error: %s", got, evaluated, h.firstError())
		}
		// The window is full: the right password waits too, unhashed.
		before = fiberauth.PasswordHashOps(h.auth)
		expectThrottled(t, h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword}), 15*time.Minute)
		if n := fiberauth.PasswordHashOps(h.auth) - before; n != 0 {
			t.Fatalf("a throttled login hashed %d passwords", n)
		}
		h.clock.Advance(15 * time.Minute)
		h.login("ada@example.com", goodPassword)
	})
}

// A stolen access token cannot guess the password either: wrong passwords
// sent to the endpoints behind a token count against the account's login
// limit, in parallel too; with 2FA on, a current code does not help.
func TestParallelWrongPasswordBehindToken(t *testing.T) {
	t.Parallel()
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch)
		h.createUser("ada@example.com")
		p := h.login("ada@example.com", goodPassword)
		guess := func(i int) string { return fmt.Sprintf("guess number %d", i) }
		check := func(what string, send func(i int) response) {
			t.Helper()
			before := fiberauth.PasswordHashOps(h.auth)
			got := h.burst(200, send)
			if evaluated := fiberauth.PasswordHashOps(h.auth) - before; got[401] != 10 || got[429] != 190 || evaluated != 10 {
				t.Fatalf("200 parallel wrong passwords to %s: answers %v, %d hashed; want 10 × 401 and 190 × 429, 10 hashed", what, got, evaluated)
			}
			// They count against login too.
			expectThrottled(t, h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword}), 15*time.Minute)
			h.clock.Advance(15 * time.Minute)
		}
		check("/password/change and /2fa/setup", func(i int) response {
			if i%2 == 1 {
				return h.do("POST", "/auth/2fa/setup", map[string]any{"password": guess(i)}, bearer(p.access)...)
			}
			body := map[string]any{"previous_password": guess(i), "proposed_password": "a brand new passphrase"}
			return h.do("POST", "/auth/password/change", body, bearer(p.access)...)
		})

		secret, _ := h.enrol(p)
		p = pairOf(t, h.refresh(p.refresh))
		code := h.totpCode(secret)
		check("/2fa/disable and /2fa/recovery-codes", func(i int) response {
			body := map[string]any{"password": guess(i), "code": code}
			if i%2 == 1 {
				return h.do("POST", "/auth/2fa/recovery-codes", body, bearer(p.access)...)
			}
			return h.do("POST", "/auth/2fa/disable", body, bearer(p.access)...)
		})
		// Nothing changed: 2FA is still on.
		h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
	})
}

// Wrong second-factor codes, each on a challenge of its own, are evaluated
// up to the limit and no further; the right code then waits too.
func TestParallelWrongSecondFactor(t *testing.T) {
	t.Parallel()
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch)
		h.createUser("ada@example.com")
		secret, _ := h.enrol(h.login("ada@example.com", goodPassword))
		sessions := make([]string, 60)
		for i := range sessions {
			sessions[i] = h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
		}
		right := h.totpCode(secret)
		got := h.burst(len(sessions), func(i int) response {
			wrong := "000000"
			if wrong == right {
				wrong = "111111"
			}
			return h.do("POST", "/auth/login/2fa", map[string]any{"session": sessions[i], "code": wrong})
		})
		if got[401] != 10 || got[429] != 50 {
			t.Fatalf("60 parallel wrong codes: answers %v; want 10 × 401 and 50 × 429", got)
		}
		session := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
		expectThrottled(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": right}), 15*time.Minute)
	})
}

// 64 simultaneous guesses at one reset code burn it after five, whatever
// the store: the right code sent after them is refused (and, the code
// gone, not throttled).
func TestParallelCodeGuesses(t *testing.T) {
	t.Parallel()
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch)
		h.createUser("ada@example.com")
		expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"email": "ada@example.com"}), 202, "")
		code := h.lastCode("ada@example.com", fiberauth.PurposePasswordReset)
		got := h.burst(64, func(i int) response {
			guess := fmt.Sprintf("%06d", i)
			if guess == code {
				guess = "999999x"
			}
			return h.do("POST", "/auth/password/reset", map[string]any{"email": "ada@example.com", "confirmation_code": guess, "password": "reset to something long"})
		})
		// At most the account's limit run at once; the rest wait (429) or
		// run later against a code already burnt (401).
		if got[401]+got[429] != 64 || got[401] < 10 {
			t.Fatalf("64 parallel wrong codes: answers %v, want at least 10 × 401, the rest 429; first error: %s", got, h.firstError())
		}
		expect(t, h.do("POST", "/auth/password/reset", map[string]any{"email": "ada@example.com", "confirmation_code": code, "password": "reset to something long"}), 401, "invalid_grant")
	})
}

// firstError is the first error the harness's Auth logged, for failure
// messages.
func (h *harness) firstError() string {
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, "level=ERROR") {
			return l
		}
	}
	return "(none logged)"
}
