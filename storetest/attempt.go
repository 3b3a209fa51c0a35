package storetest

import (
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// attemptTests check AttemptStore.
var attemptTests = []test{
	{name: "ReserveAttempt", fn: testReserveAttempt},
	{name: "ReleaseAttempt", fn: testReleaseAttempt},
	{name: "ResetAttempts", fn: testResetAttempts},
	{name: "ReserveAttemptConcurrent", fn: testReserveAttemptConcurrent},
}

func reserve(t *testing.T, as fiberauth.AttemptStore, key string, limit int, now time.Time, window time.Duration) (bool, time.Time) {
	t.Helper()
	ok, ends, err := as.ReserveAttempt(t.Context(), key, limit, now, window)
	if err != nil {
		t.Fatalf("ReserveAttempt(%s): %v", key, err)
	}
	return ok, ends
}

func mustRelease(t *testing.T, as fiberauth.AttemptStore, key string, now time.Time) {
	t.Helper()
	if err := as.ReleaseAttempt(t.Context(), key, now); err != nil {
		t.Fatalf("ReleaseAttempt(%s): %v", key, err)
	}
}

// reservations makes n reservations under key and checks each is granted
// (or, with granted false, refused) with the window ending at ends.
func reservations(t *testing.T, as fiberauth.AttemptStore, what, key string, n, limit int, now time.Time, window time.Duration, granted bool, ends time.Time) {
	t.Helper()
	for i := range n {
		ok, e := reserve(t, as, key, limit, now, window)
		if ok != granted || !e.Equal(ends) {
			t.Fatalf("%s: reservation %d of %d under %q (limit %d) = %v until %v, want %v until %v", what, i+1, n, key, limit, ok, e, granted, ends)
		}
	}
}

// A window opens with the first reservation and ends window later without
// moving; up to limit reservations are granted in it, and the next are
// refused; at its end a new window opens; keys count apart; the limit is
// the caller's, call by call.
func testReserveAttempt(t *testing.T, s fiberauth.Store) {
	as := s.(fiberauth.AttemptStore)
	const w = 15 * time.Minute
	first := base.Add(time.Minute)
	ends := first.Add(w)
	reservations(t, as, "the first", "k", 1, 3, first, w, true, ends)
	reservations(t, as, "inside the window", "k", 2, 3, base.Add(10*time.Minute), time.Hour, true, ends)
	reservations(t, as, "over the limit", "k", 2, 3, ends.Add(-time.Second), w, false, ends)
	reservations(t, as, "under a higher limit", "k", 1, 4, base.Add(10*time.Minute), w, true, ends)
	reservations(t, as, "over the higher limit", "k", 1, 4, base.Add(10*time.Minute), w, false, ends)
	reservations(t, as, "another key", "other", 1, 1, base.Add(10*time.Minute), time.Hour, true, base.Add(70*time.Minute))
	reservations(t, as, "another key, full", "other", 1, 1, base.Add(10*time.Minute), time.Hour, false, base.Add(70*time.Minute))
	// At its end the window is closed; the next reservation opens a new one.
	reservations(t, as, "when the window ends", "k", 1, 1, ends, w, true, ends.Add(w))
	reservations(t, as, "in the new window", "k", 1, 1, ends, w, false, ends.Add(w))
}

// A release takes back one counted attempt of the open window, never below
// none, and does nothing to a window that has ended.
func testReleaseAttempt(t *testing.T, s fiberauth.Store) {
	as := s.(fiberauth.AttemptStore)
	const w = time.Hour
	ends := base.Add(w)
	mustRelease(t, as, "k", base) // nothing counted: a no-op
	reservations(t, as, "after a release of nothing", "k", 2, 2, base, w, true, ends)
	reservations(t, as, "full", "k", 1, 2, base, w, false, ends)
	mustRelease(t, as, "k", base)
	reservations(t, as, "after one release", "k", 1, 2, base, w, true, ends)
	reservations(t, as, "full again", "k", 1, 2, base, w, false, ends)
	for range 5 {
		mustRelease(t, as, "k", base.Add(time.Minute))
	}
	reservations(t, as, "after more releases than attempts", "k", 2, 2, base, w, true, ends)
	reservations(t, as, "full after them", "k", 1, 2, base, w, false, ends)
	// A release at or after the window's end does not reach into it, nor
	// into the next one.
	mustRelease(t, as, "k", ends)
	reservations(t, as, "a new window", "k", 1, 1, ends, w, true, ends.Add(w))
	reservations(t, as, "the new window, full", "k", 1, 1, ends, w, false, ends.Add(w))
}

// A reset forgets the count; resetting a key without one is a no-op.
func testResetAttempts(t *testing.T, s fiberauth.Store) {
	as := s.(fiberauth.AttemptStore)
	const w = time.Hour
	reservations(t, as, "before the reset", "k", 2, 2, base, w, true, base.Add(w))
	reservations(t, as, "other key", "other", 1, 1, base, w, true, base.Add(w))
	if err := as.ResetAttempts(t.Context(), "k"); err != nil {
		t.Fatalf("ResetAttempts: %v", err)
	}
	later := base.Add(time.Minute)
	reservations(t, as, "after the reset", "k", 2, 2, later, w, true, later.Add(w))
	reservations(t, as, "the other key, after the reset", "other", 1, 1, base, w, false, base.Add(w))
	if err := as.ResetAttempts(t.Context(), "never counted"); err != nil {
		t.Fatalf("ResetAttempts of a key without a count: %v", err)
	}
}

// Of many reservations at once, exactly limit are granted, all in one
// window; of many releases at once, none takes the count below zero.
func testReserveAttemptConcurrent(t *testing.T, s fiberauth.Store) {
	as := s.(fiberauth.AttemptStore)
	const (
		w     = time.Minute
		limit = 7
	)
	for round := range raceRounds() {
		key := "busy" + string(rune('a'+round))
		granted := make([]bool, crowd)
		ends := make([]time.Time, crowd)
		errs := together(crowd, func(i int) error {
			var err error
			granted[i], ends[i], err = as.ReserveAttempt(t.Context(), key, limit, base, w)
			return err
		})
		tally(t, "ReserveAttempt", errs)
		n := 0
		for i, ok := range granted {
			if ok {
				n++
			}
			if !ends[i].Equal(base.Add(w)) {
				t.Fatalf("a concurrent ReserveAttempt returned a window ending %v, want %v", ends[i], base.Add(w))
			}
		}
		if n != limit {
			t.Fatalf("%d concurrent reservations under a limit of %d: %d granted", crowd, limit, n)
		}
		tally(t, "ReleaseAttempt", together(crowd, func(int) error { return as.ReleaseAttempt(t.Context(), key, base) }))
		reservations(t, as, "after concurrent releases", key, limit, limit, base, w, true, base.Add(w))
		reservations(t, as, "full after them", key, 1, limit, base, w, false, base.Add(w))
	}
}
