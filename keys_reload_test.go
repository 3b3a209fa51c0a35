package fiberauth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
)

// Reloads of generated keys (keyring.go): as they age, for unknown kids,
// and what a failed one leaves; the bounds on the store reads anyone can
// cause.

// countingKeys is a memstore whose SigningKeys counts its reads and can be
// made to fail.
type countingKeys struct {
	*memstore.Store
	reads atomic.Int64
	fail  atomic.Bool
}

func (s *countingKeys) SigningKeys(ctx context.Context) ([]fiberauth.StoredSigningKey, error) {
	s.reads.Add(1)
	if s.fail.Load() {
		return nil, errors.New("keys unavailable")
	}
	return s.Store.SigningKeys(ctx)
}

// newCountingHarness is an instance with generated keys on a countingKeys,
// and ada in it.
func newCountingHarness(t *testing.T) (*harness, *countingKeys) {
	store := &countingKeys{Store: memstore.New()}
	h := newHarnessOn(t, store, testEpoch, withGenerated(fiberauth.AlgorithmEdDSA))
	h.createUser("ada@example.com")
	return h, store
}

// forgedKID is a token with a made-up kid, signed with a key of no one's.
func forgedKID(t *testing.T, h *harness, kid string) string {
	t.Helper()
	_, junk, _ := ed25519.GenerateKey(rand.Reader)
	now := h.clock.Now().Unix()
	return signAs(t, "EdDSA", junk, asymHeader("EdDSA", kid), claimsDoc{
		{"iss", `"fiberauth"`}, {"sub", `"x"`}, {"aud", `["fiberauth"]`},
		{"iat", jint(now)}, {"exp", jint(now + 900)}, {"jti", `"j"`}, {"sid", `"s"`}, {"etag", `"e"`},
	})
}

// Tokens with unknown kids read the keys at most once a second in all, and
// once per 10 s for any one kid, however many come.
func TestUnknownKIDReloadsBounded(t *testing.T) {
	t.Parallel()
	store := &countingKeys{Store: memstore.New()}
	h := newHarnessOn(t, store, testEpoch, withGenerated(fiberauth.AlgorithmEdDSA))
	reads := func() int64 { h.flush(); return store.reads.Load() }
	base := reads()

	for i := range 50 { // at one instant
		if got := h.profileStatus(forgedKID(t, h, "made-up-"+strconv.Itoa(i))); got != 401 {
			t.Fatalf("forged: %d", got)
		}
	}
	if got := reads() - base; got != 1 {
		t.Fatalf("50 made-up kids at once: %d reads, want 1", got)
	}
	// One kid, every second for 9 s: one read.
	base = reads()
	for range 10 {
		h.clock.Advance(time.Second)
		h.profileStatus(forgedKID(t, h, "same"))
		h.profileStatus(forgedKID(t, h, "same"))
	}
	if got := reads() - base; got != 1 {
		t.Fatalf("one kid for 9 s: %d reads, want 1", got)
	}
	// Another kid each 100 ms for 5 s: one read a second.
	base = reads()
	for i := range 50 {
		h.clock.Advance(100 * time.Millisecond)
		h.profileStatus(forgedKID(t, h, "each-"+strconv.Itoa(i)))
	}
	if got := reads() - base; got < 4 || got > 6 {
		t.Fatalf("a new kid each 100 ms for 5 s: %d reads, want 5", got)
	}
}

// A flood of made-up kids delays a real new key by a second at most: any
// reload that begins once the key is stored finds it.
func TestMadeUpKIDFloodDoesNotDelayRotation(t *testing.T) {
	t.Parallel()
	store := &countingKeys{Store: memstore.New()}
	a := newHarnessOn(t, store, testEpoch, withGenerated(fiberauth.AlgorithmEdDSA))
	b := newHarnessOn(t, store, testEpoch, withGenerated(fiberauth.AlgorithmEdDSA), func(c *fiberauth.Config) { c.Now = a.clock.Now })
	a.createUser("ada@example.com")
	b.flush()
	base := store.reads.Load()

	var fresh string
	for step := range 30 { // 100 ms each
		if got := b.profileStatus(forgedKID(t, b, "made-up-"+strconv.Itoa(step))); got != 401 {
			t.Fatalf("forged: %d", got)
		}
		switch {
		case step == 3:
			if err := a.auth.RotateSigningKey(context.Background()); err != nil {
				t.Fatal(err)
			}
			fresh = a.login("ada@example.com", goodPassword).access
		case step >= 14: // 1.1 s after the rotation
			if got := b.profileStatus(fresh); got != 200 {
				t.Fatalf("%d ms after the rotation B refuses the new key's token: %d", (step-3)*100, got)
			}
		}
		a.clock.Advance(100 * time.Millisecond)
	}
	b.flush()
	// 3 s of made-up kids: a read a second (A's rotation and login add
	// theirs).
	if got := store.reads.Load() - base; got > 3+3 {
		t.Fatalf("%d reads of the keys in 3 s", got)
	}
}

