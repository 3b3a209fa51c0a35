package fiberauth_test

import (
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/fiberauth/fiberauth"
)

// cognitoLogin signs in through /v1 and returns the ID token, the access token
// and the refresh token.
func cognitoLogin(t *testing.T, h *harness, name string) (id, access, refresh string) {
	t.Helper()
	r := h.do("POST", "/v1/login", map[string]any{"username": name, "password": goodPassword})
	expect(t, r, 200, "")
	h.keep(r.str("refresh_token"), r.str("id_token"))
	return r.str("id_token"), r.str("access_token"), r.str("refresh_token")
}

// an ID token is never taken where an access token is (every
// TokenLookup, Authenticate, the profiles' Bearer and body tokens, haltman's
// access cookie), nor an access token by VerifyIDToken; HS256 and EdDSA.
func TestProfilesIDTokenNeverAnAccessToken(t *testing.T) {
	t.Parallel()
	for name, configure := range map[string][]func(*fiberauth.Config){
		"HS256": nil,
		"EdDSA": {withGenerated(fiberauth.AlgorithmEdDSA)},
		"ES256": {withGenerated(fiberauth.AlgorithmES256)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, configure...)
			h.auth.Mount(h.app.Group("/v1"), fiberauth.WithProfile(fiberauth.ProfileCognito))
			h.auth.Mount(h.app.Group("/v3/session"), fiberauth.WithProfile(fiberauth.ProfileMisaka))
			h.auth.Mount(h.app.Group("/halt"), fiberauth.WithProfile(fiberauth.ProfileHaltman))
			for i, lookup := range []string{
				"header:Authorization",
				"cookie:" + fiberauth.AccessCookie,
				"header:Authorization,cookie:" + fiberauth.AccessCookie,
				"header:X-Token",
			} {
				mw := h.auth.Middleware(fiberauth.MiddlewareConfig{TokenLookup: lookup})
				p := "/zz" + string(rune('a'+i))
				h.app.Get(p, mw, func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"ok": true}) })
				h.app.Post(p, mw, func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"ok": true}) })
			}
			h.createUser("ada@example.com")
			id, access, _ := cognitoLogin(t, h, "ada@example.com")
			csrf := h.do("POST", "/web/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword}).str("csrf_token")

			for i := range 4 {
				p := "/zz" + string(rune('a'+i))
				for _, hdr := range [][]string{
					bearer(id),
					{"Cookie", fiberauth.AccessCookie + "=" + id},
					{"X-Token", id},
				} {
					for _, m := range []string{"GET", "POST"} {
						r := h.do(m, p, nil, append(hdr, fiberauth.CSRFHeader, csrf)...)
						if r.status == 200 {
							t.Errorf("%s %s took an ID token via %v", m, p, hdr[0])
						}
					}
				}
			}
			if _, err := h.auth.Authenticate(t.Context(), id); err == nil {
				t.Error("Authenticate took an ID token")
			}
			if r := h.do("POST", "/v1/change-password", map[string]any{"access_token": id, "previous_password": goodPassword, "proposed_password": "zz new long password"}); r.status != 401 {
				t.Errorf("/v1/change-password took an ID token: %d %s", r.status, r.raw)
			}
			if r := h.do("GET", "/v3/session/me", nil, bearer(id)...); r.status != 401 {
				t.Errorf("/v3/session/me took an ID token: %d", r.status)
			}
			if r := h.do("POST", "/v3/session/logout", nil, bearer(id)...); r.status != 401 {
				t.Errorf("/v3/session/logout took an ID token: %d", r.status)
			}
			if r := h.do("POST", "/auth/logout/all", nil, bearer(id)...); r.status != 401 {
				t.Errorf("/auth/logout/all took an ID token: %d", r.status)
			}
			if _, err := h.auth.VerifyIDToken(access); err == nil {
				t.Error("VerifyIDToken took an access token")
			}
			// An ID token re-labelled typ at+jwt breaks its signature.
			parts := strings.Split(id, ".")
			hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
			relabelled := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(hdr), `"JWT"`, `"at+jwt"`, 1))) + "." + parts[1] + "." + parts[2]
			if _, err := h.auth.Authenticate(t.Context(), relabelled); err == nil {
				t.Error("Authenticate took a relabelled ID token")
			}
		})
	}
}

