// Command sqlite is a SQLite-only fiberauth app: the smallest real one,
// whose binary size bench/sizes.sh reports (and TestDriversLinkAlone keeps
// free of pgx).
package main

import (
	"context"
	"log"

	"github.com/gofiber/fiber/v2"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/sqlstore/sqlite"
)

func main() {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, "app.db")
	if err != nil {
		log.Fatal(err)
	}
	auth, err := fiberauth.New(fiberauth.Config{Store: store, Issuer: "https://app.example", Audience: "app"})
	if err != nil {
		log.Fatal(err)
	}
	app := fiber.New()
	auth.Mount(app.Group("/auth"))
	app.Get("/me", auth.Middleware(), func(c *fiber.Ctx) error { return c.SendString(fiberauth.UserIDFrom(c)) })
	log.Fatal(app.Listen(":8080"))
}