// An instance whose keys are over a minute old reloads them before it
// signs; if that fails it signs with the keys it has (logged), and does
// not try again for 5 s.
func TestAgedKeysReloadFailure(t *testing.T) {
	t.Parallel()
	h, store := newCountingHarness(t)
	kid := fiberauth.CurrentSigningKey(h.auth).KID()
	h.clock.Advance(20 * time.Minute)
	h.flush()
	store.fail.Store(true)
	base := store.reads.Load()

	p := h.login("ada@example.com", goodPassword)
	if got := tokenHeader(t, p.access)["kid"]; got != kid {
		t.Fatalf("signed with %v, want the old key %s", got, kid)
	}
	if got := store.reads.Load() - base; got != 1 {
		t.Fatalf("%d reads before signing, want 1", got)
	}
	if !strings.Contains(h.logs.String(), "reloading signing keys failed") {
		t.Fatalf("the failure is not logged:\n%s", h.logs.String())
	}
	if h.profileStatus(p.access) != 200 {
		t.Fatal("its own token is refused")
	}
	h.clock.Advance(4 * time.Second)
	h.login("ada@example.com", goodPassword)
	h.flush()
	if got := store.reads.Load() - base; got != 1 {
		t.Fatalf("%d reads within 5 s of a failure, want 1", got)
	}
	store.fail.Store(false)
	h.clock.Advance(time.Second)
	h.login("ada@example.com", goodPassword)
	if got := store.reads.Load() - base; got != 2 {
		t.Fatalf("%d reads 5 s after a failure, want 2", got)
	}
}

// An instance serving requests reloads its keys from 45 s of age, off the
// request path, once.
func TestKeysReloadAhead(t *testing.T) {
	t.Parallel()
	h, store := newCountingHarness(t)
	p := h.login("ada@example.com", goodPassword)
	h.flush()
	base := store.reads.Load()
	h.clock.Advance(44 * time.Second)
	h.profileStatus(p.access)
	h.flush()
	if got := store.reads.Load() - base; got != 0 {
		t.Fatalf("%d reads at 44 s", got)
	}
	h.clock.Advance(time.Second)
	h.profileStatus(p.access) // a cached token: the hit starts it too
	h.flush()
	h.clock.Advance(time.Second)
	h.profileStatus(p.access)
	h.flush()
	if got := store.reads.Load() - base; got != 1 {
		t.Fatalf("%d reads from 45 s, want 1", got)
	}
}

// Keys that leave the store (wiped, or sealed under another secret) verify
// nothing from the next reload on, tokens cached as verified included.
func TestGeneratedKeysGoneEndCachedTokens(t *testing.T) {
	t.Parallel()
	h, store := newCountingHarness(t)
	p := h.login("ada@example.com", goodPassword)
	if h.profileStatus(p.access) != 200 { // cached
		t.Fatal("refused")
	}
	keys, err := store.Store.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := store.DeleteSigningKey(context.Background(), k.ID); err != nil {
			t.Fatal(err)
		}
	}
	h.clock.Advance(time.Minute)
	if got := h.profileStatus(p.access); got != 401 {
		t.Fatalf("a cached token of a key gone from the store: %d", got)
	}
	if kid := fiberauth.CurrentSigningKey(h.auth).KID(); kid == tokenHeader(t, p.access)["kid"] {
		t.Fatal("still signs with the key gone")
	}
}

// A token expiring more than AccessTTL + Leeway after its iat is refused:
// fiberauth signs none (HS256 and EdDSA alike).
func TestTokenLifetimeBound(t *testing.T) {
	t.Parallel()
	k := newHostKey(t, fiberauth.AlgorithmEdDSA, "k")
	for _, tc := range []struct {
		name string
		sign func(w *tokenWorld, c claimsDoc) string
		conf []func(*fiberauth.Config)
	}{
		{"HS256", func(_ *tokenWorld, c claimsDoc) string { return rawToken(atHeader, c) }, nil},
		{"EdDSA", func(_ *tokenWorld, c claimsDoc) string {
			return signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "k"), c)
		},
			[]func(*fiberauth.Config){withKeys(k.key)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newTokenWorld(t, tc.conf...)
			life := func(iat, secs int64) claimsDoc {
				return w.claims().set("iat", jint(iat)).set("exp", jint(iat+secs))
			}
			const max = 15*60 + 30 // AccessTTL + Leeway
			w.accepted(t, tc.sign(w, life(w.now, max)), w.ada.ID)
			w.accepted(t, tc.sign(w, life(w.now-600, max).set("jti", `"j2"`)), w.ada.ID)
			w.accepted(t, w.p.access, w.ada.ID)
			w.allRefused(t, []tokenCase{
				{"a second too long", tc.sign(w, life(w.now, max+1))},
				{"issued earlier, a second too long", tc.sign(w, life(w.now-600, max+1))},
				{"a day", tc.sign(w, life(w.now, 24*3600))},
				{"iat far back", tc.sign(w, w.claims().set("iat", "1"))},
			})
		})
	}
}
