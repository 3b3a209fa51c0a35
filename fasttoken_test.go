package fiberauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The short path (fasttoken.go) must decide every token exactly as the
// general parser does: these tests verify each token both ways.

var shortPathNow = time.Date(2030, 1, 1, 12, 0, 0, 5e8, time.UTC) // half a second: times are whole seconds

func shortPathSigner(t testing.TB) *tokenSigner {
	t.Helper()
	a, err := New(Config{Store: noStore{}, Secret: []byte("0123456789abcdef0123456789abcdef"), ClientID: "web",
		Now: func() time.Time { return shortPathNow }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return &a.tokens
}

// signHS256 signs header and payload, both JSON text, with the test secret.
func signHS256(header, payload string) string {
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, []byte("0123456789abcdef0123456789abcdef"))
	m.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(m.Sum(nil))
}

// compareShortPath verifies raw by the short path and by the parser, and
// fails unless both accept with the same claims or both refuse. It reports
// whether the short path decided.
func compareShortPath(t *testing.T, s *tokenSigner, raw string) bool {
	t.Helper()
	if checkTokenShape(raw) != nil {
		return false
	}
	fast, handled, fastErr := s.hs.verify(raw)
	_, slow, slowErr := verifyToken(s.parser, s.keyFunc, s.clientID, raw)
	if !handled {
		return false
	}
	if (fastErr == nil) != (slowErr == nil) {
		t.Fatalf("%q: short path %v, parser %v", raw, fastErr, slowErr)
	}
	if fastErr != nil {
		if !errors.Is(fastErr, ErrInvalidToken) {
			t.Fatalf("%q: short path error %v is not ErrInvalidToken", raw, fastErr)
		}
		return true
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: short path %+v, parser %+v", raw, fast, slow)
	}
	return true
}

func TestShortPathAgreesWithParser(t *testing.T) {
	s := shortPathSigner(t)
	iat := shortPathNow.Unix()
	leeway := int64(s.hs.leeway / time.Second)
	claims := func(extra string) string {
		return `{"iss":"fiberauth","sub":"u","aud":["fiberauth"],"iat":` + strconv.FormatInt(iat, 10) +
			`,"exp":` + strconv.FormatInt(iat+900, 10) + `,"jti":"j","sid":"s","etag":"e"` + extra + `}`
	}
	good, _, err := s.sign("u", "s", "e", shortPathNow)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	cases := map[string]string{
		"issued":          good,
		"written here":    signHS256(hsHeader, claims("")),
		"client_id":       signHS256(hsHeader, claims(`,"client_id":"web"`)),
		"other client_id": signHS256(hsHeader, claims(`,"client_id":"app"`)),
		"empty client_id": signHS256(hsHeader, claims(`,"client_id":""`)),
		"aud string":      signHS256(hsHeader, strings.Replace(claims(""), `["fiberauth"]`, `"fiberauth"`, 1)),
		"aud of two":      signHS256(hsHeader, strings.Replace(claims(""), `["fiberauth"]`, `["x","fiberauth"]`, 1)),
		"other aud":       signHS256(hsHeader, strings.Replace(claims(""), `["fiberauth"]`, `["x"]`, 1)),
		"empty aud":       signHS256(hsHeader, strings.Replace(claims(""), `["fiberauth"]`, `[""]`, 1)),
		"other iss":       signHS256(hsHeader, strings.Replace(claims(""), `"iss":"fiberauth"`, `"iss":"x"`, 1)),
		"no iss":          signHS256(hsHeader, strings.Replace(claims(""), `"iss":"fiberauth",`, ``, 1)),
		"no exp":          signHS256(hsHeader, strings.Replace(claims(""), `,"exp":`+strconv.FormatInt(iat+900, 10), ``, 1)),
		"no iat":          signHS256(hsHeader, strings.Replace(claims(""), `"iat":`+strconv.FormatInt(iat, 10)+`,`, ``, 1)),
		"no etag":         signHS256(hsHeader, strings.Replace(claims(""), `,"etag":"e"`, ``, 1)),
		"expired":         signHS256(hsHeader, strings.Replace(claims(""), strconv.FormatInt(iat+900, 10), strconv.FormatInt(iat-leeway, 10), 1)),
		"exp in leeway":   signHS256(hsHeader, strings.Replace(claims(""), strconv.FormatInt(iat+900, 10), strconv.FormatInt(iat-leeway+1, 10), 1)),
		"nbf ahead":       signHS256(hsHeader, claims(`,"nbf":`+strconv.FormatInt(iat+leeway+1, 10))),
		"nbf in leeway":   signHS256(hsHeader, claims(`,"nbf":`+strconv.FormatInt(iat+leeway, 10))),
		"iat ahead":       signHS256(hsHeader, strings.Replace(claims(""), `"iat":`+strconv.FormatInt(iat, 10), `"iat":`+strconv.FormatInt(iat+leeway+1, 10), 1)),
		"iat in leeway":   signHS256(hsHeader, strings.Replace(claims(""), `"iat":`+strconv.FormatInt(iat, 10), `"iat":`+strconv.FormatInt(iat+leeway, 10), 1)),
		"fractional exp":  signHS256(hsHeader, strings.Replace(claims(""), strconv.FormatInt(iat+900, 10), strconv.FormatInt(iat+900, 10)+".9", 1)),
		"escaped sub":     signHS256(hsHeader, strings.Replace(claims(""), `"sub":"u"`, `"sub":"\u0075"`, 1)),
		"repeated sub":    signHS256(hsHeader, claims(`,"sub":"v"`)),
		"SUB":             signHS256(hsHeader, claims(`,"SUB":"v"`)),
		"null sub":        signHS256(hsHeader, strings.Replace(claims(""), `"sub":"u"`, `"sub":null`, 1)),
		"trailing text":   signHS256(hsHeader, claims("")+" x"),
		"not an object":   signHS256(hsHeader, `[1]`),
		"null claims":     signHS256(hsHeader, `null`),
		"empty claims":    signHS256(hsHeader, ``),
		"not JSON":        signHS256(hsHeader, `{"sub":`),
		"wrong signature": parts[0] + "." + parts[1] + "." + strings.Repeat("A", hsSignatureLen),
		"short signature": parts[0] + "." + parts[1] + "." + parts[2][:hsSignatureLen-1],
		"long signature":  good + "A",
		"padded":          good + "=",
		"no signature":    parts[0] + "." + parts[1] + ".",
		"no payload":      parts[0] + ".." + parts[2],
		"two parts":       parts[0] + "." + parts[1],
		"header only":     parts[0] + ".",
		"four parts":      good + ".x",
		"loose signature": parts[0] + "." + parts[1] + "." + parts[2][:hsSignatureLen-1] + looseLast(parts[2]),
		"loose payload":   parts[0] + "." + parts[1] + "x." + parts[2],
		"space":           parts[0] + "." + parts[1] + " ." + parts[2],
	}
	decided := 0
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			if compareShortPath(t, s, raw) {
				decided++
			} else {
				t.Logf("left to the parser")
			}
		})
	}
	if decided != len(cases)-7 { // the seven malformed ones, below
		t.Fatalf("the short path decided %d of %d tokens", decided, len(cases))
	}
	// What sign writes takes the short path.
	if _, handled, err := s.hs.verify(good); !handled || err != nil {
		t.Fatalf("issued token: handled %v, %v", handled, err)
	}
	// Another header is the parser's to decide.
	for _, h := range []string{`{"typ":"at+jwt","alg":"HS256"}`, `{"alg":"HS256","typ":"at+jwt","kid":"k"}`, `{"alg":"none","typ":"at+jwt"}`} {
		if _, handled, _ := s.hs.verify(signHS256(h, claims(""))); handled {
			t.Fatalf("header %s took the short path", h)
		}
	}
}

