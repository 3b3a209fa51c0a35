package main

import (
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestMe(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	app := newApp(key)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "bench-user", "email": "bench@example.com", "exp": time.Now().Add(time.Minute).Unix(),
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, auth string
		code       int
		body       string
	}{
		{"/api/me", "Bearer " + tok, 200, `{"user_id":"bench-user"}`},
		{"/api/profile", "Bearer " + tok, 200, `{"email":"bench@example.com","user_id":"bench-user"}`},
		{"/api/me", "", 400, ""},
		{"/api/me", "Bearer " + tok + "x", 401, ""},
	} {
		req := httptest.NewRequest("GET", c.path, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != c.code || c.body != "" && string(body) != c.body {
			t.Errorf("%s %q: %d %s, want %d %s", c.path, c.auth, resp.StatusCode, body, c.code, c.body)
		}
	}
}
