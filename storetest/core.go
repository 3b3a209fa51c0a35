package storetest

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// coreTests check the core Store, which every store implements.
var coreTests = []test{
	{name: "UserCreateAndLookup", fn: testUserCreateAndLookup},
	{name: "UserCreateConflict", fn: testUserCreateConflict},
	{name: "UserValues", fn: testUserValues},
	{name: "UserUpdate", fn: testUserUpdate},
	{name: "UserUpdateRefused", fn: testUserUpdateRefused},
	{name: "UserUpdateConcurrent", fn: testUserUpdateConcurrent},
	{name: "UserUpdateRevokesSessions", fn: testUserUpdateRevokesSessions},
	{name: "UserUpdateRotates", fn: testUserUpdateRotates},
	{name: "UserUpdateCreatesSession", fn: testUserUpdateCreatesSession},
	{name: "UserUpdateRotateRace", fn: testUserUpdateRotateRace},
	{name: "SessionCreateAndLookup", fn: testSessionCreateAndLookup},
	{name: "SessionValues", fn: testSessionValues},
	{name: "SessionRotate", fn: testSessionRotate},
	{name: "SessionRotateWithoutFrom", fn: testSessionRotateWithoutFrom},
	{name: "SessionRotateRefused", fn: testSessionRotateRefused},
	{name: "SessionRotateConcurrent", fn: testSessionRotateConcurrent},
	{name: "SessionRevoke", fn: testSessionRevoke},
	{name: "SessionRevokeUser", fn: testSessionRevokeUser},
	{name: "SessionList", fn: testSessionList},
	{name: "NoClock", fn: testNoClock},
}

// Lookups find a user by id, email and username, with every field as
// created; anything else is ErrNotFound.
func testUserCreateAndLookup(t *testing.T, s fiberauth.Store) {
	ctx := t.Context()
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	noName := newUser("bob@example.com", "")
	noName.Roles, noName.Attributes, noName.TOTPSecret, noName.RecoveryCodes = nil, nil, nil, nil
	noName.PasswordTemporary, noName.PasswordExpiresAt = false, time.Time{}
	mustCreateUser(t, s, noName)

	userIs(t, s, "user with every field set", u)
	userIs(t, s, "user without username, roles or secrets", noName)

	for _, tc := range []struct {
		name string
		get  func() (fiberauth.User, error)
	}{
		{"UserByID(unknown)", func() (fiberauth.User, error) { return s.UserByID(ctx, "nope") }},
		{"UserByEmail(unknown)", func() (fiberauth.User, error) { return s.UserByEmail(ctx, "nope@example.com") }},
		{"UserByUsername(unknown)", func() (fiberauth.User, error) { return s.UserByUsername(ctx, "nope") }},
		// bob has no username: "" is "none", never a key.
		{"UserByUsername(\"\")", func() (fiberauth.User, error) { return s.UserByUsername(ctx, "") }},
		// Emails and usernames arrive lowercased and compare exactly.
		{"UserByEmail(other case)", func() (fiberauth.User, error) { return s.UserByEmail(ctx, "Ada@example.com") }},
		{"UserByUsername(other case)", func() (fiberauth.User, error) { return s.UserByUsername(ctx, "ADA") }},
		{"UserByID(an email)", func() (fiberauth.User, error) { return s.UserByID(ctx, u.Email) }},
	} {
		_, err := tc.get()
		wantErr(t, tc.name, err, fiberauth.ErrNotFound)
	}
}

// CreateUser refuses a taken id, email or username with ErrConflict and
// writes nothing; empty usernames never conflict.
func testUserCreateConflict(t *testing.T, s fiberauth.Store) {
	ctx := t.Context()
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	mustCreateUser(t, s, newUser("x@example.com", ""))
	mustCreateUser(t, s, newUser("y@example.com", ""))

	sameID := newUser("other@example.com", "other")
	sameID.ID = u.ID
	for _, tc := range []struct {
		name string
		dup  fiberauth.User
	}{
		{"same id", sameID},
		{"same email", newUser("ada@example.com", "someone")},
		{"same username", newUser("someone@example.com", "ada")},
	} {
		wantErr(t, "CreateUser("+tc.name+")", s.CreateUser(ctx, tc.dup), fiberauth.ErrConflict)
		userIs(t, s, tc.name+": the user already there", u)
		email, username := tc.dup.Email, tc.dup.Username
		if email == u.Email {
			email = ""
		}
		if username == u.Username {
			username = ""
		}
		noUserWith(t, s, tc.name+": after the refused CreateUser", email, username)
	}
}

