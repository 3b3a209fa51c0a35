package fiberauth

import (
	"slices"
	"strconv"
	"sync"
	"testing"
)

// The token cache keeps the tokens in use through a flood of tokens used
// briefly, and stays within its size.
func TestTokenCacheKeepsHotTokens(t *testing.T) {
	const size, hot, flood = 320, 100, 20000
	tc := newTokenCache(size)
	claims := &Claims{Subject: "u"}
	use := func(raw string) bool {
		got, shard := tc.get(raw)
		if got != nil {
			return true
		}
		shard.put(&cachedToken{raw: raw, claims: *claims})
		return false
	}
	for i := range hot {
		use("hot-" + strconv.Itoa(i))
	}
	for i := range flood {
		// Used twice, so that the doorkeeper lets it in: the eviction, not
		// the doorkeeper, must keep the hot tokens.
		use("twice-" + strconv.Itoa(i))
		use("twice-" + strconv.Itoa(i))
		if i%8 == 0 {
			for j := range hot {
				use("hot-" + strconv.Itoa(j))
			}
		}
	}
	for j := range hot {
		if !peek(tc, "hot-"+strconv.Itoa(j)) { // in its shard, not only in the front
			t.Fatalf("hot token %d was evicted by tokens used twice and no more", j)
		}
	}
	if n := tc.len(); n > size {
		t.Fatalf("the cache holds %d tokens, more than its size %d", n, size)
	}
	checkTokenCache(t, tc)
}

// Under 200 goroutines putting and getting, every token found is the one
// put under its key, and the index and entries agree.
func TestTokenCacheParallel(t *testing.T) {
	tc := newTokenCache(64)
	var wg sync.WaitGroup
	for g := range 200 {
		wg.Go(func() {
			for i := range 300 {
				raw := "t-" + strconv.Itoa((g*7+i)%500)
				got, shard := tc.get(raw)
				if got == nil {
					got = shard.put(&cachedToken{raw: raw, claims: Claims{ID: raw}})
				}
				if got.claims.ID != raw || got.raw != raw {
					t.Errorf("token %q found the claims of %q", raw, got.claims.ID)
					return
				}
			}
		})
	}
	wg.Wait()
	checkTokenCache(t, tc)
}

// peek reports whether raw is cached, without marking it used.
func peek(tc *tokenCache, raw string) bool {
	s := &tc.shards[tc.hash(raw)%tokenCacheShards]
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.index[raw]
	return ok
}

func checkTokenCache(t *testing.T, tc *tokenCache) {
	t.Helper()
	for i := range tc.shards {
		s := &tc.shards[i]
		for k, c := range s.index {
			if c.raw != k || !slices.Contains(s.ring, c) {
				t.Fatalf("shard %d: %q indexes %q, in the ring: %v", i, k, c.raw, slices.Contains(s.ring, c))
			}
		}
		if len(s.ring) > s.max || len(s.index) != len(s.ring) {
			t.Fatalf("shard %d: %d in the ring, %d indexed, max %d", i, len(s.ring), len(s.index), s.max)
		}
	}
}

// A token is cached the second time it verifies; a flood of tokens that
// verify once caches nothing and evicts nothing.
func TestTokenCacheAdmitsOnSecondSighting(t *testing.T) {
	tc := newTokenCache(1600)
	claims := &Claims{Subject: "u"}
	verified := func(raw string) *cachedToken { // as verifiedToken does on a miss
		if got, _ := tc.get(raw); got != nil {
			return got
		}
		_, slot := tc.get(raw)
		return slot.put(&cachedToken{raw: raw, claims: *claims})
	}
	verified("hot")
	if got, _ := tc.get("hot"); got != nil {
		t.Fatal("a token was cached the first time it verified")
	}
	verified("hot")
	hot, _ := tc.get("hot")
	if hot == nil {
		t.Fatal("a token was not cached the second time it verified")
	}
	admitted := 0
	for i := range 100000 {
		raw := "once-" + strconv.Itoa(i)
		if verified(raw); i%50 == 0 {
			verified("hot")
		}
		if peek(tc, raw) {
			admitted++
		}
	}
	// The doorkeeper's bits let the odd token through (at most about 6 %
	// of a window's: 16 bits a token), never most of them.
	if admitted > 100000/10 {
		t.Fatalf("%d of 100000 tokens seen once were cached", admitted)
	}
	if got, _ := tc.get("hot"); got != hot || !peek(tc, "hot") {
		t.Fatalf("tokens seen once evicted a token in use (%d admitted)", admitted)
	}
	checkTokenCache(t, tc)
}
