package fiberauth_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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

// The signed-in flows take the caller's Claims from Go code, which could
// name another user's session: they act only on a live family of the
// caller's own user.
func TestGoAPICallerOwnsSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.auth
	ctx := context.Background()
	h.createUser("ada@example.com")
	h.createUser("bob@example.com")
	ada, err := a.Authenticate(ctx, h.login("ada@example.com", goodPassword).access)
	if err != nil {
		t.Fatal(err)
	}
	bob := h.login("bob@example.com", goodPassword)
	forged := ada
	forged.SessionID = bob.sid
	noSession := ada
	noSession.SessionID = ""
	nul := ada
	nul.Subject = "ada\x00"
	for _, c := range []struct {
		name   string
		caller fiberauth.Claims
	}{{"another user's session", forged}, {"no session", noSession}, {"NUL in the subject", nul}} {
		_, err := a.ChangePassword(ctx, c.caller, fiberauth.PasswordChangeInput{PreviousPassword: goodPassword, ProposedPassword: "another good passphrase"})
		if !errors.Is(err, fiberauth.ErrInvalidToken) {
			t.Errorf("%s: ChangePassword = %v", c.name, err)
		}
		if err := a.Logout(ctx, fiberauth.LogoutInput{Caller: &c.caller}); !errors.Is(err, fiberauth.ErrInvalidToken) {
			t.Errorf("%s: Logout = %v", c.name, err)
		}
		if _, _, err := a.Me(ctx, c.caller); !errors.Is(err, fiberauth.ErrInvalidToken) {
			t.Errorf("%s: Me = %v", c.name, err)
		}
	}
	if _, err := a.Sessions(ctx, nul); !errors.Is(err, fiberauth.ErrInvalidToken) {
		t.Errorf("Sessions with NUL in the subject: %v", err)
	}
	if err := a.EndSession(ctx, ada, "x\x00"); !errors.Is(err, fiberauth.ErrNotFound) {
		t.Errorf("EndSession of a malformed id: %v", err)
	}
	// Nothing of Bob's was touched, and Ada's password is the same.
	if h.profileStatus(bob.access) != 200 {
		t.Fatal("a forged caller ended Bob's session")
	}
	h.login("ada@example.com", goodPassword)
}

// A Go caller that sets no Client is not limited per IP: callers without
// one do not share a bucket that 100 failures anywhere would fill.
func TestGoAPIWithoutClientHasNoSharedIPLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *fiberauth.Config) { c.MaxLoginFailuresPerIP = 3 })
	h.createUser("ada@example.com")
	ctx := context.Background()
	for i := range 5 {
		_, err := h.auth.Login(ctx, fiberauth.LoginInput{Name: "nobody" + string(rune('a'+i)) + "@example.com", Password: "wrong password!"})
		if !errors.Is(err, fiberauth.ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if _, err := h.auth.Login(ctx, fiberauth.LoginInput{Name: "ada@example.com", Password: goodPassword}); err != nil {
		t.Fatalf("Ada's login after others' failures: %v", err)
	}
	// With a Client, the IP limit holds.
	ctx = fiberauth.WithClient(ctx, fiberauth.Client{IP: "198.51.100.7"})
	for i := range 3 {
		if _, err := h.auth.Login(ctx, fiberauth.LoginInput{Name: "x" + string(rune('a'+i)) + "@example.com", Password: "wrong password!"}); !errors.Is(err, fiberauth.ErrInvalidCredentials) {
			t.Fatal(err)
		}
	}
	if _, err := h.auth.Login(ctx, fiberauth.LoginInput{Name: "ada@example.com", Password: goodPassword}); !errors.Is(err, fiberauth.ErrRateLimited) {
		t.Fatalf("over the IP limit: %v", err)
	}
}

// What a client says about itself is kept as bounded text, and a name with
// control characters is a clear 400, never a store error.
func TestClientTextAndNames(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	r := h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword},
		"User-Agent", "curl\x7f/8 \xff"+strings.Repeat("é", 300))
	p := pairOf(t, r)
	list := h.do("GET", "/auth/sessions", nil, bearer(p.access)...)
	ua, _ := list.body["sessions"].([]any)[0].(map[string]any)["user_agent"].(string)
	if !utf8.ValidString(ua) || len(ua) > 512 || !strings.HasPrefix(ua, "curl/8 é") || strings.ContainsRune(ua, 0x7f) {
		t.Fatalf("user agent kept as %q (%d bytes)", ua, len(ua))
	}
	expectField(t, h.do("POST", "/auth/login", map[string]any{"email": "ada\u0007@example.com", "password": goodPassword}), "email")
	var fe *fiberauth.FieldError
	if _, err := h.auth.Login(context.Background(), fiberauth.LoginInput{Name: "ada\x00@example.com", Password: goodPassword}); !errors.As(err, &fe) || fe.Where != "email" {
		t.Fatalf("a NUL in a name through Go: %v", err)
	}
	if _, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "bob@example.com", Password: goodPassword, DisplayName: "Bob\x00"}); !errors.As(err, &fe) || fe.Where != "display_name" {
		t.Fatalf("a NUL in a display name: %v", err)
	}
}