// Users are values both ways: the store keeps no reference to the caller's
// slices and maps, and returns none of its own.
func testUserValues(t *testing.T, s fiberauth.Store) {
	u := newUser("ada@example.com", "ada")
	want := newUser("ada@example.com", "ada")
	want.ID, want.ETag = u.ID, u.ETag
	mustCreateUser(t, s, u)
	scribble := func(u *fiberauth.User) {
		u.Roles[0] = "root"
		u.Attributes["plan"] = "gold"
		u.TOTPSecret[0] ^= 0xff
		u.RecoveryCodes[0][0] ^= 0xff                            // shared inner slices show this
		u.RecoveryCodes[len(u.RecoveryCodes)-1] = hash("forged") // a shared outer one, this
	}
	scribble(&u) // after CreateUser
	userIs(t, s, "after the caller changed what it passed to CreateUser", want)

	got := mustUser(t, s, want.ID)
	scribble(&got)
	got, err := s.UserByEmail(t.Context(), want.Email)
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	scribble(&got)
	got, err = s.UserByUsername(t.Context(), want.Username)
	if err != nil {
		t.Fatalf("UserByUsername: %v", err)
	}
	scribble(&got)
	userIs(t, s, "after the caller changed what lookups returned", want)

	next := changed(want, want.Email, want.Username)
	in := changed(want, want.Email, want.Username)
	in.ETag = next.ETag
	mustUpdate(t, s, fiberauth.UserUpdate{User: in, IfETag: want.ETag, At: base})
	scribble(&in) // after UpdateUser
	userIs(t, s, "after the caller changed what it passed to UpdateUser", next)
}

// UpdateUser replaces the whole record; the old email and username stop
// finding it and are free for others.
func testUserUpdate(t *testing.T, s fiberauth.Store) {
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	bob := newUser("bob@example.com", "")
	mustCreateUser(t, s, bob)

	next := changed(u, "ada@new.example", "lovelace")
	res := mustUpdate(t, s, fiberauth.UserUpdate{User: next, IfETag: u.ETag, At: base.Add(time.Hour)})
	if len(res.Revoked) != 0 || res.Session.ID != "" {
		t.Fatalf("a plain update revoked %v and rotated %q", res.Revoked, res.Session.ID)
	}
	userIs(t, s, "after the update", next)
	noUserWith(t, s, "after the update, the old email and username", u.Email, u.Username)
	mustCreateUser(t, s, newUser(u.Email, u.Username)) // freed

	// Keeping one's own email and username is no conflict, and neither is
	// dropping the username while bob has none either.
	same := changed(next, next.Email, "")
	mustUpdate(t, s, fiberauth.UserUpdate{User: same, IfETag: next.ETag, At: base.Add(2 * time.Hour)})
	userIs(t, s, "after dropping the username", same)
	noUserWith(t, s, "the dropped username", "", "lovelace")
	userIs(t, s, "bob, who has no username either", bob)

	// The record written carries the etag the next update must name.
	again := changed(same, same.Email, "ada2")
	mustUpdate(t, s, fiberauth.UserUpdate{User: again, IfETag: same.ETag, At: base.Add(3 * time.Hour)})
	userIs(t, s, "after a third update", again)
}

