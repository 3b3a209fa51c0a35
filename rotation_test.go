package fiberauth_test

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/sqlstore"
	"github.com/fiberauth/fiberauth/storetest"
)

func TestRefreshRotates(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	p0 := h.login("ada@example.com", goodPassword)
	h.clock.Advance(time.Minute)

	for _, field := range []string{"refresh", "refresh_token"} {
		r := h.do("POST", "/auth/refresh", map[string]any{field: p0.refresh})
		p1 := pairOf(t, r)
		if p1.refresh == p0.refresh || p1.access == p0.access || p1.sid != p0.sid {
			t.Fatalf("refresh via %q did not rotate within the family: %s", field, r.raw)
		}
		if r.str("access") != p1.access || r.str("refresh") != p1.refresh {
			t.Fatalf("aliases differ: %s", r.raw)
		}
		if h.profileStatus(p1.access) != 200 {
			t.Fatal("the refreshed access token does not work")
		}
		p0 = p1
		h.clock.Advance(time.Minute)
	}
	expectField(t, h.do("POST", "/auth/refresh", map[string]any{}), "refresh_token")
	expectField(t, h.do("POST", "/auth/refresh", map[string]any{"refresh_token": true}), "refresh_token")
	expect(t, h.refresh("not-a-token"), 401, "invalid_grant")
	if !h.sawEvent(fiberauth.EventRefresh) {
		t.Fatal("no refresh event")
	}
}

func TestRefreshOmitsUserWhenETagCurrent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	r := h.do("POST", "/auth/refresh", map[string]any{"refresh": p.refresh, "etag": p.etag})
	np := pairOf(t, r)
	if _, ok := r.body["user"]; ok || r.str("user_etag") != p.etag {
		t.Fatalf("user must be omitted for a current etag, user_etag kept: %s", r.raw)
	}
	r = h.do("POST", "/auth/refresh", map[string]any{"refresh": np.refresh, "etag": "stale"})
	if r.obj("user")["email"] != "ada@example.com" {
		t.Fatalf("user must be sent for a stale etag: %s", r.raw)
	}
}

func TestRefreshGraceAndReuse(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	p0 := h.login("ada@example.com", goodPassword)
	p1 := pairOf(t, h.refresh(p0.refresh))

	// A retry within the grace window gets the very same pair.
	h.clock.Advance(9 * time.Second)
	again := pairOf(t, h.refresh(p0.refresh))
	if again != p1 {
		t.Fatalf("replay within grace gave another pair:\n%+v\n%+v", again, p1)
	}
	if h.profileStatus(p1.access) != 200 {
		t.Fatal("the pair stopped working after a replay")
	}

	// After the window it is reuse: the family is revoked, the thief's and
	// the owner's tokens die alike.
	h.clock.Advance(2 * time.Second)
	expect(t, h.refresh(p0.refresh), 401, "refresh_token_reused")
	expect(t, h.refresh(p1.refresh), 401, "invalid_grant")
	expect(t, h.do("GET", "/api/profile", nil, bearer(p1.access)...), 401, "invalid_token")
	if !h.sawEvent(fiberauth.EventRefreshReused) {
		t.Fatal("no refresh_reused event")
	}
}

func TestRefreshReuseOfOlderToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	p0 := h.login("ada@example.com", goodPassword)
	h.clock.Advance(time.Minute)
	p1 := pairOf(t, h.refresh(p0.refresh))
	h.clock.Advance(time.Minute)
	p2 := pairOf(t, h.refresh(p1.refresh))
	// p0 is two rotations old: reuse, even right after p2's rotation.
	expect(t, h.refresh(p0.refresh), 401, "refresh_token_reused")
	expect(t, h.refresh(p2.refresh), 401, "invalid_grant")
	expect(t, h.do("GET", "/api/profile", nil, bearer(p2.access)...), 401, "invalid_token")
}

