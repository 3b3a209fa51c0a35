package fiberauth

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patrickmn/go-cache"
)

// stateCache is a go-cache of what the store said of users or session
// families (T is userState or sessionState). Each entry carries its own
// deadline on Config.Now, so a test's clock moves it as it moves everything
// else, and no lookup reads the wall clock; go-cache itself never expires
// entries, and the cleanup (maybeSweep) forgets stale ones.
//
// Ordering. Every store read and every change this process knows of (its
// own, or one a Notifier told it of) takes a generation from one counter, so
// generations order what the cache learnt:
//   - a change marks its id's bucket (marks: a fixed array of the newest
//     change generation per hash bucket of ids) before it touches the entry,
//     and a read is cached only if it began after the last change of its
//     bucket and over no newer entry: a change made or heard of while the
//     read was in flight wins, whatever happened to the entry meanwhile (a
//     sweep, or no entry at all). Another id's change in the same bucket
//     only costs a later read;
//   - a change detaches the reads in flight for that id, so a request that
//     arrives after the change never joins a read that began before it;
//   - a flush (after notices may have been lost) sets a floor below which no
//     read is cached.
//
// Concurrent reads of one id are collapsed into one store read (a flight).
// A flight has a key besides the id: "" for a plain miss, which any request
// may join, or what a request needs the read to have seen (a token's etag or
// id, see authenticate.go), which only requests needing the same may join.
type stateCache[T any] struct {
	c     *cache.Cache // nil: no cache (Config.CacheTTL < 0)
	ttl   time.Duration
	gen   *atomic.Uint64
	floor *atomic.Uint64
	locks *[stateLocks]sync.Mutex

	fmu     *sync.Mutex
	flights map[string]map[string]*flight[T] // by id, then key
	joins   *atomic.Int64                    // callers that waited for another's read
	marks   *[markBuckets]atomic.Uint64      // newest change generation per bucket of ids
}

const (
	stateLocks  = 64
	markBuckets = 4096
)

// entry is a cached state and what the cache knows of it. An entry does not
// change once cached, but for gone: it is replaced as a whole.
type entry[T any] struct {
	v     T
	until int64  // Unix nanoseconds on Config.Now: trusted until then
	at    int64  // Unix nanoseconds on Config.Now when it was read or changed
	gen   uint64 // see stateCache
	// gone is set once the entry is not (or never was) the one cached
	// under its id: replaced, forgotten, or not cached at all. Until then
	// a holder of the entry (the token cache, tokencache.go) may use it as
	// a lookup of its id would.
	gone atomic.Bool
}

// current reports whether e is what a lookup of its id would return at now.
func (e *entry[T]) current(now time.Time) bool {
	return e != nil && !e.gone.Load() && e.fresh(now)
}

// uncached is an entry that is not in the cache.
func uncached[T any](e *entry[T]) *entry[T] {
	e.gone.Store(true)
	return e
}

func (e *entry[T]) fresh(now time.Time) bool { return now.UnixNano() < e.until }

// flight is one store read that several requests wait for.
type flight[T any] struct {
	done chan struct{}
	e    *entry[T]
	err  error
}

func newStateCache[T any](ttl time.Duration) stateCache[T] {
	if ttl < 0 {
		return stateCache[T]{}
	}
	return stateCache[T]{
		c: cache.New(cache.NoExpiration, 0), ttl: ttl,
		gen: new(atomic.Uint64), floor: new(atomic.Uint64), locks: new([stateLocks]sync.Mutex),
		fmu: new(sync.Mutex), flights: map[string]map[string]*flight[T]{}, joins: new(atomic.Int64),
		marks: new([markBuckets]atomic.Uint64),
	}
}

// generation is the newest generation taken so far: a request that notes
// it on arrival knows that any entry of a greater one was learnt after it
// arrived.
func (s stateCache[T]) generation() uint64 {
	if s.c == nil {
		return 0
	}
	return s.gen.Load()
}

// get returns the entry cached under id if it is fresh at now.
func (s stateCache[T]) get(id string, now time.Time) (*entry[T], bool) {
	if s.c == nil {
		return nil, false
	}
	v, ok := s.c.Get(id)
	if !ok {
		return nil, false
	}
	e := v.(*entry[T])
	if !e.fresh(now) {
		return nil, false
	}
	return e, true
}

// put caches e under id in place of what is there. The caller holds id's
// lock.
func (s stateCache[T]) put(id string, e *entry[T]) {
	if cur, ok := s.c.Get(id); ok {
		cur.(*entry[T]).gone.Store(true)
	}
	s.c.SetDefault(id, e)
}

// drop forgets what is cached under id. The caller holds id's lock.
func (s stateCache[T]) drop(id string) {
	if cur, ok := s.c.Get(id); ok {
		cur.(*entry[T]).gone.Store(true)
		s.c.Delete(id)
	}
}

func (s stateCache[T]) lock(id string) *sync.Mutex {
	return &s.locks[maphash.String(lockSeed, id)%stateLocks]
}

func (s stateCache[T]) mark(id string) *atomic.Uint64 {
	return &s.marks[maphash.String(lockSeed, id)%markBuckets]
}

// change takes the generation of a change of id and marks id's bucket with
// it (never lowering it): no read that began before is cached after.
func (s stateCache[T]) change(id string) uint64 {
	gen := s.gen.Add(1)
	m := s.mark(id)
	for {
		cur := m.Load()
		if cur >= gen || m.CompareAndSwap(cur, gen) {
			return gen
		}
	}
}

var lockSeed = maphash.MakeSeed()

// begin is the generation of a store read about to begin, for note.
func (s stateCache[T]) begin() uint64 {
	if s.c == nil {
		return 0
	}
	return s.gen.Add(1)
}

