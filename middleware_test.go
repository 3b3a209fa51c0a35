package fiberauth_test

import (
	"context"
	"encoding/base64"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/fiberauth/fiberauth"
)

// mint signs claims like fiberauth does, then lets a test spoil one thing.
type mint struct {
	method jwt.SigningMethod
	key    any
	typ    any // nil: no typ header
	claims jwt.MapClaims
}

func (m mint) sign(t *testing.T) string {
	t.Helper()
	tok := jwt.NewWithClaims(m.method, m.claims)
	if m.typ == nil {
		delete(tok.Header, "typ")
	} else {
		tok.Header["typ"] = m.typ
	}
	s, err := tok.SignedString(m.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenNegatives(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ada := h.createUser("ada@example.com")
	bob := h.createUser("bob@example.com")
	p := h.login("ada@example.com", goodPassword)
	ended := h.login("ada@example.com", goodPassword)
	expect(t, h.do("POST", "/auth/logout", nil, bearer(ended.access)...), 200, "")
	bobs := h.login("bob@example.com", goodPassword)
	now := h.clock.Now()

	base := func() mint {
		return mint{method: jwt.SigningMethodHS256, key: testSecret, typ: "at+jwt", claims: jwt.MapClaims{
			"iss": "fiberauth", "aud": []string{"fiberauth"}, "sub": ada.ID, "sid": p.sid, "etag": ada.ETag,
			"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(), "jti": "j1",
		}}
	}
	with := func(f func(m *mint)) string {
		m := base()
		f(&m)
		return m.sign(t)
	}
	// The control: a token minted this way is accepted, so each case below
	// fails for its one spoilt part.
	if got := h.profileStatus(with(func(*mint) {})); got != 200 {
		t.Fatalf("the control token got %d", got)
	}

	real := p.access
	parts := strings.Split(real, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), ada.ID, bob.ID, 1))) + "." + parts[2]

	for _, tc := range []struct {
		name   string
		header string
	}{
		{"no header", ""},
		{"basic scheme", "Basic YWRhOnB3"},
		{"empty bearer", "Bearer "},
		{"garbage", "Bearer not.a.jwt"},
		{"alg none", "Bearer " + with(func(m *mint) { m.method, m.key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType })},
		{"another key", "Bearer " + with(func(m *mint) { m.key = []byte("another key that is long enough to sign!!") })},
		{"HS512 with the right key", "Bearer " + with(func(m *mint) { m.method = jwt.SigningMethodHS512 })},
		{"tampered payload", "Bearer " + tampered},
		{"truncated signature", "Bearer " + real[:len(real)-4]},
		{"expired", "Bearer " + with(func(m *mint) { m.claims["exp"] = now.Add(-2 * time.Minute).Unix() })},
		{"no exp", "Bearer " + with(func(m *mint) { delete(m.claims, "exp") })},
		{"nbf ahead", "Bearer " + with(func(m *mint) { m.claims["nbf"] = now.Add(5 * time.Minute).Unix() })},
		{"iat ahead", "Bearer " + with(func(m *mint) { m.claims["iat"] = now.Add(5 * time.Minute).Unix() })},
		{"no iat", "Bearer " + with(func(m *mint) { delete(m.claims, "iat") })},
		{"another client_id", "Bearer " + with(func(m *mint) { m.claims["client_id"] = "other-client" })},
		{"wrong iss", "Bearer " + with(func(m *mint) { m.claims["iss"] = "someone-else" })},
		{"no iss", "Bearer " + with(func(m *mint) { delete(m.claims, "iss") })},
		{"wrong aud", "Bearer " + with(func(m *mint) { m.claims["aud"] = []string{"other-api"} })},
		{"empty aud", "Bearer " + with(func(m *mint) { m.claims["aud"] = []string{} })},
		{"no aud", "Bearer " + with(func(m *mint) { delete(m.claims, "aud") })},
		{"wrong typ", "Bearer " + with(func(m *mint) { m.typ = "JWT" })},
		{"no typ", "Bearer " + with(func(m *mint) { m.typ = nil })},
		{"stale etag", "Bearer " + with(func(m *mint) { m.claims["etag"] = "an-old-etag" })},
		{"no etag", "Bearer " + with(func(m *mint) { delete(m.claims, "etag") })},
		{"revoked sid", "Bearer " + with(func(m *mint) { m.claims["sid"] = ended.sid })},
		{"unknown sid", "Bearer " + with(func(m *mint) { m.claims["sid"] = "no-such-family" })},
		{"another user's sid", "Bearer " + with(func(m *mint) { m.claims["sid"] = bobs.sid })},
		{"unknown sub", "Bearer " + with(func(m *mint) { m.claims["sub"] = "no-such-user" })},
		{"no sub", "Bearer " + with(func(m *mint) { delete(m.claims, "sub") })},
		{"oversized header", "Bearer " + real + strings.Repeat("A", 9<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.header != "" {
				hdr = []string{"Authorization", tc.header}
			}
			expect(t, h.do("GET", "/api/profile", nil, hdr...), 401, "invalid_token")
			expect(t, h.do("GET", "/auth/me", nil, hdr...), 401, "invalid_token")
		})
	}
	// Nothing above disturbed the real token.
	if h.profileStatus(real) != 200 {
		t.Fatal("the real token stopped working")
	}
	// The scheme is case-insensitive.
	expect(t, h.do("GET", "/api/profile", nil, "Authorization", "bearer "+real), 200, "")
}

