package storetest

import (
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// sessionUserTests check SessionUserReader.
var sessionUserTests = []test{
	{name: "SessionWithUser", fn: testSessionWithUser},
	{name: "SessionWithUserValues", fn: testSessionWithUserValues},
}

// withUser is SessionWithUser of id, which must succeed.
func withUser(t *testing.T, s fiberauth.Store, id string) (fiberauth.Session, fiberauth.User) {
	t.Helper()
	sess, u, err := s.(fiberauth.SessionUserReader).SessionWithUser(t.Context(), id)
	if err != nil {
		t.Fatalf("SessionWithUser(%s): %v", id, err)
	}
	return sess, u
}

// withUserIs checks that SessionWithUser of id answers what SessionByID
// and UserByID do.
func withUserIs(t *testing.T, s fiberauth.Store, what, id string) {
	t.Helper()
	sess, u := withUser(t, s, id)
	want := mustSession(t, s, id)
	sameSession(t, what+": SessionWithUser's family", sess, want)
	sameUser(t, what+": SessionWithUser's user", u, mustUser(t, s, want.UserID))
}

// SessionWithUser answers the family as SessionByID does and its user as
// UserByID does, as they change, live or not; ErrNotFound when either is
// unknown.
func testSessionWithUser(t *testing.T, s fiberauth.Store) {
	su := s.(fiberauth.SessionUserReader)
	u, v := newUser("ada@example.com", "ada"), newUser("bob@example.com", "bob")
	mustCreateUser(t, s, u)
	mustCreateUser(t, s, v)
	a, b := newSession(u.ID, "a0", base), newSession(v.ID, "b0", base)
	mustCreateSession(t, s, a)
	mustCreateSession(t, s, b)
	withUserIs(t, s, "a new family", a.ID)
	withUserIs(t, s, "another user's family", b.ID)

	at := base.Add(time.Minute)
	mustRotate(t, s, fiberauth.Rotation{SessionID: a.ID, From: hash("a0"), To: hash("a1"), Generation: 1, At: at, ExpiresAt: at.Add(time.Hour), Replay: []byte("sealed")})
	mustUpdate(t, s, fiberauth.UserUpdate{User: changed(u, u.Email, u.Username), IfETag: u.ETag, At: at})
	withUserIs(t, s, "after a rotation and a change of the user", a.ID)
	mustRevoke(t, s, b.ID, at)
	withUserIs(t, s, "a revoked family", b.ID)
	expired := newSession(u.ID, "e0", past)
	mustCreateSession(t, s, expired)
	withUserIs(t, s, "an expired family", expired.ID)

	_, _, err := su.SessionWithUser(t.Context(), newID())
	wantErr(t, "SessionWithUser of an unknown family", err, fiberauth.ErrNotFound)
	orphan := newSession(newID(), "o0", base)
	if s.CreateSession(t.Context(), orphan) == nil { // a store may refuse a family of no user
		_, _, err = su.SessionWithUser(t.Context(), orphan.ID)
		wantErr(t, "SessionWithUser of a family whose user is unknown", err, fiberauth.ErrNotFound)
	}
}

// What SessionWithUser returns is the caller's to change.
func testSessionWithUserValues(t *testing.T, s fiberauth.Store) {
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	a := newSession(u.ID, "a0", base)
	mustCreateSession(t, s, a)
	at := base.Add(time.Minute)
	mustRotate(t, s, fiberauth.Rotation{SessionID: a.ID, From: hash("a0"), To: hash("a1"), Generation: 1, At: at, ExpiresAt: at.Add(time.Hour), Replay: []byte("sealed")})
	wantSession, wantUser := mustSession(t, s, a.ID), mustUser(t, s, u.ID)

	sess, got := withUser(t, s, a.ID)
	for _, b := range [][]byte{sess.TokenHash, sess.PrevTokenHash, sess.Replay, got.TOTPSecret, got.RecoveryCodes[0]} {
		b[0] ^= 0xff
	}
	got.Roles[0] = "scribbled"
	got.Attributes["plan"] = "scribbled"
	sessionIs(t, s, "after the caller changed what SessionWithUser returned", wantSession)
	userIs(t, s, "after the caller changed what SessionWithUser returned", wantUser)
}
