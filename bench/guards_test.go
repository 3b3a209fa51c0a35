package bench_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	jwtware "github.com/gofiber/contrib/jwt"
	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
)

// secret is the HS256 secret of every guard.
var secret = []byte("0123456789abcdef0123456789abcdef")

// epoch is the benchmarks' clock: tokens are issued then, and valid.
var epoch = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// world is one user with a live session on a store, and fiberauth over it.
type world struct {
	auth           *fiberauth.Auth
	sub, sid, etag string
}

func newWorld(b *testing.B) *world {
	b.Helper()
	store := memstore.New()
	a, err := fiberauth.New(fiberauth.Config{Store: store, Secret: secret, Now: func() time.Time { return epoch },
		Logger: slog.New(slog.DiscardHandler), CacheTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Close() })
	w := &world{auth: a, sub: "user-ada", sid: "session-ada", etag: "etag-ada"}
	addSignedIn(b, store, w.sub, w.sid, w.etag)
	return w
}

// addSignedIn puts a user and a live session of theirs in store, as a
// login would have.
func addSignedIn(b *testing.B, store *memstore.Store, id, sid, etag string) {
	b.Helper()
	ctx := context.Background()
	if err := store.CreateUser(ctx, fiberauth.User{ID: id, Email: id + "@example.com", ETag: etag, EmailVerified: true, CreatedAt: epoch, UpdatedAt: epoch}); err != nil {
		b.Fatal(err)
	}
	if err := store.CreateSession(ctx, fiberauth.Session{ID: sid, UserID: id, TokenHash: []byte(sid), CreatedAt: epoch, LastUsedAt: epoch,
		ExpiresAt: epoch.Add(24 * time.Hour), AbsoluteExpiresAt: epoch.Add(24 * time.Hour)}); err != nil {
		b.Fatal(err)
	}
}

// mint returns n distinct valid access tokens of the world's session.
func (w *world) mint(b *testing.B, n int) []string {
	b.Helper()
	out := make([]string, n)
	for i := range out {
		out[i] = sign(b, w.sub, w.sid, w.etag, "bench-"+strconv.Itoa(i), epoch)
	}
	return out
}

