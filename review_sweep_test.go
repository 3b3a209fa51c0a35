package fiberauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// Review: a notice heard while the middleware reads a user leaves a
// placeholder entry ({gen}, never fresh) so that the read in flight is not
// cached over it. The cache's sweep forgets every entry that is not fresh,
// placeholders included, without looking at generations; a read in flight
// across a sweep is then cached over the notice: the old record (old etag,
// old roles) is trusted for CacheTTL. The sweep is started by any cache
// miss once CleanupInterval has passed, so any request can trigger it.
func TestReviewSweepForgetsPlaceholderOfReadInFlight(t *testing.T) {
	t.Parallel()
	base := newHarness(t)
	gated := newLateGatedUsers(base.store)
	a := newHarnessOn(t, gated.FullStore, testEpoch, cacheTTL(time.Hour))
	b := newHarnessOn(t, gated, testEpoch, cacheTTL(time.Hour), func(c *fiberauth.Config) { c.CleanupInterval = time.Minute })
	u := a.createUser("ada@example.com", "admin")
	a.createUser("bob@example.com")
	p := a.login("ada@example.com", goodPassword)
	other := a.login("bob@example.com", goodPassword)

	wait := gated.inFlight(t, b, "/api/admin/ping", p.access)                // B's middleware has read ada, with her role
	if err := a.auth.SetRoles(context.Background(), u.ID, nil); err != nil { // B hears of it: placeholder
		t.Fatal(err)
	}
	b.clock.Advance(time.Minute + time.Second)            // a sweep is due
	if got := b.profileStatus(other.access); got != 200 { // a miss (bob) starts it
		t.Fatalf("bob on B: %d", got)
	}
	b.flush() // the sweep has run
	if got := wait(); got != 200 {
		t.Fatalf("the request that began before the change: %d", got)
	}
	if got := b.do("GET", "/api/admin/ping", nil, bearer(p.access)...).status; got != 401 {
		t.Fatalf("B heard the role removal, yet accepts the old token on the admin route: %d (want 401)", got)
	}
}
