package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// notifierTests check Notifier: each change another instance must hear of
// reaches a subscriber, and a cancelled subscription hears nothing more.
var notifierTests = []test{
	{name: "UpdateUser", fn: testNotifyUpdateUser},
	{name: "UpdateUserRevokes", fn: testNotifyUpdateUserRevokes},
	{name: "UseCode", needs: codeCap, fn: testNotifyUseCode},
	{name: "RevokeSession", fn: testNotifyRevokeSession},
	{name: "RevokeUserSessions", fn: testNotifyRevokeUserSessions},
	{name: "Cancel", fn: testNotifyCancel},
}

// noticeWait bounds how long a notice may take to arrive: far beyond what
// any store should need, so that only a notice that never comes fails.
const noticeWait = 10 * time.Second

// listener records what a subscription hears.
type listener struct {
	t       *testing.T
	changes chan fiberauth.Change
	cancel  func()
}

func subscribe(t *testing.T, s fiberauth.Store) *listener {
	t.Helper()
	l := &listener{t: t, changes: make(chan fiberauth.Change, 1024)}
	cancel, err := s.(fiberauth.Notifier).Subscribe(func(c fiberauth.Change) {
		c.Sessions = slices.Clone(c.Sessions)
		select {
		case l.changes <- c:
		default: // the test has what it needs already
		}
	})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	l.cancel = cancel
	t.Cleanup(cancel)
	return l
}

// hears waits for a change naming userID with etag (when userID is set)
// and, over one or more changes, every family in sessions.
func (l *listener) hears(what, userID, etag string, sessions ...string) {
	l.t.Helper()
	missing := slices.Clone(sessions)
	userHeard := userID == ""
	deadline := time.After(noticeWait)
	for !userHeard || len(missing) > 0 {
		select {
		case c := <-l.changes:
			if c.Lost {
				l.t.Fatalf("%s: a subscriber was told changes were lost", what)
			}
			if userID != "" && c.UserID == userID && c.ETag == etag {
				userHeard = true
			}
			missing = slices.DeleteFunc(missing, func(id string) bool { return slices.Contains(c.Sessions, id) })
		case <-deadline:
			l.t.Fatalf("%s: after %v, no notice of user %q (etag %q: heard %v) or of families %v", what, noticeWait, userID, etag, userHeard, missing)
		}
	}
}

// An UpdateUser is announced with the user's new etag.
func testNotifyUpdateUser(t *testing.T, s fiberauth.Store) {
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	l := subscribe(t, s)
	next := changed(u, "ada@new.example", "lovelace")
	mustUpdate(t, s, fiberauth.UserUpdate{User: next, IfETag: u.ETag, At: base})
	l.hears("UpdateUser", u.ID, next.ETag)
}

// An UpdateUser that revokes families names them.
func testNotifyUpdateUserRevokes(t *testing.T, s fiberauth.Store) {
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	keep, a, b := newSession(u.ID, "keep", base), newSession(u.ID, "a", base), newSession(u.ID, "b", base)
	for _, x := range []fiberauth.Session{keep, a, b} {
		mustCreateSession(t, s, x)
	}
	l := subscribe(t, s)
	next := changed(u, u.Email, u.Username)
	mustUpdate(t, s, fiberauth.UserUpdate{User: next, IfETag: u.ETag, At: base, RevokeSessions: true, KeepSession: keep.ID})
	l.hears("UpdateUser with RevokeSessions", u.ID, next.ETag, a.ID, b.ID)
}

// A UseCode is announced as the update it makes.
func testNotifyUseCode(t *testing.T, s fiberauth.Store) {
	cs := s.(fiberauth.CodeStore)
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	old := newSession(u.ID, "old", base)
	mustCreateSession(t, s, old)
	mustPutCode(t, cs, code(u.ID, fiberauth.PurposePasswordReset, "111111", base.Add(time.Hour)))
	l := subscribe(t, s)
	next := changed(u, u.Email, u.Username)
	if _, err := cs.UseCode(t.Context(), spend(u.ID, fiberauth.PurposePasswordReset, "111111"),
		fiberauth.UserUpdate{User: next, IfETag: u.ETag, At: base, RevokeSessions: true}); err != nil {
		t.Fatalf("UseCode: %v", err)
	}
	l.hears("UseCode", u.ID, next.ETag, old.ID)
}

// RevokeSession names the family it revoked.
func testNotifyRevokeSession(t *testing.T, s fiberauth.Store) {
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	x := newSession(u.ID, "x", base)
	mustCreateSession(t, s, x)
	l := subscribe(t, s)
	mustRevoke(t, s, x.ID, base)
	l.hears("RevokeSession", "", "", x.ID)
}

// RevokeUserSessions names every family it revoked, however many (a store
// may split them over several notices).
func testNotifyRevokeUserSessions(t *testing.T, s fiberauth.Store) {
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	var ids []string
	for range 400 {
		x := newSession(u.ID, newID(), base)
		mustCreateSession(t, s, x)
		ids = append(ids, x.ID)
	}
	l := subscribe(t, s)
	got := mustRevokeUser(t, s, u.ID, "", base)
	sameIDs(t, "RevokeUserSessions", got, ids)
	l.hears("RevokeUserSessions", "", "", ids...)
}

// Once cancel has returned, the subscription hears nothing more: a change
// that another subscription hears does not reach it.
func testNotifyCancel(t *testing.T, s fiberauth.Store) {
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	gone, stays := subscribe(t, s), subscribe(t, s)
	gone.cancel()
	next := changed(u, u.Email, u.Username)
	mustUpdate(t, s, fiberauth.UserUpdate{User: next, IfETag: u.ETag, At: base})
	stays.hears("UpdateUser", u.ID, next.ETag)
	select {
	case c := <-gone.changes:
		t.Fatalf("a cancelled subscription heard %+v", c)
	default:
	}
}
