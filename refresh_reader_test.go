package fiberauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
)

// A refresh answers the same whether the store reads a family and its user
// in one step (SessionUserReader) or not: rotation, a replay within the
// grace window, reuse, and a disabled user.
func TestRefreshWithAndWithoutSessionUserReader(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store fiberauth.Store
	}{
		{"SessionUserReader", memstore.New()},
		{"two reads", fiberauth.WithLocalCapabilities(struct{ fiberauth.Store }{memstore.New()})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, ok := tc.store.(fiberauth.SessionUserReader); ok != (tc.name == "SessionUserReader") {
				t.Fatalf("the store has SessionUserReader: %v", ok)
			}
			h := newHarnessOn(t, tc.store, testEpoch)
			u := h.createUser("ada@example.com")
			p0 := h.login("ada@example.com", goodPassword)
			h.clock.Advance(time.Minute)
			p1 := pairOf(t, h.refresh(p0.refresh))
			if p1.sid != p0.sid || p1.refresh == p0.refresh || h.profileStatus(p1.access) != 200 {
				t.Fatalf("the refresh did not rotate: %+v after %+v", p1, p0)
			}
			if again := pairOf(t, h.refresh(p0.refresh)); again != p1 {
				t.Fatalf("a replay within grace gave another pair:\n%+v\n%+v", again, p1)
			}
			h.clock.Advance(time.Minute)
			p2 := pairOf(t, h.refresh(p1.refresh))
			expect(t, h.refresh(p0.refresh), 401, "refresh_token_reused")
			expect(t, h.refresh(p2.refresh), 401, "invalid_grant")

			p := h.login("ada@example.com", goodPassword)
			if err := h.auth.DisableUser(context.Background(), u.ID); err != nil {
				t.Fatal(err)
			}
			expect(t, h.refresh(p.refresh), 401, "invalid_grant")
		})
	}
}
