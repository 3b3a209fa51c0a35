// Package storetest is the conformance suite for fiberauth.Store
// implementations. Every store fiberauth ships runs it, and so should yours:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) fiberauth.Store { return mystore.New(...) })
//	}
//
// newStore must return a fresh, empty store on each call; the suite calls it
// once per subtest and runs subtests in parallel. Time is passed to the store
// explicitly, so expiry is tested without sleeping.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// base is the suite's clock origin, whole seconds so that every store keeps
// it exactly.
var base = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Run runs every rule of the Store contract against stores from newStore.
func Run(t *testing.T, newStore func(t *testing.T) fiberauth.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s fiberauth.Store)
	}{
		{"UserCreateAndLookup", testUserCreateAndLookup},
		{"UserConflicts", testUserConflicts},
		{"UserReturnsCopies", testUserReturnsCopies},
		{"UserUpdate", testUserUpdate},
		{"UserUpdateIfETag", testUserUpdateIfETag},
		{"UserUpdateConflict", testUserUpdateConflict},
		{"UserUpdateRevokesSessions", testUserUpdateRevokesSessions},
		{"SessionCreateAndLookup", testSessionCreateAndLookup},
		{"SessionRotate", testSessionRotate},
		{"SessionRotateRefused", testSessionRotateRefused},
		{"SessionRotateUnconditional", testSessionRotateUnconditional},
		{"SessionRotateConcurrent", testSessionRotateConcurrent},
		{"SessionRevoke", testSessionRevoke},
		{"SessionRevokeUser", testSessionRevokeUser},
		{"SessionList", testSessionList},
		{"CodeCheck", testCodeCheck},
		{"UserUpdateUsesCode", testUserUpdateUsesCode},
		{"UserUpdateRotates", testUserUpdateRotates},
		{"UserUpdateCreatesSession", testUserUpdateCreatesSession},
		{"Attempts", testAttempts},
		{"CodeBurnAfterMaxAttempts", testCodeBurn},
		{"CodeExpiryAndPurpose", testCodeExpiryAndPurpose},
		{"TOTPStep", testTOTPStep},
		{"TOTPStepConcurrent", testTOTPStepConcurrent},
		{"Challenge", testChallenge},
		{"ChallengeBurnAndExpiry", testChallengeBurnAndExpiry},
		{"ChallengeConsumeConcurrent", testChallengeConsumeConcurrent},
		{"DeleteExpired", testDeleteExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

func id() string { return rand.Text() }

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func newUser(email, username string) fiberauth.User {
	return fiberauth.User{
		ID:           id(),
		Email:        email,
		Username:     username,
		DisplayName:  "Ada",
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$a2V5",
		Roles:        []string{"user"},
		Attributes:   map[string]string{"plan": "free"},
		ETag:         id(),
		CreatedAt:    base,
		UpdatedAt:    base,
		// Exercised so that every field makes the round trip.
		PasswordTemporary: true,
		PasswordExpiresAt: base.Add(7 * 24 * time.Hour),
		TOTPSecret:        []byte("sealed-totp-secret"),
		RecoveryCodes:     [][]byte{hash("r1"), hash("r2")},
	}
}

func mustCreateUser(t *testing.T, s fiberauth.Store, u fiberauth.User) {
	t.Helper()
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", u.Email, err)
	}
}

func newSession(userID string, token string, created time.Time) fiberauth.Session {
	return fiberauth.Session{
		ID:                id(),
		UserID:            userID,
		TokenHash:         hash(token),
		CreatedAt:         created,
		LastUsedAt:        created,
		ExpiresAt:         created.Add(30 * 24 * time.Hour),
		AbsoluteExpiresAt: created.Add(90 * 24 * time.Hour),
		UserAgent:         "curl/8",
		IP:                "192.0.2.1",
	}
}

func mustCreateSession(t *testing.T, s fiberauth.Store, sess fiberauth.Session) {
	t.Helper()
	if err := s.CreateSession(context.Background(), sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("%s: got error %v, want %v", what, got, want)
	}
}

func sameUser(t *testing.T, got, want fiberauth.User) {
	t.Helper()
	if got.ID != want.ID || got.Email != want.Email || got.Username != want.Username ||
		got.DisplayName != want.DisplayName || got.PasswordHash != want.PasswordHash ||
		got.EmailVerified != want.EmailVerified || got.MFAEnabled != want.MFAEnabled ||
		got.Disabled != want.Disabled || got.ETag != want.ETag ||
		got.PasswordTemporary != want.PasswordTemporary || !got.PasswordExpiresAt.Equal(want.PasswordExpiresAt) ||
		!bytes.Equal(got.TOTPSecret, want.TOTPSecret) || fmt.Sprint(got.RecoveryCodes) != fmt.Sprint(want.RecoveryCodes) ||
		!slices.Equal(got.Roles, want.Roles) || fmt.Sprint(got.Attributes) != fmt.Sprint(want.Attributes) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("user differs:\n got  %+v\n want %+v", got, want)
	}
}

