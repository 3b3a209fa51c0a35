package memstore_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
	"github.com/fiberauth/fiberauth/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) fiberauth.Store { return memstore.New() })
}

// A clone shares nothing with its original: a change to either, of any
// kind of record, leaves the other as it was.
func TestCloneIsDeep(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	u := fiberauth.User{
		ID: "u1", Email: "ada@example.com", Username: "ada", ETag: "e1",
		Roles: []string{"user"}, Attributes: map[string]string{"plan": "free"},
		TOTPSecret: []byte("secret"), RecoveryCodes: [][]byte{[]byte("r1")},
	}
	sess := fiberauth.Session{ID: "s1", UserID: "u1", TokenHash: []byte("t0"), CreatedAt: at, ExpiresAt: at.Add(time.Hour), AbsoluteExpiresAt: at.Add(time.Hour)}

	// prepare gives a store u, sess, a code, a challenge, an attempt and a
	// TOTP step.
	prepare := func(t *testing.T) *memstore.Store {
		m := memstore.New()
		must(t, "CreateUser", m.CreateUser(ctx, u))
		must(t, "CreateSession", m.CreateSession(ctx, sess))
		must(t, "PutCode", m.PutCode(ctx, fiberauth.Code{UserID: "u1", Purpose: fiberauth.PurposePasswordReset, Hash: []byte("c"), ExpiresAt: at.Add(time.Hour)}))
		must(t, "CreateChallenge", m.CreateChallenge(ctx, fiberauth.Challenge{Hash: []byte("ch"), UserID: "u1", ExpiresAt: at.Add(time.Hour)}))
		_, _, err := m.ReserveAttempt(ctx, "k", 2, at, time.Hour)
		must(t, "ReserveAttempt", err)
		must(t, "UseTOTPStep", m.UseTOTPStep(ctx, "u1", 10))
		return m
	}
	// change changes every kind of record in m, in place where memstore
	// keeps pointers.
	change := func(t *testing.T, m *memstore.Store) {
		next := u
		next.ETag, next.Email, next.Roles = "e2", "new@example.com", []string{"admin"}
		_, err := m.UpdateUser(ctx, fiberauth.UserUpdate{User: next, IfETag: "e1", At: at})
		must(t, "UpdateUser", err)
		_, err = m.RotateSession(ctx, fiberauth.Rotation{SessionID: "s1", From: []byte("t0"), To: []byte("t1"), At: at, ExpiresAt: at.Add(time.Hour)})
		must(t, "RotateSession", err)
		must(t, "RevokeSession", m.RevokeSession(ctx, "s1", at))
		if err := m.CheckCode(ctx, "u1", fiberauth.PurposePasswordReset, []byte("wrong"), at); !errors.Is(err, fiberauth.ErrCodeMismatch) {
			t.Fatalf("CheckCode: %v", err)
		}
		must(t, "FailChallenge", m.FailChallenge(ctx, []byte("ch")))
		_, _, err = m.ReserveAttempt(ctx, "k", 2, at, time.Hour)
		must(t, "ReserveAttempt", err)
		must(t, "UseTOTPStep", m.UseTOTPStep(ctx, "u1", 20))
	}
	// unchanged checks that m is as prepare left it.
	unchanged := func(t *testing.T, m *memstore.Store) {
		got, err := m.UserByID(ctx, "u1")
		must(t, "UserByID", err)
		if got.ETag != "e1" || got.Email != u.Email || got.Roles[0] != "user" {
			t.Fatalf("user changed: %+v", got)
		}
		if _, err := m.UserByEmail(ctx, "new@example.com"); !errors.Is(err, fiberauth.ErrNotFound) {
			t.Fatalf("UserByEmail(new email): %v", err)
		}
		s, err := m.SessionByID(ctx, "s1")
		must(t, "SessionByID", err)
		if !bytes.Equal(s.TokenHash, []byte("t0")) || !s.RevokedAt.IsZero() {
			t.Fatalf("session changed: %+v", s)
		}
		// Four more wrong tries would burn a code with one already counted.
		for i := range fiberauth.CodeMaxAttempts - 1 {
			if err := m.CheckCode(ctx, "u1", fiberauth.PurposePasswordReset, []byte("wrong"), at); !errors.Is(err, fiberauth.ErrCodeMismatch) {
				t.Fatalf("wrong try %d: %v", i+1, err)
			}
		}
		must(t, "CheckCode", m.CheckCode(ctx, "u1", fiberauth.PurposePasswordReset, []byte("c"), at))
		ch, err := m.ChallengeByHash(ctx, []byte("ch"), at)
		must(t, "ChallengeByHash", err)
		if ch.Attempts != 0 {
			t.Fatalf("challenge attempts = %d, want 0", ch.Attempts)
		}
		// One attempt counted under a limit of 2: one more is granted,
		// then none.
		for i, want := range []bool{true, false} {
			if ok, _, err := m.ReserveAttempt(ctx, "k", 2, at, time.Hour); err != nil || ok != want {
				t.Fatalf("ReserveAttempt %d = %v, %v; want %v", i+1, ok, err, want)
			}
		}
		must(t, "UseTOTPStep(11)", m.UseTOTPStep(ctx, "u1", 11))
	}

	t.Run("changing the clone", func(t *testing.T) {
		orig := prepare(t)
		change(t, orig.Clone())
		unchanged(t, orig)
	})
	t.Run("changing the original", func(t *testing.T) {
		orig := prepare(t)
		clone := orig.Clone()
		change(t, orig)
		unchanged(t, clone)
	})
}

func must(t *testing.T, call string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
}