// Every refusal of UpdateUser returns its sentinel and writes nothing: not
// the record, the revocations, the rotation or the new family that came
// with it.
func testUserUpdateRefused(t *testing.T, s fiberauth.Store) {
	ctx := t.Context()
	u := newUser("ada@example.com", "ada")
	other := newUser("bob@example.com", "bob")
	mustCreateUser(t, s, u)
	mustCreateUser(t, s, other)
	live := newSession(u.ID, "live", base)
	second := newSession(u.ID, "second", base)
	revoked := newSession(u.ID, "revoked", base)
	short := newSession(u.ID, "short", base)
	short.ExpiresAt = base.Add(time.Hour)
	for _, x := range []fiberauth.Session{live, second, revoked, short} {
		mustCreateSession(t, s, x)
	}
	mustRevoke(t, s, revoked.ID, base)
	revoked.RevokedAt = base
	at := base.Add(time.Minute)

	for _, tc := range []struct {
		name string
		edit func(up *fiberauth.UserUpdate)
		want error
	}{
		{"unknown user", func(up *fiberauth.UserUpdate) { up.User.ID = "nobody" }, fiberauth.ErrNotFound},
		{"stale etag", func(up *fiberauth.UserUpdate) { up.IfETag = newID() }, fiberauth.ErrETagMismatch},
		// There is no "any etag": empty is just another etag.
		{"empty etag", func(up *fiberauth.UserUpdate) { up.IfETag = "" }, fiberauth.ErrETagMismatch},
		{"the new etag as IfETag", func(up *fiberauth.UserUpdate) { up.IfETag = up.User.ETag }, fiberauth.ErrETagMismatch},
		{"email of another user", func(up *fiberauth.UserUpdate) { up.User.Email = other.Email }, fiberauth.ErrConflict},
		{"username of another user", func(up *fiberauth.UserUpdate) { up.User.Username = other.Username }, fiberauth.ErrConflict},
		{"new family with a taken id", func(up *fiberauth.UserUpdate) { up.CreateSession.ID = second.ID }, fiberauth.ErrConflict},
		{"rotation of an unknown family", func(up *fiberauth.UserUpdate) { up.Rotate.SessionID = "nope" }, fiberauth.ErrNotCurrent},
		{"rotation from a token not current", func(up *fiberauth.UserUpdate) { up.Rotate.From = hash("second") }, fiberauth.ErrNotCurrent},
		{"rotation of a revoked family", func(up *fiberauth.UserUpdate) {
			up.Rotate.SessionID, up.Rotate.From, up.KeepSession = revoked.ID, hash("revoked"), revoked.ID
		}, fiberauth.ErrNotCurrent},
		{"rotation without From", func(up *fiberauth.UserUpdate) { up.Rotate.From = nil }, fiberauth.ErrNotCurrent},
		// The parts apply in order: the revocation, then the rotation.
		{"rotation of a family the update revokes", func(up *fiberauth.UserUpdate) { up.KeepSession = second.ID }, fiberauth.ErrNotCurrent},
		{"rotation of an expired family", func(up *fiberauth.UserUpdate) {
			up.Rotate.SessionID, up.Rotate.From, up.KeepSession = short.ID, hash("short"), short.ID
			up.At, up.Rotate.At = short.ExpiresAt, short.ExpiresAt
		}, fiberauth.ErrNotCurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := changed(u, "ada@new.example", "lovelace")
			fresh := newSession(u.ID, "fresh-"+tc.name, at)
			up := fiberauth.UserUpdate{
				User: next, IfETag: u.ETag, At: at,
				RevokeSessions: true, KeepSession: live.ID,
				Rotate:        &fiberauth.Rotation{SessionID: live.ID, From: hash("live"), To: hash("to-" + tc.name), At: at, ExpiresAt: at.Add(time.Hour), Replay: []byte("sealed")},
				CreateSession: &fresh,
			}
			tc.edit(&up)
			_, err := s.UpdateUser(ctx, up)
			wantErr(t, "UpdateUser", err, tc.want)
			userIs(t, s, "after the refusal, the user", u)
			userIs(t, s, "after the refusal, the other user", other)
			noUserWith(t, s, "after the refusal", "ada@new.example", "lovelace")
			sessionsAre(t, s, "after the refusal", live, second, revoked, short)
			if up.CreateSession.ID != second.ID {
				noSession(t, s, "after the refusal, the new family", up.CreateSession.ID)
			}
		})
	}
}

// Of many updates read at one etag, exactly one wins; the others are
// ErrETagMismatch and the record is the winner's.
func testUserUpdateConcurrent(t *testing.T, s fiberauth.Store) {
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	for round := range raceRounds() {
		read := mustUser(t, s, u.ID)
		ups := make([]fiberauth.User, crowd)
		for i := range ups {
			ups[i] = changed(read, read.Email, read.Username)
			ups[i].DisplayName = newID()
		}
		errs := together(crowd, func(i int) error {
			_, err := s.UpdateUser(t.Context(), fiberauth.UserUpdate{User: ups[i], IfETag: read.ETag, At: base})
			return err
		})
		n := tally(t, "UpdateUser", errs, fiberauth.ErrETagMismatch)
		if n[nil] != 1 {
			t.Fatalf("round %d: %d of %d concurrent updates read at one etag succeeded, want exactly 1", round, n[nil], crowd)
		}
		userIs(t, s, "after the race, the winner's record", ups[slices.Index(errs, nil)])
	}
}

// RevokeSessions revokes at At every family of the user live at At but
// KeepSession, and returns their ids; nothing else.
func testUserUpdateRevokesSessions(t *testing.T, s fiberauth.Store) {
	u := newUser("ada@example.com", "ada")
	bob := newUser("bob@example.com", "bob")
	mustCreateUser(t, s, u)
	mustCreateUser(t, s, bob)
	at := base.Add(time.Hour)
	keep, gone1, gone2 := newSession(u.ID, "keep", base), newSession(u.ID, "gone1", base), newSession(u.ID, "gone2", base)
	earlier := newSession(u.ID, "earlier", base) // revoked before: keeps its time
	expired := newSession(u.ID, "expired", base) // not live at At: left alone
	expired.ExpiresAt = at
	ended := newSession(u.ID, "ended", base)
	ended.AbsoluteExpiresAt = at
	bobs := newSession(bob.ID, "bobs", base)
	for _, x := range []fiberauth.Session{keep, gone1, gone2, earlier, expired, ended, bobs} {
		mustCreateSession(t, s, x)
	}
	mustRevoke(t, s, earlier.ID, base)
	earlier.RevokedAt = base

	next := changed(u, u.Email, u.Username)
	res := mustUpdate(t, s, fiberauth.UserUpdate{User: next, IfETag: u.ETag, At: at, RevokeSessions: true, KeepSession: keep.ID})
	sameIDs(t, "UpdateResult.Revoked", res.Revoked, []string{gone1.ID, gone2.ID})
	if res.Session.ID != "" {
		t.Fatalf("an update without Rotate returned a session %q", res.Session.ID)
	}
	gone1.RevokedAt, gone2.RevokedAt = at, at
	sessionsAre(t, s, "after the update", keep, gone1, gone2, earlier, expired, ended, bobs)
	userIs(t, s, "after the update", next)

	// Without KeepSession, every live family goes.
	again := changed(next, u.Email, u.Username)
	later := at.Add(time.Minute)
	res = mustUpdate(t, s, fiberauth.UserUpdate{User: again, IfETag: next.ETag, At: later, RevokeSessions: true})
	sameIDs(t, "UpdateResult.Revoked without KeepSession", res.Revoked, []string{keep.ID})
	keep.RevokedAt = later
	sessionsAre(t, s, "after the second update", keep, gone1, gone2, earlier, expired, ended, bobs)
}