// Tokens are plain HS256 JWTs: any JWT library verifies them with the secret.
func TestAccessTokenShape(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	var claims fiberauth.Claims
	tok, err := jwt.ParseWithClaims(p.access, &claims, func(*jwt.Token) (any, error) { return testSecret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(h.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["typ"] != "at+jwt" || claims.Issuer != "fiberauth" || len(claims.Audience) != 1 || claims.Audience[0] != "fiberauth" ||
		claims.Subject != u.ID || claims.SessionID != p.sid || claims.ETag != u.ETag || claims.ID == "" ||
		claims.ExpiresAt-claims.IssuedAt != 15*60 || claims.ClientID != "fiberauth" {
		t.Fatalf("header %v claims %+v", tok.Header, claims)
	}
	// The claims as any JWT library reads them: client_id (RFC 9068 §2.2) is
	// Config.ClientID, which defaults to the audience, and nothing else is
	// there.
	var generic jwt.MapClaims
	if _, err := jwt.ParseWithClaims(p.access, &generic, func(*jwt.Token) (any, error) { return testSecret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(h.clock.Now)); err != nil {
		t.Fatal(err)
	}
	if generic["client_id"] != "fiberauth" || len(generic) != 9 {
		t.Fatalf("claims %v", generic)
	}
	// With another Config.ClientID, the tokens carry it.
	h2 := newHarness(t, func(c *fiberauth.Config) { c.ClientID = "web-app" })
	h2.createUser("ada@example.com")
	p2 := h2.login("ada@example.com", goodPassword)
	if _, _, err := jwt.NewParser().ParseUnverified(p2.access, &claims); err != nil || claims.ClientID != "web-app" || claims.Audience[0] != "fiberauth" {
		t.Fatalf("claims %+v, %v", claims, err)
	}
	expect(t, h2.do("GET", "/api/profile", nil, bearer(p2.access)...), 200, "")
}

func TestMiddlewareOptions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.auth
	h.app.Get("/open-or-closed", a.Middleware(fiberauth.MiddlewareConfig{Next: func(c *fiber.Ctx) bool { return c.Query("skip") == "1" }}),
		func(c *fiber.Ctx) error {
			_, ok := fiberauth.ClaimsFrom(c)
			return c.JSON(fiber.Map{"signed_in": ok, "user_id": fiberauth.UserIDFrom(c), "admin": fiberauth.HasRole(c, "admin")})
		})
	h.app.Get("/staff", a.Middleware(fiberauth.MiddlewareConfig{Roles: []string{"admin", "support"}}), func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"ok": true})
	})
	admin := h.createUser("root@example.com", "admin")
	support := h.createUser("help@example.com", "support")
	h.createUser("ada@example.com")
	pa, ps, pu := h.login("root@example.com", goodPassword), h.login("help@example.com", goodPassword), h.login("ada@example.com", goodPassword)

	r := h.do("GET", "/open-or-closed?skip=1", nil)
	expect(t, r, 200, "")
	if r.body["signed_in"] != false || r.body["user_id"] != "" {
		t.Fatalf("skipped route: %s", r.raw)
	}
	expect(t, h.do("GET", "/open-or-closed", nil), 401, "invalid_token")
	r = h.do("GET", "/open-or-closed", nil, bearer(pa.access)...)
	if r.body["signed_in"] != true || r.body["user_id"] != admin.ID || r.body["admin"] != true {
		t.Fatalf("protected route: %s", r.raw)
	}

	expect(t, h.do("GET", "/staff", nil, bearer(pa.access)...), 200, "")
	expect(t, h.do("GET", "/staff", nil, bearer(ps.access)...), 200, "")
	expect(t, h.do("GET", "/staff", nil, bearer(pu.access)...), 403, "forbidden")
	expect(t, h.do("GET", "/staff", nil), 401, "invalid_token")
	expect(t, h.do("GET", "/api/admin/ping", nil, bearer(pa.access)...), 200, "")
	expect(t, h.do("GET", "/api/admin/ping", nil, bearer(ps.access)...), 403, "forbidden")

	// Taking a role away works at once.
	if err := a.SetRoles(context.Background(), support.ID, nil); err != nil {
		t.Fatal(err)
	}
	expect(t, h.do("GET", "/staff", nil, bearer(ps.access)...), 401, "invalid_token")
}

