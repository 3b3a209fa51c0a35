package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// joseDir is the Node side of the interop test: jose, pinned in its
// package-lock.json (.ci/run installs it with npm ci).
const joseDir = "../interop/jose"

// node finds node and jose's node_modules, or skips (fails under CI=true,
// which must run the test).
func node(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "node is not installed (Debian packages nodejs and npm)"
	default:
		if _, err := os.Stat(filepath.Join(joseDir, "node_modules", "jose")); err != nil {
			missing = "jose is not installed: run `npm ci` in interop/jose"
		}
	}
	if missing == "" {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI must run the jose interop test (.ci/run installs both)", missing)
	}
	t.Skipf("%s: skipping the jose interop test", missing)
	return ""
}

// runJose runs interop.mjs cmd with req on stdin and decodes its answer.
func runJose(t *testing.T, nodePath, cmd string, req, out any) {
	t.Helper()
	in, _ := json.Marshal(req)
	c := exec.CommandContext(t.Context(), nodePath, "interop.mjs", cmd)
	c.Dir = joseDir
	c.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	raw, err := c.Output()
	if err != nil {
		t.Fatalf("node interop.mjs %s: %v\n%s", cmd, err, stderr.String())
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("node interop.mjs %s answered %q: %v", cmd, raw, err)
	}
}

type joseResults struct {
	Results []struct {
		OK    bool   `json:"ok"`
		Sub   string `json:"sub"`
		KID   string `json:"kid"`
		Error string `json:"error"`
	} `json:"results"`
}

// A client nobody here wrote, jose (createRemoteJWKSet + jwtVerify with
// issuer, audience and typ at+jwt), verifies the example's EdDSA tokens
// from its JWKS, before and after a key rotation (the old key's token
// still verifies; the JWKS holds both keys); and tokens jose signs with an
// Ed25519 key of its own, under our kid or another, are refused by
// fiberauth's middleware.
func TestJoseInterop(t *testing.T) {
	nodePath := node(t)
	base, auth := startServerAuth(t, options{store: "memory", signingKey: "generate"})
	jwks := base + "/auth/.well-known/jwks.json"
	u, err := auth.CreateUser(context.Background(), fiberauthUser("ada@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	verify := func(tokens ...string) joseResults {
		t.Helper()
		var res joseResults
		runJose(t, nodePath, "verify", map[string]any{"jwks": jwks, "issuer": "fiberauth", "audience": "fiberauth", "tokens": tokens}, &res)
		if len(res.Results) != len(tokens) {
			t.Fatalf("jose answered %d results for %d tokens", len(res.Results), len(tokens))
		}
		return res
	}

	old := apiLogin(t, base, "ada@example.com", "correct horse battery")
	oldKID := header(t, old.access)["kid"].(string)
	if r := verify(old.access).Results[0]; !r.OK || r.Sub != u.ID || r.KID != oldKID {
		t.Fatalf("jose on the first token: %+v", r)
	}

	if err := auth.RotateSigningKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	cur := apiLogin(t, base, "ada@example.com", "correct horse battery")
	curKID := header(t, cur.access)["kid"].(string)
	if curKID == oldKID {
		t.Fatal("the rotation did not change the kid")
	}
	res := verify(old.access, cur.access)
	for i, want := range []string{oldKID, curKID} {
		if r := res.Results[i]; !r.OK || r.Sub != u.ID || r.KID != want {
			t.Fatalf("jose after the rotation, token of %s: %+v", want, r)
		}
	}
	resp, err := httpGetJSON(jwks)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range resp.Keys {
		kids = append(kids, k.KID)
	}
	if !slices.Equal(kids, []string{curKID, oldKID}) {
		t.Fatalf("JWKS kids %v, want %v", kids, []string{curKID, oldKID})
	}

	// jose signs, with a key of its own, the claims of a real token.
	var forged struct {
		Tokens []string `json:"tokens"`
	}
	runJose(t, nodePath, "forge", map[string]any{"claims": claimsOf(t, cur.access), "kids": []string{curKID, oldKID, "jose-own-kid"}}, &forged)
	if len(forged.Tokens) != 3 {
		t.Fatalf("jose forged %d tokens", len(forged.Tokens))
	}
	for i, tok := range forged.Tokens {
		if got := profileStatus(t, base, tok); got != 401 {
			t.Errorf("the middleware answers %d to jose's token %d (kid %v), want 401", got, i, header(t, tok)["kid"])
		}
	}
	// And jose itself refuses them against our JWKS.
	for i, r := range verify(forged.Tokens...).Results {
		if r.OK {
			t.Errorf("jose accepted its own forged token %d against our JWKS", i)
		}
	}
	if got := profileStatus(t, base, cur.access); got != 200 {
		t.Fatalf("the genuine token: %d", got)
	}
}

// httpGetJSON reads a JWKS.
func httpGetJSON(url string) (struct {
	Keys []struct {
		KID string `json:"kid"`
	} `json:"keys"`
}, error) {
	var out struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	resp, err := http.Get(url)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	return out, json.NewDecoder(resp.Body).Decode(&out)
}
