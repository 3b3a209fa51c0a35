package fiberauth_test

import (
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// Review: SigningKey.Retired documents that after retired + AccessTTL +
// Leeway a retired key "verifies nothing, whatever exp its tokens claim".
// But a token verified once is kept in the verified-token cache, and a
// cache hit re-checks only exp: a token signed with the old key (by
// whoever holds it: the reason to rotate after a leak) with a far exp,
// presented once while the key still verified, stays accepted after the
// key has gone, for as long as it is used often enough to stay cached.
func TestReviewRetiredKeyTokenStaysCached(t *testing.T) {
	t.Parallel()
	old, cur := newHostKey(t, fiberauth.AlgorithmEdDSA, "old"), newHostKey(t, fiberauth.AlgorithmEdDSA, "new")
	w := newTokenWorld(t, withKeys(cur.key, old.key.Retired(testEpoch)))
	long := signAs(t, "EdDSA", old.priv, asymHeader("EdDSA", "old"), w.claims().set("exp", jint(w.now+24*3600)))
	w.accepted(t, long, w.ada.ID) // while the old key verifies: cached

	w.h.clock.Advance(15*time.Minute + 30*time.Second + time.Second) // every token the old key signed in its time has expired
	if _, keys := w.h.jwks(t); len(keys) != 1 {
		t.Fatalf("the old key is still in the JWKS: %v", kids(keys))
	}
	w.refused(t, long)
}
