package sqlstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/sqlstore"
	"github.com/fiberauth/fiberauth/sqlstore/postgres"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

const password = "correct horse battery staple"

// instance is one app process: its own store handle, Auth and Fiber app.
type instance struct {
	auth *fiberauth.Auth
	app  *fiber.App
}

// clock is a Config.Now that a test moves by hand; instances may share one.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newInstance starts an instance on store; its clock is clk's, or the real
// one when clk is nil.
func newInstance(t testing.TB, store fiberauth.Store, cacheTTL time.Duration, clk *clock) instance {
	t.Helper()
	now := time.Now
	if clk != nil {
		now = clk.Now
	}
	a, err := fiberauth.New(fiberauth.Config{Store: store, Secret: secret, CacheTTL: cacheTTL, Now: now, Logger: slog.New(slog.DiscardHandler),
		SendCode: func(context.Context, fiberauth.CodeMessage) error { return nil }}) // the code flows are mounted
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	app := fiber.New()
	a.Mount(app.Group("/auth"))
	app.Get("/api/profile", a.Middleware(), func(c *fiber.Ctx) error { return c.SendString(fiberauth.UserIDFrom(c)) })
	return instance{auth: a, app: app}
}

func (in instance) do(t *testing.T, method, path, access string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if access != "" {
		req.Header.Set("Authorization", "Bearer "+access)
	}
	resp, err := in.app.Test(req, -1)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (in instance) login(t *testing.T, email string) (access, refresh string) {
	t.Helper()
	status, out := in.do(t, "POST", "/auth/login", "", map[string]any{"email": email, "password": password})
	if status != 200 {
		t.Fatalf("login: %d %v", status, out)
	}
	return out["access_token"].(string), out["refresh_token"].(string)
}

// 50 goroutines refresh one token through two Auth instances, each with its
// own connection pool, as two machines would: exactly one pair comes out.
func TestTwoInstancesRefreshOneToken(t *testing.T) {
	for _, db := range databases {
		t.Run(db.Name, func(t *testing.T) {
			t.Parallel()
			dsn := db.DSN(t)
			clk := newClock()
			a := newInstance(t, open(t, db.Dialect, dsn), time.Second, clk)
			b := newInstance(t, open(t, db.Dialect, dsn), time.Second, clk)
			if _, err := a.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "ada@example.com", Password: password, Verified: true}); err != nil {
				t.Fatal(err)
			}
			_, refresh := a.login(t, "ada@example.com")

			const n = 50
			var (
				wg    sync.WaitGroup
				mu    sync.Mutex
				pairs = map[[2]string]int{}
				fails []any
				start = make(chan struct{})
			)
			for i := range n {
				in := a
				if i%2 == 1 {
					in = b
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					status, out := in.do(t, "POST", "/auth/refresh", "", map[string]any{"refresh_token": refresh})
					mu.Lock()
					defer mu.Unlock()
					if status != 200 {
						fails = append(fails, out)
						return
					}
					pairs[[2]string{out["access_token"].(string), out["refresh_token"].(string)}]++
				}()
			}
			close(start)
			wg.Wait()
			if len(fails) > 0 {
				t.Fatalf("%d of %d refreshes failed, e.g. %v", len(fails), n, fails[0])
			}
			if len(pairs) != 1 {
				t.Fatalf("%d refreshes of one token on two instances gave %d pairs, want 1", n, len(pairs))
			}
			for p := range pairs {
				// The pair works on both instances.
				for _, in := range []instance{a, b} {
					if status, _ := in.do(t, "GET", "/api/profile", p[0], nil); status != 200 {
						t.Fatalf("the winning access token gets %d", status)
					}
				}
				if status, out := b.do(t, "POST", "/auth/refresh", "", map[string]any{"refresh": p[1]}); status != 200 {
					t.Fatalf("the winning refresh token: %d %v", status, out)
				}
			}
		})
	}
}

// A logout on one instance reaches the other within CacheTTL (on the clock
// both share).
func TestRevocationSeenByOtherInstance(t *testing.T) {
	for _, db := range databases {
		t.Run(db.Name, func(t *testing.T) {
			t.Parallel()
			dsn := db.DSN(t)
			clk := newClock()
			a := newInstance(t, open(t, db.Dialect, dsn), 500*time.Millisecond, clk)
			b := newInstance(t, open(t, db.Dialect, dsn), 500*time.Millisecond, clk)
			if _, err := a.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "ada@example.com", Password: password, Verified: true}); err != nil {
				t.Fatal(err)
			}
			access, _ := a.login(t, "ada@example.com")
			if status, _ := b.do(t, "GET", "/api/profile", access, nil); status != 200 {
				t.Fatalf("instance b rejects a fresh token: %d", status)
			}
			if status, _ := a.do(t, "POST", "/auth/logout", access, nil); status != 200 {
				t.Fatal("logout failed")
			}
			if status, _ := a.do(t, "GET", "/api/profile", access, nil); status != 401 {
				t.Fatalf("instance a still accepts the token: %d", status)
			}
			clk.Advance(500 * time.Millisecond)
			if status, _ := b.do(t, "GET", "/api/profile", access, nil); status != 401 {
				t.Fatalf("instance b still accepts a logged-out token after CacheTTL: %d", status)
			}
		})
	}
}

