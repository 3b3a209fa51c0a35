package storetest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// challengeTests check ChallengeStore.
var challengeTests = []test{
	{name: "Challenge", fn: testChallenge},
	{name: "ConsumeChallenge", fn: testConsumeChallenge},
	{name: "FailChallenge", fn: testFailChallenge},
	{name: "ConsumeChallengeConcurrent", fn: testConsumeChallengeConcurrent},
	{name: "FailChallengeConcurrent", fn: testFailChallengeConcurrent},
}

func challenge(userID, token string, exp time.Time) fiberauth.Challenge {
	return fiberauth.Challenge{Hash: hash(token), UserID: userID, Kind: fiberauth.ChallengeMFA, Sliding: true, ETag: "etag-" + token, ExpiresAt: exp}
}

func mustCreateChallenge(t *testing.T, cs fiberauth.ChallengeStore, c fiberauth.Challenge) {
	t.Helper()
	if err := cs.CreateChallenge(t.Context(), c); err != nil {
		t.Fatalf("CreateChallenge(%s): %v", c.UserID, err)
	}
}

func mustFailChallenge(t *testing.T, cs fiberauth.ChallengeStore, what string, h []byte) {
	t.Helper()
	if err := cs.FailChallenge(t.Context(), h); err != nil {
		t.Fatalf("%s: FailChallenge: %v", what, err)
	}
}

