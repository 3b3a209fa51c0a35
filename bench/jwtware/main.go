// Command jwtware is the baseline bench/wrk.sh compares the example with: a
// minimal Fiber app whose GET /api/me and GET /api/profile are guarded by
// github.com/gofiber/contrib/jwt (jwtware) with HS256 and answer the same
// JSON as the example's routes (the profile's email from a claim of the
// token, as such an app would: it has no store), with the example's Fiber
// settings (its read buffer and a JSON error handler; no prefork, no
// request logger).
//
//	jwtware -secret S -token          # print a token for the secret, valid an hour
//	jwtware -secret S -addr 127.0.0.1:3001
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	jwtware "github.com/gofiber/contrib/jwt"
	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3001", "listen address")
	secret := flag.String("secret", os.Getenv("JWT_SECRET"), "HS256 secret, at least 32 bytes (JWT_SECRET)")
	token := flag.Bool("token", false, "print an access token for the secret (sub bench-user, email bench@example.com, an hour) and exit")
	flag.Parse()
	if len(*secret) < 32 {
		fmt.Fprintln(os.Stderr, "jwtware: -secret must be at least 32 bytes")
		os.Exit(2)
	}
	key := []byte(*secret)
	if *token {
		now := time.Now()
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub":   "bench-user",
			"email": "bench@example.com",
			"iat":   now.Unix(),
			"exp":   now.Add(time.Hour).Unix(),
		}).SignedString(key)
		if err != nil {
			fmt.Fprintln(os.Stderr, "jwtware:", err)
			os.Exit(1)
		}
		fmt.Println(s)
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	app := newApp(key)
	errc := make(chan error, 1)
	go func() { errc <- app.Listen(*addr) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	log.Info("jwtware baseline listening", "addr", *addr)
	select {
	case err := <-errc:
		log.Error("jwtware stopped", "err", err)
		os.Exit(1)
	case <-sig:
	}
	if err := app.ShutdownWithTimeout(10 * time.Second); err != nil {
		log.Error("shutdown", "err", err)
	}
}

func newApp(key []byte) *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "jwtware baseline",
		ReadBufferSize:        16 << 10, // as the example
		DisableStartupMessage: true,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			code := fiber.StatusInternalServerError
			var fe *fiber.Error
			if errors.As(err, &fe) {
				code = fe.Code
			}
			return c.Status(code).JSON(fiber.Map{"error": err.Error(), "code": code})
		},
	})
	api := app.Group("/api", jwtware.New(jwtware.Config{SigningKey: jwtware.SigningKey{JWTAlg: jwtware.HS256, Key: key}}))
	api.Get("/me", func(c *fiber.Ctx) error {
		sub, _ := c.Locals("user").(*jwt.Token).Claims.GetSubject()
		return c.JSON(fiber.Map{"user_id": sub})
	})
	api.Get("/profile", func(c *fiber.Ctx) error {
		claims, _ := c.Locals("user").(*jwt.Token).Claims.(jwt.MapClaims)
		return c.JSON(fiber.Map{"user_id": claims["sub"], "email": claims["email"]})
	})
	return app
}
