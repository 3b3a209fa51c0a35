package fiberauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/fiberauth/fiberauth"
)

// RFC 8037 §A.1-A.3: the Ed25519 key of the RFC's examples and its
// thumbprint, which is the kid fiberauth gives it.
const (
	rfc8037D          = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
	rfc8037X          = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	rfc8037Thumbprint = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
)

func TestThumbprint(t *testing.T) {
	t.Parallel()
	k, err := fiberauth.ParseSigningKeyJWK([]byte(`{"kty":"OKP","crv":"Ed25519","d":"` + rfc8037D + `","x":"` + rfc8037X + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	if k.KID() != rfc8037Thumbprint || k.Algorithm() != "EdDSA" {
		t.Fatalf("kid %s alg %s, want the RFC's thumbprint and EdDSA", k.KID(), k.Algorithm())
	}
	// Its public JWK is the RFC's.
	js, _ := json.Marshal(k)
	if !strings.Contains(string(js), `"x":"`+rfc8037X+`"`) || strings.Contains(string(js), rfc8037D) {
		t.Fatalf("public JWK %s", js)
	}
}

// Private JWKs and PEMs load when well formed and are refused, with an
// error, otherwise.
func TestParseSigningKeys(t *testing.T) {
	t.Parallel()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	raw, _ := p256.PublicKey.Bytes()
	d, _ := p256.Bytes()
	e := base64.RawURLEncoding.EncodeToString
	ecJWK := func(x, y, d string) string {
		return `{"kty":"EC","crv":"P-256","kid":"ec1","alg":"ES256","x":"` + x + `","y":"` + y + `","d":"` + d + `"}`
	}
	k, err := fiberauth.ParseSigningKeyJWK([]byte(ecJWK(e(raw[1:33]), e(raw[33:]), e(d))))
	if err != nil || k.KID() != "ec1" || k.Algorithm() != "ES256" {
		t.Fatalf("P-256 JWK: %v %v", k, err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	od, _ := other.Bytes()
	for _, tc := range []struct{ name, jwk string }{
		{"no d", `{"kty":"OKP","crv":"Ed25519","x":"` + rfc8037X + `"}`},
		{"x not of d", `{"kty":"OKP","crv":"Ed25519","d":"` + rfc8037D + `","x":"` + e(make([]byte, 32)) + `"}`},
		{"short d", `{"kty":"OKP","crv":"Ed25519","d":"AAAA","x":"` + rfc8037X + `"}`},
		{"d padded", `{"kty":"OKP","crv":"Ed25519","d":"` + rfc8037D + `=","x":"` + rfc8037X + `"}`},
		{"alg not the key's", `{"kty":"OKP","crv":"Ed25519","alg":"ES256","d":"` + rfc8037D + `","x":"` + rfc8037X + `"}`},
		{"use enc", `{"kty":"OKP","crv":"Ed25519","use":"enc","d":"` + rfc8037D + `","x":"` + rfc8037X + `"}`},
		{"X25519", `{"kty":"OKP","crv":"X25519","d":"` + rfc8037D + `","x":"` + rfc8037X + `"}`},
		{"RSA", `{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}`},
		{"EC x, y not of d", ecJWK(e(raw[1:33]), e(raw[33:]), e(od))},
		{"EC off the curve", ecJWK(e(make([]byte, 32)), e(make([]byte, 32)), e(d))},
		{"not JSON", `{`},
		{"an array", `[]`},
	} {
		if _, err := fiberauth.ParseSigningKeyJWK([]byte(tc.jwk)); err == nil {
			t.Errorf("ParseSigningKeyJWK(%s) accepted it", tc.name)
		}
	}

	sec1, _ := x509.MarshalECPrivateKey(p256)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	block := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	for name, in := range map[string][]byte{
		"empty":          nil,
		"not PEM":        []byte("hello"),
		"SEC 1":          block("EC PRIVATE KEY", sec1),
		"RSA":            block("PRIVATE KEY", rsaDER),
		"P-384":          block("PRIVATE KEY", p384DER),
		"garbage inside": block("PRIVATE KEY", []byte("garbage")),
		"a public key":   block("PUBLIC KEY", rsaDER),
	} {
		if _, err := fiberauth.ParseSigningKeyPEM(in, ""); err == nil {
			t.Errorf("ParseSigningKeyPEM(%s) accepted it", name)
		}
	}
	// A certificate or other block before the key is skipped.
	der, _ := x509.MarshalPKCS8PrivateKey(p256)
	k, err = fiberauth.ParseSigningKeyPEM(append(block("CERTIFICATE", []byte("x")), block("PRIVATE KEY", der)...), "")
	if err != nil || k.Algorithm() != "ES256" || k.KID() == "" {
		t.Fatalf("a PEM with a block before the key: %v %v", k, err)
	}
	for _, alg := range []string{"EdDSA", "ES256"} {
		if g, err := fiberauth.GenerateSigningKey(alg); err != nil || g.Algorithm() != alg {
			t.Fatalf("GenerateSigningKey(%s): %v", alg, err)
		}
	}
	if _, err := fiberauth.GenerateSigningKey("HS256"); err == nil {
		t.Fatal("GenerateSigningKey(HS256) accepted it")
	}
}

// FuzzParseJWKS: no JWK Set, however malformed, panics ParseJWKS or the
// private-key parsers.
func FuzzParseJWKS(f *testing.F) {
	for _, seed := range []string{
		`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + rfc8037X + `"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","kid":"b","x":"AA","y":"AA"}]}`,
		`{"kty":"OKP","crv":"Ed25519","d":"` + rfc8037D + `","x":"` + rfc8037X + `"}`,
		`{"keys":null}`, `[]`, `-----BEGIN PRIVATE KEY-----`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = fiberauth.ParseJWKS(b)
		_, _ = fiberauth.ParseSigningKeyJWK(b)
		_, _ = fiberauth.ParseSigningKeyPEM(b, "")
	})
}
