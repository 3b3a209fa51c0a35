// Command example is a small app that mounts fiberauth: what to run first.
//
//	go run ./example            # listens on 127.0.0.1:3000, SQLite file fiberauth-example.db
//	go run ./example -store postgres -dsn postgres://user@host/db
//
// http://localhost:3000/ is a small web app on the cookie-mode handlers
// (/web/auth); /auth serves the same handlers in body mode, as below.
//
// The example mails nothing. With the development outbox on (-dev, the
// default on a loopback address only) it keeps each one-time code it "sends"
// in memory and shows it at /dev/outbox (every message, or ?to= one
// address's), to anyone who can reach the server and names it by address or
// as localhost (a name rebound to it, as a hostile page can, reads nothing).
// With it off (the default on any other address, or -dev=false) /dev/outbox
// is a 404 and a code is shown nowhere: the log says only that one was sent.
// A real host plugs in its mailer as Config.SendCode.
//
// A session with curl (jq only for reading), on the default address:
//
//	$ curl -s localhost:3000/auth/signup -H 'Content-Type: application/json' \
//	    -d '{"email":"ada@example.com","password":"correct horse battery"}'
//	{"ok":true}
//
//	$ curl -s 'localhost:3000/dev/outbox?to=ada@example.com' | tee outbox.json
//	{"messages":[{"to":"ada@example.com","purpose":"email_confirm","code":"123456","sent_at":"…"}]}
//
//	$ curl -s localhost:3000/auth/email/confirm -H 'Content-Type: application/json' \
//	    -d "{\"email\":\"ada@example.com\",\"code\":\"$(jq -r '.messages[-1].code' outbox.json)\"}"
//	{"ok":true}
//
//	$ curl -s localhost:3000/auth/login -H 'Content-Type: application/json' \
//	    -d '{"email":"ada@example.com","password":"correct horse battery"}' | tee login.json
//	{"access":"eyJ…","access_token":"eyJ…","refresh":"…","refresh_token":"…","token_type":"Bearer","expires_in":900,…}
//
//	$ curl -s localhost:3000/api/profile -H "Authorization: Bearer $(jq -r .access login.json)"
//	{"email":"ada@example.com","user_id":"…"}
//
//	$ curl -s localhost:3000/auth/refresh -H 'Content-Type: application/json' \
//	    -d "{\"refresh\":\"$(jq -r .refresh login.json)\"}" | tee next.json && mv next.json login.json
//	{"access":"eyJ…",…}
//
//	$ curl -s localhost:3000/auth/password/change -H "Authorization: Bearer $(jq -r .access login.json)" \
//	    -H 'Content-Type: application/json' \
//	    -d '{"previous_password":"correct horse battery","proposed_password":"a new long passphrase"}' | tee next.json && mv next.json login.json
//	{"access":"eyJ…",…}
//
//	$ curl -s -X POST localhost:3000/auth/logout -H "Authorization: Bearer $(jq -r .access login.json)"
//	{"ok":true}
//
// (A response goes to another file and then replaces login.json: a
// pipeline that reads login.json while tee writes it would read it empty.
// TestCurlSession runs this session as written.)
//
// With -admin-email and -admin-password, that admin can create accounts with
// a temporary password, which their owners replace at first login:
//
//	$ curl -s localhost:3000/api/admin/users -H "Authorization: Bearer $ADMIN_ACCESS" \
//	    -H 'Content-Type: application/json' -d '{"email":"bob@example.com","temporary_password":"temporary secret 1"}'
//	{"user":{"id":"…","email":"bob@example.com","email_verified":true,…}}
//
// Flags (each also read from the environment variable in brackets):
//
//	-addr (ADDR)                      listen address, default 127.0.0.1:3000; :3000 is every interface
//	-dev (DEV, e.g. DEV=1)            serve the codes at /dev/outbox; default on for a loopback -addr
//	                                  (127.0.0.0/8, ::1, localhost), off for any other (-dev=false: off)
//	-store (STORE)                    sqlite (default), postgres or memory
//	-dsn (DSN)                        SQLite file or PostgreSQL URL, default fiberauth-example.db
//	-secret (FIBERAUTH_SECRET)        HS256 secret, at least 32 bytes; random per start if unset
//	-signing-key (FIBERAUTH_SIGNING_KEY)  sign access tokens with EdDSA or ES256 instead of HS256:
//	                                  a PKCS#8 PEM private key file (Ed25519 or P-256), or "generate"
//	                                  (Ed25519 keys made and rotated by fiberauth, kept in the store);
//	                                  the public keys are at /auth/.well-known/jwks.json
//	-admin-email, -admin-password     (ADMIN_EMAIL, ADMIN_PASSWORD) make sure this admin exists
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fiberauth/fiberauth"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	opts, err := parseOptions(os.Args[1:], os.Getenv, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		log.Error("bad flags", "err", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts, log); err != nil {
		log.Error("example stopped", "err", err)
		os.Exit(1)
	}
}

// options are the example's flags (docs/api.md, "The example server").
type options struct {
	addr, store, dsn, secret  string
	signingKey                string // a PEM file, "generate", or "" (HS256)
	adminEmail, adminPassword string
	// origin is the page's origin as browsers reach it, for passkeys;
	// parseOptions makes it http://localhost:PORT for a loopback address.
	origin string
	// dev serves the development outbox at /dev/outbox. parseOptions turns
	// it on by default for a loopback address only.
	dev bool
}

// defaultAddr keeps the example to this machine unless told otherwise.
const defaultAddr = "127.0.0.1:3000"