// A token any number of rotations old is reuse, though no store keeps the
// hashes of a family's old tokens: the token carries its generation.
func TestRefreshReuseOfAncientToken(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch)
		h.createUser("ada@example.com")
		for _, stolen := range []int{0, 17} {
			p := h.login("ada@example.com", goodPassword)
			var copied pair
			for i := range 40 {
				if i == stolen {
					copied = p
				}
				h.clock.Advance(time.Minute)
				p = pairOf(t, h.refresh(p.refresh))
			}
			expect(t, h.refresh(copied.refresh), 401, "refresh_token_reused")
			expect(t, h.refresh(p.refresh), 401, "invalid_grant")
			expect(t, h.do("GET", "/api/profile", nil, bearer(p.access)...), 401, "invalid_token")
		}
	})
}

// A refresh token fiberauth did not issue, however close to one it did, is
// invalid_grant and revokes nothing: only a real old token proves a copy.
func TestRefreshForgedTokensRevokeNothing(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch)
		h.createUser("ada@example.com")
		p0 := h.login("ada@example.com", goodPassword)
		other := h.login("ada@example.com", goodPassword)
		h.clock.Advance(time.Minute)
		p1 := pairOf(t, h.refresh(p0.refresh))
		h.clock.Advance(time.Minute)
		p2 := pairOf(t, h.refresh(p1.refresh))
		h.clock.Advance(time.Hour) // every grace window is over
		// Another deployment on the same database, with its own secret.
		elsewhere := newHarnessOn(t, store, h.clock.Now(), func(c *fiberauth.Config) {
			c.Secret = []byte("another deployment's secret, 32+")
		})
		theirs := elsewhere.login("ada@example.com", goodPassword)

		cur, old := strings.Split(p2.refresh, "."), strings.Split(p0.refresh, ".")
		if len(cur) != 4 || len(old) != 4 || cur[0] != p2.sid {
			t.Fatalf("refresh token %q is not <family>.<generation>.<nonce>.<tag>", p2.refresh)
		}
		with := func(parts []string, i int, v string) string {
			q := slices.Clone(parts)
			q[i] = v
			return strings.Join(q, ".")
		}
		flipped := []byte(cur[3])
		flipped[0] ^= 1
		for name, token := range map[string]string{
			"the current token, an earlier generation":  with(cur, 1, "0"),
			"the current token, a later generation":     with(cur, 1, "3"),
			"the current token, a huge generation":      with(cur, 1, "99999999999999999999"),
			"the current token, a negative generation":  with(cur, 1, "-1"),
			"the current token, another family":         with(cur, 0, other.sid),
			"the current token, the old token's nonce":  with(cur, 2, old[2]),
			"the current token, a changed tag":          with(cur, 3, string(flipped)),
			"the current token, the old token's tag":    with(cur, 3, old[3]),
			"the current token, no tag":                 strings.Join(cur[:3], "."),
			"the current token, an extra part":          p2.refresh + ".x",
			"the first token, a later generation":       with(old, 1, "5"),
			"the family id alone":                       p2.sid,
			"another deployment's token":                theirs.refresh,
			"another deployment's token, this family":   with(strings.Split(theirs.refresh, "."), 0, p2.sid),
			"the current token, with a different case":  strings.ToUpper(p2.refresh),
			"the current token and trailing whitespace": p2.refresh + " ",
		} {
			expect(t, h.refresh(token), 401, "invalid_grant")
			expect(t, h.do("POST", "/auth/logout", map[string]any{"refresh_token": token}), 401, "invalid_grant")
			if t.Failed() {
				t.Fatalf("forged: %s", name)
			}
		}
		if h.sawEvent(fiberauth.EventRefreshReused) {
			t.Fatal("a forged token was taken for reuse")
		}
		// Nothing was revoked.
		pairOf(t, h.refresh(p2.refresh))
		pairOf(t, h.refresh(other.refresh))
		pairOf(t, elsewhere.refresh(theirs.refresh))
	})
}

