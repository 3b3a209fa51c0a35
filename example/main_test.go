package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fiberauth/fiberauth"
)

type client struct {
	t   *testing.T
	srv *server
}

func (c client) call(method, path, access string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Host = "localhost:3000" // as a browser on the developer's machine names the example
	req.Header.Set("Content-Type", "application/json")
	if access != "" {
		req.Header.Set("Authorization", "Bearer "+access)
	}
	resp, err := c.srv.app.Test(req, -1)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("%s %s: %d %q is not JSON", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// flush waits for what fiberauth does after answering (signup accounts,
// codes on their way).
func (c client) flush() {
	c.t.Helper()
	if err := c.srv.auth.Flush(context.Background()); err != nil {
		c.t.Fatal(err)
	}
}

func (c client) must(want int, method, path, access string, body any) map[string]any {
	c.t.Helper()
	got, out := c.call(method, path, access, body)
	if got != want {
		c.t.Fatalf("%s %s: %d %v, want %d", method, path, got, out, want)
	}
	return out
}

func newTestServer(t *testing.T, opts options) client {
	t.Helper()
	if opts.store == "" {
		opts.store = "memory"
	}
	srv, err := newServer(context.Background(), opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.close() })
	return client{t: t, srv: srv}
}

// TestNewcomerSession is the README's curl session, on the default address
// (loopback, so the dev outbox is on).
func TestNewcomerSession(t *testing.T) {
	c := newTestServer(t, options{dev: true})
	const email, pw, pw2 = "ada@example.com", "correct horse battery", "a new long passphrase"

	c.must(202, "POST", "/auth/signup", "", map[string]any{"email": email, "password": pw})
	box := c.must(200, "GET", "/dev/outbox?to="+email, "", nil)
	c.must(403, "POST", "/auth/login", "", map[string]any{"email": email, "password": pw})
	msgs := box["messages"].([]any)
	if len(msgs) != 1 {
		t.Fatalf("outbox: %v", box)
	}
	m := msgs[0].(map[string]any)
	if m["to"] != email || !strings.Contains(m["purpose"].(string), "email") || m["sent_at"] == "" {
		t.Fatalf("outbox message %v", m)
	}
	c.must(200, "POST", "/auth/email/confirm", "", map[string]any{"email": email, "code": m["code"]})
	login := c.must(200, "POST", "/auth/login", "", map[string]any{"email": email, "password": pw})
	prof := c.must(200, "GET", "/api/profile", login["access"].(string), nil)
	if prof["email"] != email || prof["user_id"] == "" {
		t.Fatalf("profile %v", prof)
	}
	c.must(401, "GET", "/api/profile", "", nil)
	if me := c.must(200, "GET", "/api/me", login["access"].(string), nil); me["user_id"] != prof["user_id"] {
		t.Fatalf("me %v, profile %v", me, prof)
	}
	c.must(401, "GET", "/api/me", "", nil)
	ref := c.must(200, "POST", "/auth/refresh", "", map[string]any{"refresh": login["refresh"]})
	chg := c.must(200, "POST", "/auth/password/change", ref["access"].(string), map[string]any{"previous_password": pw, "proposed_password": pw2})
	c.must(401, "GET", "/api/profile", ref["access"].(string), nil)
	c.must(200, "GET", "/api/profile", chg["access"].(string), nil)
	c.must(200, "POST", "/auth/logout", chg["access"].(string), nil)
	c.must(401, "GET", "/api/profile", chg["access"].(string), nil)
	c.must(401, "GET", "/api/me", chg["access"].(string), nil)
	c.must(401, "POST", "/auth/login", "", map[string]any{"email": email, "password": pw})
	c.must(200, "POST", "/auth/login", "", map[string]any{"email": email, "password": pw2})

	// Reset codes reach the outbox too.
	c.must(202, "POST", "/auth/password/forgot", "", map[string]any{"email": email})
	msgs = c.must(200, "GET", "/dev/outbox?to="+email, "", nil)["messages"].([]any)
	if len(msgs) != 2 || !strings.Contains(msgs[1].(map[string]any)["purpose"].(string), "reset") {
		t.Fatalf("outbox after forgot: %v", msgs)
	}
}

func TestAdminAndHealth(t *testing.T) {
	c := newTestServer(t, options{adminEmail: "Root@Example.com", adminPassword: "root password long"})
	// A second start on the same store keeps the admin as it is.
	if err := ensureAdmin(context.Background(), c.srv.auth, "root@example.com", "root password long"); err != nil {
		t.Fatal(err)
	}
	admin := c.must(200, "POST", "/auth/login", "", map[string]any{"email": "root@example.com", "password": "root password long"})
	if out := c.must(200, "GET", "/api/admin/ping", admin["access"].(string), nil); out["ok"] != true {
		t.Fatalf("ping: %v", out)
	}
	if _, err := c.srv.auth.CreateUser(context.Background(), fiberauthUser("ada@example.com")); err != nil {
		t.Fatal(err)
	}
	ada := c.must(200, "POST", "/auth/login", "", map[string]any{"email": "ada@example.com", "password": "correct horse battery"})
	if out := c.must(403, "GET", "/api/admin/ping", ada["access"].(string), nil); out["error"] != "forbidden" {
		t.Fatalf("ping as a user: %v", out)
	}
	c.must(200, "GET", "/healthz", "", nil)
	if out := c.must(404, "GET", "/no/such/route", "", nil); out["error"] != "not_found" {
		t.Fatalf("404 body: %v", out)
	}
}

func TestParseOptions(t *testing.T) {
	env := map[string]string{"ADDR": ":9999", "FIBERAUTH_SECRET": "s", "STORE": "memory"}
	o, err := parseOptions([]string{"-addr", ":8080"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != ":8080" || o.secret != "s" || o.store != "memory" || o.dsn != "fiberauth-example.db" {
		t.Fatalf("options %+v", o)
	}
	o, _ = parseOptions(nil, func(string) string { return "" }, io.Discard)
	if o.store != "sqlite" || o.addr != "127.0.0.1:3000" || !o.dev {
		t.Fatalf("options %+v", o)
	}
	if _, err := parseOptions([]string{"-admin-email", "a@example.com"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("an admin email without a password was accepted")
	}
	if _, err := newServer(context.Background(), options{store: "memory", secret: "short"}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a short secret was accepted")
	}
	if _, err := newServer(context.Background(), options{store: "nope"}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("an unknown store was accepted")
	}
}

// TestParseOptionsDev: the example listens on loopback unless told
// otherwise, and serves the dev outbox by default only there; -dev, then
// DEV, say otherwise either way.
func TestParseOptionsDev(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		env      map[string]string
		wantAddr string
		wantDev  bool
	}{
		{"default", nil, nil, "127.0.0.1:3000", true},
		{"loopback", []string{"-addr", "127.0.0.1:8080"}, nil, "127.0.0.1:8080", true},
		{"loopback /8", []string{"-addr", "127.1.2.3:3000"}, nil, "127.1.2.3:3000", true},
		{"localhost", []string{"-addr", "localhost:3000"}, nil, "localhost:3000", true},
		{"LOCALHOST", []string{"-addr", "LOCALHOST:3000"}, nil, "LOCALHOST:3000", true},
		{"ipv6 loopback", []string{"-addr", "[::1]:3000"}, nil, "[::1]:3000", true},
		{"ipv4-mapped loopback", []string{"-addr", "[::ffff:127.0.0.1]:3000"}, nil, "[::ffff:127.0.0.1]:3000", true},
		{"loopback from ADDR", nil, map[string]string{"ADDR": "localhost:4000"}, "localhost:4000", true},

		{"every interface", []string{"-addr", ":3000"}, nil, ":3000", false},
		{"0.0.0.0", []string{"-addr", "0.0.0.0:3000"}, nil, "0.0.0.0:3000", false},
		{"LAN address", []string{"-addr", "192.168.1.5:3000"}, nil, "192.168.1.5:3000", false},
		{"ipv6 any", []string{"-addr", "[::]:3000"}, nil, "[::]:3000", false},
		{"host name", []string{"-addr", "example.com:3000"}, nil, "example.com:3000", false},
		{"localhost look-alike", []string{"-addr", "localhost.example.com:3000"}, nil, "localhost.example.com:3000", false},
		{"no port", []string{"-addr", "127.0.0.1"}, nil, "127.0.0.1", false},
		{"every interface from ADDR", nil, map[string]string{"ADDR": ":3000"}, ":3000", false},
		{"-addr over ADDR", []string{"-addr", "127.0.0.1:3000"}, map[string]string{"ADDR": ":3000"}, "127.0.0.1:3000", true},

		{"-dev on every interface", []string{"-addr", ":3000", "-dev"}, nil, ":3000", true},
		{"-dev=true on a LAN address", []string{"-addr", "192.168.1.5:3000", "-dev=true"}, nil, "192.168.1.5:3000", true},
		{"DEV=1 on every interface", nil, map[string]string{"ADDR": "0.0.0.0:3000", "DEV": "1"}, "0.0.0.0:3000", true},
		{"DEV=true on ipv6 any", []string{"-addr", "[::]:3000"}, map[string]string{"DEV": "true"}, "[::]:3000", true},
		{"-dev=false on loopback", []string{"-dev=false"}, nil, "127.0.0.1:3000", false},
		{"DEV=0 on loopback", nil, map[string]string{"DEV": "0"}, "127.0.0.1:3000", false},
		{"DEV=false on localhost", []string{"-addr", "localhost:3000"}, map[string]string{"DEV": "false"}, "localhost:3000", false},
		{"-dev=false over DEV=1", []string{"-dev=false"}, map[string]string{"DEV": "1"}, "127.0.0.1:3000", false},
		{"-dev over DEV=0", []string{"-addr", ":3000", "-dev"}, map[string]string{"DEV": "0"}, ":3000", true},
		{"empty DEV is unset", []string{"-addr", ":3000"}, map[string]string{"DEV": ""}, ":3000", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOptions(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if o.addr != tc.wantAddr || o.dev != tc.wantDev {
				t.Fatalf("addr %q dev %v, want %q %v", o.addr, o.dev, tc.wantAddr, tc.wantDev)
			}
		})
	}

	for _, bad := range []struct {
		args []string
		env  map[string]string
	}{
		{nil, map[string]string{"DEV": "maybe"}},
		{[]string{"-dev=maybe"}, nil},
	} {
		if o, err := parseOptions(bad.args, func(k string) string { return bad.env[k] }, io.Discard); err == nil {
			t.Errorf("%v %v: accepted, dev %v", bad.args, bad.env, o.dev)
		}
	}

	var help bytes.Buffer
	if _, err := parseOptions([]string{"-h"}, func(string) string { return "" }, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"-dev", "(DEV", "/dev/outbox", "loopback", `default "127.0.0.1:3000"`} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("the flag help lacks %q:\n%s", want, help.String())
		}
	}
}

// TestDevOutbox: with -dev the outbox shows the codes and the page links to
// it; without, /dev/outbox is a JSON 404, codes are only logged as sent
// (never the code), and the page says to check your email.
func TestDevOutbox(t *testing.T) {
	const email = "ada@example.com"
	signupAndForgot := func(c client) {
		c.t.Helper()
		c.must(202, "POST", "/auth/signup", "", map[string]any{"email": email, "password": "correct horse battery"})
		c.flush() // the account exists once the signup's work is done
		c.must(202, "POST", "/auth/password/forgot", "", map[string]any{"email": email})
		c.flush()
	}

	t.Run("off", func(t *testing.T) {
		rec := &recorder{}
		srv, err := newServer(context.Background(), options{store: "memory"}, slog.New(rec))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.close() })
		c := client{t: t, srv: srv}
		if srv.outbox != nil {
			t.Fatal("an outbox without -dev")
		}
		if out := c.must(404, "GET", "/dev/outbox?to="+email, "", nil); out["error"] != "not_found" || out["code"] != float64(404) || out["message"] != "Not Found" {
			t.Fatalf("/dev/outbox without -dev: %v", out)
		}
		signupAndForgot(c)
		c.must(404, "GET", "/dev/outbox?to="+email, "", nil)

		var purposes []string
		for _, r := range rec.all() {
			if !strings.HasPrefix(r.Message, "code sent") {
				continue
			}
			attrs := map[string]string{}
			r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
			if len(attrs) != 2 || attrs["user_id"] == "" || attrs["purpose"] == "" {
				t.Fatalf("the code-sent log has %v, want user_id and purpose only", attrs)
			}
			purposes = append(purposes, attrs["purpose"])
		}
		if len(purposes) != 2 || !strings.Contains(purposes[0], "email") || !strings.Contains(purposes[1], "reset") {
			t.Fatalf("logged as sent: %v", purposes)
		}
		if page := c.page(); !strings.Contains(page, `data-outbox="off"`) {
			t.Fatal(`the page without -dev does not say data-outbox="off"`)
		}
	})

	t.Run("on", func(t *testing.T) {
		rec := &recorder{}
		srv, err := newServer(context.Background(), options{store: "memory", dev: true}, slog.New(rec))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.close() })
		c := client{t: t, srv: srv}
		if msgs := c.must(200, "GET", "/dev/outbox?to="+email, "", nil)["messages"].([]any); len(msgs) != 0 {
			t.Fatalf("outbox before signup: %v", msgs)
		}
		signupAndForgot(c)
		if msgs := c.must(200, "GET", "/dev/outbox?to="+email, "", nil)["messages"].([]any); len(msgs) != 2 {
			t.Fatalf("outbox after signup and forgot: %v", msgs)
		}
		// Only to a request that names the server by address or as
		// localhost: not to a page on a name rebound to it.
		for host, want := range map[string]int{"evil.example": 403, "evil.example:3000": 403, "127.0.0.1:3000": 200, "[::1]:3000": 200, "LOCALHOST": 200} {
			req := httptest.NewRequest("GET", "/dev/outbox", nil)
			req.Host = host
			res, err := srv.app.Test(req, -1)
			if err != nil || res.StatusCode != want {
				t.Fatalf("/dev/outbox to Host %s: %v %v, want %d", host, res.StatusCode, err, want)
			}
		}
		// Without ?to= it lists every message, to every address.
		c.must(202, "POST", "/auth/signup", "", map[string]any{"email": "bob@example.com", "password": "correct horse battery"})
		c.flush()
		all := c.must(200, "GET", "/dev/outbox", "", nil)["messages"].([]any)
		if len(all) != 3 || all[0].(map[string]any)["to"] != email || all[2].(map[string]any)["to"] != "bob@example.com" {
			t.Fatalf("outbox without ?to=: %v", all)
		}
		if msgs := c.must(200, "GET", "/dev/outbox?to=bob@example.com", "", nil)["messages"].([]any); len(msgs) != 1 {
			t.Fatalf("outbox to bob: %v", msgs)
		}
		for _, r := range rec.all() {
			if strings.HasPrefix(r.Message, "code sent") {
				t.Fatalf("with -dev the code went to the log too: %v", r)
			}
		}
		if page := c.page(); !strings.Contains(page, `data-outbox="on"`) {
			t.Fatal(`the page with -dev does not say data-outbox="on"`)
		}
	})
}

