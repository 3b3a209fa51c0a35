package fiberauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
)

// Asymmetric access tokens: host keys and generated ones, the JWKS,
// rotation, and every refusal an EdDSA or ES256 deployment owes.

// hostKey is a key made here, so that the test holds its private half to
// sign tokens fiberauth did not.
type hostKey struct {
	key  *fiberauth.SigningKey
	priv any // ed25519.PrivateKey or *ecdsa.PrivateKey
	pem  []byte
}

func newHostKey(t testing.TB, alg, kid string) hostKey {
	t.Helper()
	var priv any
	switch alg {
	case fiberauth.AlgorithmEdDSA:
		_, p, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv = p
	case fiberauth.AlgorithmES256:
		p, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv = p
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	k, err := fiberauth.ParseSigningKeyPEM(block, kid)
	if err != nil {
		t.Fatalf("ParseSigningKeyPEM: %v", err)
	}
	return hostKey{key: k, priv: priv, pem: block}
}

// method is the jwt signing method of alg.
func method(alg string) jwt.SigningMethod {
	switch alg {
	case fiberauth.AlgorithmEdDSA:
		return jwt.SigningMethodEdDSA
	case fiberauth.AlgorithmES256:
		return jwt.SigningMethodES256
	case "none":
		return jwt.SigningMethodNone
	}
	return jwt.SigningMethodHS256
}

// signAs signs header and claims (JSON texts, kept as written) with key
// under alg.
func signAs(t testing.TB, alg string, key any, header string, claims claimsDoc) string {
	t.Helper()
	input := b64(header) + "." + b64(claims.String())
	sig, err := method(alg).Sign(input, key)
	if err != nil {
		t.Fatalf("signing %s: %v", alg, err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// asymHeader is the header of an access token of alg with kid.
func asymHeader(alg, kid string) string {
	return `{"alg":` + jstr(alg) + `,"kid":` + jstr(kid) + `,"typ":"at+jwt"}`
}

// tokenHeader decodes the header of a JWT.
func tokenHeader(t testing.TB, token string) map[string]any {
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

// withKeys configures the host's keys.
func withKeys(keys ...*fiberauth.SigningKey) func(*fiberauth.Config) {
	return func(c *fiberauth.Config) { c.SigningKeys = keys }
}

// withGenerated configures generated keys of alg.
func withGenerated(alg string) func(*fiberauth.Config) {
	return func(c *fiberauth.Config) { c.SigningAlgorithm = alg }
}

// jwks is what GET /auth/.well-known/jwks.json answers, members as sent.
func (h *harness) jwks(t testing.TB) (response, []map[string]any) {
	t.Helper()
	r := h.do("GET", "/auth/.well-known/jwks.json", nil)
	expect(t, r, 200, "")
	raw, _ := r.body["keys"].([]any)
	var keys []map[string]any
	for _, k := range raw {
		keys = append(keys, k.(map[string]any))
	}
	return r, keys
}

func kids(keys []map[string]any) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k["kid"].(string))
	}
	return out
}

// A deployment with a host key signs EdDSA or ES256 with its kid, and its
// tokens work everywhere HS256 ones did.
func TestHostKeySigns(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{fiberauth.AlgorithmEdDSA, fiberauth.AlgorithmES256} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			k := newHostKey(t, alg, "")
			w := newTokenWorld(t, withKeys(k.key))
			hdr := tokenHeader(t, w.p.access)
			if hdr["alg"] != alg || hdr["kid"] != k.key.KID() || hdr["typ"] != "at+jwt" {
				t.Fatalf("header %v, want alg %s, kid %s, typ at+jwt", hdr, alg, k.key.KID())
			}
			w.accepted(t, w.p.access, w.ada.ID)
			// A token signed here with the same key and claims is as good.
			w.accepted(t, signAs(t, alg, k.priv, asymHeader(alg, k.key.KID()), w.claims()), w.ada.ID)
			// Refresh signs with the key too.
			next := pairOf(t, w.h.refresh(w.p.refresh))
			if tokenHeader(t, next.access)["kid"] != k.key.KID() {
				t.Fatal("the refreshed token is not signed with the key")
			}
			w.accepted(t, next.access, w.ada.ID)
		})
	}
}

