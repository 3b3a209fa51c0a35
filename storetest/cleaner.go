package storetest

import (
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// cleanerTests check Cleaner: sessions always, and the records of each
// other capability only when the store has it.
var cleanerTests = []test{
	{name: "Sessions", fn: testCleanSessions},
	{name: "Codes", needs: codeCap, fn: testCleanCodes},
	{name: "Challenges", needs: challengeCap, fn: testCleanChallenges},
	{name: "Attempts", needs: attemptCap, fn: testCleanAttempts},
	{name: "TOTPSteps", needs: totpCap, fn: testCleanTOTPSteps},
}

func mustDeleteExpired(t *testing.T, s fiberauth.Store, now time.Time) {
	t.Helper()
	if err := s.(fiberauth.Cleaner).DeleteExpired(t.Context(), now); err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
}

// DeleteExpired removes every family whose ExpiresAt or AbsoluteExpiresAt
// is at or before now, revoked or not; it keeps every other family, and
// every user.
func testCleanSessions(t *testing.T, s fiberauth.Store) {
	now := base.Add(24 * time.Hour)
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)

	keep := newSession(u.ID, "keep0", base)
	keep.ExpiresAt = now.Add(time.Second)
	revokedKept := newSession(u.ID, "revoked-kept", base)
	expired := newSession(u.ID, "expired0", base)
	ended := newSession(u.ID, "ended", base)
	ended.AbsoluteExpiresAt = now
	revokedGone := newSession(u.ID, "revoked-gone", base)
	revokedGone.ExpiresAt = now.Add(-time.Hour)
	for _, x := range []fiberauth.Session{keep, revokedKept, expired, ended, revokedGone} {
		mustCreateSession(t, s, x)
	}
	mustRevoke(t, s, revokedKept.ID, base)
	revokedKept.RevokedAt = base
	mustRevoke(t, s, revokedGone.ID, base)

	// Both rotate twice; expired ends exactly at now.
	for i, r := range []fiberauth.Rotation{
		{SessionID: keep.ID, From: hash("keep0"), To: hash("keep1"), Generation: 1, At: base.Add(time.Hour), ExpiresAt: keep.ExpiresAt},
		{SessionID: keep.ID, From: hash("keep1"), To: hash("keep2"), Generation: 2, At: base.Add(2 * time.Hour), ExpiresAt: keep.ExpiresAt},
		{SessionID: expired.ID, From: hash("expired0"), To: hash("expired1"), Generation: 1, At: base.Add(time.Hour), ExpiresAt: now},
		{SessionID: expired.ID, From: hash("expired1"), To: hash("expired2"), Generation: 2, At: base.Add(2 * time.Hour), ExpiresAt: now},
	} {
		if i < 2 {
			keep = rotated(keep, r)
		}
		mustRotate(t, s, r)
	}

	mustDeleteExpired(t, s, now)
	sessionsAre(t, s, "after DeleteExpired, a family expiring after now", keep, revokedKept)
	for _, x := range []struct{ name, id string }{
		{"a family whose token expires at now", expired.ID},
		{"a family whose absolute expiry is now", ended.ID},
		{"a revoked family past its expiry", revokedGone.ID},
	} {
		noSession(t, s, "after DeleteExpired, "+x.name, x.id)
	}
	userIs(t, s, "after DeleteExpired", u)
}

// DeleteExpired removes the codes expired at now and keeps the others.
func testCleanCodes(t *testing.T, s fiberauth.Store) {
	cs := s.(fiberauth.CodeStore)
	now := base.Add(time.Hour)
	mustPutCode(t, cs, code("u", fiberauth.PurposePasswordReset, "gone", now))
	mustPutCode(t, cs, code("u", fiberauth.PurposeEmailConfirm, "kept", now.Add(time.Second)))
	mustDeleteExpired(t, s, now)
	// Checked at base, when the removed code was still good: only deletion
	// explains its absence.
	codeGone(t, cs, "after DeleteExpired, a code expired at now", "u", fiberauth.PurposePasswordReset, "gone", base)
	codeLive(t, cs, "after DeleteExpired, a code expiring after now", "u", fiberauth.PurposeEmailConfirm, "kept", base)
}

// DeleteExpired removes the challenges expired at now and keeps the others.
func testCleanChallenges(t *testing.T, s fiberauth.Store) {
	cs := s.(fiberauth.ChallengeStore)
	now := base.Add(time.Hour)
	gone, kept := challenge("u", "gone", now), challenge("u", "kept", now.Add(time.Second))
	mustCreateChallenge(t, cs, gone)
	mustCreateChallenge(t, cs, kept)
	mustDeleteExpired(t, s, now)
	noChallenge(t, cs, "after DeleteExpired, a challenge expired at now", gone.Hash, base)
	challengeIs(t, cs, "after DeleteExpired, a challenge expiring after now", kept, base)
}

// DeleteExpired removes the attempt windows ended at now and keeps the
// others with their counts. (Both are checked at an earlier time, when the
// removed window would still be full: only its deletion explains a grant.)
func testCleanAttempts(t *testing.T, s fiberauth.Store) {
	as := s.(fiberauth.AttemptStore)
	now := base.Add(time.Hour)
	reservations(t, as, "gone", "gone", 1, 1, base, time.Hour, true, now)
	reservations(t, as, "kept", "kept", 2, 2, base, time.Hour+time.Second, true, now.Add(time.Second))
	mustDeleteExpired(t, s, now)
	reservations(t, as, "after DeleteExpired, a window ended at now", "gone", 1, 1, base, time.Hour, true, now)
	reservations(t, as, "after DeleteExpired, a window ending after now", "kept", 1, 2, base, time.Hour, false, now.Add(time.Second))
}

// DeleteExpired keeps the recorded TOTP steps, which never expire:
// forgetting one would let its code be replayed.
func testCleanTOTPSteps(t *testing.T, s fiberauth.Store) {
	ts := s.(fiberauth.TOTPStore)
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	mustUseStep(t, ts, "before DeleteExpired", u.ID, 7)
	mustDeleteExpired(t, s, base.Add(100*365*24*time.Hour))
	stepUsed(t, ts, "after DeleteExpired", u.ID, 7)
	userIs(t, s, "after DeleteExpired", u)
}