func testUserCreateAndLookup(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	u := newUser("ada@example.com", "ada")
	u.EmailVerified = true
	mustCreateUser(t, s, u)
	noName := newUser("bob@example.com", "")
	mustCreateUser(t, s, noName)

	for _, tc := range []struct {
		name string
		get  func() (fiberauth.User, error)
		want fiberauth.User
	}{
		{"by id", func() (fiberauth.User, error) { return s.UserByID(ctx, u.ID) }, u},
		{"by email", func() (fiberauth.User, error) { return s.UserByEmail(ctx, "ada@example.com") }, u},
		{"by username", func() (fiberauth.User, error) { return s.UserByUsername(ctx, "ada") }, u},
		{"without username", func() (fiberauth.User, error) { return s.UserByEmail(ctx, "bob@example.com") }, noName},
	} {
		got, err := tc.get()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		sameUser(t, got, tc.want)
	}
	for _, tc := range []struct {
		name string
		get  func() (fiberauth.User, error)
	}{
		{"unknown id", func() (fiberauth.User, error) { return s.UserByID(ctx, "nope") }},
		{"unknown email", func() (fiberauth.User, error) { return s.UserByEmail(ctx, "nope@example.com") }},
		{"unknown username", func() (fiberauth.User, error) { return s.UserByUsername(ctx, "nope") }},
		{"empty username", func() (fiberauth.User, error) { return s.UserByUsername(ctx, "") }},
	} {
		_, err := tc.get()
		wantErr(t, tc.name, err, fiberauth.ErrNotFound)
	}
}

func testUserConflicts(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	mustCreateUser(t, s, newUser("x@example.com", "")) // empty usernames never conflict
	mustCreateUser(t, s, newUser("y@example.com", ""))

	sameID := newUser("other@example.com", "other")
	sameID.ID = u.ID
	for name, dup := range map[string]fiberauth.User{
		"same email":    newUser("ada@example.com", "someone"),
		"same username": newUser("someone@example.com", "ada"),
		"same id":       sameID,
	} {
		wantErr(t, name, s.CreateUser(ctx, dup), fiberauth.ErrConflict)
	}
	if _, err := s.UserByEmail(ctx, "someone@example.com"); !errors.Is(err, fiberauth.ErrNotFound) {
		t.Fatalf("a refused CreateUser left a record behind: %v", err)
	}
}

func testUserReturnsCopies(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	u.Roles[0] = "admin" // the caller's slice must not be kept
	u.Attributes["plan"] = "pro"
	got, _ := s.UserByID(ctx, u.ID)
	got.Roles[0] = "root"
	got.Attributes["plan"] = "gold"
	again, err := s.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.Roles, []string{"user"}) || again.Attributes["plan"] != "free" {
		t.Fatalf("store shares memory with callers: roles %v attributes %v", again.Roles, again.Attributes)
	}
}

func testUserUpdate(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	changed := u
	changed.Email = "ada@new.example"
	changed.Username = "lovelace"
	changed.Roles = []string{"admin", "user"}
	changed.EmailVerified = true
	changed.Disabled = true
	changed.PasswordTemporary = false
	changed.PasswordExpiresAt = time.Time{}
	changed.TOTPSecret = nil
	changed.RecoveryCodes = [][]byte{hash("r2")}
	changed.ETag = id()
	changed.UpdatedAt = base.Add(time.Hour)
	if _, err := s.UpdateUser(ctx, fiberauth.UserUpdate{User: changed, IfETag: u.ETag, At: base.Add(time.Hour)}); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	got, err := s.UserByEmail(ctx, "ada@new.example")
	if err != nil {
		t.Fatal(err)
	}
	sameUser(t, got, changed)
	if _, err := s.UserByEmail(ctx, "ada@example.com"); !errors.Is(err, fiberauth.ErrNotFound) {
		t.Fatalf("old email still finds the user: %v", err)
	}
	if _, err := s.UserByUsername(ctx, "ada"); !errors.Is(err, fiberauth.ErrNotFound) {
		t.Fatalf("old username still finds the user: %v", err)
	}
	// The old email is free for someone else now.
	mustCreateUser(t, s, newUser("ada@example.com", "ada"))

	ghost := newUser("ghost@example.com", "")
	_, err = s.UpdateUser(ctx, fiberauth.UserUpdate{User: ghost})
	wantErr(t, "update of an unknown user", err, fiberauth.ErrNotFound)
}

func testUserUpdateIfETag(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	first, second := u, u
	first.ETag, second.ETag = id(), id()
	first.Roles = []string{"first"}
	second.Roles = []string{"second"}
	if _, err := s.UpdateUser(ctx, fiberauth.UserUpdate{User: first, IfETag: u.ETag}); err != nil {
		t.Fatal(err)
	}
	_, err := s.UpdateUser(ctx, fiberauth.UserUpdate{User: second, IfETag: u.ETag})
	wantErr(t, "second write from the same read", err, fiberauth.ErrStale)
	got, _ := s.UserByID(ctx, u.ID)
	sameUser(t, got, first)
}

func testUserUpdateConflict(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	a, b := newUser("a@example.com", "a"), newUser("b@example.com", "b")
	mustCreateUser(t, s, a)
	mustCreateUser(t, s, b)
	for name, mutate := range map[string]func(*fiberauth.User){
		"email of another user":    func(u *fiberauth.User) { u.Email = "b@example.com" },
		"username of another user": func(u *fiberauth.User) { u.Username = "b" },
	} {
		c := a
		mutate(&c)
		c.ETag = id()
		_, err := s.UpdateUser(ctx, fiberauth.UserUpdate{User: c, IfETag: a.ETag})
		wantErr(t, name, err, fiberauth.ErrConflict)
	}
	got, _ := s.UserByID(ctx, a.ID)
	sameUser(t, got, a)
}

