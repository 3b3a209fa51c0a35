package fiberauth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/fiberauth/fiberauth"
)

// jwksServer serves a JWK Set (or whatever body says) and counts fetches.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex
	status  int
	body    []byte
}

func newJWKSServer(t *testing.T, keys ...*fiberauth.SigningKey) *jwksServer {
	t.Helper()
	s := &jwksServer{status: 200}
	s.setKeys(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		status, body := s.status, s.body
		s.mu.Unlock()
		if status == 0 { // hang until the client gives up
			<-r.Context().Done()
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(t *testing.T, keys ...*fiberauth.SigningKey) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"keys": keys}) // SigningKey marshals as its public JWK
	if err != nil {
		t.Fatal(err)
	}
	s.set(200, body)
}

func (s *jwksServer) set(status int, body []byte) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

func newVerifier(t *testing.T, cfg fiberauth.VerifierConfig) *fiberauth.Verifier {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	v, err := fiberauth.NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// verifierApp is a second service: its routes behind the Verifier.
func verifierApp(v *fiberauth.Verifier) *fiber.App {
	app := fiber.New()
	app.Get("/api/orders", v.Middleware(), func(c *fiber.Ctx) error {
		claims, _ := fiberauth.ClaimsFrom(c)
		return c.JSON(fiber.Map{"user_id": fiberauth.UserIDFrom(c), "sid": fiberauth.SessionIDFrom(c), "jti": claims.ID})
	})
	return app
}

func callVerifierApp(t *testing.T, app *fiber.App, token string) response {
	t.Helper()
	req := httptest.NewRequest("GET", "/api/orders", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, header: resp.Header}
	if err := json.NewDecoder(resp.Body).Decode(&r.body); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return r
}

// A service with only the JWKS URL accepts the issuer's tokens and refuses
// every forgery and every token the strict checks refuse, with the same
// 401 as the issuer's middleware.
func TestVerifier(t *testing.T) {
	t.Parallel()
	k := newHostKey(t, fiberauth.AlgorithmEdDSA, "ours")
	w := newTokenWorld(t, withKeys(k.key))
	srv := newJWKSServer(t, k.key)
	v := newVerifier(t, fiberauth.VerifierConfig{JWKSURL: srv.URL, Now: w.h.clock.Now})
	app := verifierApp(v)

	r := callVerifierApp(t, app, w.p.access)
	expect(t, r, 200, "")
	if r.str("user_id") != w.ada.ID || r.str("sid") != w.p.sid {
		t.Fatalf("the verifier's caller: %v", r.body)
	}
	claims, err := v.Verify(context.Background(), w.p.access)
	if err != nil || claims.Subject != w.ada.ID || claims.Issuer != "fiberauth" {
		t.Fatalf("Verify: %+v %v", claims, err)
	}

	_, foreign, _ := ed25519.GenerateKey(rand.Reader)
	c := w.claims()
	for _, tc := range []struct{ name, token string }{
		{"HS256 with the Secret", rawToken(atHeader, c)},
		{"HS256 with the public key", signAs(t, "HS256", []byte(k.key.PublicKey().Key.(ed25519.PublicKey)), asymHeader("HS256", "ours"), c)},
		{"none", signAs(t, "none", jwt.UnsafeAllowNoneSignatureType, asymHeader("none", "ours"), c)},
		{"a foreign key under our kid", signAs(t, "EdDSA", foreign, asymHeader("EdDSA", "ours"), c)},
		{"no kid", signAs(t, "EdDSA", k.priv, `{"alg":"EdDSA","typ":"at+jwt"}`, c)},
		{"typ JWT", signAs(t, "EdDSA", k.priv, `{"alg":"EdDSA","kid":"ours","typ":"JWT"}`, c)},
		{"crit", signAs(t, "EdDSA", k.priv, `{"alg":"EdDSA","kid":"ours","typ":"at+jwt","crit":[]}`, c)},
		{"wrong iss", signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "ours"), c.set("iss", `"other"`))},
		{"wrong aud", signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "ours"), c.set("aud", `["other"]`))},
		{"wrong client_id", signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "ours"), c.set("client_id", `"other"`))},
		{"expired", signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "ours"), c.set("exp", jint(w.now-60)))},
		{"no iat", signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "ours"), c.without("iat"))},
		{"Sub in another case", signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "ours"), c.plus("Sub", `"x"`))},
		{"garbage", "not.a.token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, callVerifierApp(t, app, tc.token), 401, "invalid_token")
			if _, err := v.Verify(context.Background(), tc.token); !errors.Is(err, fiberauth.ErrInvalidToken) {
				t.Fatalf("Verify: %v, want ErrInvalidToken", err)
			}
		})
	}
	// The control of the cases above: the same claims, our key.
	expect(t, callVerifierApp(t, app, signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "ours"), c)), 200, "")

	// Keys alone, with no URL: from the issuer in the same program.
	byKeys := newVerifier(t, fiberauth.VerifierConfig{Keys: w.h.auth.PublicKeys(), Now: w.h.clock.Now})
	if _, err := byKeys.Verify(context.Background(), w.p.access); err != nil {
		t.Fatalf("Verify with Keys: %v", err)
	}
}