// challengeIs checks that the challenge with want's hash is want at now.
func challengeIs(t *testing.T, cs fiberauth.ChallengeStore, what string, want fiberauth.Challenge, now time.Time) {
	t.Helper()
	got, err := cs.ChallengeByHash(t.Context(), want.Hash, now)
	if err != nil {
		t.Fatalf("%s: ChallengeByHash: %v", what, err)
	}
	var d []string
	field := func(name string, same bool, g, w any) {
		if !same {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	field("Hash", bytes.Equal(got.Hash, want.Hash), got.Hash, want.Hash)
	field("UserID", got.UserID == want.UserID, got.UserID, want.UserID)
	field("Kind", got.Kind == want.Kind, got.Kind, want.Kind)
	field("Sliding", got.Sliding == want.Sliding, got.Sliding, want.Sliding)
	field("ETag", got.ETag == want.ETag, got.ETag, want.ETag)
	field("ExpiresAt", got.ExpiresAt.Equal(want.ExpiresAt), got.ExpiresAt, want.ExpiresAt)
	field("Attempts", got.Attempts == want.Attempts, got.Attempts, want.Attempts)
	if len(d) > 0 {
		t.Fatalf("%s: challenge differs: %s", what, strings.Join(d, "; "))
	}
}

func noChallenge(t *testing.T, cs fiberauth.ChallengeStore, what string, h []byte, now time.Time) {
	t.Helper()
	_, err := cs.ChallengeByHash(t.Context(), h, now)
	wantErr(t, what+": ChallengeByHash", err, fiberauth.ErrNotFound)
}

// CreateChallenge stores every field, Attempts as given; ChallengeByHash
// finds it until it expires; challenges are values both ways.
func testChallenge(t *testing.T, s fiberauth.Store) {
	cs := s.(fiberauth.ChallengeStore)
	exp := base.Add(5 * time.Minute)
	mfa := challenge("u", "c1", exp)
	pw := fiberauth.Challenge{Hash: hash("c2"), UserID: "v", Kind: fiberauth.ChallengeNewPassword, ExpiresAt: exp.Add(time.Minute), Attempts: 2}
	in := mfa
	in.Hash = hash("c1")
	mustCreateChallenge(t, cs, in)
	in.Hash[0] ^= 0xff // after CreateChallenge
	mustCreateChallenge(t, cs, pw)

	challengeIs(t, cs, "MFA challenge", mfa, base)
	challengeIs(t, cs, "new-password challenge, with attempts", pw, base)
	challengeIs(t, cs, "a second before expiry", mfa, exp.Add(-time.Second))
	noChallenge(t, cs, "at expiry", mfa.Hash, exp)
	noChallenge(t, cs, "unknown", hash("nope"), base)
	noChallenge(t, cs, "the caller's changed hash", in.Hash, base)

	got, err := cs.ChallengeByHash(t.Context(), mfa.Hash, base)
	if err != nil {
		t.Fatalf("ChallengeByHash: %v", err)
	}
	got.Hash[0] ^= 0xff
	challengeIs(t, cs, "after the caller changed what ChallengeByHash returned", mfa, base)
}

// ConsumeChallenge deletes an unexpired challenge once; anything else is
// ErrNotFound.
func testConsumeChallenge(t *testing.T, s fiberauth.Store) {
	ctx := t.Context()
	cs := s.(fiberauth.ChallengeStore)
	exp := base.Add(5 * time.Minute)
	c1, c2 := challenge("u", "c1", exp), challenge("u", "c2", exp)
	mustCreateChallenge(t, cs, c1)
	mustCreateChallenge(t, cs, c2)

	if err := cs.ConsumeChallenge(ctx, c1.Hash, exp.Add(-time.Second)); err != nil {
		t.Fatalf("ConsumeChallenge a second before expiry: %v", err)
	}
	wantErr(t, "ConsumeChallenge twice", cs.ConsumeChallenge(ctx, c1.Hash, base), fiberauth.ErrNotFound)
	noChallenge(t, cs, "consumed", c1.Hash, base)
	wantErr(t, "FailChallenge of a consumed challenge", cs.FailChallenge(ctx, c1.Hash), fiberauth.ErrNotFound)
	wantErr(t, "ConsumeChallenge(unknown)", cs.ConsumeChallenge(ctx, hash("nope"), base), fiberauth.ErrNotFound)
	wantErr(t, "ConsumeChallenge at expiry", cs.ConsumeChallenge(ctx, c2.Hash, exp), fiberauth.ErrNotFound)
	challengeIs(t, cs, "the other challenge, after the refused consumption", c2, base)
}

// FailChallenge counts wrong answers and deletes the challenge at
// CodeMaxAttempts, counting from the Attempts it was created with.
func testFailChallenge(t *testing.T, s fiberauth.Store) {
	ctx := t.Context()
	cs := s.(fiberauth.ChallengeStore)
	exp := base.Add(5 * time.Minute)
	c, other := challenge("u", "burn", exp), challenge("u", "other", exp)
	mustCreateChallenge(t, cs, c)
	mustCreateChallenge(t, cs, other)
	for i := range fiberauth.CodeMaxAttempts - 1 {
		mustFailChallenge(t, cs, fmt.Sprintf("wrong answer %d", i+1), c.Hash)
		c.Attempts++
		challengeIs(t, cs, fmt.Sprintf("after wrong answer %d", i+1), c, base)
	}
	mustFailChallenge(t, cs, "the last wrong answer", c.Hash)
	noChallenge(t, cs, "burnt", c.Hash, base)
	wantErr(t, "FailChallenge of a burnt challenge", cs.FailChallenge(ctx, c.Hash), fiberauth.ErrNotFound)
	wantErr(t, "ConsumeChallenge of a burnt challenge", cs.ConsumeChallenge(ctx, c.Hash, base), fiberauth.ErrNotFound)
	challengeIs(t, cs, "the other challenge", other, base)
	wantErr(t, "FailChallenge(unknown)", cs.FailChallenge(ctx, hash("nope")), fiberauth.ErrNotFound)

	started := challenge("u", "started", exp)
	started.Attempts = fiberauth.CodeMaxAttempts - 2
	mustCreateChallenge(t, cs, started)
	mustFailChallenge(t, cs, "one more wrong answer", started.Hash)
	started.Attempts++
	challengeIs(t, cs, "created with attempts, after one more", started, base)
	mustFailChallenge(t, cs, "the last wrong answer", started.Hash)
	noChallenge(t, cs, "created with attempts, burnt", started.Hash, base)
}

// Of many consumptions of one challenge at once, exactly one succeeds.
func testConsumeChallengeConcurrent(t *testing.T, s fiberauth.Store) {
	cs := s.(fiberauth.ChallengeStore)
	for round := range raceRounds() {
		c := challenge("u", fmt.Sprintf("once-%d", round), base.Add(time.Minute))
		mustCreateChallenge(t, cs, c)
		errs := together(crowd, func(int) error { return cs.ConsumeChallenge(t.Context(), c.Hash, base) })
		if n := tally(t, "ConsumeChallenge", errs, fiberauth.ErrNotFound); n[nil] != 1 {
			t.Fatalf("round %d: %d of %d concurrent consumptions of one challenge succeeded, want exactly 1", round, n[nil], crowd)
		}
		noChallenge(t, cs, "after the race", c.Hash, base)
	}
}

// Of many wrong answers to one challenge at once, exactly CodeMaxAttempts
// count and the challenge is gone.
func testFailChallengeConcurrent(t *testing.T, s fiberauth.Store) {
	cs := s.(fiberauth.ChallengeStore)
	c := challenge("u", "guessed", base.Add(time.Minute))
	mustCreateChallenge(t, cs, c)
	errs := together(crowd, func(int) error { return cs.FailChallenge(t.Context(), c.Hash) })
	if n := tally(t, "FailChallenge", errs, fiberauth.ErrNotFound); n[nil] != fiberauth.CodeMaxAttempts {
		t.Fatalf("%d of %d concurrent wrong answers counted, want exactly %d (CodeMaxAttempts)", n[nil], crowd, fiberauth.CodeMaxAttempts)
	}
	noChallenge(t, cs, "after the race", c.Hash, base)
	wantErr(t, "ConsumeChallenge after the race", cs.ConsumeChallenge(t.Context(), c.Hash, base), fiberauth.ErrNotFound)
}
