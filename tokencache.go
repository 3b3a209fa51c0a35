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
// the key that verified it still verifying, etag, session). It is bounded: each shard, when full, starts over, which
// costs one parse per token still in use. Shards keep parallel requests off
// each other's locks.
type tokenCache struct {
	seed   maphash.Seed
	shards [tokenCacheShards]tokenShard
}

const tokenCacheShards = 16

type tokenShard struct {
	mu  sync.RWMutex
	m   map[string]verifiedToken
	max int
	_   [40]byte // keep shards on separate cache lines
}

// verifiedToken is what a token's verification found: its claims, and the
// asymmetric key that verified it (nil with HS256), which may stop
// verifying while the token is cached.
type verifiedToken struct {
	claims *Claims
	key    *verifyKey
}

func newTokenCache(max int) *tokenCache {
	if max <= 0 {
		return nil
	}
	tc := &tokenCache{seed: maphash.MakeSeed()}
	per := max/tokenCacheShards + 1
	for i := range tc.shards {
		tc.shards[i].m = make(map[string]verifiedToken, min(per, 256))
		tc.shards[i].max = per
	}
	return tc
}

func (tc *tokenCache) shard(raw string) *tokenShard {
	return &tc.shards[maphash.String(tc.seed, raw)%tokenCacheShards]
}

// get returns what verifying raw found if it verified before (claims nil
// if not), and the shard to put it in otherwise. raw may point into a
// buffer Fiber reuses: it is only looked up, not kept.
func (tc *tokenCache) get(raw string) (verifiedToken, *tokenShard) {
	if tc == nil {
		return verifiedToken{}, nil
	}
	s := tc.shard(raw)
	s.mu.RLock()
	v := s.m[raw]
	s.mu.RUnlock()
	return v, s
}

// put remembers raw (copied) with what verifying it found in shard s.
func (s *tokenShard) put(raw string, v verifiedToken) {
	if s == nil {
		return
	}
	key := strings.Clone(raw)
	s.mu.Lock()
	if len(s.m) >= s.max {
		clear(s.m)
	}
	s.m[key] = v
	s.mu.Unlock()
}