func testUserUpdateRevokesSessions(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	u := newUser("ada@example.com", "ada")
	other := newUser("bob@example.com", "bob")
	mustCreateUser(t, s, u)
	mustCreateUser(t, s, other)
	keep, gone1, gone2 := newSession(u.ID, "k", base), newSession(u.ID, "g1", base), newSession(u.ID, "g2", base)
	bobs := newSession(other.ID, "b", base)
	for _, x := range []fiberauth.Session{keep, gone1, gone2, bobs} {
		mustCreateSession(t, s, x)
	}
	at := base.Add(time.Minute)
	c := u
	c.ETag = id()
	res, err := s.UpdateUser(ctx, fiberauth.UserUpdate{User: c, IfETag: u.ETag, RevokeSessions: true, KeepSession: keep.ID, At: at})
	if err != nil {
		t.Fatal(err)
	}
	revoked := res.Revoked
	slices.Sort(revoked)
	want := []string{gone1.ID, gone2.ID}
	slices.Sort(want)
	if !slices.Equal(revoked, want) {
		t.Fatalf("revoked %v, want %v", revoked, want)
	}
	for _, x := range []struct {
		id   string
		live bool
	}{{keep.ID, true}, {gone1.ID, false}, {gone2.ID, false}, {bobs.ID, true}} {
		got, err := s.SessionByID(ctx, x.id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Live(at) != x.live {
			t.Fatalf("session live = %v, want %v", got.Live(at), x.live)
		}
		if !x.live && !got.RevokedAt.Equal(at) {
			t.Fatalf("RevokedAt = %v, want %v", got.RevokedAt, at)
		}
	}
	// A stale update revokes nothing.
	_, err = s.UpdateUser(ctx, fiberauth.UserUpdate{User: c, IfETag: u.ETag, RevokeSessions: true, At: at})
	wantErr(t, "stale update", err, fiberauth.ErrStale)
	if got, _ := s.SessionByID(ctx, keep.ID); !got.Live(at) {
		t.Fatal("a refused update revoked a session")
	}
}

func testSessionCreateAndLookup(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	sess := newSession("u1", "tok", base)
	sess.Sliding = true
	mustCreateSession(t, s, sess)
	for name, get := range map[string]func() (fiberauth.Session, error){
		"by id":         func() (fiberauth.Session, error) { return s.SessionByID(ctx, sess.ID) },
		"by token hash": func() (fiberauth.Session, error) { return s.SessionByTokenHash(ctx, hash("tok")) },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.ID != sess.ID || got.UserID != "u1" || !bytes.Equal(got.TokenHash, hash("tok")) || !got.Sliding ||
			!got.CreatedAt.Equal(base) || !got.ExpiresAt.Equal(sess.ExpiresAt) || !got.AbsoluteExpiresAt.Equal(sess.AbsoluteExpiresAt) ||
			got.UserAgent != "curl/8" || got.IP != "192.0.2.1" || !got.RevokedAt.IsZero() || len(got.PrevTokenHash) != 0 {
			t.Fatalf("%s: got %+v, want %+v", name, got, sess)
		}
	}
	_, err := s.SessionByID(ctx, "nope")
	wantErr(t, "unknown id", err, fiberauth.ErrNotFound)
	_, err = s.SessionByTokenHash(ctx, hash("nope"))
	wantErr(t, "unknown token", err, fiberauth.ErrNotFound)
}

func testSessionRotate(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	sess := newSession("u1", "t0", base)
	mustCreateSession(t, s, sess)
	at := base.Add(time.Hour)
	exp := at.Add(30 * 24 * time.Hour)
	got, err := s.RotateSession(ctx, fiberauth.Rotation{SessionID: sess.ID, From: hash("t0"), To: hash("t1"), At: at, ExpiresAt: exp, Replay: []byte("sealed")})
	if err != nil {
		t.Fatalf("RotateSession: %v", err)
	}
	if !bytes.Equal(got.TokenHash, hash("t1")) || !bytes.Equal(got.PrevTokenHash, hash("t0")) ||
		!got.RotatedAt.Equal(at) || !got.LastUsedAt.Equal(at) || !got.ExpiresAt.Equal(exp) || string(got.Replay) != "sealed" {
		t.Fatalf("after rotation: %+v", got)
	}
	// Every token the family held still finds it: reuse must be detectable.
	if _, err := s.RotateSession(ctx, fiberauth.Rotation{SessionID: sess.ID, From: hash("t1"), To: hash("t2"), At: at, ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"t0", "t1", "t2"} {
		byTok, err := s.SessionByTokenHash(ctx, hash(tok))
		if err != nil || byTok.ID != sess.ID {
			t.Fatalf("SessionByTokenHash(%s) = %v, %v", tok, byTok.ID, err)
		}
	}
	byID, _ := s.SessionByID(ctx, sess.ID)
	if !bytes.Equal(byID.TokenHash, hash("t2")) || !bytes.Equal(byID.PrevTokenHash, hash("t1")) || len(byID.Replay) != 0 {
		t.Fatalf("SessionByID after two rotations: %+v", byID)
	}
}

func testSessionRotateRefused(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	live := newSession("u1", "live", base)
	revoked := newSession("u1", "revoked", base)
	mustCreateSession(t, s, live)
	mustCreateSession(t, s, revoked)
	if err := s.RevokeSession(ctx, revoked.ID, base); err != nil {
		t.Fatal(err)
	}
	at := base.Add(time.Minute)
	for _, tc := range []struct {
		name string
		r    fiberauth.Rotation
		want error
	}{
		{"not the current token", fiberauth.Rotation{SessionID: live.ID, From: hash("other"), To: hash("x1"), At: at, ExpiresAt: live.ExpiresAt}, fiberauth.ErrStale},
		{"revoked family", fiberauth.Rotation{SessionID: revoked.ID, From: hash("revoked"), To: hash("x2"), At: at, ExpiresAt: live.ExpiresAt}, fiberauth.ErrStale},
		{"expired family", fiberauth.Rotation{SessionID: live.ID, From: hash("live"), To: hash("x3"), At: live.ExpiresAt, ExpiresAt: live.ExpiresAt.Add(time.Hour)}, fiberauth.ErrStale},
		{"past absolute expiry", fiberauth.Rotation{SessionID: live.ID, From: hash("live"), To: hash("x4"), At: live.AbsoluteExpiresAt.Add(time.Second), ExpiresAt: live.AbsoluteExpiresAt.Add(time.Hour)}, fiberauth.ErrStale},
		{"unknown family", fiberauth.Rotation{SessionID: "nope", From: hash("live"), To: hash("x5"), At: at, ExpiresAt: at}, fiberauth.ErrNotFound},
	} {
		_, err := s.RotateSession(ctx, tc.r)
		wantErr(t, tc.name, err, tc.want)
		if _, err := s.SessionByTokenHash(ctx, tc.r.To); !errors.Is(err, fiberauth.ErrNotFound) {
			t.Fatalf("%s: a refused rotation recorded its new token: %v", tc.name, err)
		}
	}
	got, _ := s.SessionByID(ctx, live.ID)
	if !bytes.Equal(got.TokenHash, hash("live")) {
		t.Fatal("a refused rotation changed the current token")
	}
}

func testSessionRotateUnconditional(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	sess := newSession("u1", "t0", base)
	mustCreateSession(t, s, sess)
	got, err := s.RotateSession(ctx, fiberauth.Rotation{SessionID: sess.ID, To: hash("t1"), At: base, ExpiresAt: sess.ExpiresAt})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.TokenHash, hash("t1")) || len(got.PrevTokenHash) != 0 {
		t.Fatalf("after a rotation without From: %+v", got)
	}
	if err := s.RevokeSession(ctx, sess.ID, base); err != nil {
		t.Fatal(err)
	}
	_, err = s.RotateSession(ctx, fiberauth.Rotation{SessionID: sess.ID, To: hash("t2"), At: base, ExpiresAt: sess.ExpiresAt})
	wantErr(t, "rotation without From of a revoked family", err, fiberauth.ErrStale)
}

// testSessionRotateConcurrent hammers one token from 50 goroutines: exactly
// one rotation may win.
func testSessionRotateConcurrent(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	sess := newSession("u1", "t0", base)
	mustCreateSession(t, s, sess)
	const n = 50
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		wins   []string
		others []error
		start  = make(chan struct{})
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			to := fmt.Sprintf("t1-%d", i)
			_, err := s.RotateSession(ctx, fiberauth.Rotation{SessionID: sess.ID, From: hash("t0"), To: hash(to), At: base.Add(time.Second), ExpiresAt: sess.ExpiresAt})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins = append(wins, to)
			} else if !errors.Is(err, fiberauth.ErrStale) {
				others = append(others, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("concurrent rotations failed with %v", others)
	}
	if len(wins) != 1 {
		t.Fatalf("%d concurrent rotations of one token won, want exactly 1", len(wins))
	}
	got, _ := s.SessionByID(ctx, sess.ID)
	if !bytes.Equal(got.TokenHash, hash(wins[0])) {
		t.Fatal("the current token is not the winner's")
	}
}

func testSessionRevoke(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	sess := newSession("u1", "t0", base)
	mustCreateSession(t, s, sess)
	at := base.Add(time.Minute)
	if err := s.RevokeSession(ctx, sess.ID, at); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(ctx, sess.ID, at.Add(time.Hour)); err != nil {
		t.Fatalf("revoking a revoked family: %v", err)
	}
	got, err := s.SessionByID(ctx, sess.ID)
	if err != nil {
		t.Fatalf("a revoked family must still be found until it expires: %v", err)
	}
	if got.Live(at) || !got.RevokedAt.Equal(at) {
		t.Fatalf("RevokedAt = %v, want %v (the first revocation)", got.RevokedAt, at)
	}
	if _, err := s.SessionByTokenHash(ctx, hash("t0")); err != nil {
		t.Fatalf("a revoked family's token must still be found: %v", err)
	}
	wantErr(t, "revoke unknown", s.RevokeSession(ctx, "nope", at), fiberauth.ErrNotFound)
}

func testSessionRevokeUser(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	a1, a2, a3 := newSession("a", "a1", base), newSession("a", "a2", base), newSession("a", "a3", base)
	b1 := newSession("b", "b1", base)
	for _, x := range []fiberauth.Session{a1, a2, a3, b1} {
		mustCreateSession(t, s, x)
	}
	if err := s.RevokeSession(ctx, a3.ID, base); err != nil {
		t.Fatal(err)
	}
	at := base.Add(time.Minute)
	ids, err := s.RevokeUserSessions(ctx, "a", a1.ID, at)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{a2.ID}) {
		t.Fatalf("revoked %v, want only %v (a1 kept, a3 already revoked)", ids, a2.ID)
	}
	ids, err = s.RevokeUserSessions(ctx, "a", "", at)
	if err != nil || !slices.Equal(ids, []string{a1.ID}) {
		t.Fatalf("revoke all: %v, %v; want [%s]", ids, err, a1.ID)
	}
	if got, _ := s.SessionByID(ctx, b1.ID); !got.Live(at) {
		t.Fatal("another user's session was revoked")
	}
	ids, err = s.RevokeUserSessions(ctx, "nobody", "", at)
	if err != nil || len(ids) != 0 {
		t.Fatalf("revoke for a user without sessions: %v, %v", ids, err)
	}
}

