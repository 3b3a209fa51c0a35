package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// codeTests check CodeStore.
var codeTests = []test{
	{name: "CheckCode", fn: testCheckCode},
	{name: "CheckCodeBurns", fn: testCheckCodeBurns},
	{name: "PutCodeReplaces", fn: testPutCodeReplaces},
	{name: "CheckCodeConcurrent", fn: testCheckCodeConcurrent},
	{name: "UseCode", fn: testUseCode},
	{name: "UseCodeRefused", fn: testUseCodeRefused},
	{name: "UseCodeConcurrent", fn: testUseCodeConcurrent},
}

func code(userID, purpose, secret string, exp time.Time) fiberauth.Code {
	return fiberauth.Code{UserID: userID, Purpose: purpose, Hash: hash(secret), ExpiresAt: exp}
}

// spend names the code c to UseCode by what the caller knows of it.
func spend(userID, purpose, secret string) fiberauth.Code {
	return fiberauth.Code{UserID: userID, Purpose: purpose, Hash: hash(secret)}
}

func mustPutCode(t *testing.T, cs fiberauth.CodeStore, c fiberauth.Code) {
	t.Helper()
	if err := cs.PutCode(t.Context(), c); err != nil {
		t.Fatalf("PutCode(%s, %s): %v", c.UserID, c.Purpose, err)
	}
}

// codeLive checks that the user's code for purpose is secret, unexpired at
// now.
func codeLive(t *testing.T, cs fiberauth.CodeStore, what, userID, purpose, secret string, now time.Time) {
	t.Helper()
	if err := cs.CheckCode(t.Context(), userID, purpose, hash(secret), now); err != nil {
		t.Fatalf("%s: CheckCode(%s, %s) with the right code: %v, want nil", what, userID, purpose, err)
	}
}

// codeGone checks that the user has no code for purpose at now.
func codeGone(t *testing.T, cs fiberauth.CodeStore, what, userID, purpose, secret string, now time.Time) {
	t.Helper()
	wantErr(t, fmt.Sprintf("%s: CheckCode(%s, %s)", what, userID, purpose),
		cs.CheckCode(t.Context(), userID, purpose, hash(secret), now), fiberauth.ErrNotFound)
}

func wrongTry(t *testing.T, cs fiberauth.CodeStore, what, userID, purpose string, now time.Time) {
	t.Helper()
	wantErr(t, what+": CheckCode with a wrong code", cs.CheckCode(t.Context(), userID, purpose, hash("wrong"), now), fiberauth.ErrCodeMismatch)
}

// CheckCode accepts the right unexpired code without spending it, refuses
// a wrong one with ErrCodeMismatch, and finds nothing else.
func testCheckCode(t *testing.T, s fiberauth.Store) {
	cs := s.(fiberauth.CodeStore)
	exp := base.Add(10 * time.Minute)
	mustPutCode(t, cs, code("u", fiberauth.PurposePasswordReset, "111111", exp))
	mustPutCode(t, cs, code("u", fiberauth.PurposeEmailConfirm, "222222", exp))
	mustPutCode(t, cs, code("v", fiberauth.PurposePasswordReset, "333333", exp))

	codeLive(t, cs, "first check", "u", fiberauth.PurposePasswordReset, "111111", base)
	codeLive(t, cs, "second check: checking does not spend", "u", fiberauth.PurposePasswordReset, "111111", base)
	codeLive(t, cs, "a second before expiry", "u", fiberauth.PurposePasswordReset, "111111", exp.Add(-time.Second))
	codeGone(t, cs, "at expiry", "u", fiberauth.PurposePasswordReset, "111111", exp)
	codeGone(t, cs, "after expiry", "u", fiberauth.PurposePasswordReset, "111111", exp.Add(time.Hour))
	wrongTry(t, cs, "wrong code", "u", fiberauth.PurposePasswordReset, base)
	wantErr(t, "CheckCode with the code of another purpose",
		cs.CheckCode(t.Context(), "u", fiberauth.PurposeEmailConfirm, hash("111111"), base), fiberauth.ErrCodeMismatch)
	wantErr(t, "CheckCode with the code of another user",
		cs.CheckCode(t.Context(), "u", fiberauth.PurposePasswordReset, hash("333333"), base), fiberauth.ErrCodeMismatch)
	codeGone(t, cs, "a user without codes", "w", fiberauth.PurposePasswordReset, "111111", base)
	codeGone(t, cs, "a purpose without a code", "v", fiberauth.PurposeEmailConfirm, "333333", base)
	wantErr(t, "CheckCode with a wrong code at expiry",
		cs.CheckCode(t.Context(), "v", fiberauth.PurposePasswordReset, hash("wrong"), exp), fiberauth.ErrNotFound)
	for _, c := range []struct{ user, purpose, secret string }{
		{"u", fiberauth.PurposePasswordReset, "111111"},
		{"u", fiberauth.PurposeEmailConfirm, "222222"},
		{"v", fiberauth.PurposePasswordReset, "333333"},
	} {
		codeLive(t, cs, "in the end", c.user, c.purpose, c.secret, base)
	}
}

