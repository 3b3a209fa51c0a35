// Package attempts counts attempts per key in fixed windows, in process
// memory, for a bounded number of keys: the throttling counters of memstore
// and of fiberauth itself when its store keeps none. Keys are chosen by
// whoever sends requests (an account name, a network), so the number kept
// is capped and the least useful window makes room for a new one.
package attempts

import (
	"hash/maphash"
	"time"
)

// DefaultMaxKeys is how many keys a Windows keeps by default: about 10 MiB.
const DefaultMaxKeys = 1 << 18

// evictionSample is how many windows a full Windows looks at to choose the
// one a new key replaces.
const evictionSample = 8

// Windows counts attempts per key. It is not safe for concurrent use: its
// owner holds a lock around it.
type Windows struct {
	seed maphash.Seed
	m    map[uint64]window // by a keyed hash of the key: 8 bytes whatever its length
	max  int
}

type window struct {
	count int
	ends  int64 // Unix nanoseconds
}

// New returns an empty Windows that keeps at most max keys.
func New(max int) *Windows {
	return &Windows{seed: maphash.MakeSeed(), m: map[uint64]window{}, max: max}
}

func (w *Windows) id(key string) uint64 { return maphash.String(w.seed, key) }

// Reserve counts one attempt under key when the window open at now holds
// fewer than limit, opening one that ends at now+d when none is open, and
// reports whether it did; either way it returns when the window ends.
func (w *Windows) Reserve(key string, limit int, now time.Time, d time.Duration) (bool, time.Time) {
	id := w.id(key)
	win, ok := w.m[id]
	if !ok || now.UnixNano() >= win.ends {
		if !ok {
			w.makeRoom(now)
		}
		win = window{ends: now.Add(d).UnixNano()}
	}
	if win.count >= limit {
		return false, time.Unix(0, win.ends)
	}
	win.count++
	w.m[id] = win
	return true, time.Unix(0, win.ends)
}

// Release takes back one attempt counted under key in the window open at
// now, if there is one.
func (w *Windows) Release(key string, now time.Time) {
	id := w.id(key)
	if win, ok := w.m[id]; ok && now.UnixNano() < win.ends && win.count > 0 {
		win.count--
		w.m[id] = win
	}
}

// Reset forgets key.
func (w *Windows) Reset(key string) { delete(w.m, w.id(key)) }

// DeleteExpired forgets the windows ended at now.
func (w *Windows) DeleteExpired(now time.Time) {
	for id, win := range w.m {
		if now.UnixNano() >= win.ends {
			delete(w.m, id)
		}
	}
}

// Len is how many keys w keeps.
func (w *Windows) Len() int { return len(w.m) }

// Clone returns a copy of w.
func (w *Windows) Clone() *Windows {
	c := &Windows{seed: w.seed, m: make(map[uint64]window, len(w.m)), max: w.max}
	for id, win := range w.m {
		c.m[id] = win
	}
	return c
}

// makeRoom frees a key when w is full: among a few windows (map order is
// random), every one that has ended, or else the one that ends first, whose
// count matters least.
func (w *Windows) makeRoom(now time.Time) {
	if len(w.m) < w.max {
		return
	}
	var (
		victim  uint64
		earlier int64
		seen    int
		freed   bool
	)
	for id, win := range w.m {
		if now.UnixNano() >= win.ends {
			delete(w.m, id)
			freed = true
		} else if seen == 0 || win.ends < earlier {
			victim, earlier = id, win.ends
		}
		if seen++; seen == evictionSample {
			break
		}
	}
	if !freed {
		delete(w.m, victim)
	}
}