func testSessionList(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	old := newSession("a", "old", base)
	young := newSession("a", "young", base.Add(time.Hour))
	revoked := newSession("a", "revoked", base)
	short := newSession("a", "short", base)
	short.ExpiresAt = base.Add(2 * time.Hour)
	other := newSession("b", "other", base)
	for _, x := range []fiberauth.Session{young, old, revoked, short, other} {
		mustCreateSession(t, s, x)
	}
	if err := s.RevokeSession(ctx, revoked.ID, base); err != nil {
		t.Fatal(err)
	}
	ids := func(now time.Time) []string {
		list, err := s.ListSessions(ctx, "a", now)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range list {
			out = append(out, x.ID)
		}
		return out
	}
	first := ids(base.Add(90 * time.Minute))
	if len(first) != 3 || first[2] != young.ID || !slices.Contains(first, old.ID) || !slices.Contains(first, short.ID) {
		t.Fatalf("live sessions = %v; want old and short, then young (oldest first)", first)
	}
	if got := ids(base.Add(3 * time.Hour)); !slices.Equal(got, []string{old.ID, young.ID}) {
		t.Fatalf("after short expired: %v", got)
	}
	list, err := s.ListSessions(ctx, "nobody", base)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("no sessions must be an empty list, got %#v, %v", list, err)
	}
}

