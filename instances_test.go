package fiberauth_test

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/storetest"
)

// Several instances (Auths) on one store. Each test makes its instances on
// a frozen clock with a CacheTTL of a minute, so that no cache expires:
// what an instance learns, it learns from the store or from a notice.

func cacheTTL(d time.Duration) func(*fiberauth.Config) {
	return func(c *fiberauth.Config) { c.CacheTTL = d }
}

// withoutNotifier is s without its Notifier, as a host's store without the
// capability: instances sharing it hear nothing from each other.
func withoutNotifier(t testing.TB, s fiberauth.Store) fiberauth.Store {
	t.Helper()
	full, ok := s.(storetest.FullStore)
	if !ok {
		t.Fatalf("%T lacks a capability", s)
	}
	return struct{ storetest.FullStore }{full}
}

// A token issued on one instance is accepted on every other at once, even
// by one whose cache holds the user as it was before the change the token
// came from, and even when no notice tells it (a store without Notifier):
// after a password change on A, B accepts A's new token; a refresh on B
// answers a token that B accepts; B, having read the user again, refuses
// the old token.
func TestNewTokensAcceptedOnEveryInstance(t *testing.T) {
	onEveryStore(t, func(t *testing.T, s fiberauth.Store) {
		store := withoutNotifier(t, s)
		a := newHarnessOn(t, store, testEpoch, cacheTTL(time.Minute))
		b := newHarnessOn(t, store, testEpoch, cacheTTL(time.Minute))
		a.createUser("ada@example.com")
		p1 := a.login("ada@example.com", goodPassword)
		if got := b.profileStatus(p1.access); got != 200 {
			t.Fatalf("B refuses a fresh token: %d", got)
		}
		p2 := pairOf(t, a.do("POST", "/auth/password/change", map[string]any{"previous_password": goodPassword, "proposed_password": "a new long passphrase"}, bearer(p1.access)...))
		if got := b.profileStatus(p2.access); got != 200 {
			t.Fatalf("B refuses the token A issued at the password change: %d", got)
		}
		if got := b.profileStatus(p1.access); got != 401 {
			t.Fatalf("B, having read the user again, still accepts the token from before the change: %d", got)
		}
		p3 := pairOf(t, b.refresh(p2.refresh))
		for name, h := range map[string]*harness{"A": a, "B": b} {
			if got := h.profileStatus(p3.access); got != 200 {
				t.Fatalf("%s refuses the token of B's refresh: %d", name, got)
			}
		}
		// And the other way round, after a change B made.
		p4 := pairOf(t, b.do("POST", "/auth/password/change", map[string]any{"previous_password": "a new long passphrase", "proposed_password": goodPassword}, bearer(p3.access)...))
		if got := a.profileStatus(p4.access); got != 200 {
			t.Fatalf("A refuses the token B issued at its password change: %d", got)
		}
	})
}

// countingUsers counts UserByID and gates the first one, once armed.
type countingUsers struct {
	storetest.FullStore
	*gate
	reads atomic.Int64
}

func (c *countingUsers) UserByID(ctx context.Context, id string) (fiberauth.User, error) {
	c.reads.Add(1)
	c.pass()
	return c.FullStore.UserByID(ctx, id)
}

// countingSessions is countingUsers for SessionByID.
type countingSessions struct {
	storetest.FullStore
	*gate
	reads atomic.Int64
}

func (c *countingSessions) SessionByID(ctx context.Context, id string) (fiberauth.Session, error) {
	c.reads.Add(1)
	c.pass()
	return c.FullStore.SessionByID(ctx, id)
}

// parallelGated sends n requests for path with access to h at once, while
// the first store read they cause is held; it lets that read go once the
// n-1 others wait for it, and returns the statuses.
func parallelGated(t *testing.T, h *harness, g *gate, before int64, n int, path, access string) map[int]int {
	t.Helper()
	g.armed.Store(true)
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- h.do("GET", path, nil, bearer(access)...).status
		}()
	}
	<-g.entered
	deadline := time.Now().Add(10 * time.Second)
	for fiberauth.StateJoins(h.auth)-before < int64(n-1) {
		if time.Now().After(deadline) {
			close(g.release)
			wg.Wait()
			t.Fatalf("after 10 s, %d of the %d other requests wait for the read in flight", fiberauth.StateJoins(h.auth)-before, n-1)
		}
		runtime.Gosched()
	}
	close(g.release)
	wg.Wait()
	close(statuses)
	got := map[int]int{}
	for s := range statuses {
		got[s]++
	}
	return got
}