// Rotate rotates a family with the change, exactly as RotateSession does,
// and returns the new record.
func testUserUpdateRotates(t *testing.T, s fiberauth.Store) {
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	keep, other := newSession(u.ID, "k0", base), newSession(u.ID, "o0", base)
	mustCreateSession(t, s, keep)
	mustCreateSession(t, s, other)
	at := base.Add(time.Minute)
	r := fiberauth.Rotation{SessionID: keep.ID, From: hash("k0"), To: hash("k1"), Generation: 1, At: at, ExpiresAt: at.Add(24 * time.Hour), Replay: []byte("sealed-pair")}
	next := changed(u, u.Email, u.Username)
	res := mustUpdate(t, s, fiberauth.UserUpdate{User: next, IfETag: u.ETag, At: at, RevokeSessions: true, KeepSession: keep.ID, Rotate: &r})
	want := rotated(keep, r)
	sameSession(t, "UpdateResult.Session", res.Session, want)
	sameIDs(t, "UpdateResult.Revoked", res.Revoked, []string{other.ID})
	other.RevokedAt = at
	sessionsAre(t, s, "after the update", want, other)
	userIs(t, s, "after the update", next)

	// Without a replay, and the expiry moved.
	r2 := fiberauth.Rotation{SessionID: keep.ID, From: hash("k1"), To: hash("k2"), Generation: 2, At: at.Add(time.Minute), ExpiresAt: at.Add(48 * time.Hour)}
	again := changed(next, u.Email, u.Username)
	res = mustUpdate(t, s, fiberauth.UserUpdate{User: again, IfETag: next.ETag, At: r2.At, Rotate: &r2})
	want = rotated(want, r2)
	sameSession(t, "UpdateResult.Session, rotated again", res.Session, want)
	sessionIs(t, s, "after rotating again", want)
}

// CreateSession adds a family with the change, as CreateSession does; a
// family created with RevokeSessions is not among those revoked.
func testUserUpdateCreatesSession(t *testing.T, s fiberauth.Store) {
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	old := newSession(u.ID, "old", base)
	mustCreateSession(t, s, old)
	at := base.Add(time.Minute)

	created := newSession(u.ID, "created", at)
	next := changed(u, u.Email, u.Username)
	res := mustUpdate(t, s, fiberauth.UserUpdate{User: next, IfETag: u.ETag, At: at, CreateSession: &created})
	if len(res.Revoked) != 0 || res.Session.ID != "" {
		t.Fatalf("UpdateResult = %+v, want nothing revoked or rotated", res)
	}
	sessionsAre(t, s, "after the update", old, created)
	userIs(t, s, "after the update", next)

	// Sign everyone out and in again, in one step.
	fresh := newSession(u.ID, "fresh", at)
	again := changed(next, u.Email, u.Username)
	res = mustUpdate(t, s, fiberauth.UserUpdate{User: again, IfETag: next.ETag, At: at, RevokeSessions: true, CreateSession: &fresh})
	sameIDs(t, "UpdateResult.Revoked", res.Revoked, []string{old.ID, created.ID})
	old.RevokedAt, created.RevokedAt = at, at
	sessionsAre(t, s, "after revoking and creating", old, created, fresh)
	if list := mustList(t, s, u.ID, at); !slices.Equal(ids(list), []string{fresh.ID}) {
		t.Fatalf("live families %v, want only the new one %v", ids(list), fresh.ID)
	}
}

