package storetest

import (
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// userRotatorTests check UserRotator.
var userRotatorTests = []test{
	{name: "RotateSessionIfUser", fn: testRotateIfUser},
	{name: "RotateSessionIfUserRefused", fn: testRotateIfUserRefused},
	{name: "RotateSessionIfUserRace", fn: testRotateIfUserRace},
}

// RotateSessionIfUser rotates as RotateSession does, and answers the user
// as UserByID does.
func testRotateIfUser(t *testing.T, s fiberauth.Store) {
	ur := s.(fiberauth.UserRotator)
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	sess := newSession(u.ID, "t0", base)
	mustCreateSession(t, s, sess)
	at := base.Add(time.Hour)
	r := fiberauth.Rotation{SessionID: sess.ID, From: hash("t0"), To: hash("t1"), Generation: 1, At: at, ExpiresAt: at.Add(30 * 24 * time.Hour), Replay: []byte("sealed")}
	got, gotUser, err := ur.RotateSessionIfUser(t.Context(), r, u.ID, u.ETag)
	if err != nil {
		t.Fatalf("RotateSessionIfUser: %v", err)
	}
	want := rotated(sess, r)
	sameSession(t, "RotateSessionIfUser's family", got, want)
	sameUser(t, "RotateSessionIfUser's user", gotUser, mustUser(t, s, u.ID))
	sessionIs(t, s, "after RotateSessionIfUser", want)

	// What it returns is the caller's to change.
	got.TokenHash[0] ^= 0xff
	gotUser.Roles[0] = "scribbled"
	sessionIs(t, s, "after the caller changed what RotateSessionIfUser returned", want)
	userIs(t, s, "after the caller changed what RotateSessionIfUser returned", mustUser(t, s, u.ID))
}

// When the family does not qualify for RotateSession, or its user is not
// the one named, at that etag, enabled, RotateSessionIfUser refuses
// (ErrNotFound for an unknown family, ErrNotCurrent otherwise) and writes
// nothing.
func testRotateIfUserRefused(t *testing.T, s fiberauth.Store) {
	ur := s.(fiberauth.UserRotator)
	u, v := newUser("ada@example.com", "ada"), newUser("bob@example.com", "bob")
	mustCreateUser(t, s, u)
	mustCreateUser(t, s, v)
	live, revoked := newSession(u.ID, "live", base), newSession(u.ID, "revoked", base)
	mustCreateSession(t, s, live)
	mustCreateSession(t, s, revoked)
	mustRevoke(t, s, revoked.ID, base)
	revoked.RevokedAt = base
	disabled := newUser("eve@example.com", "eve")
	disabled.Disabled = true
	mustCreateUser(t, s, disabled)
	theirs := newSession(disabled.ID, "theirs", base)
	mustCreateSession(t, s, theirs)

	at := base.Add(time.Minute)
	for _, tc := range []struct {
		name         string
		family, from string
		user, etag   string
		want         error
	}{
		{"with another etag", live.ID, "live", u.ID, newID(), fiberauth.ErrNotCurrent},
		{"with another user's etag", live.ID, "live", u.ID, v.ETag, fiberauth.ErrNotCurrent},
		{"naming another user", live.ID, "live", v.ID, v.ETag, fiberauth.ErrNotCurrent},
		{"naming an unknown user", live.ID, "live", newID(), u.ETag, fiberauth.ErrNotCurrent},
		{"of a disabled user", theirs.ID, "theirs", disabled.ID, disabled.ETag, fiberauth.ErrNotCurrent},
		{"from a token that is not current", live.ID, "other", u.ID, u.ETag, fiberauth.ErrNotCurrent},
		{"without From", live.ID, "", u.ID, u.ETag, fiberauth.ErrNotCurrent},
		{"of a revoked family", revoked.ID, "revoked", u.ID, u.ETag, fiberauth.ErrNotCurrent},
		{"of an unknown family", newID(), "live", u.ID, u.ETag, fiberauth.ErrNotFound},
	} {
		r := fiberauth.Rotation{SessionID: tc.family, To: hash("to " + tc.name), Generation: 1, At: at, ExpiresAt: at.Add(time.Hour), Replay: []byte("refused")}
		if tc.from != "" {
			r.From = hash(tc.from)
		}
		_, _, err := ur.RotateSessionIfUser(t.Context(), r, tc.user, tc.etag)
		wantErr(t, "RotateSessionIfUser "+tc.name, err, tc.want)
		sessionsAre(t, s, "after the refused rotation "+tc.name, live, revoked, theirs)
	}
	// Past its expiry the family does not qualify either.
	r := fiberauth.Rotation{SessionID: live.ID, From: hash("live"), To: hash("late"), Generation: 1, At: live.ExpiresAt, ExpiresAt: live.AbsoluteExpiresAt}
	_, _, err := ur.RotateSessionIfUser(t.Context(), r, u.ID, u.ETag)
	wantErr(t, "RotateSessionIfUser at ExpiresAt", err, fiberauth.ErrNotCurrent)
	sessionsAre(t, s, "after the refused rotation at ExpiresAt", live, revoked, theirs)
}

// Of many rotations from one token at once, exactly one wins; once the
// user's etag has changed, a rotation on the old one writes nothing.
func testRotateIfUserRace(t *testing.T, s fiberauth.Store) {
	ur := s.(fiberauth.UserRotator)
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	sess := newSession(u.ID, "t0", base)
	mustCreateSession(t, s, sess)
	for round := range raceRounds() {
		at := base.Add(time.Duration(round+1) * time.Second)
		rot := make([]fiberauth.Rotation, crowd)
		for i := range rot {
			rot[i] = fiberauth.Rotation{SessionID: sess.ID, From: sess.TokenHash, To: hash("t1-" + newID()), Generation: sess.Generation + int64(i+1), At: at, ExpiresAt: at.Add(time.Hour), Replay: []byte(newID())}
		}
		errs := together(crowd, func(i int) error {
			_, _, err := ur.RotateSessionIfUser(t.Context(), rot[i], u.ID, u.ETag)
			return err
		})
		c := tally(t, "RotateSessionIfUser", errs, fiberauth.ErrNotCurrent)
		if c[nil] != 1 {
			t.Fatalf("round %d: %d of %d concurrent rotations of one token succeeded, want exactly 1", round, c[nil], crowd)
		}
		for i, err := range errs {
			if err == nil {
				sess = rotated(sess, rot[i])
			}
		}
		sessionIs(t, s, "after the race, the winner's rotation", sess)
	}
	// Once the etag has changed, the old one rotates nothing.
	next := changed(u, u.Email, u.Username)
	next.Disabled = false
	at := sess.RotatedAt.Add(time.Second) // the family is live then
	mustUpdate(t, s, fiberauth.UserUpdate{User: next, IfETag: u.ETag, At: at})
	r := fiberauth.Rotation{SessionID: sess.ID, From: sess.TokenHash, To: hash("after"), Generation: sess.Generation + 1, At: at, ExpiresAt: at.Add(time.Hour)}
	_, _, err := ur.RotateSessionIfUser(t.Context(), r, u.ID, u.ETag)
	wantErr(t, "RotateSessionIfUser with the etag before a change", err, fiberauth.ErrNotCurrent)
	sessionIs(t, s, "after the refused rotation with an old etag", sess)
	if _, _, err := ur.RotateSessionIfUser(t.Context(), r, u.ID, next.ETag); err != nil {
		t.Fatalf("RotateSessionIfUser with the current etag: %v", err)
	}
}