// A family's storage does not grow with its refreshes: a long-lived session
// refreshed every few minutes for months costs what a new one does. (For
// memstore, TestRotationsKeepNoHistory counts its maps.)
func TestRefreshKeepsNoHistory(t *testing.T) {
	for _, kind := range storeKinds {
		if kind.name == "memory" {
			continue
		}
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			db := kind.open(t).(*sqlstore.Store)
			h := newHarnessOn(t, db, testEpoch)
			h.createUser("ada@example.com")
			p := h.login("ada@example.com", goodPassword)
			h.clock.Advance(time.Minute)
			p = pairOf(t, h.refresh(p.refresh))
			before := storedRows(t, db)
			for range 100 {
				h.clock.Advance(time.Minute)
				p = pairOf(t, h.refresh(p.refresh))
			}
			// Rows may go (the cleanup sweeps expired attempt windows); none come.
			after := storedRows(t, db)
			for table, n := range after {
				if n > before[table] {
					t.Fatalf("100 refreshes of one family grew the stored rows from %v to %v", before, after)
				}
			}
		})
	}
}

// storedRows counts the rows of every fiberauth table of s.
func storedRows(t *testing.T, s *sqlstore.Store) map[string]int64 {
	t.Helper()
	db := s.DB()
	list := `SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'fiberauth%'`
	if _, err := db.ExecContext(t.Context(), `SELECT 1 FROM sqlite_master LIMIT 0`); err != nil {
		list = `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'fiberauth%'`
	}
	rows, err := db.QueryContext(t.Context(), list)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Close(); err != nil || len(tables) < 5 {
		t.Fatalf("listing tables: %v (found %v)", err, tables)
	}
	counts := map[string]int64{}
	for _, table := range tables {
		var n int64
		if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		counts[table] = n
	}
	return counts
}

func TestRefreshConcurrentGivesOnePair(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	const n = 50
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		pairs = map[pair]int{}
		bad   []string
		start = make(chan struct{})
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := h.refresh(p.refresh)
			mu.Lock()
			defer mu.Unlock()
			if r.status != 200 {
				bad = append(bad, r.raw)
				return
			}
			pairs[pair{access: r.str("access_token"), refresh: r.str("refresh_token")}]++
		}()
	}
	close(start)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d of %d concurrent refreshes failed, e.g. %s", len(bad), n, bad[0])
	}
	if len(pairs) != 1 {
		t.Fatalf("%d concurrent refreshes of one token gave %d different pairs, want 1", n, len(pairs))
	}
	for np := range pairs {
		pairOf(t, h.refresh(np.refresh))
	}
}

func TestRefreshExpiry(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	for _, tc := range []struct {
		name    string
		sliding bool
		// steps: advance by after, then refresh; want the expiry (days after
		// login) or a failure (0).
		steps []struct {
			after time.Duration
			want  time.Duration
		}
	}{
		{"fixed", false, []struct{ after, want time.Duration }{{20 * day, 30 * day}, {9 * day, 30 * day}, {2 * day, 0}}},
		{"sliding", true, []struct{ after, want time.Duration }{{20 * day, 50 * day}, {20 * day, 70 * day}, {20 * day, 90 * day}, {20 * day, 90 * day}, {10 * day, 0}}},
		{"idle sliding session", true, []struct{ after, want time.Duration }{{29 * day, 59 * day}, {31 * day, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.createUser("ada@example.com")
			login := h.clock.Now()
			p := pairOf(t, h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword, "sliding": tc.sliding}))
			for i, s := range tc.steps {
				h.clock.Advance(s.after)
				r := h.refresh(p.refresh)
				if s.want == 0 {
					expect(t, r, 401, "invalid_grant")
					expect(t, h.do("GET", "/api/profile", nil, bearer(p.access)...), 401, "invalid_token")
					return
				}
				p = pairOf(t, r)
				got := r.obj("session")["refresh_expires_at"]
				if want := login.Add(s.want).Format(time.RFC3339); got != want {
					t.Fatalf("step %d: refresh_expires_at = %v, want %s", i, got, want)
				}
			}
			t.Fatal("the table must end with a failing step")
		})
	}
}