// looseLast is the last character of a 32-byte signature with one of its
// unused bits set: strict decoding refuses it.
func looseLast(sig string) string {
	i := strings.IndexByte(base64URLAlphabet, sig[len(sig)-1])
	return string(base64URLAlphabet[i|1])
}

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// FuzzShortPath: a token signed with the secret over any claims text, then
// changed anywhere, is decided alike by the short path and the parser.
func FuzzShortPath(f *testing.F) {
	iat := strconv.FormatInt(shortPathNow.Unix(), 10)
	f.Add(`{"iss":"fiberauth","sub":"u","aud":["fiberauth"],"iat":`+iat+`,"exp":`+iat+`0,"jti":"j","sid":"s","etag":"e"}`, 0, byte(0))
	f.Add(`{"iss":"fiberauth","sub":"u","aud":"fiberauth","iat":`+iat+`,"exp":`+iat+`,"jti":"j","sid":"s","etag":"e","client_id":"web"}`, 40, byte('='))
	f.Add(`{"sub":"a","sub":"b"}`, -1, byte('.'))
	s := shortPathSigner(f)
	f.Fuzz(func(t *testing.T, payload string, at int, c byte) {
		raw := signHS256(hsHeader, payload)
		if at >= 0 && at < len(raw) {
			raw = raw[:at] + string(c) + raw[at+1:]
		}
		compareShortPath(t, s, raw)
	})
}