// An UpdateUser rotating a family races RotateSession on the same token:
// exactly one of all of them rotates it.
func testUserUpdateRotateRace(t *testing.T, s fiberauth.Store) {
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	at := base.Add(time.Minute)
	for round := range raceRounds() {
		sess := newSession(u.ID, fmt.Sprintf("t0-%d", round), base)
		mustCreateSession(t, s, sess)
		read := mustUser(t, s, u.ID)
		rot := make([]fiberauth.Rotation, crowd)
		ups := make([]fiberauth.User, crowd)
		for i := range crowd {
			rot[i] = fiberauth.Rotation{SessionID: sess.ID, From: sess.TokenHash, To: hash("t1-" + newID()), Generation: int64(i + 1), At: at, ExpiresAt: at.Add(time.Hour)}
			ups[i] = changed(read, read.Email, read.Username)
		}
		// Even goroutines rotate with an update, odd ones alone. The odd
		// ones yield once first: the interleaving that catches a store out
		// is a rotation landing inside an update, which needs an update to
		// start first.
		errs := together(crowd, func(i int) error {
			if i%2 == 0 {
				_, err := s.UpdateUser(t.Context(), fiberauth.UserUpdate{User: ups[i], IfETag: read.ETag, At: at, Rotate: &rot[i]})
				return err
			}
			runtime.Gosched()
			_, err := s.RotateSession(t.Context(), rot[i])
			return err
		})
		n := tally(t, "UpdateUser with Rotate and RotateSession", errs, fiberauth.ErrNotCurrent, fiberauth.ErrETagMismatch)
		if n[nil] != 1 {
			t.Fatalf("round %d: %d of %d concurrent rotations of one token succeeded, want exactly 1", round, n[nil], crowd)
		}
		w := slices.Index(errs, nil)
		sessionIs(t, s, "after the race, the winner's rotation", rotated(sess, rot[w]))
		for i := range crowd {
			if i != w {
			}
		}
		if w%2 == 0 {
			userIs(t, s, "after the race, the winning update", ups[w])
		} else {
			userIs(t, s, "after the race, no update", read)
		}
	}
}

// CreateSession adds a family found by id and by token with every field as
// created; a taken id is ErrConflict and writes nothing.
func testSessionCreateAndLookup(t *testing.T, s fiberauth.Store) {
	ctx := t.Context()
	sess := newSession("u1", "tok", base)
	sess.Generation = 12
	mustCreateSession(t, s, sess)
	bare := newSession("u1", "bare", base)
	bare.Sliding, bare.UserAgent, bare.IP = false, "", ""
	mustCreateSession(t, s, bare)
	sessionsAre(t, s, "after CreateSession", sess, bare)

	_, err := s.SessionByID(ctx, "nope")
	wantErr(t, "SessionByID(unknown)", err, fiberauth.ErrNotFound)

	dup := newSession("u2", "dup", base.Add(time.Hour))
	dup.ID = sess.ID
	wantErr(t, "CreateSession(taken id)", s.CreateSession(ctx, dup), fiberauth.ErrConflict)
	sessionIs(t, s, "after the refused CreateSession", sess)
}

// Sessions are values both ways, through every method that takes or
// returns one.
func testSessionValues(t *testing.T, s fiberauth.Store) {
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	in := newSession(u.ID, "t0", base)
	want := in
	want.TokenHash = hash("t0")
	mustCreateSession(t, s, in)
	in.TokenHash[0] ^= 0xff // after CreateSession
	sessionIs(t, s, "after the caller changed what it passed to CreateSession", want)

	scribble := func(x *fiberauth.Session) {
		for _, b := range [][]byte{x.TokenHash, x.PrevTokenHash, x.Replay} {
			if len(b) > 0 {
				b[0] ^= 0xff
			}
		}
	}
	got := mustSession(t, s, want.ID)
	scribble(&got)
	list := mustList(t, s, u.ID, base)
	if len(list) != 1 {
		t.Fatalf("ListSessions = %v, want the one family", ids(list))
	}
	scribble(&list[0])
	sessionIs(t, s, "after the caller changed what lookups returned", want)

	at := base.Add(time.Minute)
	r := fiberauth.Rotation{SessionID: want.ID, From: hash("t0"), To: hash("t1"), Generation: 1, At: at, ExpiresAt: at.Add(time.Hour), Replay: []byte("sealed")}
	want = rotated(want, r)
	got = mustRotate(t, s, r)
	scribble(&got)
	r.From[0] ^= 0xff // after RotateSession
	r.To[0] ^= 0xff
	r.Replay[0] ^= 0xff
	sessionIs(t, s, "after the caller changed the Rotation and what RotateSession returned", want)

	r2 := fiberauth.Rotation{SessionID: want.ID, From: hash("t1"), To: hash("t2"), At: at, ExpiresAt: at.Add(time.Hour), Replay: []byte("sealed2")}
	created := newSession(u.ID, "c0", at)
	wantCreated := created
	wantCreated.TokenHash = hash("c0")
	want = rotated(want, r2)
	res := mustUpdate(t, s, fiberauth.UserUpdate{User: changed(u, u.Email, u.Username), IfETag: u.ETag, At: at, Rotate: &r2, CreateSession: &created})
	scribble(&res.Session)
	scribble(&created) // after UpdateUser
	r2.To[0] ^= 0xff
	r2.Replay[0] ^= 0xff
	sessionsAre(t, s, "after the caller changed what it passed to and got from UpdateUser", want, wantCreated)
}

