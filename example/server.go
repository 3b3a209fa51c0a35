package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/pquerna/otp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
	"github.com/fiberauth/fiberauth/metrics"
	"github.com/fiberauth/fiberauth/sqlstore/postgres"
	"github.com/fiberauth/fiberauth/sqlstore/sqlite"
)

// server is the example app and what it must close.
type server struct {
	app    *fiber.App
	auth   *fiberauth.Auth
	outbox *outbox // nil unless opts.dev
	close  func() error
}

func newServer(ctx context.Context, opts options, log *slog.Logger) (*server, error) {
	secret, err := secretOrRandom(opts.secret, log)
	if err != nil {
		return nil, err
	}
	store, closeStore, err := openStore(ctx, opts)
	if err != nil {
		return nil, err
	}
	// Without the dev outbox a code is shown nowhere: the log says it was
	// sent, and a real host plugs in its mailer here.
	var box *outbox
	send := logSent(log)
	if opts.dev {
		box = &outbox{}
		send = box.send
	}
	cfg := fiberauth.Config{
		Store:                store,
		Secret:               secret,
		AllowSignup:          true,
		RequireVerifiedEmail: true,
		SendCode:             send,
		Logger:               log,
	}
	// fiberauth's metrics, and the Go runtime's, at /metrics: a registry
	// per server (tests start several in one process).
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := metrics.New(reg)
	if err != nil {
		_ = closeStore()
		return nil, err
	}
	m.Instrument(&cfg)
	cfg.Passkeys, err = passkeys(opts.origin)
	if err == nil {
		err = signingKeys(&cfg, opts.signingKey)
	}
	var auth *fiberauth.Auth
	if err == nil {
		auth, err = fiberauth.New(cfg)
	}
	if err != nil {
		_ = closeStore()
		return nil, err
	}
	if opts.adminEmail != "" {
		if err := ensureAdmin(ctx, auth, opts.adminEmail, opts.adminPassword); err != nil {
			_ = closeStore()
			return nil, fmt.Errorf("admin user: %w", err)
		}
	}
	app := fiber.New(fiber.Config{
		AppName: "fiberauth example",
		// Room for long Authorization headers, so fiberauth answers them
		// with its own 401 rather than fasthttp with a bare 431.
		ReadBufferSize: 16 << 10,
		ErrorHandler:   jsonError,
	})
	auth.Mount(app.Group("/auth"))
	auth.Mount(app.Group("/web/auth"), fiberauth.WithCookieTransport())
	// Drop-in profiles (docs/profiles.md in the repository). haltman's is
	// mounted before the /api group, whose middleware would otherwise
	// guard its login too (Fiber runs handlers in the order they are
	// added).
	auth.Mount(app.Group("/v3/session"), fiberauth.WithProfile(fiberauth.ProfileMisaka))
	auth.Mount(app.Group("/api/auth"), fiberauth.WithProfile(fiberauth.ProfileHaltman))
	auth.Mount(app.Group("/v1"), fiberauth.WithProfile(fiberauth.ProfileCognito))

	// The API takes an access token as a Bearer header, or in haltman's
	// HttpOnly cookie (then with the CSRF header on unsafe methods).
	api := app.Group("/api", auth.Middleware(fiberauth.MiddlewareConfig{
		TokenLookup: "header:Authorization,cookie:" + fiberauth.AccessCookie,
	}))
	// The caller as the middleware checked it, with no store read: the
	// route bench/wrk.sh loads, and bench/jwtware serves too.
	api.Get("/me", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"user_id": fiberauth.UserIDFrom(c)})
	})
	api.Get("/profile", func(c *fiber.Ctx) error {
		u, err := auth.UserByID(c.UserContext(), fiberauth.UserIDFrom(c))
		if err != nil {
			return fiber.ErrServiceUnavailable
		}
		return c.JSON(fiber.Map{"user_id": u.ID, "email": u.Email})
	})
	// The QR code of an authenticator's otpauth:// URL (from /2fa/setup),
	// for the page to show: rendered here, so no third party sees it.
	api.Post("/2fa/qr", func(c *fiber.Ctx) error { return qrCode(c) })
	admin := api.Group("/admin", auth.RequireRole("admin"))
	admin.Get("/ping", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"ok": true})
	})
	admin.Post("/users", func(c *fiber.Ctx) error { return createUser(c, auth) })

	if box != nil {
		app.Get("/dev/outbox", func(c *fiber.Ctx) error {
			// Only to a request that names the server by address: a page
			// on a name rebound to 127.0.0.1 (DNS rebinding) reads nothing.
			if !namedByAddress(c.Get(fiber.HeaderHost)) {
				return fiber.NewError(fiber.StatusForbidden, "The dev outbox answers requests to localhost or an IP address only.")
			}
			// fiberauth sends codes just after answering a signup or a
			// reset request: let those on their way arrive first.
			ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Second)
			defer cancel()
			_ = auth.Flush(ctx)
			return c.JSON(fiber.Map{"messages": box.to(strings.ToLower(c.Query("to")))})
		})
	}
	metricsHandler := adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	app.Get("/metrics", func(c *fiber.Ctx) error {
		// As the dev outbox: not to a page on a name rebound to the server.
		if !namedByAddress(c.Get(fiber.HeaderHost)) {
			return fiber.NewError(fiber.StatusForbidden, "/metrics answers requests to localhost or an IP address only.")
		}
		return metricsHandler(c)
	})
	app.Get("/healthz", func(c *fiber.Ctx) error {
		// A lookup of an id nobody has: ErrNotFound means the store answers.
		if _, err := auth.UserByID(c.UserContext(), "healthz"); !errors.Is(err, fiberauth.ErrNotFound) {
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"ok": false})
		}
		return c.JSON(fiber.Map{"ok": true})
	})
	page := indexPage(box != nil, cfg.Passkeys != nil)
	app.Get("/", securityHeaders, func(c *fiber.Ctx) error {
		c.Type("html", "utf-8")
		return c.Send(page)
	})
	app.Use("/static", securityHeaders, filesystem.New(filesystem.Config{Root: http.FS(staticFS), MaxAge: 60}))
	return &server{app: app, auth: auth, outbox: box, close: closeStore}, nil
}