// CodeMaxAttempts wrong checks burn a code; one fewer leaves it usable, and
// wrong checks of one code do not count against another.
func testCheckCodeBurns(t *testing.T, s fiberauth.Store) {
	cs := s.(fiberauth.CodeStore)
	exp := base.Add(time.Hour)
	mustPutCode(t, cs, code("u", fiberauth.PurposeEmailConfirm, "123456", exp))
	mustPutCode(t, cs, code("u", fiberauth.PurposePasswordReset, "654321", exp))
	for i := range fiberauth.CodeMaxAttempts - 1 {
		wrongTry(t, cs, fmt.Sprintf("wrong try %d", i+1), "u", fiberauth.PurposePasswordReset, base)
	}
	codeLive(t, cs, fmt.Sprintf("after %d wrong tries", fiberauth.CodeMaxAttempts-1), "u", fiberauth.PurposePasswordReset, "654321", base)
	for i := range fiberauth.CodeMaxAttempts {
		wrongTry(t, cs, fmt.Sprintf("wrong try %d", i+1), "u", fiberauth.PurposeEmailConfirm, base)
	}
	codeGone(t, cs, fmt.Sprintf("after %d wrong tries", fiberauth.CodeMaxAttempts), "u", fiberauth.PurposeEmailConfirm, "123456", base)
	wantErr(t, "CheckCode with a wrong code after the code burnt",
		cs.CheckCode(t.Context(), "u", fiberauth.PurposeEmailConfirm, hash("wrong"), base), fiberauth.ErrNotFound)
	// The last wrong try burns it even though a right check came between.
	wrongTry(t, cs, "the last wrong try", "u", fiberauth.PurposePasswordReset, base)
	codeGone(t, cs, "the other code, burnt too", "u", fiberauth.PurposePasswordReset, "654321", base)
}

// PutCode replaces the user's code for the purpose, with no failed
// attempts whatever the Code says, and keeps no reference to its Hash.
func testPutCodeReplaces(t *testing.T, s fiberauth.Store) {
	cs := s.(fiberauth.CodeStore)
	exp := base.Add(time.Hour)
	mustPutCode(t, cs, code("u", fiberauth.PurposeEmailConfirm, "keep", exp))
	mustPutCode(t, cs, code("u", fiberauth.PurposePasswordReset, "111111", exp))
	for range fiberauth.CodeMaxAttempts - 1 {
		wrongTry(t, cs, "before the replacement", "u", fiberauth.PurposePasswordReset, base)
	}
	next := code("u", fiberauth.PurposePasswordReset, "222222", exp.Add(time.Hour))
	next.Attempts = fiberauth.CodeMaxAttempts - 1 // ignored: a new code starts with none
	mustPutCode(t, cs, next)
	next.Hash[0] ^= 0xff // after PutCode

	wantErr(t, "CheckCode with the replaced code", cs.CheckCode(t.Context(), "u", fiberauth.PurposePasswordReset, hash("111111"), base), fiberauth.ErrCodeMismatch)
	for range fiberauth.CodeMaxAttempts - 2 {
		wrongTry(t, cs, "after the replacement", "u", fiberauth.PurposePasswordReset, base)
	}
	codeLive(t, cs, fmt.Sprintf("the new code after %d wrong tries", fiberauth.CodeMaxAttempts-1), "u", fiberauth.PurposePasswordReset, "222222", base)
	codeLive(t, cs, "the new code's own expiry", "u", fiberauth.PurposePasswordReset, "222222", exp.Add(30*time.Minute))
	codeLive(t, cs, "the code of the other purpose", "u", fiberauth.PurposeEmailConfirm, "keep", base)
}