// TestRun starts the example on a free loopback port: the startup line says
// where it listens and that the dev outbox is on, the server answers there,
// and it stops when its context ends.
func TestRun(t *testing.T) {
	rec, started, cancel, done := startRun(t)
	defer cancel()
	attrs := map[string]string{}
	started.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	if !strings.HasPrefix(attrs["addr"], "127.0.0.1:") || attrs["addr"] == "127.0.0.1:0" || attrs["dev_outbox"] != "on" {
		t.Fatalf("startup line %q %v", started.Message, attrs)
	}
	resp, err := http.Get("http://" + attrs["addr"] + "/dev/outbox?to=ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/dev/outbox: %d", resp.StatusCode)
	}
	for _, r := range rec.all() {
		if r.Level == slog.LevelWarn && strings.Contains(r.Message, "dev") {
			t.Fatalf("a warning about -dev on loopback: %q", r.Message)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestListenNetwork(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:3000": "tcp4", ":3000": "tcp4", "0.0.0.0:3000": "tcp4", "localhost:3000": "tcp4",
		"[::ffff:127.0.0.1]:3000": "tcp4", "[::1]:3000": "tcp6", "[::]:3000": "tcp6", "[fe80::1%eth0]:3000": "tcp6",
	} {
		if got := listenNetwork(addr); got != want {
			t.Errorf("listenNetwork(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestLogStart: -dev on another address than loopback is said loudly.
func TestLogStart(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		dev      bool
		wantWarn bool
		wantDev  string
	}{
		{"127.0.0.1:3000", true, false, "on"},
		{"127.0.0.1:3000", false, false, "off"},
		{":3000", false, false, "off"},
		{":3000", true, true, "on"},
		{"0.0.0.0:3000", true, true, "on"},
		{"192.168.1.5:3000", true, true, "on"},
		{"[::1]:3000", true, false, "on"},
	} {
		rec := &recorder{}
		logStart(slog.New(rec), options{addr: tc.addr, dev: tc.dev}, tc.addr)
		var warned bool
		var dev string
		for _, r := range rec.all() {
			if r.Level == slog.LevelWarn {
				warned = strings.Contains(r.Message, "anyone who can reach the server")
			}
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "dev_outbox" {
					dev = a.Value.String()
				}
				return true
			})
		}
		if warned != tc.wantWarn || dev != tc.wantDev {
			t.Errorf("%s dev %v: warned %v dev_outbox %q, want %v %q", tc.addr, tc.dev, warned, dev, tc.wantWarn, tc.wantDev)
		}
	}
}

// recorder is a slog handler that keeps the records; the first "listening"
// record also goes to started, when set.
type recorder struct {
	mu      sync.Mutex
	recs    []slog.Record
	started chan slog.Record // set before use, never changed
	said    bool             // a record went to started
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recorder) WithGroup(string) slog.Handler            { return h }
func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	if h.started != nil && !h.said && strings.Contains(r.Message, "listening") {
		h.started <- r.Clone()
		h.said = true
	}
	return nil
}

func (h *recorder) all() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.recs)
}

