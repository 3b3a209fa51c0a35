package fiberauth_test

import (
	"context"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
)

// Rotation of the host's keys: a key put second and marked Retired keeps
// verifying its tokens until they have all expired (retired + AccessTTL +
// Leeway), and then leaves the JWKS and verifies nothing, whatever exp
// its tokens claim.
func TestHostKeyRotation(t *testing.T) {
	t.Parallel()
	old, cur := newHostKey(t, fiberauth.AlgorithmEdDSA, "old"), newHostKey(t, fiberauth.AlgorithmEdDSA, "new")
	w := newTokenWorld(t, withKeys(cur.key, old.key.Retired(testEpoch)))
	// A token the old key signed just before it retired, claiming the
	// longest life accepted (AccessTTL + Leeway): it verifies while the old
	// key does.
	long := signAs(t, "EdDSA", old.priv, asymHeader("EdDSA", "old"), w.claims().set("exp", jint(w.now+930)))
	w.accepted(t, long, w.ada.ID)
	w.accepted(t, w.p.access, w.ada.ID)
	if tokenHeader(t, w.p.access)["kid"] != "new" {
		t.Fatal("the first key does not sign")
	}
	_, keys := w.h.jwks(t)
	if got := kids(keys); !slices.Equal(got, []string{"new", "old"}) {
		t.Fatalf("JWKS kids %v", got)
	}
	w.h.clock.Advance(15*time.Minute + 30*time.Second - time.Second)
	w.h.flush()
	w.accepted(t, long, w.ada.ID) // not seen before? seen: cached, and the key still verifies
	w.h.clock.Advance(time.Second)
	_, keys = w.h.jwks(t)
	if got := kids(keys); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("JWKS kids after the old key's tokens expired: %v", got)
	}
	// A token of the old key not seen before is refused; so is a fresh one.
	w.refused(t, long) // cached, unexpired within Leeway, but its key has gone
	w.refused(t, signAs(t, "EdDSA", old.priv, asymHeader("EdDSA", "old"), w.claims().set("jti", `"j2"`).set("exp", jint(w.now+930))))
	now := w.h.clock.Now().Unix()
	w.refused(t, signAs(t, "EdDSA", old.priv, asymHeader("EdDSA", "old"), w.claims().set("iat", jint(now)).set("exp", jint(now+600))))
}

// Generated keys, on every store: the first Auth makes one; RotateSigningKey
// makes a new one sign at once while the old one verifies its tokens and
// stays in the JWKS until they have expired, then leaves the JWKS and the
// store; a second Auth on the same store signs and verifies with the same
// keys, and picks a rotation up at the first token it sees of the new key.
func TestGeneratedKeysRotateAndShare(t *testing.T) {
	t.Parallel()
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		a := newHarnessOn(t, store, testEpoch, withGenerated(fiberauth.AlgorithmEdDSA))
		b := newHarnessOn(t, store, testEpoch, withGenerated(fiberauth.AlgorithmEdDSA), func(c *fiberauth.Config) {
			c.Now = a.clock.Now // one clock for both instances
		})
		a.createUser("ada@example.com")
		p1 := a.login("ada@example.com", goodPassword)
		k1 := tokenHeader(t, p1.access)["kid"].(string)
		if tokenHeader(t, p1.access)["alg"] != "EdDSA" {
			t.Fatal("not EdDSA")
		}
		if b.profileStatus(p1.access) != 200 {
			t.Fatal("B refuses A's token")
		}
		pb := b.login("ada@example.com", goodPassword)
		if tokenHeader(t, pb.access)["kid"] != k1 || a.profileStatus(pb.access) != 200 {
			t.Fatal("B does not sign with the key A made")
		}

		if err := a.auth.RotateSigningKey(context.Background()); err != nil {
			t.Fatalf("RotateSigningKey: %v", err)
		}
		p2 := a.login("ada@example.com", goodPassword)
		k2 := tokenHeader(t, p2.access)["kid"].(string)
		if k2 == k1 {
			t.Fatal("the rotation did not change the signing key")
		}
		for name, h := range map[string]*harness{"A": a, "B": b} {
			for _, tok := range []string{p1.access, p2.access} {
				if s := h.profileStatus(tok); s != 200 {
					t.Fatalf("%s answers %d to a token of %s", name, s, tokenHeader(t, tok)["kid"])
				}
			}
		}
		for name, h := range map[string]*harness{"A": a, "B": b} {
			if _, keys := h.jwks(t); !slices.Equal(kids(keys), []string{k2, k1}) {
				t.Fatalf("%s's JWKS kids %v, want %v", name, kids(keys), []string{k2, k1})
			}
		}
		if tokenHeader(t, b.login("ada@example.com", goodPassword).access)["kid"] != k2 {
			t.Fatal("B does not sign with the new key after picking it up")
		}

		// When every token of the old key has expired, it is gone.
		a.clock.Advance(15*time.Minute + 30*time.Second + time.Minute)
		for _, h := range []*harness{a, b} {
			h.jwks(t) // due: starts a reload
			h.flush()
			if _, keys := h.jwks(t); !slices.Equal(kids(keys), []string{k2}) {
				t.Fatalf("JWKS kids %v after the old key's tokens expired, want [%s]", kids(keys), k2)
			}
		}
		stored, err := store.(fiberauth.KeyStore).SigningKeys(context.Background())
		if err != nil || len(stored) != 1 || stored[0].ID != k2 {
			t.Fatalf("stored keys after expiry: %d %v", len(stored), err)
		}
		// The private key is sealed in the store.
		priv := fiberauth.SigningKeyDER(fiberauth.CurrentSigningKey(a.auth))
		if strings.Contains(string(stored[0].Sealed), string(priv[len(priv)-32:])) {
			t.Fatal("the stored key is not sealed")
		}
	})
}

