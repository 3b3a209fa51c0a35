package fiberauth_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fiberauth/fiberauth"
)

// The fuzz targets share one property: whatever the input, no panic, no 5xx
// (the in-memory store never fails, so not even 503), and nothing but the
// exact credentials a test holds is ever accepted. Seeds: testdata/fuzz and
// the f.Add calls, which hold the valid values of this run.

// send is app.Test for fuzz bodies: it must not use the harness's testing.F.
func (h *harness) send(t *testing.T, req *http.Request) (int, string) {
	resp, err := h.app.Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		t.Fatalf("%s %s answered %d %s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	return resp.StatusCode, string(body)
}

func FuzzMiddleware(f *testing.F) {
	h := newHarness(f)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	f.Add("Bearer " + p.access)
	f.Add("bearer  " + p.access + " ")
	f.Add("Bearer " + p.access[:len(p.access)-1])
	f.Add("Bearer " + strings.Replace(p.access, ".", "..", 1))
	f.Add("Basic " + p.access)
	f.Fuzz(func(t *testing.T, header string) {
		req := httptest.NewRequest("GET", "/api/profile", nil)
		req.Header.Set("Authorization", header)
		if req.Header.Get("Authorization") != header {
			return // not a header value net/http can send
		}
		status, body := h.send(t, req)
		if status == 200 {
			if len(header) < 7 || !strings.EqualFold(header[:7], "bearer ") || strings.TrimSpace(header[7:]) != p.access {
				t.Fatalf("a header that is not the token was accepted: %q", header)
			}
			return
		}
		if status != 401 || !strings.Contains(body, `"invalid_token"`) {
			t.Fatalf("answered %d %s", status, body)
		}
	})
}

// jsonEndpoints are the handlers that read a JSON body.
var jsonEndpoints = []string{
	"/auth/login", "/auth/login/2fa", "/auth/login/new-password", "/auth/refresh", "/auth/logout",
	"/auth/revoke", "/auth/password/change", "/auth/password/forgot", "/auth/password/reset",
	"/auth/signup", "/auth/email/confirm", "/auth/2fa/setup", "/auth/2fa/enable", "/auth/2fa/disable", "/auth/2fa/recovery-codes",
	"/web/auth/refresh", "/web/auth/logout",
}

func FuzzHandlers(f *testing.F) {
	h := newHarness(f)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	for i := range jsonEndpoints {
		f.Add(uint8(i), []byte(`{"email":"ada@example.com","password":"wrong password!","refresh_token":"`+p.refresh+`"}`))
		f.Add(uint8(i), []byte(`{"session":"x","code":"123456","new_password":"\u0000","etag":7}`))
		f.Add(uint8(i), []byte(`[`))
	}
	f.Fuzz(func(t *testing.T, endpoint uint8, body []byte) {
		path := jsonEndpoints[int(endpoint)%len(jsonEndpoints)]
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+p.access)
		status, out := h.send(t, req)
		if status >= 400 && !strings.Contains(out, `"error"`) {
			t.Fatalf("%s answered %d without a JSON error: %s", path, status, out)
		}
	})
}

func FuzzCookieCSRF(f *testing.F) {
	h := newHarness(f)
	h.createUser("ada@example.com")
	b := h.cookieLogin("ada@example.com")
	f.Add(b.cookie, b.csrf)
	f.Add(b.cookie, "")
	f.Add(b.cookie, b.csrf[:len(b.csrf)-1]+"A")
	f.Add(b.cookie+"x", b.csrf)
	f.Add("", b.csrf)
	f.Fuzz(func(t *testing.T, cookie, csrf string) {
		req := httptest.NewRequest("POST", "/web/auth/refresh", nil)
		req.Header.Set("Cookie", fiberauth.RefreshCookie+"="+cookie)
		req.Header.Set(fiberauth.CSRFHeader, csrf)
		if req.Header.Get("Cookie") != fiberauth.RefreshCookie+"="+cookie || req.Header.Get(fiberauth.CSRFHeader) != csrf {
			return // not header values net/http can send
		}
		status, body := h.send(t, req)
		switch status {
		case 200:
			// The clock stands still, so the first token's replays stay in
			// the grace window: only it and its exact CSRF token pass.
			if !strings.Contains(cookie, b.cookie) || strings.TrimSpace(csrf) != b.csrf {
				t.Fatalf("accepted cookie %q with csrf %q", cookie, csrf)
			}
		case 401, 403, 429:
		default:
			t.Fatalf("answered %d %s", status, body)
		}
	})
}