// page returns the HTML of GET /.
func (c client) page() string {
	c.t.Helper()
	resp, err := c.srv.app.Test(httptest.NewRequest("GET", "/", nil), -1)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET /: %d", resp.StatusCode)
	}
	return string(b)
}

func fiberauthUser(email string) fiberauth.NewUser {
	return fiberauth.NewUser{Email: email, Password: "correct horse battery", Verified: true}
}

// Restarting the example on the same SQLite file keeps users and sessions:
// an old refresh token still refreshes.
func TestRestartKeepsSessions(t *testing.T) {
	opts := options{store: "sqlite", dsn: filepath.Join(t.TempDir(), "example.db"), secret: "0123456789abcdef0123456789abcdef-restart"}
	first := newTestServer(t, opts)
	if _, err := first.srv.auth.CreateUser(context.Background(), fiberauthUser("ada@example.com")); err != nil {
		t.Fatal(err)
	}
	login := first.must(200, "POST", "/auth/login", "", map[string]any{"email": "ada@example.com", "password": "correct horse battery"})
	if err := first.srv.close(); err != nil {
		t.Fatal(err)
	}

	second := newTestServer(t, opts)
	second.must(200, "GET", "/api/profile", login["access"].(string), nil)
	second.must(200, "POST", "/auth/refresh", "", map[string]any{"refresh": login["refresh"]})
}