// Another process sharing a store that cannot tell it of changes (no
// Notifier) notices a revocation within CacheTTL, measured on the clock
// Config.Now gives: no test waits for a cache.
func TestCacheTTLAcrossInstances(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *fiberauth.Config) { c.CacheTTL = 2 * time.Second })
	other, err := fiberauth.New(fiberauth.Config{Store: struct{ fiberauth.Store }{h.store}, Secret: testSecret, Now: h.clock.Now, CacheTTL: 2 * time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New()
	app.Get("/p", other.Middleware(), func(c *fiber.Ctx) error { return c.SendString("ok") })
	status := func(access string) int {
		req, _ := newRequest("GET", "/p", access)
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	if status(p.access) != 200 {
		t.Fatal("the other instance rejects a fresh token")
	}
	expect(t, h.do("POST", "/auth/logout", nil, bearer(p.access)...), 200, "")
	// The other instance trusts its cache until CacheTTL has passed...
	h.clock.Advance(2*time.Second - time.Millisecond)
	if status(p.access) != 200 {
		t.Fatal("the other instance dropped its cache before CacheTTL")
	}
	// ...and no longer.
	h.clock.Advance(time.Millisecond)
	if got := status(p.access); got != 401 {
		t.Fatalf("the other instance still accepts a logged-out token after CacheTTL: %d", got)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	ok := func() fiberauth.Config {
		return fiberauth.Config{Store: newHarness(t).store, Secret: testSecret, Logger: quiet}
	}
	for _, tc := range []struct {
		name string
		mut  func(*fiberauth.Config)
	}{
		{"no store", func(c *fiberauth.Config) { c.Store = nil }},
		{"short secret", func(c *fiberauth.Config) { c.Secret = testSecret[:31] }},
		{"password min below 6", func(c *fiberauth.Config) { c.PasswordMinLength = 5 }},
		{"weak argon2", func(c *fiberauth.Config) {
			c.PasswordHashParams.Memory, c.PasswordHashParams.Iterations, c.PasswordHashParams.Parallelism = 4096, 1, 1
		}},
		{"leeway over a minute", func(c *fiberauth.Config) { c.Leeway = 2 * time.Minute }},
		{"negative TTL", func(c *fiberauth.Config) { c.AccessTTL = -time.Second }},
		{"idle longer than max", func(c *fiberauth.Config) { c.RefreshIdleTTL = 100 * 24 * time.Hour }},
		{"signup without sender", func(c *fiberauth.Config) { c.AllowSignup = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.mut(&c)
			if _, err := fiberauth.New(c); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	if _, err := fiberauth.New(ok()); err != nil {
		t.Fatalf("New refused a minimal config: %v", err)
	}
}

// gate holds up the next store read, once armed: it tells entered the
// read is done and waits for release before answering: a slow lookup in
// flight.
type gate struct {
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) pass() {
	if g.armed.CompareAndSwap(true, false) {
		g.entered <- struct{}{}
		<-g.release
	}
}

// inFlight sends GET path with access and returns once the gated read has
// happened; wait gives the request's status once the gate opens.
func (g *gate) inFlight(t *testing.T, h *harness, path, access string) (wait func() int) {
	t.Helper()
	g.armed.Store(true)
	slow := make(chan int, 1)
	go func() {
		req, _ := newRequest("GET", path, access)
		resp, err := h.app.Test(req, -1)
		if err != nil {
			t.Error(err)
			slow <- 0
			return
		}
		slow <- resp.StatusCode
	}()
	select {
	case <-g.entered:
	case got := <-slow:
		t.Fatalf("the request answered %d without reading the store", got)
	}
	return func() int {
		close(g.release)
		return <-slow
	}
}

// gatedSessions gates SessionByID; gatedUsers gates UserByID.
type gatedSessions struct {
	fiberauth.Store
	*gate
}

func (g *gatedSessions) SessionByID(ctx context.Context, id string) (fiberauth.Session, error) {
	s, err := g.Store.SessionByID(ctx, id)
	g.pass()
	return s, err
}

type gatedUsers struct {
	fiberauth.Store
	*gate
}

func (g *gatedUsers) UserByID(ctx context.Context, id string) (fiberauth.User, error) {
	u, err := g.Store.UserByID(ctx, id)
	g.pass()
	return u, err
}

// A revocation this process makes wins over a lookup that began before it:
// the lookup's old "live" answer is not cached over the revocation, so the
// logged-out token stops working at once, not after CacheTTL.
func TestRevocationWinsOverLookupInFlight(t *testing.T) {
	t.Parallel()
	gated := &gatedSessions{gate: newGate()}
	h := newHarness(t, func(c *fiberauth.Config) {
		gated.Store = c.Store
		c.Store = gated
		c.CacheTTL = time.Minute
	})
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	h.clock.Advance(2 * time.Minute) // what login cached is stale: the next request reads

	wait := gated.inFlight(t, h, "/api/profile", p.access) // it has read the family live
	// Logged out through the Go API: a request through the middleware
	// would wait for the read in flight (it shares it).
	if err := h.auth.RevokeRefreshToken(context.Background(), fiberauth.RefreshInput{RefreshToken: p.refresh}); err != nil {
		t.Fatal(err)
	}
	if got := wait(); got != 200 {
		t.Fatalf("the request that began before the logout got %d", got)
	}
	expect(t, h.do("GET", "/api/profile", nil, bearer(p.access)...), 401, "invalid_token")
}

// A role removed while a lookup of the user is in flight stays removed:
// the lookup's old record (with the role, and the old etag) is not cached
// over the change, so neither the old token nor the role is honoured after.
func TestRoleRemovalWinsOverLookupInFlight(t *testing.T) {
	t.Parallel()
	gated := &gatedUsers{gate: newGate()}
	h := newHarness(t, func(c *fiberauth.Config) {
		gated.Store = c.Store
		c.Store = gated
		c.CacheTTL = time.Minute
	})
	u := h.createUser("ada@example.com", "admin")
	p := h.login("ada@example.com", goodPassword)
	h.clock.Advance(2 * time.Minute)

	wait := gated.inFlight(t, h, "/api/admin/ping", p.access) // it has read the user with the role
	if err := h.auth.SetRoles(context.Background(), u.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got := wait(); got != 200 {
		t.Fatalf("the request that began before the change got %d", got)
	}
	expect(t, h.do("GET", "/api/admin/ping", nil, bearer(p.access)...), 401, "invalid_token")
	p = pairOf(t, h.refresh(p.refresh))
	expect(t, h.do("GET", "/api/admin/ping", nil, bearer(p.access)...), 403, "forbidden")
}

// resign is token with its header and claims signed again under key: what
// someone without fiberauth's secret makes of a token they hold.
func resign(t *testing.T, token string, key []byte) string {
	t.Helper()
	var c fiberauth.Claims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil {
		t.Fatal(err)
	}
	forged := jwt.NewWithClaims(jwt.SigningMethodHS256, &c)
	forged.Header["typ"] = "at+jwt"
	s, err := forged.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A refused access token says why (docs/api.md): missing, malformed,
// expired, revoked or stale, in the body's reason and in WWW-Authenticate's
// error_description, so that a client knows whether to refresh or to sign
// in again. A token whose signature does not verify is malformed whatever
// its claims say, expired ones included: the answer tells an attacker
// nothing about keys or signatures.
func TestRefusalReasons(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	u := h.createUser("ada@example.com")
	profile := func(headers ...string) response { return h.do("GET", "/api/profile", nil, headers...) }

	expectRefused(t, profile(), "missing")
	expectRefused(t, profile("Authorization", "Basic YWRhOnNlY3JldA=="), "missing")
	expectRefused(t, profile("Authorization", "Bearer"), "missing")
	expectRefused(t, profile("Authorization", "Bearer not.a.token"), "malformed")

	p := h.login("ada@example.com", goodPassword)
	for range 3 { // seen, then cached
		expect(t, profile(bearer(p.access)...), 200, "")
	}
	wrongKey := []byte("another secret, of 32 bytes or more")
	forged := resign(t, p.access, wrongKey)
	expectRefused(t, profile(bearer(forged)...), "malformed")
	flipped := p.access[:len(p.access)-2] + map[bool]string{true: "AA", false: "AB"}[strings.HasSuffix(p.access, "AB")]
	expectRefused(t, profile(bearer(flipped)...), "malformed")

	// The user changed (roles): the token's etag is stale; a refresh
	// answers a current one.
	if err := h.auth.SetRoles(ctx, u.ID, []string{"editor"}); err != nil {
		t.Fatal(err)
	}
	expectRefused(t, profile(bearer(p.access)...), "stale")
	p = pairOf(t, h.refresh(p.refresh))
	expect(t, profile(bearer(p.access)...), 200, "")

	// Expired: a token seen before (cached) and one never seen, signed by
	// us; a forged one stays malformed.
	unseen := pairOf(t, h.refresh(p.refresh))
	expect(t, profile(bearer(unseen.access)...), 200, "")
	expect(t, profile(bearer(unseen.access)...), 200, "")
	h.clock.Advance(time.Hour)
	expectRefused(t, profile(bearer(unseen.access)...), "expired")
	expectRefused(t, profile(bearer(p.access)...), "expired")
	expectRefused(t, profile(bearer(resign(t, unseen.access, wrongKey))...), "malformed")

	// Logout ends the session: revoked.
	p = h.login("ada@example.com", goodPassword)
	expect(t, profile(bearer(p.access)...), 200, "")
	expect(t, h.do("POST", "/auth/logout", nil, bearer(p.access)...), 200, "")
	expectRefused(t, profile(bearer(p.access)...), "revoked")

	// A disabled user's tokens: revoked too.
	p = h.login("ada@example.com", goodPassword)
	if err := h.auth.DisableUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	expectRefused(t, profile(bearer(p.access)...), "revoked")
}

// A change that ends the other sessions (a password change, enabling 2FA)
// changes the etag too: their tokens are "revoked" (sign in), not "stale"
// (refresh, which would fail); the session that made the change goes on,
// and its token from before the change is "stale".
func TestRefusalReasonAfterPasswordChange(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	a := h.login("ada@example.com", goodPassword)
	b := h.login("ada@example.com", goodPassword)
	expect(t, h.do("GET", "/api/profile", nil, bearer(b.access)...), 200, "")
	changed := pairOf(t, h.do("POST", "/auth/password/change", map[string]any{"previous_password": goodPassword, "proposed_password": "a new long passphrase"}, bearer(a.access)...))
	expectRefused(t, h.do("GET", "/api/profile", nil, bearer(b.access)...), "revoked")
	expect(t, h.refresh(b.refresh), 401, "invalid_grant")
	expectRefused(t, h.do("GET", "/api/profile", nil, bearer(a.access)...), "stale")
	expect(t, h.do("GET", "/api/profile", nil, bearer(changed.access)...), 200, "")
}
