package fiberauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/storetest"
)

// lateGatedUsers reads the user, then holds the answer at the gate (once
// armed): a store read that saw the record before a change, answered
// after the change's notice arrived.
type lateGatedUsers struct {
	storetest.FullStore
	fiberauth.Notifier // storetest.FullStore has no Notifier: hear the notices
	*gate
}

func newLateGatedUsers(s fiberauth.Store) *lateGatedUsers {
	return &lateGatedUsers{FullStore: s.(storetest.FullStore), Notifier: s.(fiberauth.Notifier), gate: newGate()}
}

func (g *lateGatedUsers) UserByID(ctx context.Context, id string) (fiberauth.User, error) {
	u, err := g.FullStore.UserByID(ctx, id)
	g.pass()
	return u, err
}

// Review: a flow's read of a user (readUser: GET /auth/me, login, refresh,
// UserByID) that began before a change made on another instance, and
// answers after that change's notice was heard, is cached over the notice:
// the notice deleted the cached entry (and with it its generation), and
// flow reads are not flights, so nothing stops the old record being noted.
// The caller's own token (old etag) is then accepted on B for CacheTTL.
// An attacker with a stolen access token can drive this by calling
// GET /auth/me on B in a loop while the victim changes password (same
// family kept) or an admin removes a role.
func TestReviewFlowReadCachedOverNotice(t *testing.T) {
	t.Parallel()
	base := newHarness(t)
	gated := newLateGatedUsers(base.store)
	a := newHarnessOn(t, gated.FullStore, testEpoch, cacheTTL(time.Minute))
	b := newHarnessOn(t, gated, testEpoch, cacheTTL(time.Minute))
	u := a.createUser("ada@example.com", "admin")
	p := a.login("ada@example.com", goodPassword)
	expect(t, b.do("GET", "/api/admin/ping", nil, bearer(p.access)...), 200, "") // B caches the user

	wait := gated.inFlight(t, b, "/auth/me", p.access)                       // Me's readUser has read the user, with its role
	if err := a.auth.SetRoles(context.Background(), u.ID, nil); err != nil { // the notice reaches B now
		t.Fatal(err)
	}
	if got := wait(); got != 200 {
		t.Fatalf("GET /auth/me that began before the change: %d", got)
	}
	if got := b.do("GET", "/api/admin/ping", nil, bearer(p.access)...).status; got != 401 {
		t.Fatalf("B heard the role removal, yet accepts the old token on the admin route: %d (want 401)", got)
	}
}