// parseOptions reads flags, each falling back to its environment variable.
// -dev, then DEV, then the address decide the dev outbox: by default it is
// on for a loopback address only.
func parseOptions(args []string, getenv func(string) string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(out)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&o.addr, "addr", env("ADDR", defaultAddr), "listen address; :3000 listens on every interface (ADDR)")
	fs.BoolVar(&o.dev, "dev", false, "serve every code sent at /dev/outbox, readable by anyone who reaches the server (DEV, e.g. DEV=1);\ndefault on when -addr is a loopback address (127.0.0.0/8, ::1, localhost), off otherwise")
	fs.StringVar(&o.store, "store", env("STORE", "sqlite"), "store: sqlite, postgres or memory (STORE)")
	fs.StringVar(&o.dsn, "dsn", env("DSN", "fiberauth-example.db"), "SQLite file or PostgreSQL URL (DSN)")
	fs.StringVar(&o.secret, "secret", env("FIBERAUTH_SECRET", ""), "HS256 secret, at least 32 bytes; random per start if empty (FIBERAUTH_SECRET)")
	fs.StringVar(&o.signingKey, "signing-key", env("FIBERAUTH_SIGNING_KEY", ""), "sign access tokens with this PKCS#8 PEM private key (Ed25519 or P-256),\nor \"generate\": Ed25519 keys made and rotated by fiberauth, kept in the store;\ndefault HS256 with the secret (FIBERAUTH_SIGNING_KEY)")
	fs.StringVar(&o.adminEmail, "admin-email", env("ADMIN_EMAIL", ""), "make sure this admin user exists (ADMIN_EMAIL)")
	fs.StringVar(&o.adminPassword, "admin-password", env("ADMIN_PASSWORD", ""), "the admin's password (ADMIN_PASSWORD)")
	fs.StringVar(&o.origin, "origin", env("ORIGIN", ""), "the page's origin as browsers reach it (https://example.com), for passkeys;\ndefault http://localhost:PORT when -addr is a loopback address, else passkeys are off (ORIGIN)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if (o.adminEmail == "") != (o.adminPassword == "") {
		return o, errors.New("-admin-email and -admin-password go together")
	}
	if o.origin == "" && isLoopback(o.addr) {
		if _, port, err := net.SplitHostPort(o.addr); err == nil && port != "0" {
			o.origin = "http://localhost:" + port
		}
	}
	devSet := false
	fs.Visit(func(f *flag.Flag) { devSet = devSet || f.Name == "dev" })
	switch v := getenv("DEV"); {
	case devSet:
	case v != "":
		dev, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("DEV=%q: want true or false (1 or 0)", v)
		}
		o.dev = dev
	default:
		o.dev = isLoopback(o.addr)
	}
	return o, nil
}

// isLoopback reports whether a listen address (host:port) is reachable from
// this machine only: 127.0.0.0/8, ::1 or localhost. An empty host (":3000")
// is every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// run serves until ctx ends, then lets in-flight requests finish and closes
// the store.
func run(ctx context.Context, opts options, log *slog.Logger) error {
	srv, err := newServer(ctx, opts, log)
	if err != nil {
		return err
	}
	defer srv.close()
	ln, err := net.Listen(listenNetwork(opts.addr), opts.addr)
	if err != nil {
		return err
	}
	logStart(log, opts, ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.app.Listener(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.app.ShutdownWithContext(shutdownCtx); err != nil {
		return err
	}
	// Codes still on their way go out before the store closes, and the
	// store's change listener stops.
	err = srv.auth.Flush(shutdownCtx)
	_ = srv.auth.Close()
	return err
}

// listenNetwork is Fiber's "tcp4", or "tcp6" for an IPv6 address such as
// [::1]:3000, which "tcp4" refuses.
func listenNetwork(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() && !ip.Is4In6() {
		return "tcp6"
	}
	return "tcp4"
}

// logStart says where the example listens and whether the dev outbox is on,
// with a warning when the outbox is on beyond loopback.
func logStart(log *slog.Logger, opts options, listening string) {
	dev := "off"
	if opts.dev {
		dev = "on"
		if !isLoopback(opts.addr) {
			log.Warn("-dev on a non-loopback address: anyone who can reach the server can read every confirmation and password reset code at /dev/outbox", "addr", opts.addr)
		}
	}
	open, passkeys := "http://"+listening, "off"
	if opts.origin != "" {
		// Passkeys work on the page at this origin only (a browser
		// refuses them on http://127.0.0.1).
		open, passkeys = opts.origin, "on"
	}
	log.Info("fiberauth example listening", "addr", listening, "open", open, "dev_outbox", dev, "passkeys", passkeys)
}

// signingKeys sets cfg to sign access tokens as -signing-key says: with
// the key in a PEM file, with keys fiberauth generates ("generate"), or,
// when empty, HS256 with the secret.
func signingKeys(cfg *fiberauth.Config, signingKey string) error {
	switch signingKey {
	case "":
	case "generate":
		cfg.SigningAlgorithm = fiberauth.AlgorithmEdDSA
	default:
		pem, err := os.ReadFile(signingKey)
		if err != nil {
			return fmt.Errorf("-signing-key: %w", err)
		}
		k, err := fiberauth.ParseSigningKeyPEM(pem, "")
		if err != nil {
			return fmt.Errorf("-signing-key %s: %w", signingKey, err)
		}
		cfg.SigningKeys = []*fiberauth.SigningKey{k}
	}
	return nil
}

// secretOrRandom returns the configured secret, or a random one with a
// warning: tokens then die at restart.
func secretOrRandom(secret string, log *slog.Logger) ([]byte, error) {
	if secret != "" {
		if len(secret) < 32 {
			return nil, fmt.Errorf("the secret must be at least 32 bytes, got %d", len(secret))
		}
		return []byte(secret), nil
	}
	log.Warn("no -secret or FIBERAUTH_SECRET: using a random secret; every token dies when the server restarts")
	return []byte(rand.Text() + rand.Text()), nil
}