// 200 requests at once, each with a made-up kid, cost one fetch of the
// JWKS; more such requests within the minute cost none; a minute later,
// one more.
func TestVerifierFetchRateLimit(t *testing.T) {
	t.Parallel()
	k := newHostKey(t, fiberauth.AlgorithmEdDSA, "ours")
	w := newTokenWorld(t, withKeys(k.key))
	srv := newJWKSServer(t, k.key)
	v := newVerifier(t, fiberauth.VerifierConfig{JWKSURL: srv.URL, Now: w.h.clock.Now})
	app := verifierApp(v)
	_, foreign, _ := ed25519.GenerateKey(rand.Reader)
	flood := func() {
		var wg sync.WaitGroup
		for range 200 {
			wg.Go(func() {
				tok := signAs(t, "EdDSA", foreign, asymHeader("EdDSA", rand.Text()), w.claims())
				if _, err := v.Verify(context.Background(), tok); !errors.Is(err, fiberauth.ErrInvalidToken) {
					t.Errorf("a made-up kid: %v", err)
				}
			})
		}
		wg.Wait()
	}
	flood()
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("200 made-up kids at once: %d fetches, want 1", n)
	}
	expect(t, callVerifierApp(t, app, w.p.access), 200, "") // the one fetch got our key
	flood()
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("200 more within the minute: %d fetches in all, want 1", n)
	}
	w.h.clock.Advance(time.Minute)
	flood()
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("a minute later: %d fetches in all, want 2", n)
	}
}

