package fiberauth

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
)

// tokenCache remembers access tokens whose signature and claims verified,
// keyed by the whole token string, so that a token seen before skips the
// signature check and JSON decoding. Only exact tokens hit: a changed byte
// is another key. A hit still gets every check that can change (expiry,
// the key that verified it still verifying, etag, session).
//
// It is bounded, and evicts one token at a time (CLOCK, a cheap
// approximation of least recently used): each token has a bit that a hit
// sets; a full shard sweeps its hand over its tokens, clearing set bits,
// and replaces the first token whose bit was clear, one not used since the
// hand last passed it. A new token starts with its bit clear, so a flood of
// tokens used once replaces itself and not the tokens in use.
//
// A token is cached the second time it verifies, not the first (a
// doorkeeper, as in TinyLFU): each shard has a bit set per verified token,
// emptied once as many tokens as the shard holds have been seen, and a
// token whose bit is already set is cached. A token used again soon pays
// one more verification; tokens that are never used again (a flood of
// fresh ones, or the long tail of a large user base) cost no insertion and
// evict nothing.
//
// A hit takes its shard's read lock and writes nothing else shared (the
// bit is written only when it changes); a cached token never changes but
// for its bit and its memos. (A sync.Map, whose loads take no lock, made a
// miss three times as costly: its Store and Delete on strings of some
// hundred bytes.)
type tokenCache struct {
	seed   maphash.Seed
	shards [tokenCacheShards]tokenShard
	// front holds a token hit lately in each of its slots (by hash), read
	// without a lock: a request with a hot token takes no lock that the
	// other cores take too. An entry may outlive its token's eviction from
	// the shard for a while; that is only a cache kept a little longer,
	// since a hit re-checks everything that can change.
	// It has a slot per token the cache holds (at least minFrontSlots, a
	// power of two): a front much smaller than the cache makes the tokens
	// of a large user base take each other's slots.
	front []atomic.Pointer[cachedToken]
}

const (
	tokenCacheShards = 16
	minFrontSlots    = 4096
)

type tokenShard struct {
	mu    sync.RWMutex
	index map[string]*cachedToken
	ring  []*cachedToken // at most max, in the hand's order
	max   int
	hand  int
	// seen is the doorkeeper's bits (16 a token the shard holds), and
	// sightings how many tokens set one since it was last emptied.
	seen      []atomic.Uint64
	sightings atomic.Int64
}

// cachedToken is what a token's verification found: its claims, and the
// asymmetric key that verified it (nil with HS256), which may stop
// verifying while the token is cached. memo remembers what last accepted
// it; cached says it is in the cache (set before it is published, and only
// then is it given a memo).
type cachedToken struct {
	raw    string
	claims Claims // inline: a hit reads one object less
	key    *verifyKey
	cached bool
	used   atomic.Bool
	memo   atomic.Pointer[tokenMemo]
}

// tokenMemo is what last accepted a cached token: the state entries
// (statecache.go) of its user and family, which, while each is the cached
// one for its id (entry.current), are what a lookup would find, so a
// request with the token uses them without one; and the principal of a
// request with no context of its own (context.Background()), which such
// requests share instead of allocating one each.
type tokenMemo struct {
	user    *entry[userState]
	session *entry[sessionState]
	p       principal
}

func newTokenCache(max int) *tokenCache {
	if max <= 0 {
		return nil
	}
	slots := minFrontSlots
	for slots < max {
		slots *= 2
	}
	tc := &tokenCache{seed: maphash.MakeSeed(), front: make([]atomic.Pointer[cachedToken], slots)}
	per := (max + tokenCacheShards - 1) / tokenCacheShards
	for i := range tc.shards {
		tc.shards[i].max = per
		tc.shards[i].seen = make([]atomic.Uint64, (per*16+63)/64)
		tc.shards[i].index = make(map[string]*cachedToken, min(per, 256))
	}
	return tc
}

