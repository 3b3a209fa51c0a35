package metrics

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
)

// Sign-ins, refreshes, reuse, throttling and challenges show in the
// metrics as they happen, with labels from fixed sets only, and every
// password hash's wait for a slot in the histogram; the hooks the Config
// had still run.
func TestMetricsFollowTheFlows(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		now   = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
		mine  []fiberauth.EventType
		waits int
	)
	cfg := fiberauth.Config{
		Store: memstore.New(), Secret: []byte("a metrics test secret of 32 bytes+"),
		Logger: slog.New(slog.DiscardHandler), MaxLoginFailuresPerAccount: 2,
		Now:        func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		OnEvent:    func(e fiberauth.Event) { mu.Lock(); mine = append(mine, e.Type); mu.Unlock() },
		OnHashWait: func(time.Duration) { mu.Lock(); waits++; mu.Unlock() },
	}
	m.Instrument(&cfg)
	a, err := fiberauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	const pw = "correct horse battery"
	if _, err := a.CreateUser(ctx, fiberauth.NewUser{Email: "ada@example.com", Password: pw, Verified: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateUser(ctx, fiberauth.NewUser{Email: "bob@example.com", Password: pw, Verified: true, TemporaryPassword: true}); err != nil {
		t.Fatal(err)
	}

	in, err := a.Login(ctx, fiberauth.LoginInput{Name: "ada@example.com", Password: pw})
	if err != nil || in.Tokens == nil {
		t.Fatalf("login: %+v, %v", in, err)
	}
	for range 2 {
		if _, err := a.Login(ctx, fiberauth.LoginInput{Name: "ada@example.com", Password: "wrong password!"}); !errors.Is(err, fiberauth.ErrInvalidCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, err := a.Login(ctx, fiberauth.LoginInput{Name: "ada@example.com", Password: "wrong password!"}); !errors.Is(err, fiberauth.ErrRateLimited) || errors.Is(err, fiberauth.ErrUnavailable) {
		t.Fatalf("over the limit: %v (a limit, not the store)", err)
	}
	if ch, err := a.Login(ctx, fiberauth.LoginInput{Name: "bob@example.com", Password: pw}); err != nil || ch.Challenge == nil {
		t.Fatalf("temporary password: %+v, %v", ch, err)
	}
	// Cy turns 2FA on; a sign-in with a wrong code is a failed login.
	if _, err := a.CreateUser(ctx, fiberauth.NewUser{Email: "cy@example.com", Password: pw, Verified: true}); err != nil {
		t.Fatal(err)
	}
	cy, err := a.Login(ctx, fiberauth.LoginInput{Name: "cy@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	caller, err := a.Authenticate(ctx, cy.Tokens.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	setup, err := a.SetupTOTP(ctx, caller, fiberauth.StepUp{Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(setup.Secret, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.EnableTOTP(ctx, caller, code, fiberauth.StepUp{Password: pw}); err != nil {
		t.Fatal(err)
	}
	mfa, err := a.Login(ctx, fiberauth.LoginInput{Name: "cy@example.com", Password: pw})
	if err != nil || mfa.Challenge == nil {
		t.Fatalf("login with 2FA on: %+v, %v", mfa, err)
	}
	if _, err := a.CompleteChallenge(ctx, fiberauth.ChallengeInput{Challenge: mfa.Challenge.Name, Session: mfa.Challenge.Session, Code: "000000"}); !errors.Is(err, fiberauth.ErrInvalidGrant) {
		t.Fatalf("a wrong code: %v", err)
	}
	if _, err := a.Refresh(ctx, fiberauth.RefreshInput{RefreshToken: in.Tokens.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(time.Minute) // past the grace window
	mu.Unlock()
	if _, err := a.Refresh(ctx, fiberauth.RefreshInput{RefreshToken: in.Tokens.RefreshToken}); !errors.Is(err, fiberauth.ErrRefreshTokenReused) {
		t.Fatalf("reuse: %v", err)
	}

	for _, c := range []struct {
		name string
		got  prometheus.Collector
		want float64
	}{
		{"logins succeeded", m.logins.WithLabelValues("succeeded", ""), 2},
		{"logins failed wrong_password", m.logins.WithLabelValues("failed", "wrong_password"), 2},
		{"logins failed throttled", m.logins.WithLabelValues("failed", "throttled"), 1},
		{"logins challenged", m.logins.WithLabelValues("challenged", fiberauth.ChallengeNewPassword), 1},
		{"challenges", m.challenges.WithLabelValues(fiberauth.ChallengeNewPassword), 1},
		{"logins challenged for 2FA", m.logins.WithLabelValues("challenged", fiberauth.ChallengeMFA), 1},
		{"logins failed wrong_code", m.logins.WithLabelValues("failed", "wrong_code"), 1},
		{"throttled login_account", m.throttled.WithLabelValues("login_account"), 1},
		{"refreshes", m.refreshes, 1},
		{"reuse", m.reuse, 1},
		{"events refresh_reused", m.events.WithLabelValues(string(fiberauth.EventRefreshReused)), 1},
	} {
		if got := testutil.ToFloat64(c.got); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	// Each password hash or check waited for a slot once: 3 creations,
	// 1 + 2 logins of ada (the throttled one hashes nothing), 1 of bob, 2
	// of cy and its 2 step-ups (setup, enable).
	if got := histogramCount(t, reg, "fiberauth_hash_queue_wait_seconds"); got != 11 || waits != 11 {
		t.Errorf("hash waits: %d observed, %d told to the Config's hook; want 11", got, waits)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(mine) < 8 {
		t.Errorf("the Config's own OnEvent heard %d events: %v", len(mine), mine)
	}

	// Labels come from fixed sets: nothing the client sent, and no id.
	var text strings.Builder
	for _, c := range []prometheus.Collector{m.logins, m.refreshes, m.reuse, m.throttled, m.challenges, m.events, m.hashWait} {
		b, err := testutil.CollectAndFormat(c, expfmt.TypeTextPlain)
		if err != nil {
			t.Fatal(err)
		}
		text.Write(b)
	}
	for _, secret := range []string{"ada@example.com", pw, "wrong password!", in.Tokens.AccessToken, in.Tokens.RefreshToken, in.Tokens.User.ID, in.Tokens.Session.ID} {
		if strings.Contains(text.String(), secret) {
			t.Fatalf("the metrics carry %q", secret)
		}
	}

	if _, err := New(reg); err == nil {
		t.Fatal("a second Metrics on the same registry")
	}
}

// histogramCount is the sample count of the histogram name in reg.
func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}
