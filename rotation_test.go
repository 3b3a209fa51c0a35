package fiberauth_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
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
