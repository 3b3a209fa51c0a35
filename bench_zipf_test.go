package fiberauth_test

import (
	"context"
	"log/slog"
	"math/rand"
	"strconv"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
)

// BenchmarkMiddlewareZipf serves a request stream over many users, each
// with a session and a token of their own, whose users follow a Zipf law
// (P(user k) ∝ 1/(k+1)^1.01: a few users make most requests, and a long
// tail is seen rarely), through jwtware as a user configures it
// (JwtwareStrict) and through fiberauth with its default token cache of
// 10,000 tokens: with 20,000 users, the cache cannot hold every token, so
// this measures what evicting one token at a time keeps. Unbounded is
// fiberauth with a cache that holds every token, for comparison.
//
//	go test -run '^$' -bench MiddlewareZipf -benchmem -count 6 . | benchstat -col /guard -
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
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	store := memstore.New()
	ctx := context.Background()
	newAuth := func(cacheSize int) *fiberauth.Auth {
		a, err := fiberauth.New(fiberauth.Config{Store: store, Secret: testSecret, Now: func() time.Time { return now },
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
		if err := store.CreateUser(ctx, fiberauth.User{ID: id, Email: id + "@example.com", ETag: etag, EmailVerified: true, CreatedAt: now, UpdatedAt: now}); err != nil {
			b.Fatal(err)
		}
		if err := store.CreateSession(ctx, fiberauth.Session{ID: sid, UserID: id, TokenHash: []byte(sid), CreatedAt: now, LastUsedAt: now,
			ExpiresAt: now.Add(24 * time.Hour), AbsoluteExpiresAt: now.Add(24 * time.Hour)}); err != nil {
			b.Fatal(err)
		}
		tokens[i] = signBenchToken(b, id, sid, etag, "jti-"+strconv.Itoa(i), now)
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