// Of any number of wrong checks at once, exactly CodeMaxAttempts are
// ErrCodeMismatch and the rest ErrNotFound, and the code is gone; a right
// check among them succeeds at most once and saves nothing.
func testCheckCodeConcurrent(t *testing.T, s fiberauth.Store) {
	cs := s.(fiberauth.CodeStore)
	exp := base.Add(time.Hour)
	for round, right := range []bool{false, true} {
		purpose := fmt.Sprintf("purpose-%d", round)
		mustPutCode(t, cs, code("u", purpose, "123456", exp))
		n := 64
		if right {
			n = crowd
		}
		errs := together(n, func(i int) error {
			guess := hash(fmt.Sprintf("wrong-%d", i))
			if right && i == n/2 {
				guess = hash("123456")
			}
			return cs.CheckCode(t.Context(), "u", purpose, guess, base)
		})
		c := tally(t, "CheckCode", errs, fiberauth.ErrCodeMismatch, fiberauth.ErrNotFound)
		if c[fiberauth.ErrCodeMismatch] != fiberauth.CodeMaxAttempts {
			t.Fatalf("round %d: %d of %d concurrent checks were ErrCodeMismatch, want exactly %d (CodeMaxAttempts)",
				round, c[fiberauth.ErrCodeMismatch], n, fiberauth.CodeMaxAttempts)
		}
		if c[nil] > 1 || (!right && c[nil] != 0) {
			t.Fatalf("round %d: %d concurrent checks succeeded", round, c[nil])
		}
		codeGone(t, cs, fmt.Sprintf("round %d: after the concurrent wrong checks", round), "u", purpose, "123456", base)
	}
}

// UseCode applies the update exactly as UpdateUser does and spends the
// code with it.
func testUseCode(t *testing.T, s fiberauth.Store) {
	ctx := t.Context()
	cs := s.(fiberauth.CodeStore)
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	keep, old := newSession(u.ID, "keep", base), newSession(u.ID, "old", base)
	mustCreateSession(t, s, keep)
	mustCreateSession(t, s, old)
	exp := base.Add(10 * time.Minute)
	mustPutCode(t, cs, code(u.ID, fiberauth.PurposePasswordReset, "111111", exp))
	mustPutCode(t, cs, code(u.ID, fiberauth.PurposeEmailConfirm, "222222", exp))

	at := exp.Add(-time.Second) // the last second the code is good for
	r := fiberauth.Rotation{SessionID: keep.ID, From: hash("keep"), To: hash("keep1"), At: at, ExpiresAt: at.Add(time.Hour), Replay: []byte("sealed")}
	fresh := newSession(u.ID, "fresh", at)
	next := changed(u, "ada@new.example", "lovelace")
	res, err := cs.UseCode(ctx, spend(u.ID, fiberauth.PurposePasswordReset, "111111"), fiberauth.UserUpdate{
		User: next, IfETag: u.ETag, At: at, RevokeSessions: true, KeepSession: keep.ID, Rotate: &r, CreateSession: &fresh,
	})
	if err != nil {
		t.Fatalf("UseCode: %v", err)
	}
	want := rotated(keep, r)
	sameSession(t, "UpdateResult.Session", res.Session, want)
	sameIDs(t, "UpdateResult.Revoked", res.Revoked, []string{old.ID})
	old.RevokedAt = at
	userIs(t, s, "after UseCode", next)
	noUserWith(t, s, "after UseCode, the old email and username", u.Email, u.Username)
	sessionsAre(t, s, "after UseCode", want, old, fresh)
	codeGone(t, cs, "after UseCode, the spent code", u.ID, fiberauth.PurposePasswordReset, "111111", base)
	codeLive(t, cs, "after UseCode, the code of the other purpose", u.ID, fiberauth.PurposeEmailConfirm, "222222", base)

	again := changed(next, next.Email, next.Username)
	_, err = cs.UseCode(ctx, spend(u.ID, fiberauth.PurposePasswordReset, "111111"), fiberauth.UserUpdate{User: again, IfETag: next.ETag, At: base})
	wantErr(t, "UseCode with a spent code", err, fiberauth.ErrCodeSpent)
	userIs(t, s, "after UseCode with a spent code", next)
}

