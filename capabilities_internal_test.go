package fiberauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// gatedCore is a core Store whose next UpdateUser tells entered it has
// begun, then waits for its answer on answer.
type gatedCore struct {
	Store
	entered chan struct{}
	answer  chan error
}

func (g *gatedCore) UpdateUser(context.Context, UserUpdate) (UpdateResult, error) {
	g.entered <- struct{}{}
	return UpdateResult{}, <-g.answer
}

// useCodeInFlight starts a UseCode of c on l and returns once its user
// update is in flight; send the update's answer on g.answer, then read the
// UseCode's error from the returned channel.
func useCodeInFlight(l *localState, g *gatedCore, c Code, at time.Time) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := l.UseCode(context.Background(), c, UserUpdate{At: at})
		done <- err
	}()
	<-g.entered
	return done
}

// While a UseCode's update is in flight outside the lock, the code is still
// there for CheckCode and cannot be spent twice; when the update fails it is
// usable again, but a code that PutCode replaced meanwhile never comes back.
func TestLocalUseCodeInFlight(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	g := &gatedCore{entered: make(chan struct{}), answer: make(chan error)}
	l := newLocalState(g)
	code := func(h string) Code {
		return Code{UserID: "u", Purpose: PurposePasswordReset, Hash: []byte(h), ExpiresAt: now.Add(10 * time.Minute)}
	}
	one, two := code("code one"), code("code two")
	if err := l.PutCode(ctx, one); err != nil {
		t.Fatal(err)
	}

	done := useCodeInFlight(l, g, one, now)
	if err := l.CheckCode(ctx, "u", one.Purpose, one.Hash, now); err != nil {
		t.Fatalf("CheckCode of a code whose use is in flight: %v", err)
	}
	if _, err := l.UseCode(ctx, one, UserUpdate{At: now}); !errors.Is(err, ErrCodeSpent) {
		t.Fatalf("a second UseCode while the first is in flight: %v", err)
	}
	g.answer <- errDown
	if err := <-done; !errors.Is(err, errDown) {
		t.Fatalf("UseCode = %v, want the store's error", err)
	}
	if err := l.CheckCode(ctx, "u", one.Purpose, one.Hash, now); err != nil {
		t.Fatalf("after a failed use the code is gone: %v", err)
	}

	done = useCodeInFlight(l, g, one, now)
	if err := l.PutCode(ctx, two); err != nil { // a new code replaces it meanwhile
		t.Fatal(err)
	}
	g.answer <- errDown
	<-done
	if err := l.CheckCode(ctx, "u", one.Purpose, one.Hash, now); !errors.Is(err, ErrCodeMismatch) {
		t.Fatalf("a replaced code came back: %v", err)
	}
	if err := l.CheckCode(ctx, "u", two.Purpose, two.Hash, now); err != nil {
		t.Fatalf("the new code: %v", err)
	}
}

var errDown = errors.New("connection refused")

// The middleware's cached states are forgotten once stale, by the cleanup
// that runs every CleanupInterval (also when records are never deleted):
// its caches hold what the last CacheTTL saw, not every user ever seen.
func TestStateCachesForgetStaleEntries(t *testing.T) {
	for _, interval := range []time.Duration{time.Minute, -1} {
		now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		a, err := New(Config{Store: struct{ Store }{}, Secret: make([]byte, 32), Now: func() time.Time { return now },
			CleanupInterval: interval, CacheTTL: time.Second, cheapHashing: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		a.cacheUser(&User{ID: "u1", ETag: "e"})
		a.forgetSessions("s1", "s2")
		now = now.Add(a.sweepEvery())
		a.cacheUser(&User{ID: "u2", ETag: "e"}) // fresh when the sweep runs
		a.maybeSweep()
		a.pending.Wait()
		if _, stale := a.users.c.Get("u1"); stale || a.sessions.c.ItemCount() != 0 {
			t.Fatalf("CleanupInterval %v: stale states kept: users %d, sessions %d", interval, a.users.c.ItemCount(), a.sessions.c.ItemCount())
		}
		if _, ok := a.users.c.Get("u2"); !ok {
			t.Fatalf("CleanupInterval %v: a fresh state was forgotten", interval)
		}
	}
}

// Notices of users and families this instance has not cached take no
// room; a notice of a user it has cached forgets it, unless the cache
// already holds the etag the notice announces; a revoked family it has
// cached is cached as revoked.
func TestNoticesTouchOnlyWhatIsCached(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	a, err := New(Config{Store: struct{ Store }{}, Secret: make([]byte, 32), Now: func() time.Time { return now },
		cheapHashing: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		a.onChange(Change{UserID: fmt.Sprint("u", i), ETag: "e", Sessions: []string{fmt.Sprint("s", i)}})
	}
	if n, m := a.users.len(), a.sessions.len(); n != 0 || m != 0 {
		t.Fatalf("notices of unknown ids left %d users and %d families cached", n, m)
	}
	a.cacheUser(&User{ID: "same", ETag: "e2"})
	a.cacheUser(&User{ID: "changed", ETag: "e1"})
	gen, at := a.sessionWrite()
	a.cacheSession(&Session{ID: "s", UserID: "same", ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}, gen, at)
	a.onChange(Change{UserID: "same", ETag: "e2"})
	a.onChange(Change{UserID: "changed", ETag: "e2", Sessions: []string{"s"}})
	if e, ok := a.users.get("same", now); !ok || e.v.etag != "e2" {
		t.Fatal("a notice of the etag already cached forgot it")
	}
	if _, ok := a.users.get("changed", now); ok {
		t.Fatal("a notice of a new etag left the old one cached")
	}
	if e, ok := a.sessions.get("s", now); !ok || !e.v.revoked {
		t.Fatal("a revoked family is not cached as revoked")
	}
}
