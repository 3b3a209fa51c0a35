package fiberauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
)

// An instance that saw no request while another rotated the key
// (RotateSigningKey, or a scheduled rotation) reloads its keys before it
// signs: its first token afterwards is signed with the current key, and
// accepted everywhere (not with the old one, which the others have retired
// and deleted once its tokens expired).
func TestIdleInstanceSignsWithCurrentKey(t *testing.T) {
	t.Parallel()
	store := memstore.New()
	a := newHarnessOn(t, store, testEpoch, withGenerated(fiberauth.AlgorithmEdDSA))
	b := newHarnessOn(t, store, testEpoch, withGenerated(fiberauth.AlgorithmEdDSA), func(c *fiberauth.Config) {
		c.Now = a.clock.Now // one clock
	})
	a.createUser("ada@example.com")
	if err := a.auth.RotateSigningKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	// B serves nothing for 20 minutes; A serves requests, so its reloads
	// delete the old key once its tokens have expired.
	a.clock.Advance(20 * time.Minute)
	a.jwks(t)
	a.flush()

	p := b.login("ada@example.com", goodPassword) // B's first request since
	b.flush()
	if got := a.profileStatus(p.access); got != 200 {
		t.Fatalf("A refuses the token B has just issued: %d (kid %v, A signs with %s)", got, tokenHeader(t, p.access)["kid"], fiberauth.CurrentSigningKey(a.auth).KID())
	}
}