// An EdDSA deployment refuses every token not signed by one of its keys
// under that key's algorithm: HS256 (with the Secret, or with the public key
// as an HMAC secret: the classic algorithm confusion), none, a missing or
// unknown kid, a foreign key under our kid, ES256 under our kid; and keeps
// every strict check of HS256 deployments.
func TestAsymmetricRefusals(t *testing.T) {
	t.Parallel()
	k := newHostKey(t, fiberauth.AlgorithmEdDSA, "ours")
	w := newTokenWorld(t, withKeys(k.key))
	pub := k.priv.(ed25519.PrivateKey).Public().(ed25519.PublicKey)
	pubDER, _ := x509.MarshalPKIXPublicKey(pub)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	x := base64.RawURLEncoding.EncodeToString(pub)
	_, foreign, _ := ed25519.GenerateKey(rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := w.claims()
	good := signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "ours"), c)
	w.accepted(t, good, w.ada.ID) // the control

	for _, tc := range []struct {
		name  string
		token string
	}{
		{"HS256 with the Secret", rawToken(atHeader, c)},
		{"HS256 with the Secret and our kid", signAs(t, "HS256", testSecret, asymHeader("HS256", "ours"), c)},
		{"HS256 with the raw public key", signAs(t, "HS256", []byte(pub), asymHeader("HS256", "ours"), c)},
		{"HS256 with the public key PEM", signAs(t, "HS256", pubPEM, asymHeader("HS256", "ours"), c)},
		{"HS256 with the JWK x", signAs(t, "HS256", []byte(x), asymHeader("HS256", "ours"), c)},
		{"alg none", signAs(t, "none", jwt.UnsafeAllowNoneSignatureType, asymHeader("none", "ours"), c)},
		{"alg none, no signature", strings.TrimSuffix(b64(asymHeader("none", "ours"))+"."+b64(c.String())+".", "")},
		{"no kid", signAs(t, "EdDSA", k.priv, `{"alg":"EdDSA","typ":"at+jwt"}`, c)},
		{"empty kid", signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", ""), c)},
		{"kid not a string", signAs(t, "EdDSA", k.priv, `{"alg":"EdDSA","kid":1,"typ":"at+jwt"}`, c)},
		{"unknown kid", signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "theirs"), c)},
		{"a foreign key under our kid", signAs(t, "EdDSA", foreign, asymHeader("EdDSA", "ours"), c)},
		{"a foreign key under another kid", signAs(t, "EdDSA", foreign, asymHeader("EdDSA", "theirs"), c)},
		{"ES256 under our kid", signAs(t, "ES256", p256, asymHeader("ES256", "ours"), c)},
		{"alg EdDSA spelt Ed25519", signAs(t, "EdDSA", k.priv, asymHeader("Ed25519", "ours"), c)},
		{"no typ", signAs(t, "EdDSA", k.priv, `{"alg":"EdDSA","kid":"ours"}`, c)},
		{"typ JWT", signAs(t, "EdDSA", k.priv, `{"alg":"EdDSA","kid":"ours","typ":"JWT"}`, c)},
		{"crit", signAs(t, "EdDSA", k.priv, `{"alg":"EdDSA","kid":"ours","typ":"at+jwt","crit":["exp"]}`, c)},
		{"wrong iss", signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "ours"), c.set("iss", `"other"`))},
		{"wrong aud", signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "ours"), c.set("aud", `"other"`))},
		{"wrong client_id", signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "ours"), c.set("client_id", `"other"`))},
		{"expired", signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "ours"), c.set("exp", jint(w.now-3600)))},
		{"no iat", signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "ours"), c.without("iat"))},
		{"sub twice", signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "ours"), c.plus("sub", jstr(w.bob.ID)))},
		{"SUB in another case", signAs(t, "EdDSA", k.priv, asymHeader("EdDSA", "ours"), c.plus("SUB", jstr(w.bob.ID)))},
		{"a signature altered", good[:len(good)-2] + flip(good[len(good)-2:])},
		{"padding", good + "="},
	} {
		t.Run(tc.name, func(t *testing.T) { w.refused(t, tc.token) })
	}
}

// flip changes the first of two base64url characters.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// An ES256 deployment refuses EdDSA under its kid, as an EdDSA one ES256.
func TestES256RefusesEdDSA(t *testing.T) {
	t.Parallel()
	k := newHostKey(t, fiberauth.AlgorithmES256, "ours")
	w := newTokenWorld(t, withKeys(k.key))
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	w.accepted(t, signAs(t, "ES256", k.priv, asymHeader("ES256", "ours"), w.claims()), w.ada.ID)
	w.refused(t, signAs(t, "EdDSA", ed, asymHeader("EdDSA", "ours"), w.claims()))
	w.refused(t, signAs(t, "HS256", testSecret, asymHeader("HS256", "ours"), w.claims()))
}