// A token in the cache expires when the parser says it does: from exp +
// Leeway on, to the nanosecond, not at the next whole second.
func TestCachedTokenExpiresWithParser(t *testing.T) {
	now := shortPathNow
	a, err := New(Config{Store: noStore{}, Secret: []byte("0123456789abcdef0123456789abcdef"),
		Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	raw, c, err := a.tokens.sign("u", "s", "e", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.verifiedToken(raw, now); err != nil { // cached now
		t.Fatal(err)
	}
	end := time.Unix(c.ExpiresAt, 0).Add(a.cfg.Leeway)
	for _, at := range []time.Time{end.Add(-time.Nanosecond), end, end.Add(500 * time.Millisecond)} {
		now = at
		_, _, parsed := a.tokens.verify(raw)
		_, cached := a.verifiedToken(raw, at)
		if (parsed == nil) != (cached == nil) || (cached == nil) != at.Before(end) {
			t.Fatalf("at exp + Leeway %+v: parser %v, cache %v", at.Sub(end), parsed, cached)
		}
	}
}

// Wiping Config.Secret after New changes nothing: the signer and both
// verifying paths keep the key they were given.
func TestSecretCopiedAtNew(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	a, err := New(Config{Store: noStore{}, Secret: secret, Now: func() time.Time { return shortPathNow }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	clear(secret)
	raw, _, err := a.tokens.sign("u", "s", "e", shortPathNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.tokens.verify(raw); err != nil {
		t.Fatalf("a token signed after the host wiped its secret: %v", err)
	}
	// Signed with the wiped (all-zero) key, in a header the parser decides.
	enc := base64.RawURLEncoding
	iat := strconv.FormatInt(shortPathNow.Unix(), 10)
	signed := enc.EncodeToString([]byte(`{"typ":"at+jwt","alg":"HS256"}`)) + "." + enc.EncodeToString([]byte(
		`{"iss":"fiberauth","sub":"admin","aud":["fiberauth"],"iat":`+iat+`,"exp":`+iat+`,"jti":"j","sid":"s","etag":"e"}`))
	m := hmac.New(sha256.New, make([]byte, 32))
	m.Write([]byte(signed))
	if _, _, err := a.tokens.verify(signed + "." + enc.EncodeToString(m.Sum(nil))); err == nil {
		t.Fatal("a token signed with the wiped key verifies")
	}
}

// The short path signs what golang-jwt signs, byte for byte: with and
// without client_id, for claims whose strings need escaping or not, and
// gives claims of another issuer, audience or client_id back to it.
func TestShortSignAgreesWithLibrary(t *testing.T) {
	odd := []string{"", "plain-Id_09", `q"uote\back`, "<html>&amp;", "ctl\x00\x1f\x7f", "é\u2028\u2029", "bad\xffutf8"}
	for _, cfg := range []Config{
		{Issuer: "fiberauth", Audience: "fiberauth", ClientID: "web"},
		{Issuer: "https://idp.example/<a&b>", Audience: "aud\u2028é", ClientID: ""},
	} {
		cfg.Secret = []byte("0123456789abcdef0123456789abcdef")
		v := newHSVerifier(&cfg)
		for i, str := range odd {
			c := &Claims{
				Issuer: cfg.Issuer, Subject: str, Audience: Audience{cfg.Audience}, IssuedAt: 1_900_000_000 + int64(i),
				ExpiresAt: 1_900_000_900, ID: odd[(i+1)%len(odd)], SessionID: odd[(i+2)%len(odd)], ETag: odd[(i+3)%len(odd)],
				ClientID: cfg.ClientID,
			}
			if i%2 == 1 {
				c.NotBefore = c.IssuedAt
			}
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
			tok.Header["typ"] = accessTokenType
			want, err := tok.SignedString(cfg.Secret)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := v.sign(c); !ok || got != want {
				t.Fatalf("%+v: short path %q (%v), golang-jwt %q", c, got, ok, want)
			}
		}
		for _, c := range []*Claims{
			{Issuer: cfg.Issuer + "x", Audience: Audience{cfg.Audience}, ClientID: cfg.ClientID},
			{Issuer: cfg.Issuer, Audience: Audience{cfg.Audience, "b"}, ClientID: cfg.ClientID},
			{Issuer: cfg.Issuer, Audience: nil, ClientID: cfg.ClientID},
			{Issuer: cfg.Issuer, Audience: Audience{cfg.Audience}, ClientID: cfg.ClientID + "x"},
		} {
			if _, ok := v.sign(c); ok {
				t.Fatalf("%+v: the short path signed claims not of its key", c)
			}
		}
	}
}