func code(userID, purpose, secret string, exp time.Time) fiberauth.Code {
	return fiberauth.Code{UserID: userID, Purpose: purpose, Hash: hash(secret), ExpiresAt: exp}
}

func testCodeCheck(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	exp := base.Add(10 * time.Minute)
	if err := s.PutCode(ctx, code("u", fiberauth.PurposePasswordReset, "111111", exp)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "wrong code", s.CheckCode(ctx, "u", fiberauth.PurposePasswordReset, hash("222222"), base), fiberauth.ErrCodeMismatch)
	for range 2 {
		// A right code is not spent by checking it.
		if err := s.CheckCode(ctx, "u", fiberauth.PurposePasswordReset, hash("111111"), base); err != nil {
			t.Fatalf("right code: %v", err)
		}
	}

	// A new code replaces the old one.
	_ = s.PutCode(ctx, code("u", fiberauth.PurposePasswordReset, "333333", exp))
	_ = s.PutCode(ctx, code("u", fiberauth.PurposePasswordReset, "444444", exp))
	wantErr(t, "replaced code", s.CheckCode(ctx, "u", fiberauth.PurposePasswordReset, hash("333333"), base), fiberauth.ErrCodeMismatch)
	if err := s.CheckCode(ctx, "u", fiberauth.PurposePasswordReset, hash("444444"), base); err != nil {
		t.Fatalf("newest code: %v", err)
	}
}

// UpdateUser spends a code with the change, or changes nothing.
func testUserUpdateUsesCode(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	sess := newSession(u.ID, "t", base)
	mustCreateSession(t, s, sess)
	_ = s.PutCode(ctx, code(u.ID, fiberauth.PurposePasswordReset, "111111", base.Add(10*time.Minute)))
	changed := u
	changed.PasswordHash, changed.ETag = "new-hash", id()
	for _, tc := range []struct {
		name string
		use  fiberauth.Code
		at   time.Time
	}{
		{"wrong hash", fiberauth.Code{UserID: u.ID, Purpose: fiberauth.PurposePasswordReset, Hash: hash("999999")}, base},
		{"wrong purpose", fiberauth.Code{UserID: u.ID, Purpose: fiberauth.PurposeEmailConfirm, Hash: hash("111111")}, base},
		{"expired", fiberauth.Code{UserID: u.ID, Purpose: fiberauth.PurposePasswordReset, Hash: hash("111111")}, base.Add(10 * time.Minute)},
	} {
		_, err := s.UpdateUser(ctx, fiberauth.UserUpdate{User: changed, IfETag: u.ETag, UseCode: &tc.use, RevokeSessions: true, At: tc.at})
		wantErr(t, tc.name, err, fiberauth.ErrStale)
		got, _ := s.UserByID(ctx, u.ID)
		sameUser(t, got, u)
		if x, _ := s.SessionByID(ctx, sess.ID); !x.Live(base) {
			t.Fatalf("%s: a refused update revoked a session", tc.name)
		}
	}
	use := fiberauth.Code{UserID: u.ID, Purpose: fiberauth.PurposePasswordReset, Hash: hash("111111")}
	if _, err := s.UpdateUser(ctx, fiberauth.UserUpdate{User: changed, IfETag: u.ETag, UseCode: &use, At: base}); err != nil {
		t.Fatalf("update with the right code: %v", err)
	}
	wantErr(t, "spent code", s.CheckCode(ctx, u.ID, fiberauth.PurposePasswordReset, hash("111111"), base), fiberauth.ErrNotFound)
	again := changed
	again.ETag = id()
	_, err := s.UpdateUser(ctx, fiberauth.UserUpdate{User: again, IfETag: changed.ETag, UseCode: &use, At: base})
	wantErr(t, "update with a spent code", err, fiberauth.ErrStale)
}