// note caches v, read from the store at now by a read that began at
// generation gen, unless what is there is newer.
func (s stateCache[T]) note(id string, v T, now time.Time, gen uint64) *entry[T] {
	e := &entry[T]{v: v, until: now.Add(s.ttl).UnixNano(), at: now.UnixNano(), gen: gen}
	if s.c == nil {
		return uncached(e)
	}
	l := s.lock(id)
	l.Lock()
	defer l.Unlock()
	if gen < s.floor.Load() || gen < s.mark(id).Load() {
		return uncached(e)
	}
	if cur, ok := s.c.Get(id); ok && cur.(*entry[T]).gen > gen {
		return uncached(e)
	}
	s.put(id, e)
	// A flush takes the id locks only for the entries it found: one that
	// came between the check and the put finds the entry, or has raised the
	// floor by now.
	if gen < s.floor.Load() {
		s.drop(id)
	}
	return e
}

// set caches v, a change this process has made (committed) at now: it
// replaces what is there, and reads in flight for id are detached.
func (s stateCache[T]) set(id string, v T, now time.Time) {
	if s.c == nil {
		return
	}
	s.detach(id)
	e := &entry[T]{v: v, until: now.Add(s.ttl).UnixNano(), at: now.UnixNano(), gen: s.change(id)}
	l := s.lock(id)
	l.Lock()
	s.put(id, e)
	l.Unlock()
}

// invalidate is what a notice of a change of id does: no read in flight is
// cached or joined, and unless keep says that what is cached is already
// what the notice announces, a cached entry becomes replace (when not nil;
// fresh until the TTL) or is forgotten. An id not cached is left out of the
// cache: notices of other instances' users take no room.
func (s stateCache[T]) invalidate(id string, keep func(T) bool, replace *T, now time.Time) {
	if s.c == nil {
		return
	}
	s.detach(id)
	gen := s.change(id)
	l := s.lock(id)
	l.Lock()
	defer l.Unlock()
	cur, cached := s.c.Get(id)
	switch {
	case !cached || keep != nil && keep(cur.(*entry[T]).v):
	case replace != nil:
		s.put(id, &entry[T]{v: *replace, until: now.Add(s.ttl).UnixNano(), at: now.UnixNano(), gen: gen})
	default:
		s.drop(id)
	}
}

// flush forgets everything: no read that began before it is cached or
// joined.
func (s stateCache[T]) flush() {
	if s.c == nil {
		return
	}
	s.fmu.Lock()
	s.floor.Store(s.gen.Add(1))
	clear(s.flights)
	s.fmu.Unlock()
	// A note that checked the floor before it rose holds its id's lock
	// until it has cached its entry: wait for those, so that the entries
	// below find theirs.
	for i := range s.locks {
		s.locks[i].Lock()
		s.locks[i].Unlock()
	}
	// Entry by entry under its id's lock, so that each is marked gone: an
	// entry put since the floor rose is newer than the flush, and stays.
	for id, it := range s.c.Items() {
		l := s.lock(id)
		l.Lock()
		if cur, ok := s.c.Get(id); ok && cur == it.Object && cur.(*entry[T]).gen < s.floor.Load() {
			s.drop(id)
		}
		l.Unlock()
	}
}

// detach makes the reads in flight for id unjoinable: requests that come
// later read again.
func (s stateCache[T]) detach(id string) {
	s.fmu.Lock()
	delete(s.flights, id)
	s.fmu.Unlock()
}

// load reads id through read, once for all the concurrent callers with the
// same key, and caches what it read (note). A caller whose ctx ends stops
// waiting; the read goes on for the others. Without a cache, every call
// reads.
func (s stateCache[T]) load(ctx context.Context, id, key string, now func() time.Time, read func(ctx context.Context) (T, error)) (*entry[T], error) {
	if s.c == nil {
		v, err := read(ctx)
		return uncached(&entry[T]{v: v, gen: math.MaxUint64}), err // read after anything
	}
	s.fmu.Lock()
	byKey := s.flights[id]
	if f := byKey[key]; f != nil {
		s.fmu.Unlock()
		s.joins.Add(1)
		select {
		case <-f.done:
			return f.e, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &flight[T]{done: make(chan struct{})}
	if byKey == nil {
		byKey = map[string]*flight[T]{}
		s.flights[id] = byKey
	}
	byKey[key] = f
	gen := s.gen.Add(1) // taken under fmu: a detach either precedes it or drops f
	s.fmu.Unlock()

	at := now()
	// The read serves every caller that joins it, so one caller's going
	// away must not cancel it (the store bounds it on its own).
	v, err := read(context.WithoutCancel(ctx))
	if err == nil {
		f.e = s.note(id, v, at, gen)
	}
	f.err = err
	s.fmu.Lock()
	if s.flights[id][key] == f {
		delete(s.flights[id], key)
		if len(s.flights[id]) == 0 {
			delete(s.flights, id)
		}
	}
	s.fmu.Unlock()
	close(f.done)
	return f.e, f.err
}

// sweep forgets the entries that are no longer fresh at now (an entry put
// since it looked stays).
func (s stateCache[T]) sweep(now time.Time) {
	if s.c == nil {
		return
	}
	for id, it := range s.c.Items() {
		if e, ok := it.Object.(*entry[T]); ok && !e.fresh(now) {
			l := s.lock(id)
			l.Lock()
			if cur, ok := s.c.Get(id); ok && cur == any(e) {
				s.drop(id)
			}
			l.Unlock()
		}
	}
}

// len is how many entries are cached.
func (s stateCache[T]) len() int {
	if s.c == nil {
		return 0
	}
	return s.c.ItemCount()
}
