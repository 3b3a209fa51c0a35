package fiberauth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
)

// After RotateSigningKey on A, B picks the new key up at the first token it
// sees signed with it, even while someone sends tokens with made-up kids
// (no valid signature needed: the kid is looked up before the signature
// is checked): such tokens cannot spend the reloads a real new kid needs.
func TestMadeUpKidDoesNotDelayRotationPickup(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	a := newHarnessOn(t, store, testEpoch, withGenerated(fiberauth.AlgorithmEdDSA))
	b := newHarnessOn(t, store, testEpoch, withGenerated(fiberauth.AlgorithmEdDSA), func(c *fiberauth.Config) {
		c.Now = a.clock.Now
	})
	a.createUser("ada@example.com")
	p1 := a.login("ada@example.com", goodPassword)
	if b.profileStatus(p1.access) != 200 {
		t.Fatal("B refuses A's token")
	}

	// An attacker's token with a made-up kid, signed with any key.
	_, junk, _ := ed25519.GenerateKey(rand.Reader)
	now := a.clock.Now().Unix()
	forged := signAs(t, "EdDSA", junk, asymHeader("EdDSA", "made-up"), claimsDoc{
		{"iss", `"fiberauth"`}, {"sub", `"x"`}, {"aud", `["fiberauth"]`},
		{"iat", jint(now)}, {"exp", jint(now + 900)}, {"jti", `"j"`}, {"sid", `"s"`}, {"etag", `"e"`},
	})
	if got := b.profileStatus(forged); got != 401 {
		t.Fatalf("forged: %d", got)
	}
	b.flush()

	if err := a.auth.RotateSigningKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.clock.Advance(5 * time.Second)
	p2 := a.login("ada@example.com", goodPassword)
	if got := b.profileStatus(p2.access); got != 200 {
		t.Fatalf("B refuses the first token it sees of A's new key: %d", got)
	}
}