// Every refusal of UseCode returns its sentinel and writes nothing: the
// code stays as it was, and so do the user and the families.
func testUseCodeRefused(t *testing.T, s fiberauth.Store) {
	ctx := t.Context()
	cs := s.(fiberauth.CodeStore)
	u := newUser("ada@example.com", "ada")
	bob := newUser("bob@example.com", "bob")
	mustCreateUser(t, s, u)
	mustCreateUser(t, s, bob)
	live, second := newSession(u.ID, "live", base), newSession(u.ID, "second", base)
	mustCreateSession(t, s, live)
	mustCreateSession(t, s, second)
	at := base.Add(time.Minute)
	exp := base.Add(time.Hour)

	type left struct {
		user, purpose, secret string
		now                   time.Time // when to check it; zero: at At
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, purpose string)
		use   func(purpose string) fiberauth.Code
		edit  func(up *fiberauth.UserUpdate)
		want  error
		left  func(purpose string) []left // codes that must still be usable
	}{
		{
			name: "no code was put",
			use:  func(p string) fiberauth.Code { return spend(u.ID, p, "111111") },
			want: fiberauth.ErrCodeSpent,
		},
		{
			name:  "wrong code",
			setup: func(t *testing.T, p string) { mustPutCode(t, cs, code(u.ID, p, "111111", exp)) },
			use:   func(p string) fiberauth.Code { return spend(u.ID, p, "999999") },
			want:  fiberauth.ErrCodeSpent,
			left:  func(p string) []left { return []left{{u.ID, p, "111111", time.Time{}}} },
		},
		{
			name:  "code of another purpose",
			setup: func(t *testing.T, p string) { mustPutCode(t, cs, code(u.ID, p+"-other", "111111", exp)) },
			use:   func(p string) fiberauth.Code { return spend(u.ID, p, "111111") },
			want:  fiberauth.ErrCodeSpent,
			left:  func(p string) []left { return []left{{u.ID, p + "-other", "111111", time.Time{}}} },
		},
		{
			name:  "code of another user",
			setup: func(t *testing.T, p string) { mustPutCode(t, cs, code(bob.ID, p, "111111", exp)) },
			use:   func(p string) fiberauth.Code { return spend(u.ID, p, "111111") },
			want:  fiberauth.ErrCodeSpent,
			left:  func(p string) []left { return []left{{bob.ID, p, "111111", time.Time{}}} },
		},
		{
			name:  "code expired at At",
			setup: func(t *testing.T, p string) { mustPutCode(t, cs, code(u.ID, p, "111111", at)) },
			use:   func(p string) fiberauth.Code { return spend(u.ID, p, "111111") },
			want:  fiberauth.ErrCodeSpent,
			left:  func(p string) []left { return []left{{u.ID, p, "111111", at.Add(-time.Second)}} },
		},
		{
			name: "burnt code",
			setup: func(t *testing.T, p string) {
				mustPutCode(t, cs, code(u.ID, p, "111111", exp))
				for range fiberauth.CodeMaxAttempts {
					wrongTry(t, cs, "burning the code", u.ID, p, base)
				}
			},
			use:  func(p string) fiberauth.Code { return spend(u.ID, p, "111111") },
			want: fiberauth.ErrCodeSpent,
		},
		{
			name: "replaced code",
			setup: func(t *testing.T, p string) {
				mustPutCode(t, cs, code(u.ID, p, "111111", exp))
				mustPutCode(t, cs, code(u.ID, p, "222222", exp))
			},
			use:  func(p string) fiberauth.Code { return spend(u.ID, p, "111111") },
			want: fiberauth.ErrCodeSpent,
			left: func(p string) []left { return []left{{u.ID, p, "222222", time.Time{}}} },
		},
		{
			// The code is checked first: a change planned around a spent
			// code is refused for that, whatever else is wrong with it.
			name: "no code and a stale etag",
			use:  func(p string) fiberauth.Code { return spend(u.ID, p, "111111") },
			edit: func(up *fiberauth.UserUpdate) { up.IfETag = newID() },
			want: fiberauth.ErrCodeSpent,
		},
		{
			name:  "stale etag",
			setup: func(t *testing.T, p string) { mustPutCode(t, cs, code(u.ID, p, "111111", exp)) },
			use:   func(p string) fiberauth.Code { return spend(u.ID, p, "111111") },
			edit:  func(up *fiberauth.UserUpdate) { up.IfETag = newID() },
			want:  fiberauth.ErrETagMismatch,
			left:  func(p string) []left { return []left{{u.ID, p, "111111", time.Time{}}} },
		},
		{
			name:  "unknown user",
			setup: func(t *testing.T, p string) { mustPutCode(t, cs, code("ghost", p, "111111", exp)) },
			use:   func(p string) fiberauth.Code { return spend("ghost", p, "111111") },
			edit:  func(up *fiberauth.UserUpdate) { up.User.ID = "ghost" },
			want:  fiberauth.ErrNotFound,
			left:  func(p string) []left { return []left{{"ghost", p, "111111", time.Time{}}} },
		},
		{
			name:  "email of another user",
			setup: func(t *testing.T, p string) { mustPutCode(t, cs, code(u.ID, p, "111111", exp)) },
			use:   func(p string) fiberauth.Code { return spend(u.ID, p, "111111") },
			edit:  func(up *fiberauth.UserUpdate) { up.User.Email = bob.Email },
			want:  fiberauth.ErrConflict,
			left:  func(p string) []left { return []left{{u.ID, p, "111111", time.Time{}}} },
		},
		{
			name:  "new family with a taken id",
			setup: func(t *testing.T, p string) { mustPutCode(t, cs, code(u.ID, p, "111111", exp)) },
			use:   func(p string) fiberauth.Code { return spend(u.ID, p, "111111") },
			edit:  func(up *fiberauth.UserUpdate) { up.CreateSession.ID = second.ID },
			want:  fiberauth.ErrConflict,
			left:  func(p string) []left { return []left{{u.ID, p, "111111", time.Time{}}} },
		},
		{
			name:  "rotation from a token not current",
			setup: func(t *testing.T, p string) { mustPutCode(t, cs, code(u.ID, p, "111111", exp)) },
			use:   func(p string) fiberauth.Code { return spend(u.ID, p, "111111") },
			edit:  func(up *fiberauth.UserUpdate) { up.Rotate.From = hash("second") },
			want:  fiberauth.ErrNotCurrent,
			left:  func(p string) []left { return []left{{u.ID, p, "111111", time.Time{}}} },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			purpose := "purpose " + tc.name // each case has codes of its own
			if tc.setup != nil {
				tc.setup(t, purpose)
			}
			fresh := newSession(u.ID, "fresh "+tc.name, at)
			up := fiberauth.UserUpdate{
				User: changed(u, "ada@new.example", "lovelace"), IfETag: u.ETag, At: at,
				RevokeSessions: true, KeepSession: live.ID,
				Rotate:        &fiberauth.Rotation{SessionID: live.ID, From: hash("live"), To: hash("to " + tc.name), At: at, ExpiresAt: exp},
				CreateSession: &fresh,
			}
			if tc.edit != nil {
				tc.edit(&up)
			}
			_, err := cs.UseCode(ctx, tc.use(purpose), up)
			wantErr(t, "UseCode", err, tc.want)
			userIs(t, s, "after the refusal, the user", u)
			userIs(t, s, "after the refusal, the other user", bob)
			noUserWith(t, s, "after the refusal", "ada@new.example", "lovelace")
			sessionsAre(t, s, "after the refusal", live, second)
			if tc.left != nil {
				for _, l := range tc.left(purpose) {
					if l.now.IsZero() {
						l.now = at
					}
					codeLive(t, cs, "after the refusal", l.user, l.purpose, l.secret, l.now)
				}
			}
		})
	}
}