func TestPostgresStore(t *testing.T) {
	dsn := os.Getenv("FIBERAUTH_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("FIBERAUTH_TEST_POSTGRES_DSN is not set; .ci/run starts a PostgreSQL and sets it")
	}
	c := newTestServer(t, options{store: "postgres", dsn: dsn})
	email := strings.ToLower(rand.Text()) + "@example.com"
	if _, err := c.srv.auth.CreateUser(context.Background(), fiberauthUser(email)); err != nil {
		t.Fatal(err)
	}
	login := c.must(200, "POST", "/auth/login", "", map[string]any{"email": email, "password": "correct horse battery"})
	c.must(200, "GET", "/api/profile", login["access"].(string), nil)
	c.must(200, "GET", "/healthz", "", nil)
	if _, err := newServer(context.Background(), options{store: "postgres", dsn: "fiberauth-example.db"}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("-store postgres with a file DSN was accepted")
	}
}

// An admin creates a user with a temporary password; its owner must set a
// new one at first login.
func TestAdminCreatesUser(t *testing.T) {
	c := newTestServer(t, options{adminEmail: "root@example.com", adminPassword: "root password long"})
	admin := c.must(200, "POST", "/auth/login", "", map[string]any{"email": "root@example.com", "password": "root password long"})["access"].(string)
	body := map[string]any{"email": "New@Example.com", "temporary_password": "temporary secret 1", "roles": []string{"editor"}}

	out := c.must(201, "POST", "/api/admin/users", admin, body)
	u := out["user"].(map[string]any)
	if u["email"] != "new@example.com" || u["email_verified"] != true || u["roles"].([]any)[0] != "editor" {
		t.Fatalf("created user %v", u)
	}
	if out := c.must(409, "POST", "/api/admin/users", admin, body); out["error"] != "conflict" {
		t.Fatalf("duplicate: %v", out)
	}
	if out := c.must(400, "POST", "/api/admin/users", admin, map[string]any{"email": "x@example.com", "temporary_password": "short"}); out["where"] != "temporary_password" {
		t.Fatalf("weak temporary password: %v", out)
	}
	c.must(401, "POST", "/api/admin/users", "", body)

	ch := c.must(200, "POST", "/auth/login", "", map[string]any{"email": "new@example.com", "password": "temporary secret 1"})
	if ch["challenge_name"] != "NEW_PASSWORD_REQUIRED" || ch["access"] != nil {
		t.Fatalf("first login: %v", ch)
	}
	tokens := c.must(200, "POST", "/auth/login/new-password", "", map[string]any{"session": ch["session"], "email": "new@example.com", "new_password": "my own long password"})
	c.must(200, "GET", "/api/profile", tokens["access"].(string), nil)
	c.must(403, "POST", "/api/admin/users", tokens["access"].(string), body)
}

