package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/internal/testdb"
	"github.com/fiberauth/fiberauth/sqlstore"
	"github.com/fiberauth/fiberauth/sqlstore/postgres"
	"github.com/fiberauth/fiberauth/sqlstore/sqlite"
)

// Two instances on one database, each with its own Store (its own pool and
// listener), on the real clock, with a CacheTTL of an hour: only the change
// notices can make one refuse at once what the other revoked.

// noticeBound is how long a test waits for the other instance to refuse:
// far below the hour of CacheTTL, far above the milliseconds notices take.
const noticeBound = 5 * time.Second

func newAuth(t testing.TB, store fiberauth.Store) *fiberauth.Auth {
	t.Helper()
	a, err := fiberauth.New(fiberauth.Config{
		Store: store, Secret: secret, CacheTTL: time.Hour, ReuseGrace: time.Nanosecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// refusedWithin polls b until it refuses token, and returns how long after
// since that was; it fails the test after noticeBound.
func refusedWithin(t testing.TB, b *fiberauth.Auth, token string, since time.Time, what string) time.Duration {
	t.Helper()
	for {
		_, err := b.Authenticate(context.Background(), token)
		switch {
		case errors.Is(err, fiberauth.ErrInvalidToken):
			return time.Since(since)
		case errors.Is(err, fiberauth.ErrUnavailable):
			// A pool drops its dead connections one failed call at a time.
		case err != nil:
			t.Fatalf("%s: the other instance failed with %v, want an invalid token", what, err)
		}
		if time.Since(since) > noticeBound {
			t.Fatalf("%s: the other instance still accepts the token after %v (CacheTTL is an hour)", what, noticeBound)
		}
		runtime.Gosched()
	}
}

func accepted(t testing.TB, in *fiberauth.Auth, token, what string) {
	t.Helper()
	if _, err := in.Authenticate(context.Background(), token); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// The change kinds measured, in the order a trial makes them.
var changeKinds = []string{"SetRoles", "reuse detected", "logout", "password change", "DisableUser"}

// crossInstance runs trials of every change kind made on instance a and
// returns, per kind, how long b took to refuse a token it had accepted.
// Each new token a issues is accepted by b at once.
func crossInstance(t testing.TB, db testdb.Database, trials int) map[string][]time.Duration {
	t.Helper()
	dsn := db.DSN(t)
	a, b := newAuth(t, open(t, db.Dialect, dsn)), newAuth(t, open(t, db.Dialect, dsn))
	ctx := context.Background()
	u, err := a.CreateUser(ctx, fiberauth.NewUser{Email: "ada@example.com", Password: password, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	pw := []string{password, "another long passphrase"}
	out := map[string][]time.Duration{}
	login := func() fiberauth.Tokens {
		t.Helper()
		res, err := a.Login(ctx, fiberauth.LoginInput{Name: u.Email, Password: pw[0]})
		if err != nil || res.Tokens == nil {
			t.Fatalf("login: %v", err)
		}
		accepted(t, b, res.Tokens.AccessToken, "a fresh login's token on the other instance")
		return *res.Tokens
	}
	measure := func(kind, token string, change func() error) {
		t.Helper()
		accepted(t, b, token, kind+": before the change") // b has it cached
		if err := change(); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		// From when the change has committed on a.
		out[kind] = append(out[kind], refusedWithin(t, b, token, time.Now(), kind))
	}
	for range trials {
		t1 := login()
		measure("SetRoles", t1.AccessToken, func() error { return a.SetRoles(ctx, u.ID, []string{"staff"}) })
		t2, err := a.Refresh(ctx, fiberauth.RefreshInput{RefreshToken: t1.RefreshToken})
		if err != nil {
			t.Fatal(err)
		}
		accepted(t, b, t2.AccessToken, "the token of a refresh after the change")
		measure("reuse detected", t2.AccessToken, func() error {
			if _, err := a.Refresh(ctx, fiberauth.RefreshInput{RefreshToken: t1.RefreshToken}); err != fiberauth.ErrRefreshTokenReused {
				return fmt.Errorf("refresh with an old token: %v, want reuse", err)
			}
			return nil
		})
		t3 := login()
		measure("logout", t3.AccessToken, func() error {
			return a.Logout(ctx, fiberauth.LogoutInput{Refresh: fiberauth.RefreshInput{RefreshToken: t3.RefreshToken}})
		})
		t4 := login()
		claims, err := a.Authenticate(ctx, t4.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		var t5 fiberauth.Tokens
		measure("password change", t4.AccessToken, func() error {
			var err error
			t5, err = a.ChangePassword(ctx, claims, fiberauth.PasswordChangeInput{PreviousPassword: pw[0], ProposedPassword: pw[1]})
			return err
		})
		pw[0], pw[1] = pw[1], pw[0]
		accepted(t, b, t5.AccessToken, "the token a password change answered")
		measure("DisableUser", t5.AccessToken, func() error { return a.DisableUser(ctx, u.ID) })
		if err := a.EnableUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// latencies formats min, median and p99 (nearest rank) of ds.
func latencies(ds []time.Duration) (lo, median, p99 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (len(s)*99 + 99) / 100 // ceil(0.99 n)
	return s[0], s[len(s)/2], s[rank-1]
}

// Each change made on one instance is refused on the other long before
// CacheTTL, and every token the first issues is accepted by the second at
// once. The latency figures are BenchmarkCrossInstanceRefusal's.
func TestChangesReachOtherInstance(t *testing.T) {
	for _, db := range databases {
		t.Run(db.Name, func(t *testing.T) {
			t.Parallel()
			got := crossInstance(t, db, 3)
			for _, kind := range changeKinds {
				lo, med, p99 := latencies(got[kind])
				t.Logf("%s, %s: refused on the other instance after min %v, median %v, max %v", db.Name, kind, lo, med, p99)
			}
		})
	}
}

// BenchmarkCrossInstanceRefusal measures, over 50 trials of each change kind
// per iteration, how long the other instance takes to refuse:
//
//	go test -run '^$' -bench CrossInstanceRefusal -benchtime 1x ./sqlstore
func BenchmarkCrossInstanceRefusal(b *testing.B) {
	for _, db := range databases {
		b.Run(db.Name, func(b *testing.B) {
			all := map[string][]time.Duration{}
			for range b.N {
				for kind, ds := range crossInstance(b, db, 50) {
					all[kind] = append(all[kind], ds...)
				}
			}
			var every []time.Duration
			for _, kind := range changeKinds {
				lo, med, p99 := latencies(all[kind])
				b.Logf("%-16s n=%d min %v median %v p99 %v", kind, len(all[kind]), lo, med, p99)
				every = append(every, all[kind]...)
			}
			lo, med, p99 := latencies(every)
			b.ReportMetric(float64(lo.Microseconds())/1000, "min-ms")
			b.ReportMetric(float64(med.Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		})
	}
}

// signedIn creates a user on a, signs in on a, and returns the tokens once
// b has accepted (and cached) the access token.
func signedIn(t *testing.T, a, b *fiberauth.Auth) *fiberauth.Tokens {
	t.Helper()
	ctx := context.Background()
	if _, err := a.CreateUser(ctx, fiberauth.NewUser{Email: "ada@example.com", Password: password, Verified: true}); err != nil {
		t.Fatal(err)
	}
	res, err := a.Login(ctx, fiberauth.LoginInput{Name: "ada@example.com", Password: password})
	if err != nil || res.Tokens == nil {
		t.Fatalf("login: %v", err)
	}
	accepted(t, b, res.Tokens.AccessToken, "a fresh token on the other instance")
	return res.Tokens
}

// A listener cut off from PostgreSQL misses what is announced meanwhile;
// once it is back it says so, and the instance forgets what it cached: a
// logout made during the gap is refused right after, not after CacheTTL.
func TestNoticesLostWhileListenerDown(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	px, throughProxy := proxied(t, dsn)
	a := newAuth(t, open(t, postgres.Dialect, dsn))
	b := newAuth(t, open(t, postgres.Dialect, throughProxy, sqlstore.WithQueryTimeout(2*time.Second)))
	tok := signedIn(t, a, b)
	ctx := context.Background()

	px.down() // b's listener (and pool) lose the database
	if err := a.Logout(ctx, fiberauth.LogoutInput{Refresh: fiberauth.RefreshInput{RefreshToken: tok.RefreshToken}}); err != nil {
		t.Fatal(err)
	}
	// b heard nothing: it still trusts its cache, as CacheTTL allows.
	accepted(t, b, tok.AccessToken, "while b cannot hear")
	back := time.Now()
	px.up()
	d := refusedWithin(t, b, tok.AccessToken, back, "a logout made while b's listener was down")
	t.Logf("refused %v after the database came back", d)
}

// On SQLite the gap is a poll that finds changes missing (deleted before it
// read them): the instance then forgets what it cached, so a revocation
// whose notice is gone is refused at once all the same.
func TestSQLiteChangeLogGap(t *testing.T) {
	t.Parallel()
	dsn := sqliteDSN(t)
	sa, sb := open(t, sqlite.Dialect, dsn), open(t, sqlite.Dialect, dsn)
	a, b := newAuth(t, sa), newAuth(t, sb)
	tok := signedIn(t, a, b)
	ctx := context.Background()
	// Revoke the family behind the notices' back, and announce two changes
	// of which the first is gone before anyone could read it.
	db := sa.DB()
	at := time.Now().UnixMicro()
	for _, q := range []string{
		`UPDATE fiberauth_sessions SET revoked_at = ` + fmt.Sprint(at) + ` WHERE id = '` + tok.Session.ID + `'`,
		`INSERT INTO fiberauth_changes (seq, at, payload) SELECT COALESCE(MAX(seq), 0) + 2, 0, '{"u":"nobody"}' FROM fiberauth_changes`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	refusedWithin(t, b, tok.AccessToken, time.Now(), "a revocation whose notice was lost")
}

// On SQLite the poller holds a connection of the pool while an Auth
// listens: a pool of one would leave none for the store's calls, so
// subscribing (and with it fiberauth.New) is refused with a reason.
func TestSQLitePollerNeedsTwoConnections(t *testing.T) {
	t.Parallel()
	s := open(t, sqlite.Dialect, sqliteDSN(t))
	s.DB().SetMaxOpenConns(1)
	_, err := fiberauth.New(fiberauth.Config{Store: s, Secret: secret, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "at least 2") {
		t.Fatalf("New on a SQLite pool of one connection: %v, want a refusal naming the pool size", err)
	}
	s.DB().SetMaxOpenConns(2)
	a := newAuth(t, s)
	if _, err := a.CreateUser(context.Background(), fiberauth.NewUser{Email: "ada@example.com", Password: password}); err != nil {
		t.Fatalf("with two connections: %v", err)
	}
}