// proxy forwards TCP to a database and can be cut and restored, as a
// database that stops and comes back.
type proxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *proxy) pipe(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[s] = struct{}{}, struct{}{}
	p.mu.Unlock()
	go func() { _, _ = io.Copy(s, c); s.Close() }()
	_, _ = io.Copy(c, s)
	c.Close()
}

// down refuses new connections and cuts the open ones.
func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// proxied returns a proxy to the PostgreSQL of dsn, and dsn through it
// (connecting for 2 s at most).
func proxied(t *testing.T, dsn string) (*proxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, u.Host)
	u.Host = px.addr
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	return px, u.String()
}

func (p *proxy) up() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy up: %v", err)
	}
	p.serve(ln)
}

// A PostgreSQL that goes away mid-test: every call answers 503 (the
// middleware too: it fails closed), nothing panics, and once the database is
// back everything works, with no change half-made. SQLite is embedded and
// cannot go away like this.
func TestDatabaseDownAndBack(t *testing.T) {
	t.Parallel()
	px, dsn := proxied(t, postgresDSN(t))
	store := open(t, postgres.Dialect, dsn, sqlstore.WithQueryTimeout(2*time.Second))
	// No cache: every request asks the database.
	in := newInstance(t, store, -1, newClock())
	if _, err := in.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "ada@example.com", Password: password, Verified: true}); err != nil {
		t.Fatal(err)
	}
	access, refresh := in.login(t, "ada@example.com")

	px.down()
	for _, c := range []struct {
		method, path, access string
		body                 any
	}{
		{"GET", "/api/profile", access, nil},
		{"GET", "/auth/me", access, nil},
		{"POST", "/auth/login", "", map[string]any{"email": "ada@example.com", "password": password}},
		{"POST", "/auth/refresh", "", map[string]any{"refresh_token": refresh}},
		{"POST", "/auth/logout", access, nil},
		{"POST", "/auth/password/change", access, map[string]any{"previous_password": password, "proposed_password": "another long passphrase"}},
		{"POST", "/auth/password/forgot", "", map[string]any{"email": "ada@example.com"}},
		{"POST", "/auth/revoke", "", map[string]any{"refresh_token": refresh}},
		{"GET", "/auth/sessions", access, nil},
		{"POST", "/auth/logout/all", access, nil},
	} {
		status, out := in.do(t, c.method, c.path, c.access, c.body)
		if status != 503 || out["error"] != "unavailable" {
			t.Fatalf("%s %s with the database down: %d %v, want 503 unavailable", c.method, c.path, status, out)
		}
	}

	px.up()
	// The pool drops the connections that died, one per failed call; the
	// listener is back, so new ones connect at once.
	for try := 1; ; try++ {
		status, _ := in.do(t, "GET", "/api/profile", access, nil)
		if status == 200 {
			break
		}
		if try == 50 {
			t.Fatalf("the old access token still gets %d after the database came back", status)
		}
	}
	// Nothing the failed calls attempted took effect: the password is the
	// old one, the refresh token was not rotated, the session is live.
	if status, out := in.do(t, "POST", "/auth/refresh", "", map[string]any{"refresh_token": refresh}); status != 200 {
		t.Fatalf("refresh after recovery: %d %v", status, out)
	}
	in.login(t, "ada@example.com")
}

// Failed logins on one instance count on the other: the counters live in
// the shared database.
func TestThrottleSharedAcrossInstances(t *testing.T) {
	for _, db := range databases {
		t.Run(db.Name, func(t *testing.T) {
			t.Parallel()
			dsn := db.DSN(t)
			clk := newClock()
			a := newInstance(t, open(t, db.Dialect, dsn), time.Second, clk)
			b := newInstance(t, open(t, db.Dialect, dsn), time.Second, clk)
			if _, err := a.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "ada@example.com", Password: password, Verified: true}); err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				in := []instance{a, b}[i%2]
				if status, out := in.do(t, "POST", "/auth/login", "", map[string]any{"email": "ada@example.com", "password": "wrong password!"}); status != 401 {
					t.Fatalf("failure %d: %d %v", i+1, status, out)
				}
			}
			for _, in := range []instance{a, b} {
				if status, out := in.do(t, "POST", "/auth/login", "", map[string]any{"email": "ada@example.com", "password": password}); status != 429 || out["error"] != "rate_limited" {
					t.Fatalf("after 10 failures across instances: %d %v", status, out)
				}
			}
		})
	}
}