// A host key listed with Retired(at) verifies nothing after at + AccessTTL
// + Leeway (the JWKS drops it, the middleware refuses its access tokens),
// and VerifyIDToken refuses ID tokens it signs too: a key is often retired
// because it leaked, and whoever holds it could mint ID tokens for any
// sub or email.
func TestProfilesIDTokenRetiredKeyStillVerifies(t *testing.T) {
	t.Parallel()
	old, cur := newHostKey(t, fiberauth.AlgorithmEdDSA, "old"), newHostKey(t, fiberauth.AlgorithmEdDSA, "new")
	h := newHarness(t, withKeys(cur.key, old.key.Retired(testEpoch)))
	h.clock.Advance(24 * time.Hour) // the old key stopped verifying long ago
	if _, keys := h.jwks(t); len(keys) != 1 {
		t.Fatalf("the old key is still published: %v", kids(keys))
	}
	now := h.clock.Now().Unix()
	claims := `{"iss":"fiberauth","sub":"anyone-at-all","aud":["fiberauth"],"iat":` + jint(now) + `,"exp":` + jint(now+900) +
		`,"token_use":"id","email":"ceo@example.com","email_verified":true}`
	forged := signAs(t, "EdDSA", old.priv, `{"alg":"EdDSA","kid":"old","typ":"JWT"}`, rawClaims(claims))
	// The same key's access token is refused ("expired": the key has gone).
	access := signAs(t, "EdDSA", old.priv, asymHeader("EdDSA", "old"), rawClaims(`{"iss":"fiberauth","sub":"x","aud":["fiberauth"],"iat":`+jint(now)+`,"exp":`+jint(now+900)+`,"jti":"j","sid":"s","etag":"e"}`))
	if _, err := h.auth.Authenticate(t.Context(), access); err == nil {
		t.Fatal("an access token of the retired key was accepted")
	}
	if c, err := h.auth.VerifyIDToken(forged); err == nil {
		t.Errorf("VerifyIDToken took an ID token of a retired key: sub %q email %q", c.Subject, c.Email)
	}
}

// rawClaims is a claimsDoc whose String() is raw.
func rawClaims(raw string) claimsDoc {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		panic(err)
	}
	// keep the order of raw: re-split by hand
	var out claimsDoc
	dec := json.NewDecoder(strings.NewReader(raw))
	_, _ = dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		var v json.RawMessage
		_ = dec.Decode(&v)
		out = append(out, member{k.(string), string(v)})
	}
	return out
}

// docs/api.md invites "any JWT library" to verify access tokens with the
// secret (or the JWKS). An ID token has the same key and iss, but another
// aud (Config.IDTokenAudience, as OIDC keeps them apart), so a generic
// verifier that checks iss and aud (golang-jwt's options; jwtware) does not
// take an ID token, which clients hand to third parties, for an access
// token.
func TestProfilesIDTokenPassesGenericVerifier(t *testing.T) {
	t.Parallel()
	cur := newHostKey(t, fiberauth.AlgorithmEdDSA, "k1")
	h := newHarness(t, withKeys(cur.key))
	h.auth.Mount(h.app.Group("/v1"), fiberauth.WithProfile(fiberauth.ProfileCognito))
	h.createUser("ada@example.com")
	id, _, _ := cognitoLogin(t, h, "ada@example.com")
	pub := cur.priv.(crypto.Signer).Public().(ed25519.PublicKey)
	generic := jwt.NewParser(jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer("fiberauth"), jwt.WithAudience("fiberauth"),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(h.clock.Now))
	tok, err := generic.Parse(id, func(*jwt.Token) (any, error) { return pub, nil })
	if err == nil && tok.Valid {
		t.Errorf("a generic verifier (iss, aud, exp, signature) takes the ID token as an access token; sub %v", tok.Claims.(jwt.MapClaims)["sub"])
	}
	// HS256 likewise: "any JWT library verifies it with that secret".
	h2 := newHarness(t)
	h2.auth.Mount(h2.app.Group("/v1"), fiberauth.WithProfile(fiberauth.ProfileCognito))
	h2.createUser("ada@example.com")
	id2, _, _ := cognitoLogin(t, h2, "ada@example.com")
	generic2 := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("fiberauth"), jwt.WithAudience("fiberauth"),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(h2.clock.Now))
	if tok, err := generic2.Parse(id2, func(*jwt.Token) (any, error) { return testSecret, nil }); err == nil && tok.Valid {
		t.Error("HS256: a generic verifier with the secret takes the ID token as an access token")
	}
}