// UpdateUser rotates a family with the change, or changes nothing.
func testUserUpdateRotates(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	keep, other := newSession(u.ID, "k0", base), newSession(u.ID, "o0", base)
	mustCreateSession(t, s, keep)
	mustCreateSession(t, s, other)
	changed := u
	changed.PasswordHash, changed.ETag = "new-hash", id()
	at := base.Add(time.Minute)
	res, err := s.UpdateUser(ctx, fiberauth.UserUpdate{User: changed, IfETag: u.ETag, RevokeSessions: true, KeepSession: keep.ID,
		Rotate: &fiberauth.Rotation{SessionID: keep.ID, To: hash("k1"), At: at, ExpiresAt: keep.ExpiresAt}, At: at})
	if err != nil {
		t.Fatal(err)
	}
	if res.Session.ID != keep.ID || !bytes.Equal(res.Session.TokenHash, hash("k1")) || !slices.Equal(res.Revoked, []string{other.ID}) {
		t.Fatalf("result %+v", res)
	}
	if x, err := s.SessionByTokenHash(ctx, hash("k1")); err != nil || x.ID != keep.ID {
		t.Fatalf("the rotated token does not find its family: %v", err)
	}
	// A rotation that fails its condition takes the whole change with it.
	_ = s.RevokeSession(ctx, keep.ID, at)
	again := changed
	again.ETag = id()
	_, err = s.UpdateUser(ctx, fiberauth.UserUpdate{User: again, IfETag: changed.ETag,
		Rotate: &fiberauth.Rotation{SessionID: keep.ID, To: hash("k2"), At: at, ExpiresAt: keep.ExpiresAt}, At: at})
	wantErr(t, "rotation of a revoked family", err, fiberauth.ErrStale)
	got, _ := s.UserByID(ctx, u.ID)
	sameUser(t, got, changed)
}

// UpdateUser starts a family with the change, or changes nothing.
func testUserUpdateCreatesSession(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	changed := u
	changed.ETag = id()
	refused := newSession(u.ID, "refused", base)
	_, err := s.UpdateUser(ctx, fiberauth.UserUpdate{User: changed, IfETag: "not-the-etag", CreateSession: &refused, At: base})
	wantErr(t, "stale update with a session", err, fiberauth.ErrStale)
	if _, err := s.SessionByID(ctx, refused.ID); !errors.Is(err, fiberauth.ErrNotFound) {
		t.Fatalf("a refused update created its session: %v", err)
	}
	created := newSession(u.ID, "created", base)
	if _, err := s.UpdateUser(ctx, fiberauth.UserUpdate{User: changed, IfETag: u.ETag, CreateSession: &created, At: base}); err != nil {
		t.Fatal(err)
	}
	got, err := s.SessionByTokenHash(ctx, hash("created"))
	if err != nil || got.ID != created.ID || !got.Live(base) {
		t.Fatalf("the session created with the update: %+v, %v", got, err)
	}
}