// RotateSession makes To current at Generation and keeps From as the
// previous token.
func testSessionRotate(t *testing.T, s fiberauth.Store) {
	sess := newSession("u1", "t0", base)
	mustCreateSession(t, s, sess)
	at := base.Add(time.Hour)
	r1 := fiberauth.Rotation{SessionID: sess.ID, From: hash("t0"), To: hash("t1"), Generation: 1, At: at, ExpiresAt: at.Add(30 * 24 * time.Hour), Replay: []byte("sealed")}
	want := rotated(sess, r1)
	sameSession(t, "RotateSession's result", mustRotate(t, s, r1), want)
	sessionIs(t, s, "after one rotation", want)

	// Without Replay the previous one is not kept, and ExpiresAt may move
	// back as well as forward.
	r2 := fiberauth.Rotation{SessionID: sess.ID, From: hash("t1"), To: hash("t2"), Generation: 1 << 40, At: at.Add(time.Minute), ExpiresAt: at.Add(2 * time.Hour)}
	want = rotated(want, r2)
	sameSession(t, "RotateSession's result", mustRotate(t, s, r2), want)
	sessionIs(t, s, "after two rotations", want)
}

// A rotation without From is refused: nil is no wildcard. (A rotation from
// whatever is current could move a family back to an older generation,
// and old tokens would escape reuse detection.)
func testSessionRotateWithoutFrom(t *testing.T, s fiberauth.Store) {
	sess := newSession("u1", "t0", base)
	mustCreateSession(t, s, sess)
	for _, from := range [][]byte{nil, {}} {
		r := fiberauth.Rotation{SessionID: sess.ID, From: from, To: hash("t1"), Generation: 3, At: base.Add(time.Second), ExpiresAt: sess.ExpiresAt, Replay: []byte("sealed")}
		_, err := s.RotateSession(t.Context(), r)
		wantErr(t, fmt.Sprintf("RotateSession with From %#v", from), err, fiberauth.ErrNotCurrent)
		sessionIs(t, s, "after the refused rotation without From", sess)
	}
}

// A rotation of a family that is not live, or from a token that is not
// current, is ErrNotCurrent; of an unknown family, ErrNotFound. Neither
// writes anything.
func testSessionRotateRefused(t *testing.T, s fiberauth.Store) {
	ctx := t.Context()
	live := newSession("u1", "live", base)
	revoked := newSession("u1", "revoked", base)
	capped := newSession("u1", "capped", base) // its token outlives the family
	capped.AbsoluteExpiresAt = base.Add(2 * time.Hour)
	for _, x := range []fiberauth.Session{live, revoked, capped} {
		mustCreateSession(t, s, x)
	}
	mustRevoke(t, s, revoked.ID, base)
	revoked.RevokedAt = base
	// live has rotated once, so it has a previous token that is no longer
	// current.
	at := base.Add(time.Minute)
	first := fiberauth.Rotation{SessionID: live.ID, From: hash("live"), To: hash("live1"), At: at, ExpiresAt: at.Add(24 * time.Hour), Replay: []byte("sealed")}
	live = rotated(live, first)
	mustRotate(t, s, first)

	for _, tc := range []struct {
		name string
		r    fiberauth.Rotation
		want error
	}{
		{"from a token never held", fiberauth.Rotation{SessionID: live.ID, From: hash("other"), At: at}, fiberauth.ErrNotCurrent},
		{"from the previous token", fiberauth.Rotation{SessionID: live.ID, From: hash("live"), At: at}, fiberauth.ErrNotCurrent},
		{"from another family's token", fiberauth.Rotation{SessionID: live.ID, From: hash("revoked"), At: at}, fiberauth.ErrNotCurrent},
		{"of a revoked family", fiberauth.Rotation{SessionID: revoked.ID, From: hash("revoked"), At: at}, fiberauth.ErrNotCurrent},
		{"of a live family, without From", fiberauth.Rotation{SessionID: live.ID, At: at}, fiberauth.ErrNotCurrent},
		{"at ExpiresAt", fiberauth.Rotation{SessionID: live.ID, From: hash("live1"), At: live.ExpiresAt}, fiberauth.ErrNotCurrent},
		{"at AbsoluteExpiresAt", fiberauth.Rotation{SessionID: capped.ID, From: hash("capped"), At: capped.AbsoluteExpiresAt}, fiberauth.ErrNotCurrent},
		{"of a capped family, without From", fiberauth.Rotation{SessionID: capped.ID, At: at}, fiberauth.ErrNotCurrent},
		{"of an unknown family", fiberauth.Rotation{SessionID: "nope", From: hash("live1"), At: at}, fiberauth.ErrNotFound},
	} {
		tc.r.To = hash("to " + tc.name)
		tc.r.ExpiresAt = tc.r.At.Add(time.Hour)
		tc.r.Replay = []byte("refused")
		_, err := s.RotateSession(ctx, tc.r)
		wantErr(t, "RotateSession "+tc.name, err, tc.want)
		sessionsAre(t, s, "after the refused rotation "+tc.name, live, revoked, capped)
	}
	// A second before expiry it is still live.
	last := fiberauth.Rotation{SessionID: live.ID, From: hash("live1"), To: hash("live2"), At: live.ExpiresAt.Add(-time.Second), ExpiresAt: live.AbsoluteExpiresAt}
	sameSession(t, "RotateSession a second before ExpiresAt", mustRotate(t, s, last), rotated(live, last))
}

