package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// totpTests check TOTPStore.
var totpTests = []test{
	{name: "UseTOTPStep", fn: testUseTOTPStep},
	{name: "UseTOTPStepKeptByUpdates", fn: testUseTOTPStepKeptByUpdates},
	{name: "UseTOTPStepConcurrent", fn: testUseTOTPStepConcurrent},
}

func mustUseStep(t *testing.T, ts fiberauth.TOTPStore, what, userID string, step int64) {
	t.Helper()
	if err := ts.UseTOTPStep(t.Context(), userID, step); err != nil {
		t.Fatalf("%s: UseTOTPStep(%d): %v", what, step, err)
	}
}

func stepUsed(t *testing.T, ts fiberauth.TOTPStore, what, userID string, step int64) {
	t.Helper()
	wantErr(t, fmt.Sprintf("%s: UseTOTPStep(%d)", what, step), ts.UseTOTPStep(t.Context(), userID, step), fiberauth.ErrStepUsed)
}

// A step is accepted only when greater than the last one accepted (0 for a
// user with none), per user; a refusal records nothing.
func testUseTOTPStep(t *testing.T, s fiberauth.Store) {
	ts := s.(fiberauth.TOTPStore)
	u, v := newUser("ada@example.com", "ada"), newUser("bob@example.com", "bob")
	mustCreateUser(t, s, u)
	mustCreateUser(t, s, v)
	stepUsed(t, ts, "a user with no step yet", u.ID, 0)
	stepUsed(t, ts, "a negative step", u.ID, -1)
	mustUseStep(t, ts, "a user with no step yet", u.ID, 1)
	stepUsed(t, ts, "the same step again", u.ID, 1)
	mustUseStep(t, ts, "a later step", u.ID, 100)
	stepUsed(t, ts, "an earlier step", u.ID, 99)
	stepUsed(t, ts, "the recorded step, after a refused earlier one", u.ID, 100)
	mustUseStep(t, ts, "the next step", u.ID, 101)
	mustUseStep(t, ts, "another user: steps are per user", v.ID, 1)
	stepUsed(t, ts, "the first user, unchanged by the other", u.ID, 101)
	wantErr(t, "UseTOTPStep(unknown user)", ts.UseTOTPStep(t.Context(), "nobody", 1), fiberauth.ErrNotFound)
	userIs(t, s, "after UseTOTPStep", u) // the step is not in the record
}

// UpdateUser (and UseCode, which is UpdateUser) never changes the recorded
// step, whatever record it writes.
func testUseTOTPStepKeptByUpdates(t *testing.T, s fiberauth.Store) {
	ts := s.(fiberauth.TOTPStore)
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	mustUseStep(t, ts, "before the update", u.ID, 500)
	next := changed(u, u.Email, u.Username)
	next.MFAEnabled, next.TOTPSecret = true, []byte("a new sealed secret")
	mustUpdate(t, s, fiberauth.UserUpdate{User: next, IfETag: u.ETag, At: base})
	stepUsed(t, ts, "after UpdateUser", u.ID, 500)
	mustUseStep(t, ts, "after UpdateUser", u.ID, 501)

	if cs, ok := s.(fiberauth.CodeStore); ok {
		mustPutCode(t, cs, code(u.ID, fiberauth.PurposePasswordReset, "111111", base.Add(time.Hour)))
		again := changed(next, u.Email, u.Username)
		if _, err := cs.UseCode(t.Context(), spend(u.ID, fiberauth.PurposePasswordReset, "111111"), fiberauth.UserUpdate{User: again, IfETag: next.ETag, At: base}); err != nil {
			t.Fatalf("UseCode: %v", err)
		}
		stepUsed(t, ts, "after UseCode", u.ID, 501)
		mustUseStep(t, ts, "after UseCode", u.ID, 502)
	}
}

// Of many uses of one step at once, exactly one succeeds; of many steps at
// once, the greatest is recorded whatever the order.
func testUseTOTPStepConcurrent(t *testing.T, s fiberauth.Store) {
	ts := s.(fiberauth.TOTPStore)
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	for round := range raceRounds() {
		step := int64(10 + round)
		errs := together(crowd, func(int) error { return ts.UseTOTPStep(t.Context(), u.ID, step) })
		if n := tally(t, "UseTOTPStep", errs, fiberauth.ErrStepUsed); n[nil] != 1 {
			t.Fatalf("round %d: %d of %d concurrent uses of one step succeeded, want exactly 1", round, n[nil], crowd)
		}
		stepUsed(t, ts, "after the race", u.ID, step)
	}

	errs := together(crowd, func(i int) error { return ts.UseTOTPStep(t.Context(), u.ID, int64(100+i)) })
	tally(t, "UseTOTPStep of many steps", errs, fiberauth.ErrStepUsed)
	stepUsed(t, ts, "after the race of many steps, the greatest", u.ID, 100+crowd-1)
}
