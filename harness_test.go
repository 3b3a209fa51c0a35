package fiberauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/internal/testdb"
	"github.com/fiberauth/fiberauth/memstore"
	"github.com/fiberauth/fiberauth/sqlstore"
)

// testSecret is 32 bytes, the least New accepts.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

const goodPassword = "correct horse battery staple"

// clock is a fake Config.Now that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

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

// harness is an app with fiberauth mounted on /auth (body mode) and
// /web/auth (cookie mode), and protected routes:
// /api/profile (any user) and /api/admin/ping (role admin).
type harness struct {
	t     testing.TB
	app   *fiber.App
	auth  *fiberauth.Auth
	store fiberauth.Store
	clock *clock
	logs  *syncBuffer

	mu      sync.Mutex
	outbox  []fiberauth.CodeMessage
	events  []fiberauth.Event
	secrets []string // every password, token and code the test saw
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testEpoch is the harness clock's first reading.
var testEpoch = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func newHarness(t testing.TB, configure ...func(*fiberauth.Config)) *harness {
	t.Helper()
	return newHarnessOn(t, memstore.New(), testEpoch, configure...)
}

// newHarnessOn is newHarness on another store (perhaps with users and
// sessions already in it), and the clock at now.
func newHarnessOn(t testing.TB, store fiberauth.Store, now time.Time, configure ...func(*fiberauth.Config)) *harness {
	t.Helper()
	h := &harness{
		t:     t,
		store: store,
		clock: &clock{t: now},
		logs:  &syncBuffer{},
	}
	cfg := fiberauth.Config{
		Store:       h.store,
		Secret:      testSecret,
		Now:         h.clock.Now,
		AllowSignup: true,
		Logger:      slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		SendCode: func(_ context.Context, m fiberauth.CodeMessage) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.outbox = append(h.outbox, m)
			h.secrets = append(h.secrets, m.Code)
			return nil
		},
		OnEvent: func(e fiberauth.Event) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.events = append(h.events, e)
		},
	}
	fiberauth.CheapHashing(&cfg) // a test about the hasher undoes it with fiberauth.RealHashing
	for _, f := range configure {
		f(&cfg)
	}
	a, err := fiberauth.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	h.auth = a
	h.secrets = append(h.secrets, goodPassword)
	// Whatever the test did, no secret may reach a log line.
	t.Cleanup(func() {
		logs := h.logs.String()
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, s := range h.secrets {
			if s != "" && strings.Contains(logs, s) {
				t.Errorf("a secret reached the log: %q", s)
			}
		}
	})
	// Room for the 8 KiB Authorization headers the middleware must refuse
	// itself (fasthttp's default of 4 KiB would refuse them first).
	h.app = fiber.New(fiber.Config{ReadBufferSize: 32 << 10})
	a.Mount(h.app.Group("/auth"))
	a.Mount(h.app.Group("/web/auth"), fiberauth.WithCookieTransport())
	api := h.app.Group("/api", a.Middleware())
	api.Get("/profile", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"user_id": fiberauth.UserIDFrom(c), "sid": fiberauth.SessionIDFrom(c)})
	})
	api.Get("/admin/ping", a.RequireRole("admin"), func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"ok": true})
	})
	return h
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r response) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

func (r response) obj(key string) map[string]any {
	m, _ := r.body[key].(map[string]any)
	return m
}

// do sends a request. body is JSON-encoded unless it is a string or []byte;
// headers come in name, value pairs.
func (h *harness) do(method, path string, body any, headers ...string) response {
	h.t.Helper()
	var sent []byte
	switch b := body.(type) {
	case nil:
	case string:
		sent = []byte(b)
	case []byte:
		sent = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		sent = j
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(sent))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.app.Test(req, -1)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	checkOpenAPI(h.t, h.mounted, openAPIRequest(method, path, sent, req.Header), resp.StatusCode, resp.Header, raw)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			h.t.Fatalf("%s %s answered %d with a body that is not a JSON object: %q", method, path, r.status, raw)
		}
	}
	h.mu.Lock()
	h.secrets = append(h.secrets, r.str("access_token"), r.str("refresh_token"))
	h.mu.Unlock()
	return r
}

// mounted reports whether the app has a route (not middleware) for method
// and path.
func (h *harness) mounted(method, path string) bool {
	for _, r := range h.app.GetRoutes(true) {
		if r.Method == method && routeMatches(r.Path, path) {
			return true
		}
	}
	return false
}

// routeMatches reports whether a Fiber route path (with :params) matches
// path, segment by segment.
func routeMatches(route, path string) bool {
	rs, ps := strings.Split(route, "/"), strings.Split(path, "/")
	if len(rs) != len(ps) {
		return false
	}
	for i := range rs {
		if rs[i] != ps[i] && !(strings.HasPrefix(rs[i], ":") && ps[i] != "") {
			return false
		}
	}
	return true
}

// keep adds secrets the logs must never hold (the check when the test
// ends); safe beside the code deliveries, which run in the background.
func (h *harness) keep(secrets ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.secrets = append(h.secrets, secrets...)
}

func bearer(access string) []string { return []string{"Authorization", "Bearer " + access} }