func TestRefreshPicksUpUserChanges(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	expect(t, h.do("GET", "/api/admin/ping", nil, bearer(p.access)...), 403, "forbidden")
	if err := h.auth.SetRoles(context.Background(), u.ID, []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	// New roles change the etag: the old token is rejected at once...
	expect(t, h.do("GET", "/api/admin/ping", nil, bearer(p.access)...), 401, "invalid_token")
	// ...and a refresh answers a token with the new etag and the new user.
	r := h.refresh(p.refresh)
	np := pairOf(t, r)
	if np.etag == p.etag || r.obj("user")["roles"].([]any)[0] != "admin" {
		t.Fatalf("refresh after SetRoles: %s", r.raw)
	}
	expect(t, h.do("GET", "/api/admin/ping", nil, bearer(np.access)...), 200, "")

	if err := h.auth.DisableUser(context.Background(), u.ID); err != nil {
		t.Fatal(err)
	}
	expect(t, h.do("GET", "/api/profile", nil, bearer(np.access)...), 401, "invalid_token")
	expect(t, h.refresh(np.refresh), 401, "invalid_grant")
}

// interleaved is a store that runs a step of the test once, just before the
// next UpdateUser or RotateSession: what a concurrent request would do at
// the worst moment.
type interleaved struct {
	storetest.FullStore
	mu           sync.Mutex
	beforeUpdate func()
	beforeRotate func()
}

func (s *interleaved) once(f *func()) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := *f
	*f = nil
	return g
}

func (s *interleaved) UpdateUser(ctx context.Context, up fiberauth.UserUpdate) (fiberauth.UpdateResult, error) {
	if f := s.once(&s.beforeUpdate); f != nil {
		f()
	}
	return s.FullStore.UpdateUser(ctx, up)
}

func (s *interleaved) RotateSession(ctx context.Context, r fiberauth.Rotation) (fiberauth.Session, error) {
	if f := s.once(&s.beforeRotate); f != nil {
		f()
	}
	return s.FullStore.RotateSession(ctx, r)
}

func (s *interleaved) RotateSessionIfUser(ctx context.Context, r fiberauth.Rotation, userID, etag string) (fiberauth.Session, fiberauth.User, error) {
	if f := s.once(&s.beforeRotate); f != nil {
		f()
	}
	return s.FullStore.RotateSessionIfUser(ctx, r, userID, etag)
}

// Refreshes that land while a password change hashes the new password move
// the family on; the change rotates from where the family is then, so
// every token the family handed out before stays reuse.
func TestPasswordChangeAfterConcurrentRefresh(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		s := &interleaved{FullStore: store.(storetest.FullStore)}
		h := newHarnessOn(t, s, testEpoch)
		h.createUser("ada@example.com")
		p0 := h.login("ada@example.com", goodPassword)
		h.clock.Advance(time.Minute)
		p1 := pairOf(t, h.refresh(p0.refresh))
		var p2, p3 pair
		s.beforeUpdate = func() {
			p2 = pairOf(t, h.refresh(p1.refresh))
			p3 = pairOf(t, h.refresh(p2.refresh))
		}
		next := "a brand new passphrase"
		changed := pairOf(t, h.do("POST", "/auth/password/change", map[string]any{"previous_password": goodPassword, "proposed_password": next}, bearer(p1.access)...))
		if p3.refresh == "" {
			t.Fatal("the concurrent refreshes did not run")
		}
		if h.profileStatus(changed.access) != 200 {
			t.Fatal("the pair the password change answered does not work")
		}
		// The token the change replaced gets no replay, and ends nothing.
		expect(t, h.refresh(p3.refresh), 401, "invalid_grant")
		if h.profileStatus(changed.access) != 200 {
			t.Fatal("presenting the replaced token within the grace window ended the session")
		}
		// Older ones are reuse, as they were before the change.
		expect(t, h.refresh(p2.refresh), 401, "refresh_token_reused")
		expect(t, h.refresh(changed.refresh), 401, "invalid_grant")
	})
}

