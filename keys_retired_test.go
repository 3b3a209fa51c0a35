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

// Once a retired key has stopped verifying, a token it signed is
// "expired" (its holder refreshes), but a token signed by anyone else that
// names its kid is "malformed", like one that names no key at all: the
// answer does not tell which kids are retired keys.
func TestRetiredKeyRefusalReasons(t *testing.T) {
	t.Parallel()
	old, cur := newHostKey(t, fiberauth.AlgorithmEdDSA, "old"), newHostKey(t, fiberauth.AlgorithmEdDSA, "new")
	attacker := newHostKey(t, fiberauth.AlgorithmEdDSA, "whatever")
	w := newTokenWorld(t, withKeys(cur.key, old.key.Retired(testEpoch)))
	w.h.clock.Advance(15 * time.Minute)
	now := w.h.clock.Now().Unix()
	claims := w.claims().set("iat", jint(now)).set("exp", jint(now+900))
	genuine := signAs(t, "EdDSA", old.priv, asymHeader("EdDSA", "old"), claims)
	w.accepted(t, genuine, w.ada.ID)
	w.h.clock.Advance(31 * time.Second) // the old key has stopped verifying
	now = w.h.clock.Now().Unix()
	fresh := w.claims().set("iat", jint(now)).set("exp", jint(now+900))
	unseen := signAs(t, "EdDSA", old.priv, asymHeader("EdDSA", "old"), fresh)
	for name, tc := range map[string]struct{ token, reason string }{
		"a cached token of the retired key":     {genuine, "expired"},
		"an unseen token of the retired key":    {unseen, "expired"},
		"a forged token naming the retired kid": {signAs(t, "EdDSA", attacker.priv, asymHeader("EdDSA", "old"), fresh), "malformed"},
		"a forged token naming no key":          {signAs(t, "EdDSA", attacker.priv, asymHeader("EdDSA", "nosuch"), fresh), "malformed"},
	} {
		r := w.h.do("GET", "/api/profile", nil, bearer(tc.token)...)
		if r.status != 401 || r.str("reason") != tc.reason {
			t.Errorf("%s: %d %s, want 401 %s", name, r.status, r.raw, tc.reason)
		}
	}
}
