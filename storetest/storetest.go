// Package storetest is the conformance suite for fiberauth.Store
// implementations. Every store fiberauth ships runs it (memstore, and
// sqlstore on SQLite and PostgreSQL), and so should yours:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) fiberauth.Store { return mystore.New(t) })
//	}
//
// newStore must return a fresh, empty store on each call; Run calls it once
// up front to see which optional capabilities the store has, then once per
// subtest, and runs subtests in parallel. A store may release what it holds
// with t.Cleanup.
//
// The core Store is always tested (subtests under "Store/"). Each optional
// capability is tested only when the store has it, as testing/fstest.TestFS
// tests fs.ReadFileFS only when a file system implements it: CodeStore,
// ChallengeStore, AttemptStore, TOTPStore, PasskeyStore, KeyStore, Cleaner, Notifier,
// SessionUserReader and UserRotator each have subtests under their name, and Cleaner's
// check the expiry of only those records whose capabilities the store has.
// Run logs which capabilities it found ("store offers: ..."), so a run
// that tests less than you meant shows it.
// Every store Run gets from newStore must offer the same capabilities.
//
// The suite checks every promise of the Store contract and of each
// capability: results, each sentinel error exactly where documented (and
// no other sentinel with it), that a refused call writes nothing, that
// records are copied in and out, and that the methods documented as atomic
// are, by releasing many goroutines at once against one record. Time is
// passed to the store explicitly, so expiry is tested without sleeping,
// and some cases run decades in the past to catch a store that reads a
// clock.
package storetest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// base is the suite's clock origin, in whole seconds so that every store
// keeps it exactly, and in the future so that a store comparing against
// its own clock instead of the time it is given fails the expiry cases.
var base = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// past is a second origin, long gone, for the cases that catch a store
// judging liveness by its own clock.
var past = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

// crowd is how many goroutines the concurrency cases release at once.
const crowd = 20

// A concurrency case races at least once and at most maxRounds times, and
// races again only while its rounds so far took less than roundBudget in
// all; see raceRounds.
const (
	maxRounds   = 5
	roundBudget = 100 * time.Millisecond
)

// raceRounds yields the round numbers of a concurrency case. A store whose
// calls take a while (a database) has race windows wide enough for one
// round to hit them; an in-process store has narrow ones but races
// cheaply, so it races again. Only how hard the suite tries depends on the
// wall clock, never whether a correct store passes.
func raceRounds() iter.Seq[int] {
	return func(yield func(int) bool) {
		start := time.Now()
		for r := 0; r < maxRounds && (r == 0 || time.Since(start) < roundBudget); r++ {
			if !yield(r) {
				return
			}
		}
	}
}

// A test is one subtest: a check of one promise against a fresh store.
type test struct {
	name string
	// needs, when set, is a further capability the test needs beyond its
	// group's (Cleaner's checks of codes need a CodeStore too).
	needs *capability
	fn    func(t *testing.T, s fiberauth.Store)
}

// A capability is an optional interface of the contract and its subtests.
type capability struct {
	name  string
	has   func(fiberauth.Store) bool
	tests []test
}

// implements reports whether s has the optional capability T.
func implements[T any](s fiberauth.Store) bool { _, ok := s.(T); return ok }

var (
	codeCap        = &capability{name: "CodeStore", has: implements[fiberauth.CodeStore], tests: codeTests}
	challengeCap   = &capability{name: "ChallengeStore", has: implements[fiberauth.ChallengeStore], tests: challengeTests}
	attemptCap     = &capability{name: "AttemptStore", has: implements[fiberauth.AttemptStore], tests: attemptTests}
	totpCap        = &capability{name: "TOTPStore", has: implements[fiberauth.TOTPStore], tests: totpTests}
	passkeyCap     = &capability{name: "PasskeyStore", has: implements[fiberauth.PasskeyStore], tests: passkeyTests}
	keyCap         = &capability{name: "KeyStore", has: implements[fiberauth.KeyStore], tests: keyTests}
	cleanerCap     = &capability{name: "Cleaner", has: implements[fiberauth.Cleaner], tests: cleanerTests}
	notifierCap    = &capability{name: "Notifier", has: implements[fiberauth.Notifier], tests: notifierTests}
	sessionUserCap = &capability{name: "SessionUserReader", has: implements[fiberauth.SessionUserReader], tests: sessionUserTests}
	userRotatorCap = &capability{name: "UserRotator", has: implements[fiberauth.UserRotator], tests: userRotatorTests}
	// capabilities is every optional capability, in the order they are
	// logged and run.
	capabilities = []*capability{codeCap, challengeCap, attemptCap, totpCap, passkeyCap, keyCap, cleanerCap, notifierCap, sessionUserCap, userRotatorCap}
)