// tokenSlot is where a token goes in the cache: its shard and its hash.
type tokenSlot struct {
	tc *tokenCache
	s  *tokenShard
	h  uint64
}

// frontOf is the front slot of hash h.
func (tc *tokenCache) frontOf(h uint64) *atomic.Pointer[cachedToken] {
	return &tc.front[(h/tokenCacheShards)&uint64(len(tc.front)-1)]
}

// use marks t used for the CLOCK hand: written only when it changes, so a
// hot token's cache line stays shared between cores.
func (t *cachedToken) use() {
	if !t.used.Load() {
		t.used.Store(true)
	}
}

// hash is raw's hash, from its last bytes: for a token that verified, its
// signature's, which nobody without the key chooses. Hashing all of a
// token of some hundred bytes would cost more than the rest of a hit.
func (tc *tokenCache) hash(raw string) uint64 {
	return maphash.String(tc.seed, raw[len(raw)-min(len(raw), 16):])
}

// get returns raw's cached verification, or nil and the slot to put it in.
// raw may point into a buffer Fiber reuses: it is only looked up, not kept.
func (tc *tokenCache) get(raw string) (*cachedToken, tokenSlot) {
	if tc == nil {
		return nil, tokenSlot{}
	}
	h := tc.hash(raw)
	s := &tc.shards[h%tokenCacheShards]
	f := tc.frontOf(h)
	if t := f.Load(); t != nil && t.raw == raw {
		t.use()
		return t, tokenSlot{tc, s, h}
	}
	s.mu.RLock()
	t, ok := s.index[raw]
	s.mu.RUnlock()
	if ok {
		t.use()
		f.Store(t)
		return t, tokenSlot{tc, s, h}
	}
	return nil, tokenSlot{tc, s, h}
}

// admit reports whether the token of hash h was seen since the doorkeeper
// was last emptied, and records it.
func (s *tokenShard) admit(h uint64) bool {
	bit := (h / tokenCacheShards) % uint64(len(s.seen)*64)
	w, b := &s.seen[bit/64], uint64(1)<<(bit%64)
	if w.Load()&b != 0 {
		return true
	}
	w.Or(b)
	if s.sightings.Add(1) >= int64(s.max) {
		s.sightings.Store(0)
		for i := range s.seen {
			s.seen[i].Store(0)
		}
	}
	return false
}

// put caches t under t.raw (a copy of its own) if the doorkeeper admits it,
// evicting one token if the shard is full, and returns what is cached under
// t.raw, or t.
func (slot tokenSlot) put(t *cachedToken) *cachedToken {
	s := slot.s
	if s == nil || !s.admit(slot.h) {
		return t
	}
	t.raw = strings.Clone(t.raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.index[t.raw]; ok {
		return v // verified twice at once: the first is as good
	}
	t.cached = true
	if len(s.ring) < s.max {
		s.ring = append(s.ring, t)
	} else {
		// One turn clears every bit; hits on other cores (the front takes
		// no lock) may set some again, so after two turns the hand takes
		// the token it is on.
		for turn := 0; turn < 2*len(s.ring) && s.ring[s.hand].used.Load(); turn++ {
			s.ring[s.hand].used.Store(false)
			s.hand = (s.hand + 1) % len(s.ring)
		}
		victim := s.ring[s.hand]
		delete(s.index, victim.raw)
		slot.tc.frontOf(slot.tc.hash(victim.raw)).CompareAndSwap(victim, nil)
		s.ring[s.hand] = t
		s.hand = (s.hand + 1) % len(s.ring)
	}
	s.index[t.raw] = t
	return t
}

// len is how many tokens the cache holds (for tests).
func (tc *tokenCache) len() int {
	n := 0
	for i := range tc.shards {
		s := &tc.shards[i]
		s.mu.RLock()
		n += len(s.index)
		s.mu.RUnlock()
	}
	return n
}