// expect fails unless r has status and, for errors, the error code.
func expect(t testing.TB, r response, status int, errCode string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.raw)
	}
	if errCode == "" {
		return
	}
	if r.str("error") != errCode || r.str("message") == "" || r.body["code"] != float64(status) {
		t.Fatalf("error body %s, want error %q with message and code %d", r.raw, errCode, status)
	}
	if errCode == "invalid_token" {
		desc, ok := tokenRefusals[r.str("reason")]
		if want := `Bearer error="invalid_token", error_description="` + desc + `"`; !ok || r.header.Get("WWW-Authenticate") != want {
			t.Fatalf("reason %q, WWW-Authenticate %q; body %s", r.str("reason"), r.header.Get("WWW-Authenticate"), r.raw)
		}
	}
}

// tokenRefusals are the reasons of a 401 invalid_token (docs/api.md) and
// the error_description of WWW-Authenticate that goes with each.
var tokenRefusals = map[string]string{
	"missing":   "No access token was sent",
	"malformed": "The access token is not valid",
	"expired":   "The access token expired",
	"revoked":   "The session has ended",
	"stale":     "The account changed since the access token was issued",
}

// expectRefused fails unless r is a 401 invalid_token for reason.
func expectRefused(t testing.TB, r response, reason string) {
	t.Helper()
	expect(t, r, 401, "invalid_token")
	if r.str("reason") != reason {
		t.Fatalf("refused for %q, want %q; body %s", r.str("reason"), reason, r.raw)
	}
}

// expectField fails unless r is a 400 invalid_request naming where.
func expectField(t testing.TB, r response, where string) {
	t.Helper()
	expect(t, r, 400, "invalid_request")
	if r.str("where") != where || r.str("reason") == "" {
		t.Fatalf("where/reason = %q/%q, want where %q; body %s", r.str("where"), r.str("reason"), where, r.raw)
	}
}

// createUser makes a verified user through the Go API.
func (h *harness) createUser(email string, roles ...string) fiberauth.User {
	h.t.Helper()
	u, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: email, Password: goodPassword, Roles: roles, Verified: true})
	if err != nil {
		h.t.Fatalf("CreateUser: %v", err)
	}
	return u
}

// pair is what a token response gave.
type pair struct {
	access, refresh, sid, etag string
}

func pairOf(t testing.TB, r response) pair {
	t.Helper()
	expect(t, r, 200, "")
	p := pair{access: r.str("access_token"), refresh: r.str("refresh_token"), sid: r.obj("session")["session_family_id"].(string), etag: r.str("user_etag")}
	if p.access == "" || p.refresh == "" || p.sid == "" || p.etag == "" {
		t.Fatalf("incomplete token response: %s", r.raw)
	}
	return p
}

func (h *harness) login(name, password string) pair {
	h.t.Helper()
	return pairOf(h.t, h.do("POST", "/auth/login", map[string]any{"email": name, "password": password}))
}

func (h *harness) refresh(token string) response {
	h.t.Helper()
	return h.do("POST", "/auth/refresh", map[string]any{"refresh_token": token})
}

// profileStatus is what the protected route answers to access.
func (h *harness) profileStatus(access string) int {
	h.t.Helper()
	return h.do("GET", "/api/profile", nil, bearer(access)...).status
}

// flush waits for the work the Auth does after answering (signup and
// reset sends, cleanup).
func (h *harness) flush() {
	h.t.Helper()
	if err := h.auth.Flush(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

// lastCode is the newest code sent to email for purpose.
func (h *harness) lastCode(email, purpose string) string {
	h.t.Helper()
	h.flush()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.outbox) - 1; i >= 0; i-- {
		if m := h.outbox[i]; m.To == email && m.Purpose == purpose {
			return m.Code
		}
	}
	h.t.Fatalf("no %s code sent to %s", purpose, email)
	return ""
}

func (h *harness) sawEvent(typ fiberauth.EventType) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.events {
		if e.Type == typ {
			return true
		}
	}
	return false
}

var quiet = slog.New(slog.DiscardHandler)

// newRequest is a bare request with a bearer token, for apps other than the
// harness's.
func newRequest(method, path, access string) (*http.Request, error) {
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("Authorization", "Bearer "+access)
	return req, nil
}

// storeKinds are the stores a test that touches the store runs on: memory,
// SQLite and PostgreSQL (skipped with a message where no server is set;
// .ci/run sets one).
var storeKinds = []struct {
	name string
	open func(t testing.TB) fiberauth.Store
}{
	{"memory", func(testing.TB) fiberauth.Store { return memstore.New() }},
	{"sqlite", func(t testing.TB) fiberauth.Store { return openSQL(t, testdb.All[0]) }},
	{"postgres", func(t testing.TB) fiberauth.Store { return openSQL(t, testdb.All[1]) }},
}

func openSQL(t testing.TB, db testdb.Database) fiberauth.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), db.Dialect, db.DSN(t))
	if err != nil {
		t.Fatalf("sqlstore.Open(%s): %v", db.Name, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// onEveryStore runs test as a subtest on each store kind, in parallel.
func onEveryStore(t *testing.T, test func(t *testing.T, store fiberauth.Store)) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			test(t, kind.open(t))
		})
	}
}