// /metrics serves fiberauth's metrics (and the Go runtime's) in
// Prometheus's text format: a failed login shows there.
func TestMetrics(t *testing.T) {
	c := newTestServer(t, options{})
	c.must(401, "POST", "/auth/login", "", map[string]any{"email": "nobody@example.com", "password": "correct horse battery"})
	req := httptest.NewRequest("GET", "/metrics", nil)
	if res, err := c.srv.app.Test(req, -1); err != nil || res.StatusCode != 403 {
		t.Fatalf("/metrics to Host %s: %v %v, want 403", req.Host, res.StatusCode, err)
	}
	req = httptest.NewRequest("GET", "/metrics", nil)
	req.Host = "127.0.0.1:3000"
	res, err := c.srv.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	for _, want := range []string{`fiberauth_logins_total{outcome="failed",reason="unknown_user"} 1`, "fiberauth_hash_queue_wait_seconds_count 1", "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics: %d, no %q in:\n%s", res.StatusCode, want, body)
		}
	}
}

// startRun runs the example as main does, on a free loopback port with the
// memory store and the dev outbox, and returns once it listens: its log,
// the startup line, what ends it, and where run's error arrives.
func startRun(t *testing.T) (rec *recorder, started slog.Record, cancel context.CancelFunc, done chan error) {
	t.Helper()
	rec = &recorder{started: make(chan slog.Record, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() {
		done <- run(ctx, options{addr: "127.0.0.1:0", store: "memory", dev: true}, slog.New(rec))
	}()
	select {
	case started = <-rec.started:
	case err := <-done:
		cancel()
		t.Fatalf("run ended before listening: %v", err)
	}
	return rec, started, cancel, done
}

// /api/2fa/qr draws the QR code of an otpauth://totp URL for a signed-in
// caller, and refuses anything else.
func TestQRCode(t *testing.T) {
	c := newTestServer(t, options{})
	post := func(access, body string) *http.Response {
		t.Helper()
		req := httptest.NewRequest("POST", "/api/2fa/qr", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if access != "" {
			req.Header.Set("Authorization", "Bearer "+access)
		}
		res, err := c.srv.app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	const url = `{"otpauth_url":"otpauth://totp/fiberauth:ada@example.com?secret=JBSWY3DPEHPK3PXP&issuer=fiberauth"}`
	if res := post("", url); res.StatusCode != 401 {
		t.Fatalf("without a token: %d", res.StatusCode)
	}
	access := signedIn(t, c)
	res := post(access, url)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/png" || !bytes.HasPrefix(body, []byte("\x89PNG")) || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("QR code: %d %s %q", res.StatusCode, res.Header, body[:min(len(body), 8)])
	}
	for _, bad := range []string{`{}`, `not json`, `{"otpauth_url":"https://example.com"}`, `{"otpauth_url":"otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP"}`, `{"otpauth_url":"otpauth://totp/x"}`, `{"otpauth_url":"` + strings.Repeat("a", 2000) + `"}`} {
		if res := post(access, bad); res.StatusCode != 400 {
			t.Fatalf("%.40s: %d, want 400", bad, res.StatusCode)
		}
	}
}

// signedIn creates a verified account on c's server and signs it in: its
// access token.
func signedIn(t *testing.T, c client) string {
	t.Helper()
	const email, pw = "qr@example.com", "correct horse battery"
	if _, err := c.srv.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: email, Password: pw, Verified: true}); err != nil {
		t.Fatal(err)
	}
	return c.must(200, "POST", "/auth/login", "", map[string]any{"email": email, "password": pw})["access"].(string)
}