// The JWKS holds the public keys only, each with exactly the members RFC
// 7517/7518/8037 give it, that decode to the keys; it is cacheable; it is
// not served where tokens are HS256.
func TestJWKS(t *testing.T) {
	t.Parallel()
	ed, ec := newHostKey(t, fiberauth.AlgorithmEdDSA, ""), newHostKey(t, fiberauth.AlgorithmES256, "p256")
	h := newHarness(t, withKeys(ed.key, ec.key))
	r, keys := h.jwks(t)
	if cc := r.header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Fatalf("Cache-Control %q, want public, max-age=300", cc)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/jwk-set+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if len(keys) != 2 {
		t.Fatalf("%d keys, want 2: %s", len(keys), r.raw)
	}
	allowed := map[string]bool{"kty": true, "crv": true, "x": true, "y": true, "kid": true, "alg": true, "use": true}
	for _, k := range keys {
		for m := range k {
			if !allowed[m] {
				t.Fatalf("JWK member %q: %s", m, r.raw)
			}
		}
	}
	edJWK, ecJWK := keys[0], keys[1]
	x := base64.RawURLEncoding.EncodeToString(ed.priv.(ed25519.PrivateKey).Public().(ed25519.PublicKey))
	if edJWK["kty"] != "OKP" || edJWK["crv"] != "Ed25519" || edJWK["x"] != x || edJWK["alg"] != "EdDSA" || edJWK["use"] != "sig" || edJWK["kid"] != ed.key.KID() || edJWK["y"] != nil {
		t.Fatalf("Ed25519 JWK %v", edJWK)
	}
	pub := &ec.priv.(*ecdsa.PrivateKey).PublicKey
	raw, _ := pub.Bytes()
	if ecJWK["kty"] != "EC" || ecJWK["crv"] != "P-256" || ecJWK["alg"] != "ES256" || ecJWK["use"] != "sig" || ecJWK["kid"] != "p256" ||
		ecJWK["x"] != base64.RawURLEncoding.EncodeToString(raw[1:33]) || ecJWK["y"] != base64.RawURLEncoding.EncodeToString(raw[33:]) {
		t.Fatalf("P-256 JWK %v", ecJWK)
	}
	// The default kid is the RFC 7638 thumbprint (its example key's is
	// checked in TestThumbprint); the set reads back as the same keys.
	parsed, err := fiberauth.ParseJWKS([]byte(r.raw))
	if err != nil || len(parsed) != 2 || parsed[0].KID != ed.key.KID() || parsed[1].Algorithm != "ES256" {
		t.Fatalf("ParseJWKS of our own JWKS: %v %v", parsed, err)
	}
	noPrivate(t, "the JWKS", r.raw, ed, ec)

	hs := newHarness(t)
	resp, err := hs.app.Test(httptest.NewRequest("GET", "/auth/.well-known/jwks.json", nil), -1)
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("JWKS of an HS256 deployment: %v %v, want 404", resp.StatusCode, err)
	}
	if got := hs.auth.PublicKeys(); got != nil {
		t.Fatalf("PublicKeys of an HS256 deployment: %v", got)
	}
}

// privateEncodings are the spellings of a key's private part that must
// never appear anywhere.
func privateEncodings(k hostKey) []string {
	var raw []byte
	switch p := k.priv.(type) {
	case ed25519.PrivateKey:
		raw = p.Seed()
	case *ecdsa.PrivateKey:
		raw, _ = p.Bytes()
	}
	der := fiberauth.SigningKeyDER(k.key)
	out := []string{string(raw), string(der), string(k.pem)}
	for _, b := range [][]byte{raw, der} {
		out = append(out, base64.RawURLEncoding.EncodeToString(b), base64.StdEncoding.EncodeToString(b), hex.EncodeToString(b))
	}
	out = append(out, strings.Trim(strings.ReplaceAll(string(k.pem), "\n", ""), "-"))
	return out
}

// noPrivate fails if text holds the private part of any of keys.
func noPrivate(t testing.TB, where, text string, keys ...hostKey) {
	t.Helper()
	for _, k := range keys {
		for _, enc := range privateEncodings(k) {
			if enc != "" && strings.Contains(text, enc) {
				t.Fatalf("%s holds the private key of %s", where, k.key.KID())
			}
		}
	}
}

