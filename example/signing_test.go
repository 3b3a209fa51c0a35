package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/fiberauth/fiberauth"
)

// writePEM writes a PKCS#8 PEM of priv to a file and returns its path.
func writePEM(t *testing.T, priv any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// header decodes a JWT's header.
func header(t *testing.T, token string) map[string]any {
	t.Helper()
	seg, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// -signing-key (FIBERAUTH_SIGNING_KEY) takes a PEM file of either curve or
// "generate"; a missing or unreadable file stops the example.
func TestSigningKeyFlag(t *testing.T) {
	o, err := parseOptions(nil, func(k string) string { return map[string]string{"FIBERAUTH_SIGNING_KEY": "generate"}[k] }, io.Discard)
	if err != nil || o.signingKey != "generate" {
		t.Fatalf("FIBERAUTH_SIGNING_KEY: %+v %v", o, err)
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct{ name, key, alg string }{
		{"Ed25519 PEM", writePEM(t, ed), "EdDSA"},
		{"P-256 PEM", writePEM(t, p256), "ES256"},
		{"generate", "generate", "EdDSA"},
		{"none", "", "HS256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestServer(t, options{signingKey: tc.key})
			if _, err := c.srv.auth.CreateUser(context.Background(), fiberauthUser("ada@example.com")); err != nil {
				t.Fatal(err)
			}
			login := c.must(200, "POST", "/auth/login", "", map[string]any{"email": "ada@example.com", "password": "correct horse battery"})
			access := login["access"].(string)
			if alg := header(t, access)["alg"]; alg != tc.alg {
				t.Fatalf("alg %v, want %s", alg, tc.alg)
			}
			c.must(200, "GET", "/api/profile", access, nil)
		})
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	_ = os.WriteFile(bad, []byte("not a key"), 0o600)
	for _, key := range []string{filepath.Join(t.TempDir(), "missing.pem"), bad} {
		if _, err := newServer(context.Background(), options{store: "memory", signingKey: key}, quietLog()); err == nil {
			t.Fatalf("-signing-key %s was accepted", key)
		}
	}
}

// serveB is service B: an app of its own, on a real listener, that only
// verifies tokens against A's JWKS, on the clock now.
func serveB(t *testing.T, jwksURL string, now func() time.Time) string {
	t.Helper()
	v, err := fiberauth.NewVerifier(fiberauth.VerifierConfig{JWKSURL: jwksURL, Logger: quietLog(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/orders", v.Middleware(), func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"user_id": fiberauth.UserIDFrom(c)})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	return "http://" + ln.Addr().String()
}

// getStatus is the status of GET url with a bearer token.
func getStatus(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// claimsOf decodes a JWT's claims.
func claimsOf(t *testing.T, token string) jwt.MapClaims {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.MapClaims
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// Service B, given only A's JWKS URL, accepts A's tokens (across a key
// rotation) and refuses forged ones: a foreign key under A's kid, HS256
// with A's secret, alg none.
func TestServiceBVerifiesA(t *testing.T) {
	secret := "0123456789abcdef0123456789abcdef-service-b"
	base, auth := startServerAuth(t, options{store: "memory", secret: secret, signingKey: "generate"})
	var clock atomic.Int64 // B's clock: it moves by hand
	clock.Store(time.Now().UnixNano())
	b := serveB(t, base+"/auth/.well-known/jwks.json", func() time.Time { return time.Unix(0, clock.Load()) }) + "/orders"
	if _, err := auth.CreateUser(context.Background(), fiberauthUser("ada@example.com")); err != nil {
		t.Fatal(err)
	}
	s := apiLogin(t, base, "ada@example.com", "correct horse battery")
	if got := getStatus(t, b, s.access); got != 200 {
		t.Fatalf("B answers %d to A's token", got)
	}
	if err := auth.RotateSigningKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := apiLogin(t, base, "ada@example.com", "correct horse battery")
	if header(t, s2.access)["kid"] == header(t, s.access)["kid"] {
		t.Fatal("the rotation did not change the kid")
	}
	// B fetched the JWKS for the first token; it fetches again for an
	// unknown kid at most once a minute (a rotation by RotateSigningKey
	// signs at once; a scheduled one is published minutes ahead).
	clock.Add(int64(time.Minute))
	for _, tok := range []string{s.access, s2.access} {
		if got := getStatus(t, b, tok); got != 200 {
			t.Fatalf("B answers %d to A's token of kid %v after the rotation", got, header(t, tok)["kid"])
		}
	}

	claims := claimsOf(t, s2.access)
	kid := header(t, s2.access)["kid"].(string)
	_, foreign, _ := ed25519.GenerateKey(rand.Reader)
	forged := func(m jwt.SigningMethod, key any, kid string) string {
		tok := jwt.NewWithClaims(m, claims)
		tok.Header["typ"], tok.Header["kid"] = "at+jwt", kid
		signed, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	for name, tok := range map[string]string{
		"a foreign key under A's kid": forged(jwt.SigningMethodEdDSA, foreign, kid),
		"HS256 with A's secret":       forged(jwt.SigningMethodHS256, []byte(secret), kid),
		"alg none":                    forged(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid),
	} {
		if got := getStatus(t, b, tok); got != 401 {
			t.Errorf("B answers %d to %s, want 401", got, name)
		}
		if got := profileStatus(t, base, tok); got != 401 {
			t.Errorf("A answers %d to %s, want 401", got, name)
		}
	}
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
