package storetest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
	"github.com/fiberauth/fiberauth/storetest"
)

// FailNth(n) fails exactly the n-th call from then on, writing nothing, and
// Heal reports whether it was reached.
func TestFaultyFailNth(t *testing.T) {
	ctx := context.Background()
	inner := memstore.New()
	f := storetest.NewFaulty(inner)
	user := func(id string) fiberauth.User {
		return fiberauth.User{ID: id, Email: id + "@example.com", ETag: "e"}
	}

	if err := f.CreateUser(ctx, user("before")); err != nil {
		t.Fatalf("a call before FailNth: %v", err)
	}
	f.FailNth(3)
	for i, id := range []string{"one", "two", "three", "four"} {
		err := f.CreateUser(ctx, user(id))
		if want := i == 2; errors.Is(err, storetest.ErrFault) != want || (!want && err != nil) {
			t.Fatalf("call %d after FailNth(3): %v", i+1, err)
		}
	}
	if !f.Heal() {
		t.Fatal("Heal after the chosen call = false, want true")
	}
	if _, err := inner.UserByID(ctx, "three"); !errors.Is(err, fiberauth.ErrNotFound) {
		t.Fatalf("the failed CreateUser wrote its user: %v", err)
	}
	for _, id := range []string{"before", "one", "two", "four"} {
		if _, err := inner.UserByID(ctx, id); err != nil {
			t.Fatalf("a call that did not fail did not reach the store: UserByID(%s): %v", id, err)
		}
	}

	// Not reached: Heal says so, and nothing fails afterwards.
	f.FailNth(5)
	for range 4 {
		if _, err := f.UserByID(ctx, "one"); err != nil {
			t.Fatalf("a call before the chosen one: %v", err)
		}
	}
	if f.Heal() {
		t.Fatal("Heal before the chosen call = true, want false")
	}
	for range 3 {
		if _, err := f.UserByID(ctx, "one"); err != nil {
			t.Fatalf("a call after Heal: %v", err)
		}
	}
}

