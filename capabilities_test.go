package fiberauth_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
	"github.com/fiberauth/fiberauth/storetest"
)

// coreOnly is a Store with none of the optional capabilities, as a host's
// first store of its own would be.
type coreOnly struct {
	fiberauth.Store
	failUpdates atomic.Int32 // UpdateUser fails this many more times
}

func (s *coreOnly) UpdateUser(ctx context.Context, u fiberauth.UserUpdate) (fiberauth.UpdateResult, error) {
	if s.failUpdates.Add(-1) >= 0 {
		return fiberauth.UpdateResult{}, errDown
	}
	return s.Store.UpdateUser(ctx, u)
}

// A store with only the core works for every flow: New says once what it
// keeps in process memory instead, and keeps it there correctly.
func TestCoreOnlyStore(t *testing.T) {
	t.Parallel()
	core := &coreOnly{}
	h := newHarness(t, func(c *fiberauth.Config) {
		core.Store = c.Store
		c.Store = core
	})
	logs := h.logs.String()
	for _, want := range []string{"CodeStore", "ChallengeStore", "AttemptStore", "TOTPStore", "Cleaner", "each instance counts alone"} {
		if !strings.Contains(logs, want) {
			t.Errorf("New's log does not say the store lacks %q:\n%s", want, logs)
		}
	}

	// Codes: signup and confirmation.
	expect(t, h.do("POST", "/auth/signup", map[string]any{"email": "new@example.com", "password": goodPassword}), 202, "")
	code := h.lastCode("new@example.com", fiberauth.PurposeEmailConfirm)
	expect(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "new@example.com", "code": "x" + code}), 401, "invalid_grant")
	// A change that fails leaves the code usable.
	core.failUpdates.Store(1)
	expect(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "new@example.com", "code": code}), 503, "unavailable")
	expect(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "new@example.com", "code": code}), 200, "")
	expect(t, h.do("POST", "/auth/email/confirm", map[string]any{"email": "new@example.com", "code": code}), 401, "invalid_grant")

	// Challenges and TOTP steps: a 2FA login, and a code used once.
	h.createUser("ada@example.com")
	secret, _ := h.enrol(h.login("ada@example.com", goodPassword))
	one := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
	two := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
	totp := h.totpCode(secret)
	pairOf(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": one, "code": totp}))
	expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": two, "code": totp}), 401, "invalid_grant")

	// Attempts: the login limit.
	for range 10 {
		expect(t, h.do("POST", "/auth/login", map[string]any{"email": "bob@example.com", "password": "wrong password!"}), 401, "invalid_credentials")
	}
	expectThrottled(t, h.do("POST", "/auth/login", map[string]any{"email": "bob@example.com", "password": "wrong password!"}), 15*time.Minute)
}

// fiberauth deletes expired records itself, every CleanupInterval on its
// clock, through the store's Cleaner.
func TestCleanup(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *fiberauth.Config) {
		c.RefreshIdleTTL, c.RefreshMaxTTL = 10*time.Minute, 10*time.Minute
		c.CleanupInterval = 30 * time.Minute
	})
	h.createUser("ada@example.com")
	old := h.login("ada@example.com", goodPassword)
	stored := func(sid string) bool {
		_, err := h.store.SessionByID(context.Background(), sid)
		if err != nil && !errors.Is(err, fiberauth.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	h.clock.Advance(20 * time.Minute)
	h.login("ada@example.com", goodPassword) // old has expired; no cleanup is due
	h.flush()
	if !stored(old.sid) {
		t.Fatal("a cleanup ran before CleanupInterval")
	}
	h.clock.Advance(15 * time.Minute)
	young := h.login("ada@example.com", goodPassword) // a cleanup is due
	h.flush()
	if stored(old.sid) {
		t.Fatal("an expired session was not deleted")
	}
	if !stored(young.sid) {
		t.Fatal("a live session was deleted")
	}
}

// What New keeps in process memory for a store without the optional
// capabilities keeps the same contract as a store's own.
func TestLocalCapabilitiesConform(t *testing.T) {
	storetest.Run(t, func(*testing.T) fiberauth.Store {
		return fiberauth.WithLocalCapabilities(struct{ fiberauth.Store }{memstore.New()})
	})
}