func openStore(ctx context.Context, opts options) (fiberauth.Store, func() error, error) {
	switch opts.store {
	case "memory":
		return memstore.New(), func() error { return nil }, nil
	case "sqlite":
		s, err := sqlite.Open(ctx, opts.dsn)
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	case "postgres":
		if !strings.Contains(opts.dsn, "://") && !strings.Contains(opts.dsn, "=") {
			return nil, nil, fmt.Errorf("-store postgres needs -dsn postgres://…, got %q", opts.dsn)
		}
		s, err := postgres.Open(ctx, opts.dsn)
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	default:
		return nil, nil, fmt.Errorf("unknown -store %q: want memory, sqlite or postgres", opts.store)
	}
}

// newUserRequest is the body of POST /api/admin/users.
type newUserRequest struct {
	Email             string   `json:"email"`
	TemporaryPassword string   `json:"temporary_password"`
	Roles             []string `json:"roles"`
}

// createUser makes a verified account with a temporary password: its owner
// sets a real one at first login (NEW_PASSWORD_REQUIRED).
func createUser(c *fiber.Ctx, auth *fiberauth.Auth) error {
	var req newUserRequest
	if err := json.Unmarshal(c.Body(), &req); err != nil {
		return auth.WriteError(c, &fiberauth.FieldError{Where: "body", Reason: "malformed_json", Msg: "The body is not a JSON object."})
	}
	u, err := auth.CreateUser(c.UserContext(), fiberauth.NewUser{
		Email: req.Email, Password: req.TemporaryPassword, Roles: req.Roles, Verified: true, TemporaryPassword: true,
	})
	if fe := (*fiberauth.FieldError)(nil); errors.As(err, &fe) && fe.Where == "password" {
		err = &fiberauth.FieldError{Where: "temporary_password", Reason: fe.Reason, Msg: fe.Msg}
	}
	if err != nil {
		return auth.WriteError(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"user": u.Public()})
}

// ensureAdmin makes sure the admin exists, verified, with role admin. An
// existing account keeps its password.
func ensureAdmin(ctx context.Context, auth *fiberauth.Auth, email, password string) error {
	u, err := auth.UserByEmail(ctx, email)
	if errors.Is(err, fiberauth.ErrNotFound) {
		_, err = auth.CreateUser(ctx, fiberauth.NewUser{Email: email, Password: password, Roles: []string{"admin"}, Verified: true})
		return err
	}
	if err != nil {
		return err
	}
	if !u.HasRole("admin") {
		if err := auth.SetRoles(ctx, u.ID, append(slices.Clone(u.Roles), "admin")); err != nil {
			return err
		}
	}
	if !u.EmailVerified {
		return auth.MarkEmailVerified(ctx, u.ID)
	}
	return nil
}

