package fiberauth_test

import (
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// After retired + AccessTTL + Leeway a retired key verifies nothing,
// whatever exp its tokens claim, including tokens already in the
// verified-token cache: a token signed with the old key (by whoever holds
// it: the reason to rotate after a leak), presented while the key still
// verified, is refused once the key has gone. A token claiming an exp a
// day after its iat is refused outright (exp at most AccessTTL + Leeway
// after iat, TestTokenLifetimeBound); the cached token here is one
// fiberauth could have signed: issued just before the old key stops
// verifying, and unexpired well after.
func TestRetiredKeyTokenLeavesCache(t *testing.T) {
	t.Parallel()
	old, cur := newHostKey(t, fiberauth.AlgorithmEdDSA, "old"), newHostKey(t, fiberauth.AlgorithmEdDSA, "new")
	w := newTokenWorld(t, withKeys(cur.key, old.key.Retired(testEpoch)))
	long := signAs(t, "EdDSA", old.priv, asymHeader("EdDSA", "old"), w.claims().set("exp", jint(w.now+24*3600)))
	w.refused(t, long) // exp a day after iat

	// The old key verifies until testEpoch + AccessTTL + Leeway (15m30s).
	w.h.clock.Advance(15 * time.Minute)
	now := w.h.clock.Now().Unix()
	late := signAs(t, "EdDSA", old.priv, asymHeader("EdDSA", "old"), w.claims().set("iat", jint(now)).set("exp", jint(now+900)))
	w.accepted(t, late, w.ada.ID) // while the old key verifies: cached

	w.h.clock.Advance(30*time.Second + time.Second) // the old key has stopped verifying; late has 14 minutes to go
	if _, keys := w.h.jwks(t); len(keys) != 1 {
		t.Fatalf("the old key is still in the JWKS: %v", kids(keys))
	}
	w.refused(t, late)
}