// offers lists the names of the optional capabilities s has.
func offers(s fiberauth.Store) []string {
	var names []string
	for _, c := range capabilities {
		if c.has(s) {
			names = append(names, c.name)
		}
	}
	return names
}

// Run checks every promise of the fiberauth.Store contract, and of each
// optional capability the store has, against stores from newStore: one
// fresh store per subtest, subtests in parallel.
func Run(t *testing.T, newStore func(t *testing.T) fiberauth.Store) {
	t.Helper()
	probe := newStore(t)
	offered := offers(probe)
	if len(offered) == 0 {
		t.Logf("store offers: no optional capability; testing the core Store only")
	} else {
		t.Logf("store offers: %s", strings.Join(offered, ", "))
	}

	groups := []*capability{{name: "Store", has: func(fiberauth.Store) bool { return true }, tests: coreTests}}
	for _, c := range capabilities {
		if c.has(probe) {
			groups = append(groups, c)
		}
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range g.tests {
				if tc.needs != nil && !tc.needs.has(probe) {
					continue
				}
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					s := newStore(t)
					if got := offers(s); !slices.Equal(got, offered) {
						t.Fatalf("newStore returned a store offering %v; the first one offered %v", got, offered)
					}
					tc.fn(t, s)
				})
			}
		})
	}
}

// newID returns a fresh random id or etag.
func newID() string { return rand.Text() }

// hash is the suite's stand-in for every token and code hash.
func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// sentinels are the errors the contract names; each is returned exactly
// where a method's comment names it.
var sentinels = []error{
	fiberauth.ErrNotFound, fiberauth.ErrConflict, fiberauth.ErrETagMismatch, fiberauth.ErrNotCurrent,
	fiberauth.ErrCodeMismatch, fiberauth.ErrCodeSpent, fiberauth.ErrStepUsed,
}

// isOnly reports whether err matches want (nil: is nil) and no other
// sentinel: an error that is both ErrNotFound and ErrNotCurrent would let
// a caller take either branch.
func isOnly(err, want error) bool {
	if want == nil || err == nil {
		return err == want
	}
	if !errors.Is(err, want) {
		return false
	}
	for _, s := range sentinels {
		if s != want && errors.Is(err, s) {
			return false
		}
	}
	return true
}

// wantErr fails the test unless call returned exactly the sentinel want.
func wantErr(t *testing.T, call string, err, want error) {
	t.Helper()
	if !isOnly(err, want) {
		t.Fatalf("%s: got error %v, want %v", call, err, want)
	}
}

// together runs fn(0) … fn(n-1) in n goroutines released at once, and
// returns the error of each.
func together(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	for i := range n {
		done.Go(func() {
			ready.Done()
			<-start
			errs[i] = fn(i)
		})
	}
	ready.Wait() // every goroutine is parked on start: release them at once
	close(start)
	done.Wait()
	return errs
}

// tally counts the errors of concurrent calls by outcome (nil for
// success); any error other than nil and allowed fails the test.
func tally(t *testing.T, call string, errs []error, allowed ...error) map[error]int {
	t.Helper()
	n := map[error]int{}
	for _, err := range errs {
		if err == nil {
			n[nil]++
			continue
		}
		i := slices.IndexFunc(allowed, func(a error) bool { return isOnly(err, a) })
		if i < 0 {
			t.Fatalf("concurrent %s: unexpected error %v (allowed: nil, %v)", call, err, allowed)
		}
		n[allowed[i]]++
	}
	return n
}

// --- users ---