// Of many rotations from one token at once, exactly one wins; the others
// are ErrNotCurrent and leave no trace.
func testSessionRotateConcurrent(t *testing.T, s fiberauth.Store) {
	sess := newSession("u1", "t0", base)
	mustCreateSession(t, s, sess)
	for round := range raceRounds() {
		n := crowd
		if round == 0 {
			n = 50 // as many as a burst of retries from one client can be
		}
		at := base.Add(time.Duration(round+1) * time.Second)
		rot := make([]fiberauth.Rotation, n)
		for i := range rot {
			rot[i] = fiberauth.Rotation{SessionID: sess.ID, From: sess.TokenHash, To: hash("t1-" + newID()), Generation: sess.Generation + int64(i+1), At: at, ExpiresAt: at.Add(time.Hour), Replay: []byte(newID())}
		}
		errs := together(n, func(i int) error {
			_, err := s.RotateSession(t.Context(), rot[i])
			return err
		})
		c := tally(t, "RotateSession", errs, fiberauth.ErrNotCurrent)
		if c[nil] != 1 {
			t.Fatalf("round %d: %d of %d concurrent rotations of one token succeeded, want exactly 1", round, c[nil], n)
		}
		w := slices.Index(errs, nil)
		sess = rotated(sess, rot[w])
		sessionIs(t, s, "after the race, the winner's rotation", sess)
		for i := range rot {
			if i != w {
			}
		}
	}
}

// RevokeSession marks a family revoked once; it is still found, by id and
// by token, until it expires.
func testSessionRevoke(t *testing.T, s fiberauth.Store) {
	ctx := t.Context()
	sess := newSession("u1", "t0", base)
	other := newSession("u1", "t1", base)
	mustCreateSession(t, s, sess)
	mustCreateSession(t, s, other)
	at := base.Add(time.Minute)
	mustRevoke(t, s, sess.ID, at)
	sess.RevokedAt = at
	sessionsAre(t, s, "after RevokeSession", sess, other)

	mustRevoke(t, s, sess.ID, at.Add(time.Hour)) // a no-op: the first time stays
	sessionsAre(t, s, "after revoking again", sess, other)
	if list := mustList(t, s, "u1", at); !slices.Equal(ids(list), []string{other.ID}) {
		t.Fatalf("live families %v, want only %v", ids(list), other.ID)
	}
	wantErr(t, "RevokeSession(unknown)", s.RevokeSession(ctx, "nope", at), fiberauth.ErrNotFound)
}

// RevokeUserSessions revokes the user's families live at at but one, and
// returns exactly their ids.
func testSessionRevokeUser(t *testing.T, s fiberauth.Store) {
	at := base.Add(time.Hour)
	a1, a2, a3 := newSession("a", "a1", base), newSession("a", "a2", base), newSession("a", "a3", base)
	aRevoked := newSession("a", "ar", base)
	aExpired := newSession("a", "ae", base)
	aExpired.ExpiresAt = at
	aEnded := newSession("a", "aend", base)
	aEnded.AbsoluteExpiresAt = at
	b1 := newSession("b", "b1", base)
	all := []fiberauth.Session{a1, a2, a3, aRevoked, aExpired, aEnded, b1}
	for _, x := range all {
		mustCreateSession(t, s, x)
	}
	mustRevoke(t, s, aRevoked.ID, base)
	aRevoked.RevokedAt = base

	sameIDs(t, "RevokeUserSessions(except a1)", mustRevokeUser(t, s, "a", a1.ID, at), []string{a2.ID, a3.ID})
	a2.RevokedAt, a3.RevokedAt = at, at
	sessionsAre(t, s, "after RevokeUserSessions", a1, a2, a3, aRevoked, aExpired, aEnded, b1)

	later := at.Add(time.Minute)
	sameIDs(t, "RevokeUserSessions(except none)", mustRevokeUser(t, s, "a", "", later), []string{a1.ID})
	a1.RevokedAt = later
	sessionsAre(t, s, "after revoking all", a1, a2, a3, b1)

	if got := mustRevokeUser(t, s, "a", "", later); len(got) != 0 {
		t.Fatalf("RevokeUserSessions with nothing live revoked %v", got)
	}
	if got := mustRevokeUser(t, s, "nobody", "", later); len(got) != 0 {
		t.Fatalf("RevokeUserSessions of a user without families revoked %v", got)
	}
}