// A host middleware that replaces the user context after fiberauth's does
// not lose the caller for ClaimsFrom and friends.
func TestCallerSurvivesReplacedUserContext(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := h.createUser("ada@example.com", "admin")
	h.app.Get("/replaced", h.auth.Middleware(), func(c *fiber.Ctx) error {
		c.SetUserContext(context.Background())
		return c.Next()
	}, func(c *fiber.Ctx) error {
		_, ok := fiberauth.ClaimsFrom(c)
		return c.JSON(fiber.Map{"ok": ok, "user_id": fiberauth.UserIDFrom(c), "admin": fiberauth.HasRole(c, "admin")})
	})
	r := h.do("GET", "/replaced", nil, bearer(h.login("ada@example.com", goodPassword).access)...)
	if r.body["ok"] != true || r.body["user_id"] != u.ID || r.body["admin"] != true {
		t.Fatalf("after the user context was replaced: %s", r.raw)
	}
}

// Ending a family that is no longer live is 404, like ending an unknown one.
func TestEndExpiredSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *fiberauth.Config) { c.RefreshIdleTTL, c.RefreshMaxTTL = time.Hour, time.Hour })
	h.createUser("ada@example.com")
	old := h.login("ada@example.com", goodPassword)
	h.clock.Advance(2 * time.Hour)
	cur := h.login("ada@example.com", goodPassword)
	expect(t, h.do("DELETE", "/auth/sessions/"+old.sid, nil, bearer(cur.access)...), 404, "not_found")
	if h.sawEvent(fiberauth.EventSessionRevoked) {
		t.Fatal("ending an expired session emitted session_revoked")
	}
}

// The request's context below the middleware is the host's, with the
// caller added: a host value set before the middleware is there, and a
// request without one sees no other request's, however often the same
// (cached) tokens come back.
func TestUserContextIsTheRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	type tagKey struct{}
	h.app.Get("/ctx", func(c *fiber.Ctx) error {
		if tag := c.Get("X-Tag"); tag != "" {
			c.SetUserContext(context.WithValue(c.UserContext(), tagKey{}, tag))
		}
		return c.Next()
	}, h.auth.Middleware(), func(c *fiber.Ctx) error {
		ctx := c.UserContext()
		claims, _ := fiberauth.ClaimsFromContext(ctx)
		tag, _ := ctx.Value(tagKey{}).(string)
		return c.JSON(fiber.Map{"tag": tag, "user_id": claims.Subject})
	})
	ada, bob := h.createUser("ada@example.com"), h.createUser("bob@example.com")
	users := map[string]string{ada.ID: h.login("ada@example.com", goodPassword).access, bob.ID: h.login("bob@example.com", goodPassword).access}
	for round := range 3 {
		for id, access := range users {
			for _, tag := range []string{"", "tag-" + id, ""} {
				headers := bearer(access)
				if tag != "" {
					headers = append(headers, "X-Tag", tag)
				}
				r := h.do("GET", "/ctx", nil, headers...)
				if r.status != 200 || r.body["tag"] != tag || r.body["user_id"] != id {
					t.Fatalf("round %d, user %s, tag %q: %d %s", round, id, tag, r.status, r.raw)
				}
			}
		}
	}
}