// A key's private part never shows: not through fmt (any verb), slog,
// encoding/json, errors, logs or any response.
func TestPrivateKeyNeverShown(t *testing.T) {
	t.Parallel()
	ed, ec := newHostKey(t, fiberauth.AlgorithmEdDSA, "ed"), newHostKey(t, fiberauth.AlgorithmES256, "ec")
	for _, k := range []hostKey{ed, ec} {
		var out strings.Builder
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
			out.WriteString(fmt.Sprintf(verb, k.key) + fmt.Sprintf(verb, *k.key) + "\n")
		}
		out.WriteString(fmt.Sprintf("%+v", struct {
			K    *fiberauth.SigningKey
			k    *fiberauth.SigningKey
			Keys []*fiberauth.SigningKey
			cfg  fiberauth.Config
		}{k.key, k.key, []*fiberauth.SigningKey{k.key}, fiberauth.Config{SigningKeys: []*fiberauth.SigningKey{k.key}}}))
		js, err := json.Marshal(map[string]any{"key": k.key, "keys": []*fiberauth.SigningKey{k.key}})
		if err != nil {
			t.Fatal(err)
		}
		out.Write(js)
		var logs syncBuffer
		slog.New(slog.NewJSONHandler(&logs, nil)).Info("key", "key", k.key, "value", *k.key)
		slog.New(slog.NewTextHandler(&logs, nil)).Info("key", "key", k.key, "value", *k.key)
		out.WriteString(logs.String())
		noPrivate(t, "fmt, json and slog output", out.String(), k)
		if !strings.Contains(out.String(), k.key.KID()) {
			t.Fatalf("the output does not even name the key: %s", out.String())
		}
	}

	// Through a deployment: every response and log line of a session.
	h := newHarness(t, withKeys(ed.key, ec.key))
	h.auth.Authenticate(context.Background(), "x.y.z") //nolint:errcheck // only its log matters
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	var seen strings.Builder
	for _, r := range []response{
		h.do("GET", "/auth/me", nil, bearer(p.access)...),
		h.refresh(p.refresh),
		h.do("GET", "/auth/.well-known/jwks.json", nil),
		h.do("GET", "/api/profile", nil, bearer("garbage")...),
	} {
		seen.WriteString(r.raw)
	}
	seen.WriteString(h.logs.String())
	noPrivate(t, "the responses and logs", seen.String(), ed, ec)

	// Loading errors name no key material.
	_, err := fiberauth.ParseSigningKeyPEM(append([]byte("junk"), ed.pem[:len(ed.pem)-40]...), "")
	if err == nil {
		t.Fatal("a cut PEM loaded")
	}
	noPrivate(t, "a loading error", err.Error(), ed)
}

// Config checks of the signing fields.
func TestSigningConfigErrors(t *testing.T) {
	t.Parallel()
	k := newHostKey(t, fiberauth.AlgorithmEdDSA, "a")
	other := newHostKey(t, fiberauth.AlgorithmEdDSA, "a")
	for _, tc := range []struct {
		name string
		set  func(*fiberauth.Config)
	}{
		{"unknown algorithm", func(c *fiberauth.Config) { c.SigningAlgorithm = "RS256" }},
		{"HS256 named", func(c *fiberauth.Config) { c.SigningAlgorithm = "HS256" }},
		{"keys and algorithm", func(c *fiberauth.Config) { c.SigningKeys, c.SigningAlgorithm = []*fiberauth.SigningKey{k.key}, "EdDSA" }},
		{"a kid twice", func(c *fiberauth.Config) { c.SigningKeys = []*fiberauth.SigningKey{k.key, other.key} }},
		{"a nil key", func(c *fiberauth.Config) { c.SigningKeys = []*fiberauth.SigningKey{nil} }},
		{"a zero key", func(c *fiberauth.Config) { c.SigningKeys = []*fiberauth.SigningKey{{}} }},
		{"the signing key retired", func(c *fiberauth.Config) { c.SigningKeys = []*fiberauth.SigningKey{k.key.Retired(testEpoch)} }},
		{"rotation under an hour", func(c *fiberauth.Config) { c.SigningAlgorithm, c.SigningKeyRotation = "EdDSA", time.Minute }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fiberauth.Config{Store: memstore.New(), Secret: testSecret, Logger: quiet}
			tc.set(&cfg)
			if _, err := fiberauth.New(cfg); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	a, err := fiberauth.New(fiberauth.Config{Store: memstore.New(), Secret: testSecret, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RotateSigningKey(context.Background()); !errors.Is(err, fiberauth.ErrNotRotatable) {
		t.Fatalf("RotateSigningKey on HS256: %v", err)
	}
	a, err = fiberauth.New(fiberauth.Config{Store: memstore.New(), Secret: testSecret, Logger: quiet, SigningKeys: []*fiberauth.SigningKey{k.key}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RotateSigningKey(context.Background()); !errors.Is(err, fiberauth.ErrNotRotatable) {
		t.Fatalf("RotateSigningKey with host keys: %v", err)
	}
}
