package fiberauth_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// rawDo sends a request and returns status and body, without the harness's
// JSON decoding (a hostile request may be answered with anything).
func (h *harness) rawDo(method, path string, body []byte, headers ...string) (int, string) {
	h.t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.app.Test(req, -1)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// No panic and no 5xx on hostile input at any profile endpoint.
func TestProfilesHostileBodies(t *testing.T) {
	t.Parallel()
	h := allProfiles(t)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	fields := []string{"username", "email", "password", "sliding", "challenge", "code", "refresh", "refresh_token", "etag",
		"old_password", "new_password", "session", "access_token", "previous_password", "proposed_password", "confirmation_code"}
	var bodies []string
	bodies = append(bodies, "null", "[]", `"x"`, "1", "true", "{", `{"a":`, "{}", `{"":1}`, "\xff\xfe", `{"a":"\ud800"}`,
		strings.Repeat("[", 8000)+strings.Repeat("]", 8000), `{"x":`+strings.Repeat("[", 5000)+strings.Repeat("]", 5000)+`}`,
		strings.Repeat(" ", 17000)+"{}", `{"username":"a","username":"b"}`, `{"USERNAME":"a"}`, `{"ſliding":true}`)
	for _, f := range fields {
		for _, v := range []string{"null", "1", "1e400", "true", `[]`, `{}`, `""`, `"\u0000"`, `"` + strings.Repeat("a", 10000) + `"`, `"  "`, `"ø"`} {
			bodies = append(bodies, `{"`+f+`":`+v+`}`)
		}
	}
	paths := []string{
		"/v1/login", "/v1/new-password-required", "/v1/token-refresh", "/v1/token-revoke", "/v1/change-password", "/v1/forgot-password", "/v1/forgot-password-confirm",
		"/v3/session/login", "/v3/session/login/2fa", "/v3/session/refresh", "/v3/session/logout", "/v3/session/change-password", "/v3/session/confirm-email",
		"/halt/login", "/halt/login/2fa", "/halt/refresh", "/halt/logout",
	}
	headerSets := [][]string{
		{"Content-Type", "application/json"},
		{"Content-Type", "application/json", "Authorization", "Bearer " + p.access},
		{"Content-Type", "application/json", "Cookie", fiberauth.RefreshCookie + "=" + p.refresh + "; " + fiberauth.AccessCookie + "=x", fiberauth.CSRFHeader, "x"},
		{"Content-Type", "application/x-amz-json-1.1"},
		{"Content-Type", "text/plain"},
		{},
	}
	n := 0
	for _, path := range paths {
		for _, b := range bodies {
			for _, hs := range headerSets {
				status, raw := h.rawDo("POST", path, []byte(b), hs...)
				n++
				if status >= 500 {
					t.Errorf("POST %s %q %v: %d %s", path, trunc(b), hs, status, raw)
				}
			}
		}
	}
	for _, path := range []string{"/v3/session/me"} {
		for _, v := range []string{"Bearer", "Bearer ", "Bearer \x00", "bearer a.b.c", "Basic x", "Bearer " + strings.Repeat("a", 9000)} {
			status, raw := h.rawDo("GET", path, nil, "Authorization", v)
			if status != 401 {
				t.Errorf("GET %s %q: %d %s", path, trunc(v), status, raw)
			}
		}
	}
	t.Logf("%d hostile requests, no 5xx", n)
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// Login throttles hold through every profile, under parallel requests.
func TestProfilesParallelLoginThrottle(t *testing.T) {
	t.Parallel()
	h := allProfiles(t, func(c *fiberauth.Config) { c.MaxLoginFailuresPerAccount = 5 })
	if _, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "ada@example.com", Username: "ada", Password: goodPassword, Verified: true}); err != nil {
		t.Fatal(err)
	}
	type attempt struct{ path, body string }
	var attempts []attempt
	for i := range 60 {
		switch i % 3 {
		case 0:
			attempts = append(attempts, attempt{"/v1/login", `{"username":"ADA","password":"wrong password"}`})
		case 1:
			attempts = append(attempts, attempt{"/v3/session/login", `{"email":"ada@example.com","password":"wrong password"}`})
		case 2:
			attempts = append(attempts, attempt{"/halt/login", `{"username":"ada","password":"wrong password"}`})
		}
	}
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for _, a := range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest("POST", a.path, strings.NewReader(a.body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := h.app.Test(req, -1)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			counts[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[401] > 5 || counts[429] != len(attempts)-counts[401] {
		t.Errorf("statuses %v: more than 5 password checks, or other answers", counts)
	}
	// Then even the right password is refused until the window ends.
	r := h.do("POST", "/v1/login", map[string]any{"username": "ada", "password": goodPassword})
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Errorf("right password after the limit: %d %s (Retry-After %q)", r.status, r.raw, r.header.Get("Retry-After"))
	}
	expectMessage(t, r, 429)
	h.clock.Advance(16 * time.Minute)
	expect(t, h.do("POST", "/v1/login", map[string]any{"username": "ada", "password": goodPassword}), 200, "")
	t.Logf("statuses %v", counts)
}

// Code throttle through /v1/forgot-password-confirm in parallel.
func TestProfilesParallelCodeThrottle(t *testing.T) {
	t.Parallel()
	h := allProfiles(t, func(c *fiberauth.Config) { c.MaxCodeFailures = 3 })
	if _, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "ada@example.com", Username: "ada", Password: goodPassword, Verified: true}); err != nil {
		t.Fatal(err)
	}
	expect(t, h.do("POST", "/v1/forgot-password", map[string]any{"username": "ada"}), 200, "")
	code := h.lastCode("ada@example.com", "password_reset")
	const np = "zz a new long password"
	h.keep(np)
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wrong := fmt.Sprintf("%06d", (i*7919+1)%1000000)
			if wrong == code {
				wrong = "999999x"
			}
			req := httptest.NewRequest("POST", "/v1/forgot-password-confirm", strings.NewReader(`{"username":"ada","password":"`+np+`","confirmation_code":"`+wrong+`"}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := h.app.Test(req, -1)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			counts[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[401] > 3 {
		t.Errorf("statuses %v: more than 3 wrong codes were checked", counts)
	}
	t.Logf("statuses %v", counts)
	r := h.do("POST", "/v1/forgot-password-confirm", map[string]any{"username": "ada", "password": np, "confirmation_code": code})
	t.Logf("the right code after the limit: %d %s", r.status, r.raw)
}

// Cognito forgot-password: the same answer for a known, unknown and
// disabled account, and for one that is over its send limit.
func TestProfilesCognitoForgotShape(t *testing.T) {
	t.Parallel()
	h := allProfiles(t)
	u, err := h.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "ada@example.com", Username: "ada", Password: goodPassword, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	d := h.createUser("dis@example.com")
	if err := h.auth.DisableUser(context.Background(), d.ID); err != nil {
		t.Fatal(err)
	}
	var first string
	for i, name := range []string{"ada", "ADA@example.com", "nobody", "nobody@example.com", "dis@example.com", "ada", "ada", "ada", "ada", "ada"} {
		r := h.do("POST", "/v1/forgot-password", map[string]any{"username": name})
		if r.status != 200 {
			t.Fatalf("%s: %d %s", name, r.status, r.raw)
		}
		if i == 0 {
			first = r.raw
		} else if r.raw != first || len(r.header["Set-Cookie"]) != 0 {
			t.Errorf("%s answered %s, not %s", name, r.raw, first)
		}
	}
	_ = u
	// Unknown names to confirm: the same as a wrong code for a known one.
	a := h.do("POST", "/v1/forgot-password-confirm", map[string]any{"username": "nobody", "password": "zz long password 1", "confirmation_code": "123456"})
	b := h.do("POST", "/v1/forgot-password-confirm", map[string]any{"username": "ada", "password": "zz long password 1", "confirmation_code": "123456"})
	if a.status != b.status || a.raw != b.raw {
		t.Errorf("unknown %d %s, known %d %s", a.status, a.raw, b.status, b.raw)
	}
	// token-revoke: unknown, malformed, too long, empty.
	for _, tok := range []string{"unknown", "a.0.b.c", strings.Repeat("a", 600), ""} {
		r := h.do("POST", "/v1/token-revoke", map[string]any{"refresh_token": tok})
		t.Logf("token-revoke %q: %d %s", trunc(tok), r.status, r.raw)
	}
}