// jsonError answers Fiber's own errors (404, 405, …) in the same JSON shape
// as fiberauth's; any server-side failure is a 503, as docs/api.md says.
func jsonError(c *fiber.Ctx, err error) error {
	code := fiber.StatusServiceUnavailable
	var fe *fiber.Error
	if errors.As(err, &fe) && fe.Code < 500 {
		code = fe.Code
	}
	name := "unavailable"
	if code != fiber.StatusServiceUnavailable {
		name = strings.ToLower(strings.ReplaceAll(utils.StatusMessage(code), " ", "_"))
	}
	return c.Status(code).JSON(fiber.Map{"error": name, "message": utils.StatusMessage(code), "code": code})
}

// message is one code the example "sent".
type message struct {
	To      string    `json:"to"`
	Purpose string    `json:"purpose"`
	Code    string    `json:"code"`
	SentAt  time.Time `json:"sent_at"`
}

// logSent is SendCode without the dev outbox: it logs that a code was sent,
// never the code. A real host plugs in its mailer instead.
func logSent(log *slog.Logger) func(context.Context, fiberauth.CodeMessage) error {
	return func(ctx context.Context, m fiberauth.CodeMessage) error {
		log.InfoContext(ctx, "code sent (the example mails nothing: plug in a mailer as SendCode)", "user_id", m.UserID, "purpose", m.Purpose)
		return nil
	}
}

// qrCode answers the PNG QR code of the otpauth:// URL in the body
// ({"otpauth_url": "…"}): 400 for anything else.
func qrCode(c *fiber.Ctx) error {
	var req struct {
		URL string `json:"otpauth_url"`
	}
	if len(c.Body()) > 1024 || json.Unmarshal(c.Body(), &req) != nil {
		return fiber.NewError(fiber.StatusBadRequest, "The body must be {\"otpauth_url\": \"otpauth://totp/…\"}.")
	}
	key, err := otp.NewKeyFromURL(req.URL)
	if err != nil || key.Type() != "totp" || key.Secret() == "" {
		return fiber.NewError(fiber.StatusBadRequest, "otpauth_url must be an otpauth://totp/ URL with a secret.")
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, "That URL is too long for a QR code.")
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store") // it carries the secret
	c.Type("png")
	return c.Send(buf.Bytes())
}

// namedByAddress reports whether a Host header names the server by an IP
// address or as localhost, not by a DNS name that could point anywhere.
func namedByAddress(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil
}

// outbox is the development mailbox (-dev): codes are kept in memory and
// shown at /dev/outbox instead of being mailed.
type outbox struct {
	mu   sync.Mutex
	msgs []message
}

// maxOutbox bounds the mailbox; the oldest messages go first.
const maxOutbox = 1000

func (o *outbox) send(_ context.Context, m fiberauth.CodeMessage) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, message{To: m.To, Purpose: m.Purpose, Code: m.Code, SentAt: time.Now().UTC()})
	if len(o.msgs) > maxOutbox {
		o.msgs = slices.Delete(o.msgs, 0, len(o.msgs)-maxOutbox)
	}
	return nil
}

// to returns the messages sent to the address (every message when addr is
// ""), oldest first.
func (o *outbox) to(addr string) []message {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := []message{}
	for _, m := range o.msgs {
		if addr == "" || m.To == addr {
			out = append(out, m)
		}
	}
	return out
}

// The web app: plain HTML, CSS and JS, embedded so the binary serves it.
//
//go:embed web
var webFiles embed.FS

var (
	staticFS, _  = fs.Sub(webFiles, "web")
	indexHTML, _ = webFiles.ReadFile("web/index.html")
)

// indexPage is the web app's page. It tells the script whether the dev
// outbox is there to read codes from, and whether passkeys are on:
// index.html says data-outbox="off" and data-passkeys="off", and the server
// serves "on" for what it has.
func indexPage(outbox, passkeys bool) []byte {
	page := indexHTML
	if outbox {
		page = bytes.Replace(page, []byte(`data-outbox="off"`), []byte(`data-outbox="on"`), 1)
	}
	if passkeys {
		page = bytes.Replace(page, []byte(`data-passkeys="off"`), []byte(`data-passkeys="on"`), 1)
	}
	return page
}

// passkeys is the relying party of the page at origin (-origin): its host
// is the relying party id. No origin, no passkeys.
func passkeys(origin string) (*fiberauth.PasskeyConfig, error) {
	if origin == "" {
		return nil, nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("-origin %q is not an origin (http://localhost:3000, https://example.com)", origin)
	}
	return &fiberauth.PasskeyConfig{RPID: u.Hostname(), RPName: "fiberauth example", Origins: []string{origin}}, nil
}

// securityHeaders keeps the page's scripts to its own: no inline script, no
// other origin, no framing.
func securityHeaders(c *fiber.Ctx) error {
	c.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Referrer-Policy", "no-referrer")
	return c.Next()
}
