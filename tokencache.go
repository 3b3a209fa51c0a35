package fiberauth

import (
	"hash/maphash"
	"strings"
	"sync"
)

// tokenCache remembers access tokens whose signature and claims verified,
// keyed by the whole token string, so that a token seen before skips the
// signature check and JSON decoding. Only exact tokens hit: a changed byte
// is another key. A hit still gets every check that can change (expiry,
// etag, session). It is bounded: each shard, when full, starts over, which
// costs one parse per token still in use. Shards keep parallel requests off
// each other's locks.
type tokenCache struct {
	seed   maphash.Seed
	shards [tokenCacheShards]tokenShard
}

const tokenCacheShards = 16

type tokenShard struct {
	mu  sync.RWMutex
	m   map[string]*Claims
	max int
	_   [40]byte // keep shards on separate cache lines
}

func newTokenCache(max int) *tokenCache {
	if max <= 0 {
		return nil
	}
	tc := &tokenCache{seed: maphash.MakeSeed()}
	per := max/tokenCacheShards + 1
	for i := range tc.shards {
		tc.shards[i].m = make(map[string]*Claims, min(per, 256))
		tc.shards[i].max = per
	}
	return tc
}

func (tc *tokenCache) shard(raw string) *tokenShard {
	return &tc.shards[maphash.String(tc.seed, raw)%tokenCacheShards]
}

// get returns the claims of raw if it verified before, and the shard to put
// it in otherwise. raw may point into a buffer Fiber reuses: it is only
// looked up, not kept.
func (tc *tokenCache) get(raw string) (*Claims, *tokenShard) {
	if tc == nil {
		return nil, nil
	}
	s := tc.shard(raw)
	s.mu.RLock()
	c := s.m[raw]
	s.mu.RUnlock()
	return c, s
}

// put remembers raw (copied) with its verified claims in shard s.
func (s *tokenShard) put(raw string, c *Claims) {
	if s == nil {
		return
	}
	key := strings.Clone(raw)
	s.mu.Lock()
	if len(s.m) >= s.max {
		clear(s.m)
	}
	s.m[key] = c
	s.mu.Unlock()
}