// ListSessions returns the user's families live at now, oldest first (by
// CreatedAt, then ID), as stored; an empty, non-nil list when none is.
func testSessionList(t *testing.T, s fiberauth.Store) {
	// Ids that sort against creation: an order by id alone fails.
	young := newSession("a", "young", base.Add(time.Hour))
	young.ID = "0" + young.ID
	oldest := newSession("a", "oldest", base.Add(-time.Hour))
	oldest.ID = "z" + oldest.ID
	var twins []fiberauth.Session // created at the same time: ordered by id
	for i := range 4 {
		twins = append(twins, newSession("a", "twin"+string(rune('0'+i)), base))
	}
	revoked := newSession("a", "revoked", base)
	short := newSession("a", "short", base)
	short.ExpiresAt = base.Add(2 * time.Hour)
	ending := newSession("a", "ending", base)
	ending.AbsoluteExpiresAt = base.Add(2 * time.Hour)
	other := newSession("b", "other", base)
	for _, x := range append([]fiberauth.Session{young, oldest, revoked, short, ending, other}, twins...) {
		mustCreateSession(t, s, x)
	}
	mustRevoke(t, s, revoked.ID, base)
	rot := fiberauth.Rotation{SessionID: young.ID, From: hash("young"), To: hash("young1"), At: base.Add(90 * time.Minute), ExpiresAt: base.Add(24 * time.Hour)}
	young = rotated(young, rot)
	mustRotate(t, s, rot)

	check := func(now time.Time, want []fiberauth.Session) {
		t.Helper()
		got := mustList(t, s, "a", now)
		if !slices.Equal(ids(got), ids(want)) {
			t.Fatalf("ListSessions at %v = %v, want %v", now, ids(got), ids(want))
		}
		for i := range got {
			sameSession(t, "ListSessions", got[i], want[i])
		}
	}
	byID := func(list []fiberauth.Session) []fiberauth.Session {
		return slices.SortedFunc(slices.Values(list), func(a, b fiberauth.Session) int { return cmp.Compare(a.ID, b.ID) })
	}
	first := []fiberauth.Session{oldest}
	check(base.Add(2*time.Hour-time.Second), slices.Concat(first, byID(append(slices.Clone(twins), short, ending)), []fiberauth.Session{young}))
	check(base.Add(2*time.Hour), slices.Concat(first, byID(twins), []fiberauth.Session{young}))
	check(base.Add(24*time.Hour), slices.Concat(first, byID(twins)))

	for _, who := range []string{"nobody", "b"} {
		list := mustList(t, s, who, base.Add(60*24*time.Hour))
		if list == nil || len(list) != 0 {
			t.Fatalf("ListSessions(%s) with nothing live = %#v, want an empty, non-nil list", who, list)
		}
	}
}

// A store never reads a clock: families from decades ago are live at the
// times it is given, as are codes, challenges and throttling windows of
// the capabilities it has.
func testNoClock(t *testing.T, s fiberauth.Store) {
	ctx := t.Context()
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	sess := newSession(u.ID, "old0", past)
	mustCreateSession(t, s, sess)
	at := past.Add(time.Minute)
	if list := mustList(t, s, u.ID, at); !slices.Equal(ids(list), []string{sess.ID}) {
		t.Fatalf("ListSessions in %d = %v, want the family live then", past.Year(), ids(list))
	}
	r := fiberauth.Rotation{SessionID: sess.ID, From: hash("old0"), To: hash("old1"), At: at, ExpiresAt: at.Add(time.Hour)}
	mustRotate(t, s, r)
	sess = rotated(sess, r)
	next := changed(u, u.Email, u.Username)
	r2 := fiberauth.Rotation{SessionID: sess.ID, From: hash("old1"), To: hash("old2"), At: at, ExpiresAt: at.Add(time.Hour)}
	mustUpdate(t, s, fiberauth.UserUpdate{User: next, IfETag: u.ETag, At: at, Rotate: &r2})
	sess = rotated(sess, r2)
	sameIDs(t, "RevokeUserSessions in the past", mustRevokeUser(t, s, u.ID, "", at), []string{sess.ID})
	sess.RevokedAt = at
	sessionIs(t, s, "after revoking in the past", sess)

	if cs, ok := s.(fiberauth.CodeStore); ok {
		mustPutCode(t, cs, code(u.ID, fiberauth.PurposeEmailConfirm, "123456", past.Add(time.Hour)))
		if err := cs.CheckCode(ctx, u.ID, fiberauth.PurposeEmailConfirm, hash("123456"), past); err != nil {
			t.Fatalf("CheckCode of a code live in %d: %v", past.Year(), err)
		}
	}
	if chs, ok := s.(fiberauth.ChallengeStore); ok {
		mustCreateChallenge(t, chs, challenge(u.ID, "old", past.Add(time.Hour)))
		if err := chs.ConsumeChallenge(ctx, hash("old"), past); err != nil {
			t.Fatalf("ConsumeChallenge of a challenge live in %d: %v", past.Year(), err)
		}
	}
	if as, ok := s.(fiberauth.AttemptStore); ok {
		reservations(t, as, "a window opened in the past", "k", 1, 1, past, time.Hour, true, past.Add(time.Hour))
		reservations(t, as, "a window open in the past, full", "k", 1, 1, past.Add(time.Minute), time.Hour, false, past.Add(time.Hour))
	}
}
