package fiberauth_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberauth/fiberauth"
)

// send is one request to app; headers are name, value pairs.
func send(t *testing.T, app *fiber.App, method, path string, headers ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// With an ErrorHandler that returns the error, a refusal reaches the app's
// fiber.Config.ErrorHandler, as a *RequestError that says what fiberauth's
// JSON would; Fiber's default handler answers its status and message.
// Without one, the middleware answers fiberauth's JSON itself and the app's
// handler is not called.
func TestMiddlewareErrorsReachTheAppsErrorHandler(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	var calls int
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		calls++
		var re *fiberauth.RequestError
		if !errors.As(err, &re) || !errors.Is(err, fiberauth.ErrInvalidToken) && !errors.Is(err, fiberauth.ErrForbidden) {
			return c.Status(500).SendString("not a fiberauth refusal: " + err.Error())
		}
		return c.Status(re.Status).JSON(fiber.Map{"mine": re.Code, "why": re.Reason})
	}})
	passOn := func(c *fiber.Ctx, err error) error { return err }
	ok := func(c *fiber.Ctx) error { return c.SendString(fiberauth.UserIDFrom(c)) }
	app.Get("/routed", h.auth.Middleware(fiberauth.MiddlewareConfig{ErrorHandler: passOn}), ok)
	app.Get("/admin", h.auth.Middleware(fiberauth.MiddlewareConfig{ErrorHandler: passOn, Roles: []string{"admin"}}), ok)
	app.Get("/default", h.auth.Middleware(), ok)

	res, body := send(t, app, "GET", "/routed")
	if res.StatusCode != 401 || body != `{"mine":"invalid_token","why":"missing"}` || calls != 1 {
		t.Fatalf("routed refusal: %d %s (app handler called %d times)", res.StatusCode, body, calls)
	}
	if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
		t.Fatalf("routed refusal without WWW-Authenticate: %q", res.Header.Get("WWW-Authenticate"))
	}
	res, body = send(t, app, "GET", "/admin", bearer(p.access)...)
	if res.StatusCode != 403 || body != `{"mine":"forbidden","why":""}` || calls != 2 {
		t.Fatalf("routed role refusal: %d %s", res.StatusCode, body)
	}
	if res, body := send(t, app, "GET", "/routed", bearer(p.access)...); res.StatusCode != 200 || calls != 2 {
		t.Fatalf("a good token through the routed middleware: %d %s", res.StatusCode, body)
	}
	res, body = send(t, app, "GET", "/default", "Authorization", "Bearer not.a.token")
	var got map[string]any
	if res.StatusCode != 401 || json.Unmarshal([]byte(body), &got) != nil || got["error"] != "invalid_token" || got["reason"] != "malformed" || calls != 2 {
		t.Fatalf("default refusal: %d %s (app handler called %d times)", res.StatusCode, body, calls)
	}

	// Fiber's own default error handler answers the status and the
	// message, and nothing of the cause.
	plain := fiber.New()
	plain.Get("/routed", h.auth.Middleware(fiberauth.MiddlewareConfig{ErrorHandler: passOn}), ok)
	forged := resign(t, p.access, []byte("another secret, of 32 bytes or more"))
	res, body = send(t, plain, "GET", "/routed", bearer(forged)...)
	if res.StatusCode != 401 || body != "The access token is missing, invalid or expired." {
		t.Fatalf("Fiber's default handler: %d %q", res.StatusCode, body)
	}
	if strings.Contains(strings.ToLower(body), "signature") || strings.Contains(body, "fiberauth:") {
		t.Fatalf("Fiber's default handler answered the cause: %q", body)
	}
}

// SuccessHandler runs for the requests let through, instead of c.Next().
func TestMiddlewareSuccessHandler(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	app := fiber.New()
	app.Get("/p", h.auth.Middleware(fiberauth.MiddlewareConfig{SuccessHandler: func(c *fiber.Ctx) error {
		c.Set("X-Signed-In", fiberauth.UserIDFrom(c))
		return c.Next()
	}}), func(c *fiber.Ctx) error { return c.SendString("behind") })
	res, body := send(t, app, "GET", "/p", bearer(p.access)...)
	if res.StatusCode != 200 || body != "behind" || res.Header.Get("X-Signed-In") == "" {
		t.Fatalf("success: %d %q, X-Signed-In %q", res.StatusCode, body, res.Header.Get("X-Signed-In"))
	}
	if res, _ := send(t, app, "GET", "/p"); res.StatusCode != 401 || res.Header.Get("X-Signed-In") != "" {
		t.Fatalf("refused: %d, X-Signed-In %q", res.StatusCode, res.Header.Get("X-Signed-In"))
	}
}