// 200 requests at once on B with a token B's cache is behind on (a new
// etag) read the user once between them, and are all accepted.
func TestRereadsCollapse(t *testing.T) {
	t.Parallel()
	base := newHarness(t)
	counted := &countingUsers{FullStore: base.store.(storetest.FullStore), gate: newGate()}
	a := newHarnessOn(t, counted, testEpoch, cacheTTL(time.Minute))
	b := newHarnessOn(t, counted, testEpoch, cacheTTL(time.Minute))
	a.createUser("ada@example.com")
	p1 := a.login("ada@example.com", goodPassword)
	if got := b.profileStatus(p1.access); got != 200 {
		t.Fatalf("B refuses a fresh token: %d", got)
	}
	p2 := pairOf(t, a.do("POST", "/auth/password/change", map[string]any{"previous_password": goodPassword, "proposed_password": "a new long passphrase"}, bearer(p1.access)...))

	before, joins := counted.reads.Load(), fiberauth.StateJoins(b.auth)
	got := parallelGated(t, b, counted.gate, joins, 200, "/api/profile", p2.access)
	if got[200] != 200 {
		t.Fatalf("200 requests with A's new token on B: %v, want all 200", got)
	}
	if reads := counted.reads.Load() - before; reads != 1 {
		t.Fatalf("200 requests on B read the user %d times, want 1", reads)
	}
}

// 200 requests at once on B for a family B has never seen read it once.
func TestSessionLookupsCollapse(t *testing.T) {
	t.Parallel()
	base := newHarness(t)
	counted := &countingSessions{FullStore: base.store.(storetest.FullStore), gate: newGate()}
	a := newHarnessOn(t, counted, testEpoch, cacheTTL(time.Minute))
	b := newHarnessOn(t, counted, testEpoch, cacheTTL(time.Minute))
	a.createUser("ada@example.com")
	warm := a.login("ada@example.com", goodPassword)
	if got := b.profileStatus(warm.access); got != 200 { // B caches the user
		t.Fatalf("B refuses a fresh token: %d", got)
	}
	p := a.login("ada@example.com", goodPassword) // a family B has not seen

	before, joins := counted.reads.Load(), fiberauth.StateJoins(b.auth)
	got := parallelGated(t, b, counted.gate, joins, 200, "/api/profile", p.access)
	if got[200] != 200 {
		t.Fatalf("200 requests with a new family's token on B: %v, want all 200", got)
	}
	if reads := counted.reads.Load() - before; reads != 1 {
		t.Fatalf("200 requests on B read the family %d times, want 1", reads)
	}
}

// awaitStatus polls h until path with access answers want, on the real
// clock (a notice travels in real time), for at most noticeWait.
func awaitStatus(t *testing.T, h *harness, access string, want int, what string) {
	t.Helper()
	const noticeWait = 10 * time.Second
	deadline := time.Now().Add(noticeWait)
	for {
		got := h.profileStatus(access)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %d after %v, want %d (CacheTTL is a minute)", what, got, noticeWait, want)
		}
		runtime.Gosched()
	}
}

// With a store that has Notifier, a logout, a DisableUser and a role
// change on A are refused on B long before B's cache would expire.
func TestNoticesReachOtherInstance(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		a := newHarnessOn(t, store, testEpoch, cacheTTL(time.Minute))
		b := newHarnessOn(t, store, testEpoch, cacheTTL(time.Minute))
		u := a.createUser("ada@example.com", "admin")
		p := a.login("ada@example.com", goodPassword)
		expect(t, b.do("GET", "/api/admin/ping", nil, bearer(p.access)...), 200, "")
		expect(t, a.do("POST", "/auth/logout", nil, bearer(p.access)...), 200, "")
		awaitStatus(t, b, p.access, 401, "a logout on A, seen from B")

		p = a.login("ada@example.com", goodPassword)
		expect(t, b.do("GET", "/api/admin/ping", nil, bearer(p.access)...), 200, "")
		if err := a.auth.SetRoles(context.Background(), u.ID, nil); err != nil {
			t.Fatal(err)
		}
		awaitStatus(t, b, p.access, 401, "a role removed on A, seen from B")
		p = pairOf(t, b.refresh(p.refresh))
		expect(t, b.do("GET", "/api/admin/ping", nil, bearer(p.access)...), 403, "forbidden")

		if err := a.auth.DisableUser(context.Background(), u.ID); err != nil {
			t.Fatal(err)
		}
		awaitStatus(t, b, p.access, 401, "a user disabled on A, seen from B")
	})
}

// lossyNotifier is a store whose notices the test sends by hand.
type lossyNotifier struct {
	storetest.FullStore
	mu  sync.Mutex
	fns []func(fiberauth.Change)
}

func (l *lossyNotifier) Subscribe(fn func(fiberauth.Change)) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fns = append(l.fns, fn)
	return func() {}, nil
}

func (l *lossyNotifier) tell(c fiberauth.Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, fn := range l.fns {
		fn(c)
	}
}