// sign signs an access token as fiberauth issues them at now, with the
// default issuer and audience.
func sign(b *testing.B, sub, sid, etag, jti string, now time.Time) string {
	b.Helper()
	c := &fiberauth.Claims{
		Issuer: "fiberauth", Subject: sub, Audience: fiberauth.Audience{"fiberauth"},
		IssuedAt: now.Unix(), ExpiresAt: now.Add(15 * time.Minute).Unix(),
		ID: jti, SessionID: sid, ETag: etag,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	t.Header["typ"] = "at+jwt"
	s, err := t.SignedString(secret)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// The middleware benchmarks run one GET through app.Handler() with a
// *fasthttp.RequestCtx, no network, so they measure the handler chain:
//
//	Bare             the route alone
//	Jwtware          behind github.com/gofiber/contrib/jwt (HS256), one token
//	JwtwarePool      the same, cycling through the tokens of FiberauthUnseen
//	JwtwareStrict    jwtware as a user configures it to check what fiberauth
//	                 checks of the token itself: HS256 pinned, typed claims,
//	                 exp required, issuer and audience (strictClaims)
//	JwtwareStrictPool  the same, cycling through the tokens of FiberauthUnseen
//	FiberauthSeen    behind fiberauth with every check, on a token it has seen
//	FiberauthUnseen  behind fiberauth, each request a token it has not seen
//
// and each again under b.RunParallel. Compare with benchstat (BENCHMARKS.md).

func ok200(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusOK) }

// bareApp, jwtwareApp and fiberauthApp serve GET /p behind each guard.
func bareApp() *fiber.App {
	app := fiber.New()
	app.Get("/p", ok200)
	return app
}

func jwtwareApp() *fiber.App {
	app := fiber.New()
	app.Get("/p", jwtware.New(jwtware.Config{SigningKey: jwtware.SigningKey{JWTAlg: jwtware.HS256, Key: secret}}), ok200)
	return app
}

// strictClaims are the claims a jwtware user checks iss, aud and a required
// exp with: golang-jwt calls Validate after its own checks.
type strictClaims struct {
	jwt.RegisteredClaims
}

var errStrictClaims = errors.New("wrong issuer or audience, or no exp")

func (c *strictClaims) Validate() error {
	if c.Issuer != "fiberauth" || !slices.Contains(c.Audience, "fiberauth") || c.ExpiresAt == nil {
		return errStrictClaims
	}
	return nil
}

func jwtwareStrictApp() *fiber.App {
	app := fiber.New()
	app.Get("/p", jwtware.New(jwtware.Config{SigningKey: jwtware.SigningKey{JWTAlg: jwtware.HS256, Key: secret}, Claims: &strictClaims{}}), ok200)
	return app
}

func fiberauthApp(a *fiberauth.Auth) *fiber.App {
	app := fiber.New()
	app.Get("/p", a.Middleware(), ok200)
	return app
}

// request is a reusable GET /p with an Authorization header (none if
// authorization is ""). The header is copied in, as a server reads it from
// the connection.
func request(ctx *fasthttp.RequestCtx, authorization string) {
	ctx.Request.Reset()
	ctx.ResetUserValues() // as fasthttp's server does between requests
	ctx.Response.Reset()
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI("/p")
	if authorization != "" {
		ctx.Request.Header.Set("Authorization", authorization)
	}
}

// bearers are the Authorization headers of tokens, built before timing so
// that the benchmarks time the guards and not the harness.
func bearers(tokens ...string) []string {
	h := make([]string, len(tokens))
	for i, t := range tokens {
		h[i] = "Bearer " + t
	}
	return h
}

// runSerial serves requests with the Authorization headers in turn (a
// single one: the same each time; none: no header).
func runSerial(b *testing.B, app *fiber.App, headers []string) {
	h := app.Handler()
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if !serveNext(h, &ctx, headers, &i) {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

// serveNext serves a request with the next of headers (i walks them) and
// reports whether the guard let it through.
func serveNext(h fasthttp.RequestHandler, ctx *fasthttp.RequestCtx, headers []string, i *int) bool {
	auth := ""
	if len(headers) > 0 {
		auth = headers[*i%len(headers)]
		*i++
	}
	request(ctx, auth)
	h(ctx)
	return ctx.Response.StatusCode() == 200
}

// runParallel is runSerial on every core. Each goroutine walks the headers
// from a place of its own, with a counter of its own: a counter shared by
// the goroutines would cost each request a cache line passed between
// cores, which is the harness's cost, not the guard's.
func runParallel(b *testing.B, app *fiber.App, headers []string) {
	h := app.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	var goroutines atomicCounter
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		i := goroutines.inc() * 104729 // a prime: spread the starts
		for pb.Next() {
			if !serveNext(h, &ctx, headers, &i) {
				b.Errorf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
				return
			}
		}
	})
}

// unseenPool is how many distinct tokens the "unseen" benchmarks cycle
// through: more than the middleware's token cache holds, so every request
// misses it.
const unseenPool = 1 << 16

func BenchmarkMiddleware(b *testing.B) {
	w := newWorld(b)
	unseen, one := bearers(w.mint(b, unseenPool)...), bearers(w.mint(b, 1)...)
	for _, mode := range []struct {
		name string
		run  func(*testing.B, *fiber.App, []string)
	}{{"Serial", runSerial}, {"Parallel", runParallel}} {
		b.Run("Bare/"+mode.name, func(b *testing.B) { mode.run(b, bareApp(), nil) })
		b.Run("Jwtware/"+mode.name, func(b *testing.B) { mode.run(b, jwtwareApp(), one) })
		b.Run("JwtwarePool/"+mode.name, func(b *testing.B) { mode.run(b, jwtwareApp(), unseen) })
		b.Run("JwtwareStrict/"+mode.name, func(b *testing.B) { mode.run(b, jwtwareStrictApp(), one) })
		b.Run("JwtwareStrictPool/"+mode.name, func(b *testing.B) { mode.run(b, jwtwareStrictApp(), unseen) })
		b.Run("FiberauthSeen/"+mode.name, func(b *testing.B) { mode.run(b, fiberauthApp(w.auth), one) })
		b.Run("FiberauthUnseen/"+mode.name, func(b *testing.B) { mode.run(b, fiberauthApp(w.auth), unseen) })
	}
}

type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) inc() int { return int(c.n.Add(1) - 1) }