// TokenLookup and AuthScheme: the token from another header, bare or with
// a scheme, or from a cookie (which needs the session's CSRF token on
// unsafe methods, and a same-site request); sources are tried in order.
func TestMiddlewareTokenLookup(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	b := h.cookieLogin("ada@example.com")
	token := fiberauth.MiddlewareConfig{}
	app := fiber.New()
	ok := func(c *fiber.Ctx) error { return c.SendString(fiberauth.UserIDFrom(c)) }
	token.TokenLookup = "header:X-Api-Token"
	app.Get("/bare", h.auth.Middleware(token), ok)
	scheme := "Token"
	app.Get("/scheme", h.auth.Middleware(fiberauth.MiddlewareConfig{TokenLookup: "header:X-Api-Token", AuthScheme: &scheme}), ok)
	both := h.auth.Middleware(fiberauth.MiddlewareConfig{TokenLookup: "header:Authorization,cookie:access"})
	app.Get("/both", both, ok)
	app.Post("/both", both, ok)

	expectStatus := func(want int, method, path string, headers ...string) {
		t.Helper()
		if res, body := send(t, app, method, path, headers...); res.StatusCode != want {
			t.Fatalf("%s %s %v: %d %s, want %d", method, path, headers, res.StatusCode, body, want)
		}
	}
	expectStatus(200, "GET", "/bare", "X-Api-Token", b.access)
	expectStatus(401, "GET", "/bare", bearer(b.access)...)
	expectStatus(200, "GET", "/scheme", "X-Api-Token", "token "+b.access)
	expectStatus(401, "GET", "/scheme", "X-Api-Token", b.access)
	// The challenge names the scheme the route takes.
	if res, _ := send(t, app, "GET", "/scheme"); !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), `Token error="invalid_token", error_description="No access token was sent"`) {
		t.Fatalf("WWW-Authenticate with AuthScheme Token: %q", res.Header.Get("WWW-Authenticate"))
	}
	if res, _ := send(t, app, "GET", "/both"); !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate by default: %q", res.Header.Get("WWW-Authenticate"))
	}

	cookie := "access=" + b.access
	expectStatus(200, "GET", "/both", "Cookie", cookie)
	expectStatus(200, "GET", "/both", bearer(b.access)...)
	expectStatus(200, "GET", "/both", append(bearer(b.access), "Cookie", "access=garbage")...) // the header first
	expectStatus(401, "GET", "/both", "Cookie", "access=garbage")
	// Unsafe methods with the cookie need the CSRF token; a bearer token
	// does not (a browser does not send one by itself).
	expectStatus(403, "POST", "/both", "Cookie", cookie)
	expectStatus(403, "POST", "/both", "Cookie", cookie, fiberauth.CSRFHeader, "wrong")
	expectStatus(200, "POST", "/both", "Cookie", cookie, fiberauth.CSRFHeader, b.csrf)
	expectStatus(200, "POST", "/both", bearer(b.access)...)
	// And a same-site request.
	expectStatus(403, "GET", "/both", "Cookie", cookie, "Sec-Fetch-Site", "cross-site")
	expectStatus(403, "GET", "/both", "Cookie", cookie, "Origin", "https://evil.example")
}

// A TokenLookup the middleware cannot use fails at setup, with a message:
// the query string is no source.
func TestMiddlewareTokenLookupRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, lookup := range []string{"query:token", "param:token", "header:", "cookie", "header:Authorization,query:token"} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(error).Error(), "TokenLookup") {
					t.Errorf("TokenLookup %q: recovered %v, want a panic naming TokenLookup", lookup, r)
				}
			}()
			h.auth.Middleware(fiberauth.MiddlewareConfig{TokenLookup: lookup})
		}()
	}
}

// A request routed anew with another method (a method override that
// tunnels DELETE through GET) is checked again: a token from a cookie
// needs the CSRF token for the unsafe method it now is.
func TestCookieTokenRoutedAnew(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createUser("ada@example.com")
	b := h.cookieLogin("ada@example.com")
	app := fiber.New()
	app.Use(h.auth.Middleware(fiberauth.MiddlewareConfig{TokenLookup: "cookie:access"}))
	app.Use(func(c *fiber.Ctx) error {
		if m := c.Query("_method"); m != "" && c.Method() == fiber.MethodGet {
			c.Method(m)
			return c.RestartRouting()
		}
		return c.Next()
	})
	deleted := 0
	app.Delete("/thing", func(c *fiber.Ctx) error { deleted++; return c.SendString("deleted") })
	cookie := "access=" + b.access
	if res, body := send(t, app, "GET", "/thing?_method=DELETE", "Cookie", cookie); res.StatusCode != 403 || deleted != 0 {
		t.Fatalf("GET?_method=DELETE with the cookie and no CSRF token: %d %s, %d deleted", res.StatusCode, body, deleted)
	}
	if res, body := send(t, app, "GET", "/thing?_method=DELETE", "Cookie", cookie, fiberauth.CSRFHeader, b.csrf); res.StatusCode != 200 || deleted != 1 {
		t.Fatalf("GET?_method=DELETE with the CSRF token: %d %s, %d deleted", res.StatusCode, body, deleted)
	}
}

// Two Auths (two realms) in one app: one's middleware does not take the
// caller another's has found for its own.
func TestTwoAuthsOneRequest(t *testing.T) {
	t.Parallel()
	users, admins := newHarness(t), newHarness(t)
	users.createUser("ada@example.com", "admin") // an admin of the users' realm only
	p := users.login("ada@example.com", goodPassword)
	app := fiber.New()
	app.Use(users.auth.Middleware())
	app.Get("/admin", admins.auth.Middleware(fiberauth.MiddlewareConfig{Roles: []string{"admin"}}), func(c *fiber.Ctx) error { return c.SendString("admin realm") })
	if res, body := send(t, app, "GET", "/admin", bearer(p.access)...); res.StatusCode != 401 {
		t.Fatalf("a token of the users' realm through the admins' middleware: %d %s", res.StatusCode, body)
	}
}