func testAttempts(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	const w = 15 * time.Minute
	if n, _, err := s.Attempts(ctx, "k", base); err != nil || n != 0 {
		t.Fatalf("no attempts: %d, %v", n, err)
	}
	for i := 1; i <= 3; i++ {
		n, ends, err := s.AddAttempt(ctx, "k", base.Add(time.Duration(i)*time.Minute), w)
		if err != nil || n != i || !ends.Equal(base.Add(time.Minute+w)) {
			t.Fatalf("attempt %d: %d, %v, %v", i, n, ends, err)
		}
	}
	if n, ends, _ := s.Attempts(ctx, "k", base.Add(10*time.Minute)); n != 3 || !ends.Equal(base.Add(time.Minute+w)) {
		t.Fatalf("Attempts = %d until %v", n, ends)
	}
	if n, _, _ := s.Attempts(ctx, "other", base); n != 0 {
		t.Fatal("keys share counts")
	}
	// The window closes; the next attempt opens a new one.
	closed := base.Add(time.Minute + w)
	if n, _, _ := s.Attempts(ctx, "k", closed); n != 0 {
		t.Fatalf("a closed window still counts %d", n)
	}
	if n, ends, _ := s.AddAttempt(ctx, "k", closed, w); n != 1 || !ends.Equal(closed.Add(w)) {
		t.Fatalf("first attempt of a new window: %d until %v", n, ends)
	}
	if err := s.ResetAttempts(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.Attempts(ctx, "k", closed); n != 0 {
		t.Fatal("reset kept the count")
	}
	if err := s.ResetAttempts(ctx, "never"); err != nil {
		t.Fatalf("reset of an unknown key: %v", err)
	}
	// Concurrent attempts are each counted.
	race(t, 20, func() error { _, _, err := s.AddAttempt(ctx, "busy", base, w); return err }, nil)
	if n, _, _ := s.Attempts(ctx, "busy", base); n != 20 {
		t.Fatalf("20 concurrent attempts counted as %d", n)
	}
	_ = s.DeleteExpired(ctx, base.Add(w))
	if n, _, _ := s.AddAttempt(ctx, "busy", base.Add(w), w); n != 1 {
		t.Fatalf("after DeleteExpired the window still counts")
	}
}

func testCodeBurn(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	if err := s.PutCode(ctx, code("u", fiberauth.PurposeEmailConfirm, "123456", base.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	for i := range fiberauth.CodeMaxAttempts {
		wantErr(t, fmt.Sprintf("wrong try %d", i+1), s.CheckCode(ctx, "u", fiberauth.PurposeEmailConfirm, hash("000000"), base), fiberauth.ErrCodeMismatch)
	}
	wantErr(t, "right code after the code burnt", s.CheckCode(ctx, "u", fiberauth.PurposeEmailConfirm, hash("123456"), base), fiberauth.ErrNotFound)

	// Four wrong tries leave it usable.
	_ = s.PutCode(ctx, code("u", fiberauth.PurposeEmailConfirm, "654321", base.Add(time.Hour)))
	for range fiberauth.CodeMaxAttempts - 1 {
		_ = s.CheckCode(ctx, "u", fiberauth.PurposeEmailConfirm, hash("000000"), base)
	}
	if err := s.CheckCode(ctx, "u", fiberauth.PurposeEmailConfirm, hash("654321"), base); err != nil {
		t.Fatalf("right code after %d wrong tries: %v", fiberauth.CodeMaxAttempts-1, err)
	}
}

func testCodeExpiryAndPurpose(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	exp := base.Add(10 * time.Minute)
	_ = s.PutCode(ctx, code("u", fiberauth.PurposePasswordReset, "111111", exp))
	_ = s.PutCode(ctx, code("u", fiberauth.PurposeEmailConfirm, "222222", exp))
	wantErr(t, "code of another purpose", s.CheckCode(ctx, "u", fiberauth.PurposePasswordReset, hash("222222"), base), fiberauth.ErrCodeMismatch)
	wantErr(t, "code of another user", s.CheckCode(ctx, "v", fiberauth.PurposePasswordReset, hash("111111"), base), fiberauth.ErrNotFound)
	wantErr(t, "expired code", s.CheckCode(ctx, "u", fiberauth.PurposePasswordReset, hash("111111"), exp), fiberauth.ErrNotFound)
	if err := s.CheckCode(ctx, "u", fiberauth.PurposeEmailConfirm, hash("222222"), exp.Add(-time.Second)); err != nil {
		t.Fatalf("code a second before expiry: %v", err)
	}
}

func testDeleteExpired(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	keep := newSession("a", "keep", base)
	gone := newSession("a", "gone", base)
	gone.ExpiresAt = base.Add(time.Hour)
	absGone := newSession("a", "absgone", base)
	absGone.AbsoluteExpiresAt = base.Add(time.Hour)
	revokedLive := newSession("a", "revoked", base)
	for _, x := range []fiberauth.Session{keep, gone, absGone, revokedLive} {
		mustCreateSession(t, s, x)
	}
	_ = s.RevokeSession(ctx, revokedLive.ID, base)
	_ = s.PutCode(ctx, code("a", fiberauth.PurposePasswordReset, "1", base.Add(time.Hour)))
	_ = s.PutCode(ctx, code("a", fiberauth.PurposeEmailConfirm, "2", base.Add(48*time.Hour)))

	if err := s.DeleteExpired(ctx, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		sess  fiberauth.Session
		token string
		kept  bool
	}{{keep, "keep", true}, {gone, "gone", false}, {absGone, "absgone", false}, {revokedLive, "revoked", true}} {
		_, err := s.SessionByID(ctx, x.sess.ID)
		_, errTok := s.SessionByTokenHash(ctx, hash(x.token))
		if x.kept && (err != nil || errTok != nil) {
			t.Fatalf("DeleteExpired removed a family before its expiry: %v %v", err, errTok)
		}
		if !x.kept && (!errors.Is(err, fiberauth.ErrNotFound) || !errors.Is(errTok, fiberauth.ErrNotFound)) {
			t.Fatalf("DeleteExpired kept an expired family: %v %v", err, errTok)
		}
	}
	wantErr(t, "expired code", s.CheckCode(ctx, "a", fiberauth.PurposePasswordReset, hash("1"), base), fiberauth.ErrNotFound)
	if err := s.CheckCode(ctx, "a", fiberauth.PurposeEmailConfirm, hash("2"), base); err != nil {
		t.Fatalf("DeleteExpired removed a live code: %v", err)
	}
}

func testTOTPStep(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	if err := s.UseTOTPStep(ctx, u.ID, 100); err != nil {
		t.Fatalf("first step: %v", err)
	}
	wantErr(t, "same step again", s.UseTOTPStep(ctx, u.ID, 100), fiberauth.ErrStale)
	wantErr(t, "earlier step", s.UseTOTPStep(ctx, u.ID, 99), fiberauth.ErrStale)
	if err := s.UseTOTPStep(ctx, u.ID, 101); err != nil {
		t.Fatalf("next step: %v", err)
	}
	wantErr(t, "unknown user", s.UseTOTPStep(ctx, "nobody", 1), fiberauth.ErrNotFound)

	// UpdateUser leaves the step alone, whatever the record it writes says.
	got, _ := s.UserByID(ctx, u.ID)
	if got.TOTPLastStep != 101 {
		t.Fatalf("TOTPLastStep = %d, want 101", got.TOTPLastStep)
	}
	got.TOTPLastStep = 0
	got.ETag = id()
	if _, err := s.UpdateUser(ctx, fiberauth.UserUpdate{User: got, IfETag: u.ETag}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "step after an update", s.UseTOTPStep(ctx, u.ID, 101), fiberauth.ErrStale)
}

// One TOTP code submitted 20 times at once is accepted once.
func testTOTPStepConcurrent(t *testing.T, s fiberauth.Store) {
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	wins := race(t, 20, func() error { return s.UseTOTPStep(context.Background(), u.ID, 42) }, fiberauth.ErrStale)
	if wins != 1 {
		t.Fatalf("%d concurrent uses of one step succeeded, want 1", wins)
	}
}

// race runs fn n times at once and counts the successes; any error but
// expected fails the test.
func race(t *testing.T, n int, fn func() error, expected error) int {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		wins  int
		other []error
		start = make(chan struct{})
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := fn()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, expected):
				other = append(other, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("unexpected errors: %v", other)
	}
	return wins
}

func challenge(userID, token string, exp time.Time) fiberauth.Challenge {
	return fiberauth.Challenge{Hash: hash(token), UserID: userID, Kind: fiberauth.ChallengeMFA, Sliding: true, ExpiresAt: exp}
}

func testChallenge(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	exp := base.Add(5 * time.Minute)
	if err := s.CreateChallenge(ctx, challenge("u", "c1", exp)); err != nil {
		t.Fatal(err)
	}
	got, err := s.ChallengeByHash(ctx, hash("c1"), base)
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID != "u" || got.Kind != fiberauth.ChallengeMFA || !got.Sliding || !got.ExpiresAt.Equal(exp) || got.Attempts != 0 || !bytes.Equal(got.Hash, hash("c1")) {
		t.Fatalf("challenge = %+v", got)
	}
	_, err = s.ChallengeByHash(ctx, hash("nope"), base)
	wantErr(t, "unknown challenge", err, fiberauth.ErrNotFound)
	if err := s.ConsumeChallenge(ctx, hash("c1"), base); err != nil {
		t.Fatalf("consume: %v", err)
	}
	wantErr(t, "consume twice", s.ConsumeChallenge(ctx, hash("c1"), base), fiberauth.ErrNotFound)
	_, err = s.ChallengeByHash(ctx, hash("c1"), base)
	wantErr(t, "consumed challenge", err, fiberauth.ErrNotFound)
	wantErr(t, "fail a consumed challenge", s.FailChallenge(ctx, hash("c1")), fiberauth.ErrNotFound)
}

func testChallengeBurnAndExpiry(t *testing.T, s fiberauth.Store) {
	ctx := context.Background()
	exp := base.Add(5 * time.Minute)
	_ = s.CreateChallenge(ctx, challenge("u", "burn", exp))
	for i := range fiberauth.CodeMaxAttempts - 1 {
		if err := s.FailChallenge(ctx, hash("burn")); err != nil {
			t.Fatalf("fail %d: %v", i+1, err)
		}
	}
	got, err := s.ChallengeByHash(ctx, hash("burn"), base)
	if err != nil || got.Attempts != fiberauth.CodeMaxAttempts-1 {
		t.Fatalf("after %d failures: %+v, %v", fiberauth.CodeMaxAttempts-1, got, err)
	}
	if err := s.FailChallenge(ctx, hash("burn")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "burnt challenge", s.ConsumeChallenge(ctx, hash("burn"), base), fiberauth.ErrNotFound)

	_ = s.CreateChallenge(ctx, challenge("u", "old", exp))
	_, err = s.ChallengeByHash(ctx, hash("old"), exp)
	wantErr(t, "expired challenge", err, fiberauth.ErrNotFound)
	wantErr(t, "consume expired", s.ConsumeChallenge(ctx, hash("old"), exp), fiberauth.ErrNotFound)
	_ = s.CreateChallenge(ctx, challenge("u", "young", exp.Add(time.Hour)))
	if err := s.DeleteExpired(ctx, exp); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChallengeByHash(ctx, hash("young"), base); err != nil {
		t.Fatalf("DeleteExpired removed a live challenge: %v", err)
	}
	if err := s.FailChallenge(ctx, hash("old")); !errors.Is(err, fiberauth.ErrNotFound) {
		t.Fatalf("DeleteExpired kept an expired challenge: %v", err)
	}
}

func testChallengeConsumeConcurrent(t *testing.T, s fiberauth.Store) {
	_ = s.CreateChallenge(context.Background(), challenge("u", "once", base.Add(time.Minute)))
	wins := race(t, 20, func() error { return s.ConsumeChallenge(context.Background(), hash("once"), base) }, fiberauth.ErrNotFound)
	if wins != 1 {
		t.Fatalf("%d concurrent consumptions of one challenge succeeded, want 1", wins)
	}
}
