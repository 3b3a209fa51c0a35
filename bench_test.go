package fiberauth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
)

// The benchmarks of logins (login_bench_test.go and below); those of the
// middleware against jwtware are in the bench module (bench/guards_test.go).

// benchWorld is one user signed in, and a way to mint more of their tokens.
type benchWorld struct {
	auth  *fiberauth.Auth
	store *memstore.Store
	sub   string
	sid   string
	etag  string
	token string
	now   time.Time
}

func newBenchWorld(b *testing.B) *benchWorld {
	b.Helper()
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	store := memstore.New()
	// The limits are off: a flood of right passwords for one account from
	// one address would otherwise be refused past the limit in flight.
	a, err := fiberauth.New(fiberauth.Config{Store: store, Secret: testSecret, Now: func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler), CacheTTL: time.Hour, MaxLoginFailuresPerAccount: -1, MaxLoginFailuresPerIP: -1})
	if err != nil {
		b.Fatal(err)
	}
	u, err := a.CreateUser(context.Background(), fiberauth.NewUser{Email: "ada@example.com", Password: goodPassword, Verified: true})
	if err != nil {
		b.Fatal(err)
	}
	app := fiber.New()
	a.Mount(app.Group("/auth"))
	status, body := serveOnce(app.Handler(), "POST", "/auth/login", "", `{"email":"ada@example.com","password":"`+goodPassword+`"}`)
	if status != 200 {
		b.Fatalf("login: %d %s", status, body)
	}
	w := &benchWorld{auth: a, store: store, sub: u.ID, etag: u.ETag, now: now}
	var claims fiberauth.Claims
	w.token = jsonField(body, "access_token")
	if _, _, err := jwt.NewParser().ParseUnverified(w.token, &claims); err != nil {
		b.Fatal(err)
	}
	w.sid = claims.SessionID
	return w
}

// mint returns n distinct valid access tokens of the signed-in session, as
// fiberauth would issue them.
func (w *benchWorld) mint(b *testing.B, n int) []string {
	b.Helper()
	out := make([]string, n)
	for i := range out {
		out[i] = signBenchToken(b, w.sub, w.sid, w.etag, "bench-"+strconv.Itoa(i), w.now)
	}
	return out
}

// signBenchToken signs an access token as fiberauth would issue it at now.
func signBenchToken(b *testing.B, sub, sid, etag, jti string, now time.Time) string {
	b.Helper()
	c := &fiberauth.Claims{
		Issuer: "fiberauth", Subject: sub, Audience: fiberauth.Audience{"fiberauth"},
		IssuedAt: now.Unix(), ExpiresAt: now.Add(15 * time.Minute).Unix(),
		ID: jti, SessionID: sid, ETag: etag,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	t.Header["typ"] = "at+jwt"
	s, err := t.SignedString(testSecret)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func serveOnce(h fasthttp.RequestHandler, method, path, token, body string) (int, string) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path)
	if token != "" {
		ctx.Request.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		ctx.Request.Header.SetContentType("application/json")
		ctx.Request.SetBodyString(body)
	}
	h(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Body())
}

func jsonField(body, key string) string {
	i := indexAfter(body, `"`+key+`":"`)
	if i < 0 {
		return ""
	}
	j := i
	for j < len(body) && body[j] != '"' {
		j++
	}
	return body[i:j]
}

func indexAfter(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i + len(sub)
		}
	}
	return -1
}

// BenchmarkLoginFlood sends 200 concurrent logins (argon2id at the default
// parameters) and reports latency percentiles and the peak heap above the
// baseline. The hash slots (default 2 × GOMAXPROCS) bound the live hash
// memory; with a memory limit of slots × argon2 memory + 64 MiB (what a
// host sets with GOMEMLIMIT) the collector keeps the dead blocks within it
// too, give or take the one block being allocated (the limit is soft),
// without fiberauth forcing a collection: the flood queues instead of
// exhausting memory. (Without a limit the peak is about twice the live
// blocks: 190 MiB here.)
func BenchmarkLoginFlood(b *testing.B) {
	const block = 19456 * 1024               // argon2 memory at the default parameters
	concurrency := 2 * runtime.GOMAXPROCS(0) // the default slots
	bound := uint64(concurrency)*block + 64<<20
	runtime.GC()
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(int64(heapObjects() + bound)))
	if peak := loginFlood(b); peak > bound+block {
		b.Fatalf("peak heap %d MiB above the bound %d MiB and a block", peak>>20, bound>>20)
	}
}