// newUser returns a user with every field set, so that each makes the
// round trip.
func newUser(email, username string) fiberauth.User {
	return fiberauth.User{
		ID:                newID(),
		Email:             email,
		Username:          username,
		DisplayName:       "Ada",
		PasswordHash:      "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$a2V5",
		EmailVerified:     true,
		MFAEnabled:        true,
		Roles:             []string{"user", "editor"},
		Attributes:        map[string]string{"plan": "free", "team": "blue"},
		Disabled:          false,
		PasswordTemporary: true,
		PasswordExpiresAt: base.Add(7 * 24 * time.Hour),
		TOTPSecret:        []byte("sealed-totp-secret"),
		RecoveryCodes:     [][]byte{hash("r1"), hash("r2")},
		ETag:              newID(),
		CreatedAt:         base,
		UpdatedAt:         base,
	}
}

// changed returns u with every field but ID changed, and a new etag: the
// record an update writes.
func changed(u fiberauth.User, email, username string) fiberauth.User {
	c := u
	c.Email, c.Username = email, username
	c.DisplayName = u.DisplayName + " L."
	c.PasswordHash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3"
	c.EmailVerified = !u.EmailVerified
	c.MFAEnabled = !u.MFAEnabled
	c.Roles = append(slices.Clone(u.Roles), "admin")
	c.Attributes = maps.Clone(u.Attributes)
	if c.Attributes == nil {
		c.Attributes = map[string]string{}
	}
	c.Attributes["plan"] = "pro"
	c.Disabled = !u.Disabled
	c.PasswordTemporary = !u.PasswordTemporary
	c.PasswordExpiresAt = u.PasswordExpiresAt.Add(time.Hour)
	c.TOTPSecret = append(bytes.Clone(u.TOTPSecret), '!')
	c.RecoveryCodes = [][]byte{hash("r3")}
	c.ETag = newID()
	c.CreatedAt = u.CreatedAt
	c.UpdatedAt = u.UpdatedAt.Add(time.Minute)
	return c
}