// A refresh in flight when the client's own password change commits (a
// single-page app's refresh timer firing at that moment) is refused, and
// the session the change answered goes on.
func TestRefreshInFlightDuringPasswordChange(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		s := &interleaved{FullStore: store.(storetest.FullStore)}
		h := newHarnessOn(t, s, testEpoch)
		h.createUser("ada@example.com")
		p := h.login("ada@example.com", goodPassword)
		var changed pair
		s.beforeRotate = func() {
			changed = pairOf(t, h.do("POST", "/auth/password/change", map[string]any{"previous_password": goodPassword, "proposed_password": "a brand new passphrase"}, bearer(p.access)...))
		}
		expect(t, h.refresh(p.refresh), 401, "invalid_grant")
		if h.profileStatus(changed.access) != 200 {
			t.Fatal("the refresh in flight ended the session the password change answered")
		}
		h.clock.Advance(time.Minute)
		pairOf(t, h.refresh(changed.refresh))
		// After the grace window the replaced token is reuse.
		expect(t, h.refresh(p.refresh), 401, "refresh_token_reused")
	})
}

// refreshCalls counts the store calls of refreshes: the checked rotation
// of a warm cache, and the read and plain rotation of the path that reads
// first.
type refreshCalls struct {
	storetest.FullStore
	mu                    sync.Mutex
	checked, reads, plain int
}

func (s *refreshCalls) RotateSessionIfUser(ctx context.Context, r fiberauth.Rotation, userID, etag string) (fiberauth.Session, fiberauth.User, error) {
	s.count(&s.checked)
	return s.FullStore.RotateSessionIfUser(ctx, r, userID, etag)
}

func (s *refreshCalls) SessionWithUser(ctx context.Context, id string) (fiberauth.Session, fiberauth.User, error) {
	s.count(&s.reads)
	return s.FullStore.SessionWithUser(ctx, id)
}

func (s *refreshCalls) RotateSession(ctx context.Context, r fiberauth.Rotation) (fiberauth.Session, error) {
	s.count(&s.plain)
	return s.FullStore.RotateSession(ctx, r)
}

func (s *refreshCalls) count(n *int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*n++
}

// take returns the counts since the last take.
func (s *refreshCalls) take() [3]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := [3]int{s.checked, s.reads, s.plain}
	s.checked, s.reads, s.plain = 0, 0, 0
	return n
}

