package fiberauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/storetest"
)

// gatedLookups is a store, with every capability, whose lookups by email
// and username wait at a gate the test opens: what answers before it opens
// cannot depend on them.
type gatedLookups struct {
	storetest.FullStore
	gate chan struct{}
}

func (g *gatedLookups) UserByEmail(ctx context.Context, email string) (fiberauth.User, error) {
	<-g.gate
	return g.FullStore.UserByEmail(ctx, email)
}

func (g *gatedLookups) UserByUsername(ctx context.Context, username string) (fiberauth.User, error) {
	<-g.gate
	return g.FullStore.UserByUsername(ctx, username)
}

// /password/forgot and /signup answer before they look the account up, so
// neither their answer nor its time can tell whether an account exists.
func TestNoAccountOracleInTime(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		gated := &gatedLookups{FullStore: store.(storetest.FullStore), gate: make(chan struct{})}
		h := newHarnessOn(t, gated, testEpoch)
		if err := store.CreateUser(context.Background(), fiberauth.User{ID: "u1", Email: "ada@example.com", ETag: "e", PasswordHash: "x"}); err != nil {
			t.Fatal(err)
		}
		// The gate is shut: any lookup on the request path would hang here.
		for _, email := range []string{"ada@example.com", "nobody@example.com"} {
			expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"email": email}), 202, "")
			expect(t, h.do("POST", "/auth/signup", map[string]any{"email": email, "password": goodPassword}), 202, "")
		}
		close(gated.gate)
		h.flush()
		if code := h.lastCode("ada@example.com", fiberauth.PurposePasswordReset); code == "" {
			t.Fatal("no reset code for the existing account")
		}
		h.lastCode("ada@example.com", fiberauth.PurposeAccountExists)
		h.lastCode("nobody@example.com", fiberauth.PurposeEmailConfirm)
	})
}

// Signup is limited per client network (429) and per email address (over
// it nothing is sent, and the answer is the same).
func TestSignupLimits(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch, func(c *fiberauth.Config) {
			c.MaxSignupsPerIP = 4
			c.MaxCodeSends = 2
			c.TrustedProxies = []string{"0.0.0.0/32"} // app.Test's peer address
		})
		signup := func(email string, from string) response {
			return h.do("POST", "/auth/signup", map[string]any{"email": email, "password": goodPassword}, "X-Forwarded-For", from)
		}
		for range 4 {
			expect(t, signup("ada@example.com", "203.0.113.7"), 202, "")
		}
		expectThrottled(t, signup("bob@example.com", "203.0.113.7"), time.Hour)
		expect(t, signup("bob@example.com", "203.0.113.8"), 202, "")
		h.flush()
		sent := 0
		h.mu.Lock()
		for _, m := range h.outbox {
			if m.To == "ada@example.com" {
				sent++
			}
		}
		h.mu.Unlock()
		// Four signups with one address: a code, then a notice, then nothing.
		if sent != 2 {
			t.Fatalf("%d messages to one address in an hour, want 2", sent)
		}
		// IPv6 clients are one network per /64.
		for i := range 4 {
			expect(t, signup("v6user@example.com", "2001:db8:1:2::"+string(rune('a'+i))), 202, "")
		}
		expectThrottled(t, signup("v6other@example.com", "2001:db8:1:2:ffff::1"), time.Hour)
		expect(t, signup("v6other@example.com", "2001:db8:1:3::1"), 202, "")
	})
}