// userDiff describes how got differs from want; empty when it does not.
// Nil and empty slices and maps are the same: a store need not tell them
// apart.
func userDiff(got, want fiberauth.User) string {
	var d []string
	field := func(name string, same bool, g, w any) {
		if !same {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	field("ID", got.ID == want.ID, got.ID, want.ID)
	field("Email", got.Email == want.Email, got.Email, want.Email)
	field("Username", got.Username == want.Username, got.Username, want.Username)
	field("DisplayName", got.DisplayName == want.DisplayName, got.DisplayName, want.DisplayName)
	field("PasswordHash", got.PasswordHash == want.PasswordHash, got.PasswordHash, want.PasswordHash)
	field("EmailVerified", got.EmailVerified == want.EmailVerified, got.EmailVerified, want.EmailVerified)
	field("MFAEnabled", got.MFAEnabled == want.MFAEnabled, got.MFAEnabled, want.MFAEnabled)
	field("Roles", slices.Equal(got.Roles, want.Roles), got.Roles, want.Roles)
	field("Attributes", maps.Equal(got.Attributes, want.Attributes), got.Attributes, want.Attributes)
	field("Disabled", got.Disabled == want.Disabled, got.Disabled, want.Disabled)
	field("PasswordTemporary", got.PasswordTemporary == want.PasswordTemporary, got.PasswordTemporary, want.PasswordTemporary)
	field("PasswordExpiresAt", got.PasswordExpiresAt.Equal(want.PasswordExpiresAt), got.PasswordExpiresAt, want.PasswordExpiresAt)
	field("TOTPSecret", bytes.Equal(got.TOTPSecret, want.TOTPSecret), got.TOTPSecret, want.TOTPSecret)
	field("RecoveryCodes", slices.EqualFunc(got.RecoveryCodes, want.RecoveryCodes, bytes.Equal), got.RecoveryCodes, want.RecoveryCodes)
	field("ETag", got.ETag == want.ETag, got.ETag, want.ETag)
	field("CreatedAt", got.CreatedAt.Equal(want.CreatedAt), got.CreatedAt, want.CreatedAt)
	field("UpdatedAt", got.UpdatedAt.Equal(want.UpdatedAt), got.UpdatedAt, want.UpdatedAt)
	return strings.Join(d, "; ")
}

func sameUser(t *testing.T, what string, got, want fiberauth.User) {
	t.Helper()
	if d := userDiff(got, want); d != "" {
		t.Fatalf("%s: user differs: %s", what, d)
	}
}

func mustCreateUser(t *testing.T, s fiberauth.Store, u fiberauth.User) {
	t.Helper()
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", u.Email, err)
	}
}

func mustUser(t *testing.T, s fiberauth.Store, id string) fiberauth.User {
	t.Helper()
	u, err := s.UserByID(t.Context(), id)
	if err != nil {
		t.Fatalf("UserByID(%s): %v", id, err)
	}
	return u
}

func mustUpdate(t *testing.T, s fiberauth.Store, up fiberauth.UserUpdate) fiberauth.UpdateResult {
	t.Helper()
	res, err := s.UpdateUser(t.Context(), up)
	if err != nil {
		t.Fatalf("UpdateUser(%s): %v", up.User.Email, err)
	}
	return res
}

// userIs checks that the stored user is want, found by its id, email and
// username alike.
func userIs(t *testing.T, s fiberauth.Store, what string, want fiberauth.User) {
	t.Helper()
	ctx := t.Context()
	sameUser(t, what+": UserByID", mustUser(t, s, want.ID), want)
	got, err := s.UserByEmail(ctx, want.Email)
	if err != nil {
		t.Fatalf("%s: UserByEmail(%s): %v", what, want.Email, err)
	}
	sameUser(t, what+": UserByEmail", got, want)
	if want.Username != "" {
		got, err := s.UserByUsername(ctx, want.Username)
		if err != nil {
			t.Fatalf("%s: UserByUsername(%s): %v", what, want.Username, err)
		}
		sameUser(t, what+": UserByUsername", got, want)
	}
}

// noUserWith checks that no user has email, nor username; an empty one is
// not checked.
func noUserWith(t *testing.T, s fiberauth.Store, what, email, username string) {
	t.Helper()
	if email != "" {
		_, err := s.UserByEmail(t.Context(), email)
		wantErr(t, what+": UserByEmail("+email+")", err, fiberauth.ErrNotFound)
	}
	if username != "" {
		_, err := s.UserByUsername(t.Context(), username)
		wantErr(t, what+": UserByUsername("+username+")", err, fiberauth.ErrNotFound)
	}
}

// --- sessions ---

// newSession returns a live family with every field set.
func newSession(userID, token string, created time.Time) fiberauth.Session {
	return fiberauth.Session{
		ID:                newID(),
		UserID:            userID,
		TokenHash:         hash(token),
		Sliding:           true,
		CreatedAt:         created,
		LastUsedAt:        created,
		ExpiresAt:         created.Add(30 * 24 * time.Hour),
		AbsoluteExpiresAt: created.Add(90 * 24 * time.Hour),
		UserAgent:         "curl/8",
		IP:                "192.0.2.1",
	}
}

// rotated is what r does to s, by the contract.
func rotated(s fiberauth.Session, r fiberauth.Rotation) fiberauth.Session {
	s.PrevTokenHash = bytes.Clone(r.From)
	s.TokenHash = bytes.Clone(r.To)
	s.Generation = r.Generation
	s.RotatedAt = r.At
	s.Replay = bytes.Clone(r.Replay)
	s.ExpiresAt = r.ExpiresAt
	s.LastUsedAt = r.At
	return s
}

func sessionDiff(got, want fiberauth.Session) string {
	var d []string
	field := func(name string, same bool, g, w any) {
		if !same {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	field("ID", got.ID == want.ID, got.ID, want.ID)
	field("UserID", got.UserID == want.UserID, got.UserID, want.UserID)
	field("TokenHash", bytes.Equal(got.TokenHash, want.TokenHash), got.TokenHash, want.TokenHash)
	field("Generation", got.Generation == want.Generation, got.Generation, want.Generation)
	field("PrevTokenHash", bytes.Equal(got.PrevTokenHash, want.PrevTokenHash), got.PrevTokenHash, want.PrevTokenHash)
	field("RotatedAt", got.RotatedAt.Equal(want.RotatedAt), got.RotatedAt, want.RotatedAt)
	field("Replay", bytes.Equal(got.Replay, want.Replay), got.Replay, want.Replay)
	field("Sliding", got.Sliding == want.Sliding, got.Sliding, want.Sliding)
	field("CreatedAt", got.CreatedAt.Equal(want.CreatedAt), got.CreatedAt, want.CreatedAt)
	field("LastUsedAt", got.LastUsedAt.Equal(want.LastUsedAt), got.LastUsedAt, want.LastUsedAt)
	field("ExpiresAt", got.ExpiresAt.Equal(want.ExpiresAt), got.ExpiresAt, want.ExpiresAt)
	field("AbsoluteExpiresAt", got.AbsoluteExpiresAt.Equal(want.AbsoluteExpiresAt), got.AbsoluteExpiresAt, want.AbsoluteExpiresAt)
	field("RevokedAt", got.RevokedAt.Equal(want.RevokedAt), got.RevokedAt, want.RevokedAt)
	field("UserAgent", got.UserAgent == want.UserAgent, got.UserAgent, want.UserAgent)
	field("IP", got.IP == want.IP, got.IP, want.IP)
	return strings.Join(d, "; ")
}

func sameSession(t *testing.T, what string, got, want fiberauth.Session) {
	t.Helper()
	if d := sessionDiff(got, want); d != "" {
		t.Fatalf("%s: session differs: %s", what, d)
	}
}

func mustCreateSession(t *testing.T, s fiberauth.Store, sess fiberauth.Session) {
	t.Helper()
	if err := s.CreateSession(t.Context(), sess); err != nil {
		t.Fatalf("CreateSession(%s): %v", sess.ID, err)
	}
}

func mustSession(t *testing.T, s fiberauth.Store, id string) fiberauth.Session {
	t.Helper()
	sess, err := s.SessionByID(t.Context(), id)
	if err != nil {
		t.Fatalf("SessionByID(%s): %v", id, err)
	}
	return sess
}

func mustRotate(t *testing.T, s fiberauth.Store, r fiberauth.Rotation) fiberauth.Session {
	t.Helper()
	sess, err := s.RotateSession(t.Context(), r)
	if err != nil {
		t.Fatalf("RotateSession(%s): %v", r.SessionID, err)
	}
	return sess
}

func mustRevoke(t *testing.T, s fiberauth.Store, id string, at time.Time) {
	t.Helper()
	if err := s.RevokeSession(t.Context(), id, at); err != nil {
		t.Fatalf("RevokeSession(%s): %v", id, err)
	}
}

func mustRevokeUser(t *testing.T, s fiberauth.Store, userID, except string, at time.Time) []string {
	t.Helper()
	ids, err := s.RevokeUserSessions(t.Context(), userID, except, at)
	if err != nil {
		t.Fatalf("RevokeUserSessions(%s): %v", userID, err)
	}
	return ids
}

func mustList(t *testing.T, s fiberauth.Store, userID string, now time.Time) []fiberauth.Session {
	t.Helper()
	list, err := s.ListSessions(t.Context(), userID, now)
	if err != nil {
		t.Fatalf("ListSessions(%s): %v", userID, err)
	}
	return list
}

// sessionIs checks that the stored family is want.
func sessionIs(t *testing.T, s fiberauth.Store, what string, want fiberauth.Session) {
	t.Helper()
	sameSession(t, what+": SessionByID", mustSession(t, s, want.ID), want)
}

// sessionsAre checks every family in want with sessionIs.
func sessionsAre(t *testing.T, s fiberauth.Store, what string, want ...fiberauth.Session) {
	t.Helper()
	for _, w := range want {
		sessionIs(t, s, what, w)
	}
}

func noSession(t *testing.T, s fiberauth.Store, what, id string) {
	t.Helper()
	_, err := s.SessionByID(t.Context(), id)
	wantErr(t, what+": SessionByID", err, fiberauth.ErrNotFound)
}

// ids returns the ids of list, in order.
func ids(list []fiberauth.Session) []string {
	out := []string{}
	for _, s := range list {
		out = append(out, s.ID)
	}
	return out
}

// sameIDs fails unless got and want hold the same ids, in any order.
func sameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(g, w) {
		t.Fatalf("%s: ids %v, want %v", what, g, w)
	}
}