// BenchmarkMiddlewareZipf serves a request stream over many users, each
// with a session and a token of their own, whose users follow a Zipf law
// (P(user k) ∝ 1/(k+1)^1.01: a few users make most requests, and a long
// tail is seen rarely), through jwtware as a user configures it
// (JwtwareStrict) and through fiberauth with its default token cache of
// 10,000 tokens: with 20,000 users, the cache cannot hold every token, so
// this measures what evicting one token at a time keeps. Unbounded is
// fiberauth with a cache that holds every token, for comparison.
//
//	go test -run '^$' -bench MiddlewareZipf -benchmem -count 6 ./bench | benchstat -col /guard -
func BenchmarkMiddlewareZipf(b *testing.B) {
	for _, users := range []int{10000, 20000} {
		b.Run("users="+strconv.Itoa(users), func(b *testing.B) {
			z := newZipfWorld(b, users)
			for _, mode := range []struct {
				name string
				run  func(*testing.B, *fiber.App, []string)
			}{{"Serial", runSerial}, {"Parallel", runParallel}} {
				b.Run("guard=JwtwareStrict/"+mode.name, func(b *testing.B) { mode.run(b, jwtwareStrictApp(), z.stream) })
				b.Run("guard=Fiberauth/"+mode.name, func(b *testing.B) { z.run(b, z.auth, mode.run) })
				b.Run("guard=Unbounded/"+mode.name, func(b *testing.B) { z.run(b, z.unbounded, mode.run) })
			}
		})
	}
}

// zipfWorld is users signed in on one store, and a request stream of their
// tokens.
type zipfWorld struct {
	auth, unbounded *fiberauth.Auth
	stream          []string // Authorization headers in request order
}

// zipfStream is how many requests the stream holds before it repeats.
const zipfStream = 1 << 20

func newZipfWorld(b *testing.B, users int) *zipfWorld {
	b.Helper()
	now := epoch
	store := memstore.New()
	newAuth := func(cacheSize int) *fiberauth.Auth {
		a, err := fiberauth.New(fiberauth.Config{Store: store, Secret: secret, Now: func() time.Time { return now },
			Logger: slog.New(slog.DiscardHandler), CacheTTL: time.Hour, TokenCacheSize: cacheSize})
		if err != nil {
			b.Fatal(err)
		}
		return a
	}
	z := &zipfWorld{auth: newAuth(0), unbounded: newAuth(2 * users)}
	tokens := make([]string, users)
	for i := range tokens {
		id, sid, etag := "user-"+strconv.Itoa(i), "session-"+strconv.Itoa(i), "etag-"+strconv.Itoa(i)
		addSignedIn(b, store, id, sid, etag)
		tokens[i] = sign(b, id, sid, etag, "jti-"+strconv.Itoa(i), now)
	}
	headers := bearers(tokens...)
	zipf := rand.NewZipf(rand.New(rand.NewSource(1)), 1.01, 1, uint64(users-1))
	z.stream = make([]string, zipfStream)
	for i := range z.stream {
		z.stream[i] = headers[zipf.Uint64()]
	}
	return z
}

// run serves the stream through a's middleware, once untimed first so that
// the caches are as they would be in a server that has been up a while.
func (z *zipfWorld) run(b *testing.B, a *fiberauth.Auth, run func(*testing.B, *fiber.App, []string)) {
	app := fiberauthApp(a)
	h := app.Handler()
	var ctx fasthttp.RequestCtx
	for _, auth := range z.stream {
		request(&ctx, auth)
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("warming up: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	run(b, app, z.stream)
}
