package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
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

// TestNewcomerSession is the README's curl session.
func TestNewcomerSession(t *testing.T) {
	c := newTestServer(t, options{})
	const email, pw, pw2 = "ada@example.com", "correct horse battery", "a new long passphrase"

	c.must(201, "POST", "/auth/signup", "", map[string]any{"email": email, "password": pw})
	c.must(403, "POST", "/auth/login", "", map[string]any{"email": email, "password": pw})
	box := c.must(200, "GET", "/dev/outbox?to="+email, "", nil)
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
	ref := c.must(200, "POST", "/auth/refresh", "", map[string]any{"refresh": login["refresh"]})
	chg := c.must(200, "POST", "/auth/password/change", ref["access"].(string), map[string]any{"previous_password": pw, "proposed_password": pw2})
	c.must(401, "GET", "/api/profile", ref["access"].(string), nil)
	c.must(200, "GET", "/api/profile", chg["access"].(string), nil)
	c.must(200, "POST", "/auth/logout", chg["access"].(string), nil)
	c.must(401, "GET", "/api/profile", chg["access"].(string), nil)
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
	if o.store != "sqlite" || o.addr != ":3000" {
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
