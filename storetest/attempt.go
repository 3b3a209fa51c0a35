package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// attemptTests check AttemptStore.
var attemptTests = []test{
	{name: "Attempts", fn: testAttempts},
	{name: "AddAttemptConcurrent", fn: testAddAttemptConcurrent},
}

func mustAddAttempt(t *testing.T, as fiberauth.AttemptStore, key string, now time.Time, window time.Duration) (int, time.Time) {
	t.Helper()
	n, ends, err := as.AddAttempt(t.Context(), key, now, window)
	if err != nil {
		t.Fatalf("AddAttempt(%s): %v", key, err)
	}
	return n, ends
}

func mustAttempts(t *testing.T, as fiberauth.AttemptStore, key string, now time.Time) (int, time.Time) {
	t.Helper()
	n, ends, err := as.Attempts(t.Context(), key, now)
	if err != nil {
		t.Fatalf("Attempts(%s): %v", key, err)
	}
	return n, ends
}

// attemptsAre checks the count under key at now, and the window's end when
// one is open.
func attemptsAre(t *testing.T, as fiberauth.AttemptStore, what, key string, now time.Time, want int, wantEnds time.Time) {
	t.Helper()
	n, ends := mustAttempts(t, as, key, now)
	if n != want || (want > 0 && !ends.Equal(wantEnds)) {
		t.Fatalf("%s: Attempts(%s) = %d until %v, want %d until %v", what, key, n, ends, want, wantEnds)
	}
}

// A window opens with the first attempt and ends window later, counting
// every attempt until then without moving; keys count apart; a reset
// forgets.
func testAttempts(t *testing.T, s fiberauth.Store) {
	as := s.(fiberauth.AttemptStore)
	const w = 15 * time.Minute
	first := base.Add(time.Minute)
	ends := first.Add(w)
	attemptsAre(t, as, "before any attempt", "k", base, 0, time.Time{})
	for i := 1; i <= 3; i++ {
		n, e := mustAddAttempt(t, as, "k", base.Add(time.Duration(i)*time.Minute), w)
		if n != i || !e.Equal(ends) {
			t.Fatalf("AddAttempt %d = %d until %v, want %d until %v", i, n, e, i, ends)
		}
	}
	attemptsAre(t, as, "inside the window", "k", base.Add(10*time.Minute), 3, ends)
	attemptsAre(t, as, "a second before the window ends", "k", ends.Add(-time.Second), 3, ends)
	attemptsAre(t, as, "another key", "other", base.Add(10*time.Minute), 0, time.Time{})
	if n, e := mustAddAttempt(t, as, "other", base.Add(10*time.Minute), time.Hour); n != 1 || !e.Equal(base.Add(70*time.Minute)) {
		t.Fatalf("first AddAttempt under another key = %d until %v", n, e)
	}
	attemptsAre(t, as, "after another key counted", "k", base.Add(10*time.Minute), 3, ends)

	// At its end the window is closed; the next attempt opens a new one.
	attemptsAre(t, as, "when the window ends", "k", ends, 0, time.Time{})
	if n, e := mustAddAttempt(t, as, "k", ends, w); n != 1 || !e.Equal(ends.Add(w)) {
		t.Fatalf("first AddAttempt of a new window = %d until %v, want 1 until %v", n, e, ends.Add(w))
	}
	attemptsAre(t, as, "in the new window", "k", ends, 1, ends.Add(w))

	if err := as.ResetAttempts(t.Context(), "k"); err != nil {
		t.Fatalf("ResetAttempts: %v", err)
	}
	attemptsAre(t, as, "after ResetAttempts", "k", ends, 0, time.Time{})
	attemptsAre(t, as, "the other key, after ResetAttempts", "other", base.Add(10*time.Minute), 1, base.Add(70*time.Minute))
	if n, e := mustAddAttempt(t, as, "k", ends.Add(time.Minute), w); n != 1 || !e.Equal(ends.Add(time.Minute+w)) {
		t.Fatalf("first AddAttempt after ResetAttempts = %d until %v", n, e)
	}
	if err := as.ResetAttempts(t.Context(), "never counted"); err != nil {
		t.Fatalf("ResetAttempts of a key without a count: %v", err)
	}
}

// Concurrent attempts each count once: they return exactly 1…n, all in one
// window.
func testAddAttemptConcurrent(t *testing.T, s fiberauth.Store) {
	as := s.(fiberauth.AttemptStore)
	const w = time.Minute
	counts := make([]int, crowd)
	ends := make([]time.Time, crowd)
	errs := together(crowd, func(i int) error {
		var err error
		counts[i], ends[i], err = as.AddAttempt(t.Context(), "busy", base, w)
		return err
	})
	tally(t, "AddAttempt", errs)
	slices.Sort(counts)
	for i, n := range counts {
		if n != i+1 {
			t.Fatalf("%d concurrent AddAttempt returned counts %v, want each of 1…%d once", crowd, counts, crowd)
		}
	}
	for _, e := range ends {
		if !e.Equal(base.Add(w)) {
			t.Fatalf("a concurrent AddAttempt returned a window ending %v, want %v", e, base.Add(w))
		}
	}
	attemptsAre(t, as, "after the race", "busy", base, crowd, base.Add(w))
}