// Many requests spend one code at once, each retrying with a fresh read
// when the user changed under it: exactly one succeeds, the others find the
// code spent, and the record is the winner's.
func testUseCodeConcurrent(t *testing.T, s fiberauth.Store) {
	ctx := t.Context()
	cs := s.(fiberauth.CodeStore)
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	for round := range raceRounds() {
		secret := fmt.Sprintf("code-%d", round)
		mustPutCode(t, cs, code(u.ID, fiberauth.PurposePasswordReset, secret, base.Add(time.Hour)))
		written := make([]fiberauth.User, crowd)
		errs := together(crowd, func(i int) error {
			for range 10 * crowd { // each retry follows a write by another, and only one may write
				cur, err := s.UserByID(ctx, u.ID)
				if err != nil {
					return err
				}
				next := changed(cur, cur.Email, cur.Username)
				next.DisplayName = fmt.Sprintf("winner %d", i)
				_, err = cs.UseCode(ctx, spend(u.ID, fiberauth.PurposePasswordReset, secret), fiberauth.UserUpdate{User: next, IfETag: cur.ETag, At: base})
				if !errors.Is(err, fiberauth.ErrETagMismatch) {
					written[i] = next
					return err
				}
			}
			return fmt.Errorf("still ErrETagMismatch after %d fresh reads", 10*crowd)
		})
		n := tally(t, "UseCode", errs, fiberauth.ErrCodeSpent)
		if n[nil] != 1 {
			t.Fatalf("round %d: %d of %d concurrent uses of one code succeeded, want exactly 1", round, n[nil], crowd)
		}
		userIs(t, s, "after the race, the winner's record", written[slices.Index(errs, nil)])
		codeGone(t, cs, "after the race", u.ID, fiberauth.PurposePasswordReset, secret, base)
	}
}