// Scheduled rotation: a new key is published in the JWKS minutes before it
// signs, and signs once its time comes; the old one verifies its tokens.
func TestGeneratedKeysRotateOnSchedule(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withGenerated(fiberauth.AlgorithmES256), func(c *fiberauth.Config) { c.SigningKeyRotation = 24 * time.Hour })
	h.createUser("ada@example.com")
	p1 := h.login("ada@example.com", goodPassword)
	k1 := tokenHeader(t, p1.access)["kid"].(string)
	if tokenHeader(t, p1.access)["alg"] != "ES256" {
		t.Fatal("not ES256")
	}
	// The next key is due 7 minutes (fiberauth's publication lead: the
	// JWKS max-age and two reloads) before the rotation time.
	h.clock.Advance(24*time.Hour - 7*time.Minute)
	h.jwks(t)
	h.flush()
	_, keys := h.jwks(t)
	if len(keys) != 2 || keys[1]["kid"] != k1 {
		t.Fatalf("the next key is not published ahead: %v", kids(keys))
	}
	k2 := keys[0]["kid"].(string)
	if kid := tokenHeader(t, h.login("ada@example.com", goodPassword).access)["kid"]; kid != k1 {
		t.Fatalf("the next key signs before its time (kid %v)", kid)
	}
	h.clock.Advance(7 * time.Minute)
	p2 := h.login("ada@example.com", goodPassword)
	if kid := tokenHeader(t, p2.access)["kid"]; kid != k2 {
		t.Fatalf("kid %v after the rotation time, want %s", kid, k2)
	}
	if h.profileStatus(p2.access) != 200 {
		t.Fatal("the new key's token is refused")
	}
}

// Without a KeyStore, generated keys live in process memory, and New says
// so once.
func TestGeneratedKeysWithoutKeyStore(t *testing.T) {
	t.Parallel()
	h := newHarnessOn(t, &coreOnly{Store: memstore.New()}, testEpoch, withGenerated(fiberauth.AlgorithmEdDSA))
	if n := strings.Count(h.logs.String(), "KeyStore (generated signing keys live in this process"); n != 1 {
		t.Fatalf("the missing KeyStore is logged %d times: %s", n, h.logs.String())
	}
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	if h.profileStatus(p.access) != 200 {
		t.Fatal("refused")
	}
	k := fiberauth.CurrentSigningKey(h.auth)
	if pub := k.PublicKey().Key.(ed25519.PublicKey); len(pub) != ed25519.PublicKeySize || tokenHeader(t, p.access)["kid"] != k.KID() {
		t.Fatal("the token is not signed with the process's key")
	}
	if err := h.auth.RotateSigningKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.profileStatus(p.access) != 200 {
		t.Fatal("the old key's token is refused after a rotation")
	}
	// An HS256 deployment on the same store says nothing of keys.
	hs := newHarnessOn(t, &coreOnly{Store: memstore.New()}, testEpoch)
	if strings.Contains(hs.logs.String(), "KeyStore") {
		t.Fatal("an HS256 deployment mentions the KeyStore")
	}
}