func loginFlood(b *testing.B) (peak uint64) {
	const logins = 200
	w := newBenchWorld(b)
	app := fiber.New()
	w.auth.Mount(app.Group("/auth"))
	h := app.Handler()
	body := `{"email":"ada@example.com","password":"` + goodPassword + `"}`
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
		base := heapObjects()
		peakHeap := sampleHeap(200 * time.Microsecond)
		var wg sync.WaitGroup
		var mu sync.Mutex
		failed := 0
		for range logins {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				status, _ := serveOnce(h, "POST", "/auth/login", "", body)
				d := time.Since(start)
				mu.Lock()
				defer mu.Unlock()
				lat = append(lat, d)
				if status != 200 {
					failed++
				}
			}()
		}
		wg.Wait()
		peak = max(peak, peakHeap()-base)
		if failed > 0 {
			b.Fatalf("%d of %d logins failed", failed, logins)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
	b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
	return peak
}

// sampleHeap samples heapObjects every period until the function it
// returns is called, which answers the highest sample.
func sampleHeap(period time.Duration) (stop func() uint64) {
	done := make(chan struct{})
	sampled := make(chan uint64)
	go func() {
		high := uint64(0)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			high = max(high, heapObjects())
			select {
			case <-done:
				sampled <- high
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		return <-sampled
	}
}

// heapObjects is the heap occupied by objects, reachable or not yet swept.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkDistinctNamesFlood is an attacker sending failed logins and
// reset codes for names no account has, each from another address (the
// worst case: no per-network limit stops them), to a memstore app. It
// reports the heap and RSS the flood leaves behind, per million requests:
// names that no account has make no per-name state in the reset flow, and
// the throttling windows of login are capped (internal/attempts), so this
// stays a few MiB however long the flood goes on. Run it as
//
//	go test -run '^$' -bench DistinctNamesFlood -benchtime 1000000x .
func BenchmarkDistinctNamesFlood(b *testing.B) {
	store := memstore.New()
	cfg := fiberauth.Config{Store: store, Secret: testSecret, Logger: slog.New(slog.DiscardHandler), CleanupInterval: -1}
	fiberauth.CheapHashing(&cfg)
	a, err := fiberauth.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	heap0, rss0 := heapObjects(), rss()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		ctx := fiberauth.WithClient(context.Background(), fiberauth.Client{IP: ip})
		name := "nobody" + strconv.Itoa(i) + "@example.com"
		if _, err := a.Login(ctx, fiberauth.LoginInput{Name: name, Password: "wrong password!"}); !errors.Is(err, fiberauth.ErrInvalidCredentials) {
			b.Fatalf("login %d: %v", i, err)
		}
		if err := a.ResetPassword(ctx, fiberauth.PasswordResetInput{Name: name, Code: "000000", NewPassword: "reset to something long"}); !errors.Is(err, fiberauth.ErrInvalidGrant) {
			b.Fatalf("reset %d: %v", i, err)
		}
		i++
	}
	b.StopTimer()
	runtime.GC()
	perMillion := 1e6 / float64(b.N) / (1 << 20)
	b.ReportMetric(float64(int64(heapObjects())-int64(heap0))*perMillion, "heap-MiB/1M")
	b.ReportMetric(float64(int64(rss())-int64(rss0))*perMillion, "rss-MiB/1M")
	runtime.KeepAlive(a) // what the flood left is measured while in use
}

// rss is the process's resident memory in bytes (Linux), 0 elsewhere.
func rss() uint64 {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, resident uint64
	if _, err := fmt.Sscan(string(raw), &size, &resident); err != nil {
		return 0
	}
	return resident * uint64(os.Getpagesize())
}
