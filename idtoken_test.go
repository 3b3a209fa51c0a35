package fiberauth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fiberauth/fiberauth"
)

// An ID token says who signed in, signed like the access tokens, and is
// never taken for one: the middleware refuses an ID token, and
// VerifyIDToken an access token; with HS256 and with asymmetric keys.
func TestIDTokens(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		configure []func(*fiberauth.Config)
	}{
		{"HS256", nil},
		{"EdDSA", []func(*fiberauth.Config){withGenerated("EdDSA")}},
		{"ES256", []func(*fiberauth.Config){withGenerated("ES256")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, c.configure...)
			u := h.createUser("ada@example.com")
			p := h.login("ada@example.com", goodPassword)
			u, err := h.auth.UserByID(t.Context(), u.ID)
			if err != nil {
				t.Fatal(err)
			}
			u.Username, u.DisplayName = "ada", "Ada Lovelace"
			id, err := h.auth.IssueIDToken(u)
			if err != nil {
				t.Fatal(err)
			}
			claims, err := h.auth.VerifyIDToken(id)
			if err != nil {
				t.Fatalf("VerifyIDToken: %v", err)
			}
			if claims.Subject != u.ID || claims.Email != "ada@example.com" || !claims.EmailVerified || claims.PreferredUsername != "ada" ||
				claims.Name != "Ada Lovelace" || claims.TokenUse != "id" || claims.Issuer != "fiberauth" || len(claims.Audience) != 1 ||
				claims.ExpiresAt-claims.IssuedAt != 15*60 {
				t.Fatalf("claims %+v", claims)
			}
			tok, _, err := jwt.NewParser().ParseUnverified(id, jwt.MapClaims{})
			if err != nil || tok.Header["typ"] != "JWT" || (c.name != "HS256") != (tok.Header["kid"] != nil) {
				t.Fatalf("header %v: %v", tok.Header, err)
			}
			for _, k := range []string{"sid", "etag", "jti", "client_id"} {
				if _, ok := tok.Claims.(jwt.MapClaims)[k]; ok {
					t.Errorf("an ID token carries the access token's %q", k)
				}
			}
			// Not an access token, whichever way it is shown.
			expectRefused(t, h.do("GET", "/auth/me", nil, bearer(id)...), "malformed")
			if _, err := h.auth.Authenticate(t.Context(), id); err == nil {
				t.Fatal("Authenticate took an ID token")
			}
			// Nor is an access token an ID token, nor a tampered ID token one.
			if _, err := h.auth.VerifyIDToken(p.access); err == nil {
				t.Fatal("VerifyIDToken took an access token")
			}
			// A character well inside the signature (the last ones carry
			// padding bits, and may already be what they are set to).
			i := len(id) - 10
			other := byte('A')
			if id[i] == 'A' {
				other = 'B'
			}
			if _, err := h.auth.VerifyIDToken(id[:i] + string(other) + id[i+1:]); err == nil {
				t.Fatal("VerifyIDToken took a token with another signature")
			}
			h.clock.Advance(16 * time.Minute)
			if _, err := h.auth.VerifyIDToken(id); err == nil || !strings.Contains(err.Error(), "expired") {
				t.Fatalf("an expired ID token: %v", err)
			}
		})
	}
}
