package fiberauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
)

// exampleSecret signs the examples' tokens; a host reads its own from its
// secrets (at least 32 bytes).
var exampleSecret = []byte("an example secret of 32 bytes or more")

// call sends a request to app and prints its status and JSON body's
// fields named in show.
func call(app *fiber.App, method, path, token, body string, show ...string) map[string]any {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := app.Test(req, -1)
	if err != nil {
		log.Fatal(err)
	}
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	fmt.Print(method, " ", path, ": ", res.StatusCode)
	for _, k := range show {
		fmt.Print(" ", k, "=", out[k])
	}
	fmt.Println()
	return out
}

// One Auth on a Store; its handlers mounted on a group; the app's own
// routes behind its middleware.
func ExampleNew() {
	auth, err := fiberauth.New(fiberauth.Config{
		Store:  memstore.New(),
		Secret: exampleSecret,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer auth.Close()
	ctx := context.Background()
	if _, err := auth.CreateUser(ctx, fiberauth.NewUser{Email: "ada@example.com", Password: "correct horse battery", Verified: true}); err != nil {
		log.Fatal(err)
	}

	app := fiber.New()
	auth.Mount(app.Group("/auth"))
	api := app.Group("/api", auth.Middleware())
	api.Get("/hello", func(c *fiber.Ctx) error {
		claims, _ := fiberauth.ClaimsFrom(c)
		u, err := auth.UserByID(c.UserContext(), claims.Subject)
		if err != nil {
			return auth.WriteError(c, err)
		}
		return c.JSON(fiber.Map{"hello": u.Email})
	})

	call(app, "GET", "/api/hello", "", "", "error", "reason")
	tokens := call(app, "POST", "/auth/login", "", `{"email":"ada@example.com","password":"correct horse battery"}`, "token_type", "expires_in")
	access := tokens["access_token"].(string)
	call(app, "GET", "/api/hello", access, "", "hello")
	call(app, "POST", "/auth/logout", access, "", "ok")
	call(app, "GET", "/api/hello", access, "", "error", "reason")
	// Output:
	// GET /api/hello: 401 error=invalid_token reason=missing
	// POST /auth/login: 200 token_type=Bearer expires_in=900
	// GET /api/hello: 200 hello=ada@example.com
	// POST /auth/logout: 200 ok=true
	// GET /api/hello: 401 error=invalid_token reason=revoked
}

// Accounts a host creates itself: verified, with roles, or with a
// temporary password that its owner replaces at first login.
func ExampleAuth_CreateUser() {
	auth, err := fiberauth.New(fiberauth.Config{Store: memstore.New(), Secret: exampleSecret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer auth.Close()
	ctx := context.Background()

	u, err := auth.CreateUser(ctx, fiberauth.NewUser{
		Email:    "Grace@Example.com",
		Password: "a long temporary secret",
		Roles:    []string{"admin"},
		Verified: true,
		// Login answers the NEW_PASSWORD_REQUIRED challenge until the
		// user sets a password of their own.
		TemporaryPassword: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u.Email, u.Roles, u.EmailVerified, u.PasswordTemporary)

	_, err = auth.CreateUser(ctx, fiberauth.NewUser{Email: "grace@example.com", Password: "another long secret"})
	fmt.Println(err != nil, errors.Is(err, fiberauth.ErrConflict))

	_, err = auth.CreateUser(ctx, fiberauth.NewUser{Email: "bob@example.com", Password: "short"})
	var fe *fiberauth.FieldError
	if errors.As(err, &fe) {
		fmt.Println(fe.Where, fe.Reason)
	}
	// Output:
	// grace@example.com [admin] true true
	// true true
	// password too_short
}

// Handlers behind the middleware read the caller from the request, and
// code below them from its context.
func ExampleClaimsFrom() {
	auth, err := fiberauth.New(fiberauth.Config{Store: memstore.New(), Secret: exampleSecret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer auth.Close()
	ctx := context.Background()
	u, err := auth.CreateUser(ctx, fiberauth.NewUser{Email: "ada@example.com", Password: "correct horse battery", Roles: []string{"editor"}, Verified: true})
	if err != nil {
		log.Fatal(err)
	}
	res, err := auth.Login(ctx, fiberauth.LoginInput{Name: "ada@example.com", Password: "correct horse battery"})
	if err != nil {
		log.Fatal(err)
	}

	// Code that has only a context: a service, a repository.
	whoIsCalling := func(ctx context.Context) string {
		claims, ok := fiberauth.ClaimsFromContext(ctx)
		if !ok {
			return "nobody"
		}
		return claims.Subject
	}
	app := fiber.New()
	app.Get("/whoami", auth.Middleware(), func(c *fiber.Ctx) error {
		claims, _ := fiberauth.ClaimsFrom(c)
		return c.JSON(fiber.Map{
			"me":          claims.Subject == u.ID,
			"same_below":  whoIsCalling(c.UserContext()) == fiberauth.UserIDFrom(c),
			"session":     fiberauth.SessionIDFrom(c) == res.Tokens.Session.ID,
			"editor":      fiberauth.HasRole(c, "editor"),
			"admin":       fiberauth.HasRole(c, "admin"),
			"outside_api": whoIsCalling(context.Background()),
		})
	})
	call(app, "GET", "/whoami", res.Tokens.AccessToken, "", "me", "same_below", "session", "editor", "admin", "outside_api")
	// Output:
	// GET /whoami: 200 me=true same_below=true session=true editor=true admin=false outside_api=nobody
}
