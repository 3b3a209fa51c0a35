package fiberauth_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberauth/fiberauth"
)

// The flows work from Go, without HTTP: what a host's gRPC service or CLI
// would do, and what the handlers do underneath.
func TestGoAPISignInRefreshLogout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := h.createUser("ada@example.com")
	ctx := fiberauth.WithClient(context.Background(), fiberauth.Client{IP: "192.0.2.9", UserAgent: "cli/1"})
	a := h.auth

	_, err := a.Login(ctx, fiberauth.LoginInput{Name: "ada@example.com", Password: "not the password"})
	if !errors.Is(err, fiberauth.ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	var fe *fiberauth.FieldError
	if _, err := a.Login(ctx, fiberauth.LoginInput{Password: goodPassword}); !errors.As(err, &fe) || fe.Where != "username" {
		t.Fatalf("no name: %v", err)
	}
	res, err := a.Login(ctx, fiberauth.LoginInput{Name: "ADA@example.com", Password: goodPassword})
	if err != nil || res.Challenge != nil || res.Tokens == nil {
		t.Fatalf("Login = %+v, %v", res, err)
	}
	tok := res.Tokens
	if tok.User.ID != u.ID || tok.Session.UserID != u.ID || tok.Session.IP != "192.0.2.9" || tok.Session.UserAgent != "cli/1" ||
		!tok.AccessExpiresAt.Equal(testEpoch.Add(15*time.Minute)) || tok.RefreshToken == "" {
		t.Fatalf("tokens = %+v", tok)
	}
	claims, err := a.Authenticate(ctx, tok.AccessToken)
	if err != nil || claims.Subject != u.ID || claims.SessionID != tok.Session.ID {
		t.Fatalf("Authenticate = %+v, %v", claims, err)
	}
	list, err := a.Sessions(ctx, claims)
	if err != nil || len(list) != 1 || list[0].ID != tok.Session.ID {
		t.Fatalf("Sessions = %v, %v", list, err)
	}

	next, err := a.Refresh(ctx, fiberauth.RefreshInput{RefreshToken: tok.RefreshToken})
	if err != nil || next.Session.ID != tok.Session.ID || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("Refresh = %+v, %v", next, err)
	}
	h.clock.Advance(time.Minute)
	if _, err := a.Refresh(ctx, fiberauth.RefreshInput{RefreshToken: tok.RefreshToken}); !errors.Is(err, fiberauth.ErrRefreshTokenReused) {
		t.Fatalf("reuse: %v", err)
	}
	if _, err := a.Authenticate(ctx, next.AccessToken); !errors.Is(err, fiberauth.ErrInvalidToken) {
		t.Fatalf("a token of a family revoked for reuse: %v", err)
	}

	res, err = a.Login(ctx, fiberauth.LoginInput{Name: "ada@example.com", Password: goodPassword})
	if err != nil {
		t.Fatal(err)
	}
	caller, err := a.Authenticate(ctx, res.Tokens.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Logout(ctx, fiberauth.LogoutInput{Caller: &caller}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, res.Tokens.AccessToken); !errors.Is(err, fiberauth.ErrInvalidToken) {
		t.Fatalf("after Logout: %v", err)
	}
	if err := a.RevokeRefreshToken(ctx, fiberauth.RefreshInput{RefreshToken: "never issued"}); err != nil {
		t.Fatalf("revoking an unknown token tells nothing: %v", err)
	}
	if !h.sawEvent(fiberauth.EventLogout) {
		t.Fatal("no logout event")
	}
}