// On a warm cache a refresh is one store call, the rotation checked against
// the cached user; when the cache is behind the store (a change made
// through another process, unheard: no Notifier), that check refuses, and
// the refresh reads and decides as it would without the cache: a new etag
// is signed into the new token, a disabled user or a revoked family is
// refused.
func TestRefreshOnStaleCache(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		calls := &refreshCalls{FullStore: withoutNotifier(t, store).(storetest.FullStore)}
		h := newHarnessOn(t, calls, testEpoch, cacheTTL(time.Hour))
		ctx := context.Background()
		u := h.createUser("ada@example.com")
		p := h.login("ada@example.com", goodPassword)
		calls.take()
		p = pairOf(t, h.refresh(p.refresh))
		if n := calls.take(); n != [3]int{1, 0, 0} {
			t.Fatalf("a refresh on a warm cache made %v (checked rotations, reads, plain rotations), want one checked rotation", n)
		}

		// Another process changes the user: its etag.
		behind := func(change func(*fiberauth.User)) {
			t.Helper()
			cur, err := store.UserByID(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			next := cur
			next.ETag = "changed-behind-" + strconv.Itoa(int(h.clock.Now().UnixNano()))
			change(&next)
			if _, err := store.UpdateUser(ctx, fiberauth.UserUpdate{User: next, IfETag: cur.ETag, At: h.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			h.clock.Advance(time.Second)
		}
		behind(func(*fiberauth.User) {})
		want, _ := store.UserByID(ctx, u.ID)
		r := h.refresh(p.refresh)
		p = pairOf(t, r)
		if p.etag != want.ETag {
			t.Fatalf("refresh after a change behind the cache: etag %q, want the store's %q", p.etag, want.ETag)
		}
		if n := calls.take(); n != [3]int{1, 1, 1} {
			t.Fatalf("a refresh on a stale cache made %v, want the refused checked rotation, a read and a rotation", n)
		}
		if h.profileStatus(p.access) != 200 {
			t.Fatal("the token of a refresh after a change behind the cache is refused")
		}

		// Disabled behind the cache: refused, and nothing rotated.
		behind(func(u *fiberauth.User) { u.Disabled = true })
		before, _ := store.SessionByID(ctx, p.sid)
		expect(t, h.refresh(p.refresh), 401, "invalid_grant")
		if s, _ := store.SessionByID(ctx, p.sid); !s.RevokedAt.IsZero() || s.Generation != before.Generation || !bytes.Equal(s.TokenHash, before.TokenHash) {
			t.Fatalf("the refused refresh of a disabled user changed the family: generation %d, was %d", s.Generation, before.Generation)
		}
		behind(func(u *fiberauth.User) { u.Disabled = false })

		// The family revoked behind the cache: refused.
		if err := store.RevokeSession(ctx, p.sid, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		expect(t, h.refresh(p.refresh), 401, "invalid_grant")
	})
}

// afterRotation runs a hook once, after a rotation has committed and before
// Refresh hears of it.
type afterRotation struct {
	storetest.FullStore
	mu   sync.Mutex
	hook func()
}

func (s *afterRotation) take() func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.hook
	s.hook = nil
	return f
}

func (s *afterRotation) RotateSessionIfUser(ctx context.Context, r fiberauth.Rotation, userID, etag string) (fiberauth.Session, fiberauth.User, error) {
	ns, u, err := s.FullStore.RotateSessionIfUser(ctx, r, userID, etag)
	if f := s.take(); err == nil && f != nil {
		f()
	}
	return ns, u, err
}

func (s *afterRotation) RotateSession(ctx context.Context, r fiberauth.Rotation) (fiberauth.Session, error) {
	ns, err := s.FullStore.RotateSession(ctx, r)
	if f := s.take(); err == nil && f != nil {
		f()
	}
	return ns, err
}

// A logout on this instance that lands between a refresh's rotation and
// the refresh caching what the rotation returned wins: the family's access
// tokens, the new one included, are refused here at once, not alive in
// this instance's cache for CacheTTL.
func TestLogoutRacingRefresh(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		st := &afterRotation{FullStore: store.(storetest.FullStore)}
		h := newHarnessOn(t, st, testEpoch, cacheTTL(time.Hour))
		ctx := context.Background()
		h.createUser("ada@example.com")
		p := h.login("ada@example.com", goodPassword)
		claims, err := h.auth.Authenticate(ctx, p.access)
		if err != nil {
			t.Fatal(err)
		}
		st.mu.Lock()
		st.hook = func() {
			if err := h.auth.Logout(ctx, fiberauth.LogoutInput{Caller: &claims}); err != nil {
				t.Errorf("logout: %v", err)
			}
		}
		st.mu.Unlock()
		next := pairOf(t, h.refresh(p.refresh))
		if s, _ := store.SessionByID(ctx, next.sid); s.RevokedAt.IsZero() {
			t.Fatal("the family is not revoked in the store")
		}
		h.clock.Advance(10 * time.Second)
		if got := h.profileStatus(next.access); got != 401 {
			t.Fatalf("the new access token of a family revoked while it rotated is answered %d", got)
		}
		if got := h.profileStatus(p.access); got != 401 {
			t.Fatalf("the access token the logout was made with is answered %d", got)
		}
	})
}