// Every method of every capability can fail, a failed call writes nothing,
// and once healed the same call goes through.
func TestFaultyEveryMethod(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	u := fiberauth.User{ID: "u1", Email: "ada@example.com", Username: "ada", ETag: "e1"}
	next := u
	next.Email, next.ETag = "new@example.com", "e2"
	sess := fiberauth.Session{ID: "s1", UserID: "u1", TokenHash: []byte("t0"), CreatedAt: at, ExpiresAt: at.Add(time.Hour), AbsoluteExpiresAt: at.Add(time.Hour)}
	c := fiberauth.Code{UserID: "u1", Purpose: fiberauth.PurposePasswordReset, Hash: []byte("c"), ExpiresAt: at.Add(time.Hour)}
	ch := fiberauth.Challenge{Hash: []byte("ch"), UserID: "u1", ExpiresAt: at.Add(time.Hour)}

	// prepared returns a store holding u, sess, c, ch, one attempt under
	// "k" and TOTP step 10 for u.
	prepared := func(t *testing.T) *memstore.Store {
		m := memstore.New()
		for call, err := range map[string]error{
			"CreateUser":      m.CreateUser(ctx, u),
			"CreateSession":   m.CreateSession(ctx, sess),
			"PutCode":         m.PutCode(ctx, c),
			"CreateChallenge": m.CreateChallenge(ctx, ch),
			"UseTOTPStep":     m.UseTOTPStep(ctx, "u1", 10),
			"AddPasskey":      m.AddPasskey(ctx, fiberauth.Passkey{ID: []byte("k1"), UserID: "u1", SignCount: 3, Name: "phone", CreatedAt: at}),
		} {
			if err != nil {
				t.Fatalf("%s: %v", call, err)
			}
		}
		if ok, _, err := m.ReserveAttempt(ctx, "k", 2, at, time.Hour); err != nil || !ok {
			t.Fatalf("ReserveAttempt: %v, %v", ok, err)
		}
		return m
	}
	// untouched checks that m holds exactly what prepared put there.
	untouched := func(t *testing.T, m *memstore.Store) {
		t.Helper()
		if got, err := m.UserByID(ctx, "u1"); err != nil || got.ETag != "e1" || got.Email != u.Email {
			t.Fatalf("user: %+v, %v", got, err)
		}
		if got, err := m.SessionByID(ctx, "s1"); err != nil || string(got.TokenHash) != "t0" || !got.RevokedAt.IsZero() {
			t.Fatalf("session: %+v, %v", got, err)
		}
		if _, err := m.SessionByID(ctx, "s2"); !errors.Is(err, fiberauth.ErrNotFound) {
			t.Fatalf("SessionByID(s2): %v", err)
		}
		if got, err := m.ChallengeByHash(ctx, ch.Hash, at); err != nil || got.Attempts != 0 {
			t.Fatalf("challenge: %+v, %v", got, err)
		}
		// One attempt counted under a limit of 2: one more is granted, then
		// none.
		for i, want := range []bool{true, false} {
			if ok, _, err := m.ReserveAttempt(ctx, "k", 2, at, time.Hour); err != nil || ok != want {
				t.Fatalf("ReserveAttempt %d = %v, %v; want %v", i+1, ok, err, want)
			}
		}
		if got, err := m.PasskeyByID(ctx, []byte("k1")); err != nil || got.SignCount != 3 || got.Name != "phone" {
			t.Fatalf("passkey: %+v, %v", got, err)
		}
		if err := m.UseTOTPStep(ctx, "u1", 11); err != nil {
			t.Fatalf("UseTOTPStep(11): %v", err)
		}
		// Last, as it counts: four wrong tries leave an untried code usable.
		for range fiberauth.CodeMaxAttempts - 1 {
			if err := m.CheckCode(ctx, "u1", c.Purpose, []byte("wrong"), at); !errors.Is(err, fiberauth.ErrCodeMismatch) {
				t.Fatalf("CheckCode(wrong): %v", err)
			}
		}
		if err := m.CheckCode(ctx, "u1", c.Purpose, c.Hash, at); err != nil {
			t.Fatalf("CheckCode: %v", err)
		}
	}

	for _, tc := range []struct {
		name string
		call func(f *storetest.Faulty) error
	}{
		{"CreateUser", func(f *storetest.Faulty) error {
			return f.CreateUser(ctx, fiberauth.User{ID: "u2", Email: "b@example.com"})
		}},
		{"UserByID", func(f *storetest.Faulty) error { _, err := f.UserByID(ctx, "u1"); return err }},
		{"UserByEmail", func(f *storetest.Faulty) error { _, err := f.UserByEmail(ctx, u.Email); return err }},
		{"UserByUsername", func(f *storetest.Faulty) error { _, err := f.UserByUsername(ctx, "ada"); return err }},
		{"UpdateUser", func(f *storetest.Faulty) error {
			_, err := f.UpdateUser(ctx, fiberauth.UserUpdate{User: next, IfETag: "e1", At: at, RevokeSessions: true})
			return err
		}},
		{"CreateSession", func(f *storetest.Faulty) error {
			s2 := sess
			s2.ID, s2.TokenHash = "s2", []byte("x")
			return f.CreateSession(ctx, s2)
		}},
		{"SessionByID", func(f *storetest.Faulty) error { _, err := f.SessionByID(ctx, "s1"); return err }},
		{"SessionWithUser", func(f *storetest.Faulty) error { _, _, err := f.SessionWithUser(ctx, "s1"); return err }},
		{"RotateSession", func(f *storetest.Faulty) error {
			_, err := f.RotateSession(ctx, fiberauth.Rotation{SessionID: "s1", From: []byte("t0"), To: []byte("t1"), At: at, ExpiresAt: at.Add(time.Hour)})
			return err
		}},
		{"RevokeSession", func(f *storetest.Faulty) error { return f.RevokeSession(ctx, "s1", at) }},
		{"RevokeUserSessions", func(f *storetest.Faulty) error { _, err := f.RevokeUserSessions(ctx, "u1", "", at); return err }},
		{"ListSessions", func(f *storetest.Faulty) error { _, err := f.ListSessions(ctx, "u1", at); return err }},
		{"PutCode", func(f *storetest.Faulty) error {
			return f.PutCode(ctx, fiberauth.Code{UserID: "u1", Purpose: c.Purpose, Hash: []byte("other"), ExpiresAt: at.Add(time.Hour)})
		}},
		{"CheckCode", func(f *storetest.Faulty) error { return f.CheckCode(ctx, "u1", c.Purpose, c.Hash, at) }},
		{"UseCode", func(f *storetest.Faulty) error {
			_, err := f.UseCode(ctx, fiberauth.Code{UserID: "u1", Purpose: c.Purpose, Hash: c.Hash}, fiberauth.UserUpdate{User: next, IfETag: "e1", At: at})
			return err
		}},
		{"CreateChallenge", func(f *storetest.Faulty) error {
			return f.CreateChallenge(ctx, fiberauth.Challenge{Hash: ch.Hash, UserID: "u1", ExpiresAt: at, Attempts: 3})
		}},
		{"ChallengeByHash", func(f *storetest.Faulty) error { _, err := f.ChallengeByHash(ctx, ch.Hash, at); return err }},
		{"ConsumeChallenge", func(f *storetest.Faulty) error { return f.ConsumeChallenge(ctx, ch.Hash, at) }},
		{"FailChallenge", func(f *storetest.Faulty) error { return f.FailChallenge(ctx, ch.Hash) }},
		{"ReserveAttempt", func(f *storetest.Faulty) error { _, _, err := f.ReserveAttempt(ctx, "k", 2, at, time.Hour); return err }},
		{"ReleaseAttempt", func(f *storetest.Faulty) error { return f.ReleaseAttempt(ctx, "k", at) }},
		{"ResetAttempts", func(f *storetest.Faulty) error { return f.ResetAttempts(ctx, "k") }},
		{"UseTOTPStep", func(f *storetest.Faulty) error { return f.UseTOTPStep(ctx, "u1", 11) }},
		{"AddPasskey", func(f *storetest.Faulty) error {
			return f.AddPasskey(ctx, fiberauth.Passkey{ID: []byte("k2"), UserID: "u1", CreatedAt: at})
		}},
		{"PasskeyByID", func(f *storetest.Faulty) error { _, err := f.PasskeyByID(ctx, []byte("k1")); return err }},
		{"PasskeysOf", func(f *storetest.Faulty) error { _, err := f.PasskeysOf(ctx, "u1"); return err }},
		{"UsePasskey", func(f *storetest.Faulty) error { return f.UsePasskey(ctx, []byte("k1"), 4, at) }},
		{"RenamePasskey", func(f *storetest.Faulty) error { return f.RenamePasskey(ctx, "u1", []byte("k1"), "laptop") }},
		{"DeletePasskey", func(f *storetest.Faulty) error { return f.DeletePasskey(ctx, "u1", []byte("k1")) }},
		{"DeleteExpired", func(f *storetest.Faulty) error { return f.DeleteExpired(ctx, at.Add(2*time.Hour)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := prepared(t)
			f := storetest.NewFaulty(m)
			f.FailNth(1)
			if err := tc.call(f); !errors.Is(err, storetest.ErrFault) {
				t.Fatalf("the chosen call: %v, want ErrFault", err)
			}
			if !f.Heal() {
				t.Fatal("Heal after the chosen call = false, want true")
			}
			untouched(t, m.Clone()) // a clone, as checking changes some counts
			// Healed, the same call goes through to the store.
			if err := tc.call(f); err != nil {
				t.Fatalf("the call after Heal: %v", err)
			}
		})
	}
}