func TestGoAPIChallenges(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.auth
	ctx := context.Background()
	const temp, mine = "temporary secret 1", "my very own password"
	h.secrets = append(h.secrets, temp, mine)
	if _, err := a.CreateUser(ctx, fiberauth.NewUser{Email: "new@example.com", Password: temp, TemporaryPassword: true, Verified: true}); err != nil {
		t.Fatal(err)
	}
	res, err := a.Login(ctx, fiberauth.LoginInput{Name: "new@example.com", Password: temp})
	if err != nil || res.Tokens != nil || res.Challenge == nil || res.Challenge.Name != fiberauth.ChallengeNewPassword ||
		!res.Challenge.ExpiresAt.Equal(testEpoch.Add(5*time.Minute)) {
		t.Fatalf("Login = %+v, %v", res, err)
	}
	answer := fiberauth.ChallengeInput{Challenge: fiberauth.ChallengeMFA, Session: res.Challenge.Session, Code: "123456"}
	if _, err := a.CompleteChallenge(ctx, answer); !errors.Is(err, fiberauth.ErrInvalidGrant) {
		t.Fatalf("a session answered as another kind: %v", err)
	}
	answer = fiberauth.ChallengeInput{Challenge: fiberauth.ChallengeNewPassword, Session: res.Challenge.Session, Name: "new@example.com", NewPassword: mine}
	done, err := a.CompleteChallenge(ctx, answer)
	if err != nil || done.Tokens == nil {
		t.Fatalf("CompleteChallenge = %+v, %v", done, err)
	}
	if _, err := a.CompleteChallenge(ctx, answer); !errors.Is(err, fiberauth.ErrInvalidGrant) {
		t.Fatalf("a challenge answered twice: %v", err)
	}
	caller, err := a.Authenticate(ctx, done.Tokens.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := a.ChangePassword(ctx, caller, fiberauth.PasswordChangeInput{PreviousPassword: mine, ProposedPassword: "and yet another passphrase"})
	if err != nil || changed.Session.ID != caller.SessionID || changed.User.ETag == done.Tokens.User.ETag {
		t.Fatalf("ChangePassword = %+v, %v", changed, err)
	}
}

// ClaimsFrom and ClaimsFromContext hand each caller its own copy: a handler
// that changes what it got changes nothing for the next request with the
// same (cached) token.
func TestClaimsAreCopies(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := h.createUser("ada@example.com")
	inner := func(ctx context.Context) string {
		c, ok := fiberauth.ClaimsFromContext(ctx)
		if !ok {
			return ""
		}
		return c.Subject
	}
	h.app.Get("/mutate", h.auth.Middleware(), func(c *fiber.Ctx) error {
		claims, ok := fiberauth.ClaimsFrom(c)
		if !ok {
			return c.SendStatus(500)
		}
		seen := claims.Subject
		claims.Subject, claims.Audience[0] = "someone else", "elsewhere"
		type key struct{}
		derived := context.WithValue(c.UserContext(), key{}, 1)
		return c.JSON(fiber.Map{"seen": seen, "inner": inner(derived), "again": fiberauth.UserIDFrom(c)})
	})
	p := h.login("ada@example.com", goodPassword)
	for range 2 {
		r := h.do("GET", "/mutate", nil, bearer(p.access)...)
		expect(t, r, 200, "")
		if r.body["seen"] != u.ID || r.body["inner"] != u.ID || r.body["again"] != u.ID {
			t.Fatalf("claims: %s", r.raw)
		}
	}
	claims, err := h.auth.Authenticate(context.Background(), p.access)
	if err != nil || !slices.Equal(claims.Audience, []string{"fiberauth"}) {
		t.Fatalf("the cached claims were changed through a copy: %+v, %v", claims, err)
	}
	if _, ok := fiberauth.ClaimsFromContext(context.Background()); ok {
		t.Fatal("claims from a context the middleware never saw")
	}
}

// With CacheTTL negative nothing is cached: a change made behind this
// instance's back (another process) is seen by the next request.
func TestNoCache(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *fiberauth.Config) { c.CacheTTL = -1 })
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	if h.profileStatus(p.access) != 200 {
		t.Fatal("a fresh token is refused")
	}
	if err := h.store.RevokeSession(context.Background(), p.sid, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	expect(t, h.do("GET", "/api/profile", nil, bearer(p.access)...), 401, "invalid_token")
}