// When changes may have been lost, an instance forgets everything it
// cached: a revocation it never heard of is refused at once.
func TestLostNoticesEmptyTheCaches(t *testing.T) {
	t.Parallel()
	base := newHarness(t)
	lossy := &lossyNotifier{FullStore: base.store.(storetest.FullStore)}
	a := newHarnessOn(t, withoutNotifier(t, lossy), testEpoch, cacheTTL(time.Minute))
	b := newHarnessOn(t, lossy, testEpoch, cacheTTL(time.Minute))
	a.createUser("ada@example.com")
	p := a.login("ada@example.com", goodPassword)
	if got := b.profileStatus(p.access); got != 200 {
		t.Fatalf("B refuses a fresh token: %d", got)
	}
	expect(t, a.do("POST", "/auth/logout", nil, bearer(p.access)...), 200, "")
	if got := b.profileStatus(p.access); got != 200 {
		t.Fatalf("B heard of a logout nobody told it of: %d", got)
	}
	lossy.tell(fiberauth.Change{Lost: true})
	if got := b.profileStatus(p.access); got != 401 {
		t.Fatalf("after changes were lost, B still accepts a logged-out token from its cache: %d", got)
	}
	if !strings.Contains(b.logs.String(), "lost") {
		t.Fatalf("B did not log that notices were lost: %s", b.logs.String())
	}
}

// lateGatedUsers reads the user, then holds the answer at the gate (once
// armed): a store read that saw the record before a change, answered
// after the change's notice arrived.
type lateGatedUsers struct {
	storetest.FullStore
	fiberauth.Notifier // storetest.FullStore has no Notifier: hear the notices
	*gate
}

func newLateGatedUsers(s fiberauth.Store) *lateGatedUsers {
	return &lateGatedUsers{FullStore: s.(storetest.FullStore), Notifier: s.(fiberauth.Notifier), gate: newGate()}
}

func (g *lateGatedUsers) UserByID(ctx context.Context, id string) (fiberauth.User, error) {
	u, err := g.FullStore.UserByID(ctx, id)
	g.pass()
	return u, err
}

// A flow's read of a user (GET /auth/me, login, refresh, UserByID) that
// began before a change made on another instance, and answers after that
// change's notice was heard, is not cached over the notice: the old token
// and the old role are refused on B right after. (Else an attacker with a
// stolen token could call /auth/me in a loop on B while the victim changes
// password, and keep the token alive for CacheTTL.)
func TestFlowReadNotCachedOverNotice(t *testing.T) {
	t.Parallel()
	base := newHarness(t)
	gated := newLateGatedUsers(base.store)
	a := newHarnessOn(t, gated.FullStore, testEpoch, cacheTTL(time.Minute))
	b := newHarnessOn(t, gated, testEpoch, cacheTTL(time.Minute))
	u := a.createUser("ada@example.com", "admin")
	p := a.login("ada@example.com", goodPassword)
	expect(t, b.do("GET", "/api/admin/ping", nil, bearer(p.access)...), 200, "") // B caches the user

	wait := gated.inFlight(t, b, "/auth/me", p.access)                       // Me's readUser has read the user, with its role
	if err := a.auth.SetRoles(context.Background(), u.ID, nil); err != nil { // the notice reaches B now
		t.Fatal(err)
	}
	if got := wait(); got != 200 {
		t.Fatalf("GET /auth/me that began before the change: %d", got)
	}
	if got := b.do("GET", "/api/admin/ping", nil, bearer(p.access)...).status; got != 401 {
		t.Fatalf("B heard the role removal, yet accepts the old token on the admin route: %d (want 401)", got)
	}
}

// A middleware read in flight when a notice is heard is not cached over
// it, even when the cache's sweep runs in between (started by any cache
// miss once CleanupInterval has passed).
func TestSweepDoesNotLetReadInFlightOverNotice(t *testing.T) {
	t.Parallel()
	base := newHarness(t)
	gated := newLateGatedUsers(base.store)
	a := newHarnessOn(t, gated.FullStore, testEpoch, cacheTTL(time.Hour))
	b := newHarnessOn(t, gated, testEpoch, cacheTTL(time.Hour), func(c *fiberauth.Config) { c.CleanupInterval = time.Minute })
	u := a.createUser("ada@example.com", "admin")
	a.createUser("bob@example.com")
	p := a.login("ada@example.com", goodPassword)
	other := a.login("bob@example.com", goodPassword)

	wait := gated.inFlight(t, b, "/api/admin/ping", p.access)                // B's middleware has read ada, with her role
	if err := a.auth.SetRoles(context.Background(), u.ID, nil); err != nil { // B hears of it
		t.Fatal(err)
	}
	b.clock.Advance(time.Minute + time.Second)            // a sweep is due
	if got := b.profileStatus(other.access); got != 200 { // a miss (bob) starts it
		t.Fatalf("bob on B: %d", got)
	}
	b.flush() // the sweep has run
	if got := wait(); got != 200 {
		t.Fatalf("the request that began before the change: %d", got)
	}
	if got := b.do("GET", "/api/admin/ping", nil, bearer(p.access)...).status; got != 401 {
		t.Fatalf("B heard the role removal, yet accepts the old token on the admin route: %d (want 401)", got)
	}
}