// A new kid is picked up by a refetch (the issuer rotated), and a key that
// left the JWKS stops verifying once the set is fetched again.
func TestVerifierFollowsRotation(t *testing.T) {
	t.Parallel()
	old, cur := newHostKey(t, fiberauth.AlgorithmEdDSA, "old"), newHostKey(t, fiberauth.AlgorithmES256, "new")
	w := newTokenWorld(t, withKeys(old.key))
	srv := newJWKSServer(t, old.key)
	v := newVerifier(t, fiberauth.VerifierConfig{JWKSURL: srv.URL, Now: w.h.clock.Now})
	oldTok := signAs(t, "EdDSA", old.priv, asymHeader("EdDSA", "old"), w.claims().set("exp", jint(w.now+3600)))
	if _, err := v.Verify(context.Background(), oldTok); err != nil {
		t.Fatal(err)
	}
	srv.setKeys(t, cur.key, old.key)
	w.h.clock.Advance(time.Minute)
	newTok := signAs(t, "ES256", cur.priv, asymHeader("ES256", "new"), w.claims())
	if _, err := v.Verify(context.Background(), newTok); err != nil {
		t.Fatalf("the new key's token after the issuer rotated: %v", err)
	}
	srv.setKeys(t, cur.key)
	w.h.clock.Advance(fiberauth.JWKSMaxAge)
	_, _ = v.Verify(context.Background(), newTok) // due: refreshes in the background
	deadline := time.Now().Add(5 * time.Second)
	for srv.fetches.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // the background fetch: wait for it, not for a clock
	}
	for time.Now().Before(deadline) {
		if _, err := v.Verify(context.Background(), oldTok); err != nil {
			return // the old key left
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("a key that left the JWKS still verifies")
}

// A JWKS that is too big, malformed, not there or too slow is an error,
// never a panic: tokens are refused (503 while no key was ever fetched).
func TestVerifierBadJWKS(t *testing.T) {
	t.Parallel()
	k := newHostKey(t, fiberauth.AlgorithmEdDSA, "ours")
	w := newTokenWorld(t, withKeys(k.key))
	good, _ := json.Marshal(map[string]any{"keys": []*fiberauth.SigningKey{k.key}})
	big := append(append([]byte(`{"keys":[`), good[9:len(good)-2]...), []byte(`],"pad":"`+strings.Repeat("x", fiberauth.MaxJWKSSize)+`"}`)...)
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"over the size limit", 200, string(big)},
		{"not JSON", 200, "<html>"},
		{"truncated", 200, string(good[:len(good)/2])},
		{"keys null", 200, `{"keys":null}`},
		{"keys not an array", 200, `{"keys":{}}`},
		{"a key not an object", 200, `{"keys":[1]}`},
		{"no usable key", 200, `{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}`},
		{"a point off the curve", 200, `{"keys":[{"kty":"EC","crv":"P-256","kid":"ours","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}`},
		{"a short x", 200, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"ours","x":"AAAA"}]}`},
		{"x not base64url", 200, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"ours","x":"***"}]}`},
		{"a kid twice", 200, `{"keys":[` + string(good[9:len(good)-2]) + `,` + string(good[9:len(good)-2]) + `]}`},
		{"no kid", 200, strings.Replace(string(good), `"kid":"ours",`, "", 1)},
		{"alg not the key's", 200, strings.Replace(string(good), `"alg":"EdDSA"`, `"alg":"HS256"`, 1)},
		{"status 500", 500, string(good)},
		{"status 404", 404, "{}"},
		{"too slow", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newJWKSServer(t)
			srv.set(tc.status, []byte(tc.body))
			v := newVerifier(t, fiberauth.VerifierConfig{JWKSURL: srv.URL, Now: w.h.clock.Now, FetchTimeout: 50 * time.Millisecond})
			_, err := v.Verify(context.Background(), w.p.access)
			if !errors.Is(err, fiberauth.ErrUnavailable) {
				t.Fatalf("Verify: %v, want ErrUnavailable", err)
			}
			expect(t, callVerifierApp(t, verifierApp(v), w.p.access), 503, "unavailable")
		})
	}
	// ParseJWKS reads the good set and ignores a key type it does not use.
	mixed := `{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},` + string(good[9:len(good)-2]) + `]}`
	if keys, err := fiberauth.ParseJWKS([]byte(mixed)); err != nil || len(keys) != 1 || keys[0].KID != "ours" {
		t.Fatalf("ParseJWKS of a mixed set: %v %v", keys, err)
	}
}

func TestNewVerifierErrors(t *testing.T) {
	t.Parallel()
	k := newHostKey(t, fiberauth.AlgorithmEdDSA, "a")
	for _, cfg := range []fiberauth.VerifierConfig{
		{},
		{JWKSURL: "http://x", Leeway: 2 * time.Minute},
		{Keys: []fiberauth.PublicKey{{KID: "", Algorithm: "EdDSA", Key: k.key.PublicKey().Key}}},
		{Keys: []fiberauth.PublicKey{{KID: "a", Algorithm: "ES256", Key: k.key.PublicKey().Key}}},
		{Keys: []fiberauth.PublicKey{k.key.PublicKey(), k.key.PublicKey()}},
		{Keys: []fiberauth.PublicKey{{KID: "h", Algorithm: "HS256", Key: []byte("secret")}}},
	} {
		if _, err := fiberauth.NewVerifier(cfg); err == nil {
			t.Errorf("NewVerifier(%+v) accepted it", cfg)
		}
	}
}
