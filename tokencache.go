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
// A hit takes its shard's read lock and writes nothing else shared (the
// bit is written only when it changes); a cached token never changes but
// for its bit and its memos. (A sync.Map, whose loads take no lock, made a
// miss three times as costly: its Store and Delete on strings of some
// hundred bytes.)
type tokenCache struct {
	seed   maphash.Seed
	shards [tokenCacheShards]tokenShard
}

const tokenCacheShards = 16

type tokenShard struct {
	mu    sync.RWMutex
	index map[string]*cachedToken
	ring  []*cachedToken // at most max, in the hand's order
	max   int
	hand  int
}

// cachedToken is what a token's verification found: its claims, and the
// asymmetric key that verified it (nil with HS256), which may stop
// verifying while the token is cached. user and session remember the state
// entries (statecache.go) that last accepted it: while an entry is the
// cached one for its id (entry.current), it is what a lookup would find, so
// a request with the token uses it without one.
type cachedToken struct {
	raw     string
	claims  *Claims
	key     *verifyKey
	used    atomic.Bool
	user    atomic.Pointer[entry[userState]]
	session atomic.Pointer[entry[sessionState]]
}

func newTokenCache(max int) *tokenCache {
	if max <= 0 {
		return nil
	}
	tc := &tokenCache{seed: maphash.MakeSeed()}
	per := (max + tokenCacheShards - 1) / tokenCacheShards
	for i := range tc.shards {
		tc.shards[i].max = per
		tc.shards[i].index = make(map[string]*cachedToken, min(per, 256))
	}
	return tc
}

// shard is raw's shard, from its last bytes (a signature's, for any token
// that verified): hashing all of a token of some hundred bytes would cost
// more than the rest of a hit.
func (tc *tokenCache) shard(raw string) *tokenShard {
	tail := raw[len(raw)-min(len(raw), 16):]
	return &tc.shards[maphash.String(tc.seed, tail)%tokenCacheShards]
}

// get returns raw's cached verification, or nil and the shard to put it in.
// raw may point into a buffer Fiber reuses: it is only looked up, not kept.
func (tc *tokenCache) get(raw string) (*cachedToken, *tokenShard) {
	if tc == nil {
		return nil, nil
	}
	s := tc.shard(raw)
	s.mu.RLock()
	t, ok := s.index[raw]
	s.mu.RUnlock()
	if ok {
		if !t.used.Load() { // written only when it changes: hot tokens stay in every core's cache
			t.used.Store(true)
		}
		return t, s
	}
	return nil, s
}

// put remembers t under t.raw (a copy of its own) in shard s, evicting one
// token if the shard is full, and returns what is cached under t.raw. With
// no shard (no cache) it returns t.
func (s *tokenShard) put(t *cachedToken) *cachedToken {
	if s == nil {
		return t
	}
	t.raw = strings.Clone(t.raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.index[t.raw]; ok {
		return v // verified twice at once: the first is as good
	}
	if len(s.ring) < s.max {
		s.ring = append(s.ring, t)
	} else {
		// At most one turn clears every bit, so this ends within two.
		for s.ring[s.hand].used.Load() {
			s.ring[s.hand].used.Store(false)
			s.hand = (s.hand + 1) % len(s.ring)
		}
		delete(s.index, s.ring[s.hand].raw)
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
