package attempts

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func TestReserveReleaseReset(t *testing.T) {
	w := New(10)
	for i := range 3 {
		if ok, ends := w.Reserve("k", 3, t0.Add(time.Duration(i)*time.Second), time.Minute); !ok || !ends.Equal(t0.Add(time.Minute)) {
			t.Fatalf("reservation %d: %v until %v", i+1, ok, ends)
		}
	}
	if ok, _ := w.Reserve("k", 3, t0, time.Minute); ok {
		t.Fatal("a fourth reservation under a limit of 3")
	}
	w.Release("k", t0)
	if ok, _ := w.Reserve("k", 3, t0, time.Minute); !ok {
		t.Fatal("no reservation after a release")
	}
	w.Reset("k")
	if ok, ends := w.Reserve("k", 1, t0.Add(time.Hour), time.Minute); !ok || !ends.Equal(t0.Add(time.Hour+time.Minute)) {
		t.Fatalf("after a reset: %v until %v", ok, ends)
	}
}

// A flood of new keys never grows w past its cap, and makes room with the
// windows that matter least: ended ones first.
func TestCapped(t *testing.T) {
	const max = 1000
	w := New(max)
	if ok, _ := w.Reserve("hot", 1, t0, time.Hour); !ok {
		t.Fatal("hot")
	}
	for i := range 100 * max {
		w.Reserve(fmt.Sprint("flood", i), 5, t0.Add(time.Duration(i)*time.Millisecond), time.Second)
		if w.Len() > max {
			t.Fatalf("%d keys kept, cap %d", w.Len(), max)
		}
	}
	// Each flooding window lasted a second, ended long before "hot"'s: the
	// hot key, still in its window, was never the one to go.
	if ok, _ := w.Reserve("hot", 1, t0.Add(100*time.Second), time.Hour); ok {
		t.Fatal("the flood evicted a key whose window was still open while ended ones were there")
	}
	w.DeleteExpired(t0.Add(time.Hour))
	if w.Len() != 0 {
		t.Fatalf("DeleteExpired left %d windows", w.Len())
	}
}
