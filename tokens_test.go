package fiberauth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// The strict access token checks (docs/api.md, "Tokens"), through HTTP.
// Tokens are signed here from the exact JSON text of their header and
// claims, which jwt.MapClaims could not express (repeated keys, keys in
// another case, fractional times). Every refused token sits next to a
// control, signed the same way, that is accepted: each fails for its one
// spoilt part.

// claimsDoc is a JSON object kept as written: keys in order, values raw.
type claimsDoc []member

type member struct{ key, value string } // key unescaped text, value raw JSON

func (d claimsDoc) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range d {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + m.key + `":` + m.value)
	}
	b.WriteByte('}')
	return b.String()
}

// set replaces the value of key, or adds key at the end.
func (d claimsDoc) set(key, value string) claimsDoc {
	out := append(claimsDoc(nil), d...)
	for i := range out {
		if out[i].key == key {
			out[i].value = value
			return out
		}
	}
	return append(out, member{key, value})
}

// plus adds key at the end, whether or not it is there already.
func (d claimsDoc) plus(key, value string) claimsDoc {
	return append(append(claimsDoc(nil), d...), member{key, value})
}

func (d claimsDoc) without(key string) claimsDoc {
	var out claimsDoc
	for _, m := range d {
		if m.key != key {
			out = append(out, m)
		}
	}
	return out
}

// jstr is s as a JSON string.
func jstr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func jint(v int64) string { return strconv.FormatInt(v, 10) }

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// signSegments signs the encoded header and claims as they are.
func signSegments(header, claims string) string {
	mac := hmac.New(sha256.New, testSecret)
	mac.Write([]byte(header + "." + claims))
	return header + "." + claims + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// rawToken signs the JSON texts header and claims.
func rawToken(header string, claims claimsDoc) string {
	return signSegments(b64(header), b64(claims.String()))
}

const atHeader = `{"alg":"HS256","typ":"at+jwt"}`

// tokenWorld is ada signed in (the tokens below are hers) and bob signed
// in (whom a spoilt token might try to become).
type tokenWorld struct {
	h        *harness
	ada, bob fiberauth.User
	p, bobs  pair
	now      int64 // the clock, Unix seconds; it does not move
}

func newTokenWorld(t *testing.T, configure ...func(*fiberauth.Config)) *tokenWorld {
	h := newHarness(t, configure...)
	w := &tokenWorld{h: h, ada: h.createUser("ada@example.com"), bob: h.createUser("bob@example.com")}
	w.p = h.login("ada@example.com", goodPassword)
	w.bobs = h.login("bob@example.com", goodPassword)
	w.now = h.clock.Now().Unix()
	return w
}

// claims are those of a good token of ada's session, without client_id (as
// tokens signed before fiberauth wrote it).
func (w *tokenWorld) claims() claimsDoc {
	return claimsDoc{
		{"iss", `"fiberauth"`}, {"sub", jstr(w.ada.ID)}, {"aud", `["fiberauth"]`},
		{"iat", jint(w.now)}, {"exp", jint(w.now + 900)}, {"jti", `"j1"`},
		{"sid", jstr(w.p.sid)}, {"etag", jstr(w.ada.ETag)},
	}
}

// accepted fails unless the token gets the user in.
func (w *tokenWorld) accepted(t *testing.T, token, userID string) {
	t.Helper()
	r := w.h.do("GET", "/api/profile", nil, bearer(token)...)
	expect(t, r, 200, "")
	if r.str("user_id") != userID {
		t.Fatalf("signed in as %q, want %q", r.str("user_id"), userID)
	}
}

// refused fails unless the protected routes answer 401 invalid_token.
func (w *tokenWorld) refused(t *testing.T, token string) {
	t.Helper()
	expect(t, w.h.do("GET", "/api/profile", nil, bearer(token)...), 401, "invalid_token")
	expect(t, w.h.do("GET", "/auth/me", nil, bearer(token)...), 401, "invalid_token")
}

type tokenCase struct {
	name  string
	token string
}

func (w *tokenWorld) allRefused(t *testing.T, cases []tokenCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { w.refused(t, tc.token) })
	}
}

// A "crit" header names extensions the recipient must understand; we
// understand none, so any crit is refused (RFC 7515 §4.1.11).
func TestTokenCritHeader(t *testing.T) {
	t.Parallel()
	w := newTokenWorld(t)
	c := w.claims()
	w.accepted(t, rawToken(atHeader, c), w.ada.ID)
	// Another header parameter we do not know is ignored: it is crit alone
	// that refuses.
	w.accepted(t, rawToken(`{"alg":"HS256","typ":"at+jwt","kid":"k1","x-crit":["exp"]}`, c), w.ada.ID)
	w.allRefused(t, []tokenCase{
		{"crit exp", rawToken(`{"alg":"HS256","typ":"at+jwt","crit":["exp"]}`, c)},
		{"crit b64", rawToken(`{"alg":"HS256","typ":"at+jwt","b64":true,"crit":["b64"]}`, c)},
		{"crit of an unknown parameter", rawToken(`{"alg":"HS256","typ":"at+jwt","x":1,"crit":["x"]}`, c)},
		{"empty crit", rawToken(`{"alg":"HS256","typ":"at+jwt","crit":[]}`, c)},
		{"null crit", rawToken(`{"alg":"HS256","typ":"at+jwt","crit":null}`, c)},
		{"crit not a list", rawToken(`{"crit":"exp","alg":"HS256","typ":"at+jwt"}`, c)},
	})
}

func TestTokenIssuedAtRequired(t *testing.T) {
	t.Parallel()
	w := newTokenWorld(t)
	w.accepted(t, rawToken(atHeader, w.claims()), w.ada.ID)
	w.accepted(t, rawToken(atHeader, w.claims().set("iat", jint(w.now-600)).set("exp", jint(w.now+300))), w.ada.ID)
	w.allRefused(t, []tokenCase{
		{"no iat", rawToken(atHeader, w.claims().without("iat"))},
		{"iat 0", rawToken(atHeader, w.claims().set("iat", "0"))},
		{"iat 0.5", rawToken(atHeader, w.claims().set("iat", "0.5"))},
		{"iat null", rawToken(atHeader, w.claims().set("iat", "null"))},
		{"iat a string", rawToken(atHeader, w.claims().set("iat", jstr(jint(w.now))))},
	})
}

// A key that differs only in case from a claim we read is refused, whether
// its value is harmless (the real claim's own) or would let the token pass
// or become someone else: encoding/json matches keys case-insensitively and
// the last one wins, so before, "SUB" overrode "sub".
func TestTokenCaseVariantClaims(t *testing.T) {
	t.Parallel()
	w := newTokenWorld(t)
	good := w.claims()
	w.accepted(t, rawToken(atHeader, good), w.ada.ID)
	// Keys we do not read pass, even near a claim's name.
	w.accepted(t, rawToken(atHeader, good.plus("Subject", jstr(w.bob.ID)).plus("sub_", jstr(w.bob.ID)).plus("scope", `"read"`)), w.ada.ID)
	expired := good.set("exp", jint(w.now-120))
	w.refused(t, rawToken(atHeader, expired)) // the control of "Exp revives"

	var cases []tokenCase
	for _, v := range []struct{ key, value string }{
		// The real claim's own value: the key alone is wrong.
		{"SUB", jstr(w.ada.ID)}, {"Sub", jstr(w.ada.ID)}, {"ISS", `"fiberauth"`}, {"Aud", `["fiberauth"]`},
		{"IAT", jint(w.now)}, {"Exp", jint(w.now + 900)}, {"NBF", jint(w.now)}, {"Jti", `"j1"`},
		{"Sid", jstr(w.p.sid)}, {"SID", jstr(w.p.sid)}, {"ETag", jstr(w.ada.ETag)}, {"ETAG", jstr(w.ada.ETag)},
		{"Client_ID", `"fiberauth"`}, {"CLIENT_ID", `"fiberauth"`}, {"client_Id", `"fiberauth"`},
		{"\\u0053UB", jstr(w.ada.ID)}, // "SUB" spelt with an escape
		{"ſub", jstr(w.ada.ID)},       // U+017F, which Unicode folds to "s"
		// Values that would escalate.
		{"SUB", jstr(w.bob.ID)}, {"Sid", jstr(w.bobs.sid)}, {"ETag", jstr(w.bob.ETag)},
		{"Exp", jint(w.now + 365*24*3600)}, {"Aud", `["other-api"]`}, {"Client_ID", `"other-client"`},
	} {
		cases = append(cases, tokenCase{v.key + "=" + v.value, rawToken(atHeader, good.plus(v.key, v.value))})
	}
	cases = append(cases,
		// Before, this one signed in as bob.
		tokenCase{"becomes bob", rawToken(atHeader, good.plus("SUB", jstr(w.bob.ID)).plus("Sid", jstr(w.bobs.sid)).plus("ETag", jstr(w.bob.ETag)))},
		// Before, this expired token passed.
		tokenCase{"Exp revives", rawToken(atHeader, expired.plus("Exp", jint(w.now+900)))},
		// A variant first, then the real claim.
		tokenCase{"variant before the claim", rawToken(atHeader, append(claimsDoc{{"SUB", jstr(w.ada.ID)}}, good...))},
	)
	w.allRefused(t, cases)
}

// A claim we read may appear once: a second one, whatever its value, is
// refused (encoding/json would take the last).
func TestTokenDuplicateClaims(t *testing.T) {
	t.Parallel()
	w := newTokenWorld(t)
	good := w.claims()
	w.accepted(t, rawToken(atHeader, good), w.ada.ID)
	// Keys we do not read may repeat.
	w.accepted(t, rawToken(atHeader, good.plus("scope", `"a"`).plus("scope", `"b"`)), w.ada.ID)
	w.allRefused(t, []tokenCase{
		{"sub twice, same value", rawToken(atHeader, good.plus("sub", jstr(w.ada.ID)))},
		{"exp twice, same value", rawToken(atHeader, good.plus("exp", jint(w.now+900)))},
		{"becomes bob", rawToken(atHeader, good.plus("sub", jstr(w.bob.ID)).plus("sid", jstr(w.bobs.sid)).plus("etag", jstr(w.bob.ETag)))},
		{"exp extended", rawToken(atHeader, good.plus("exp", jint(w.now+365*24*3600)))},
		{"client_id twice", rawToken(atHeader, good.set("client_id", `"fiberauth"`).plus("client_id", `"fiberauth"`))},
	})
}

// Base64url is decoded strictly: no padding, no line breaks, and the unused
// bits of the last character zero, so that each token has one spelling.
func TestTokenStrictBase64(t *testing.T) {
	t.Parallel()
	w := newTokenWorld(t)
	// Claims whose encoding ends in a character with unused bits (the JSON
	// is 1 more than a multiple of 3 bytes long: 4 unused bits).
	c := w.claims().set("x", `""`)
	c = c.set("x", jstr(strings.Repeat("x", (4-len(c.String())%3)%3)))
	if len(c.String())%3 != 1 {
		t.Fatalf("%d bytes of claims", len(c.String()))
	}
	hdr, payload := b64(atHeader), b64(c.String())
	control := signSegments(hdr, payload)
	w.accepted(t, control, w.ada.ID)
	sig := control[strings.LastIndexByte(control, '.')+1:]

	// spoilLast sets unused low bits of seg's last character; lax base64
	// still decodes it to the same bytes.
	spoilLast := func(seg string, bit byte) string {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		i := strings.IndexByte(alphabet, seg[len(seg)-1])
		out := seg[:len(seg)-1] + string(alphabet[i|int(bit)])
		a, errA := base64.RawURLEncoding.DecodeString(seg)
		b, errB := base64.RawURLEncoding.DecodeString(out)
		if out == seg || errA != nil || errB != nil || string(a) != string(b) {
			t.Fatalf("%q and %q do not decode the same", seg, out)
		}
		return out
	}
	pad := func(seg string) string { return seg + strings.Repeat("=", (4-len(seg)%4)%4) }
	if len(payload)%4 == 0 || len(sig)%4 == 0 {
		t.Fatal("nothing to pad")
	}
	w.allRefused(t, []tokenCase{
		{"claims with trailing bits", signSegments(hdr, spoilLast(payload, 1))},
		{"claims with other trailing bits", signSegments(hdr, spoilLast(payload, 8))},
		{"signature with trailing bits", control[:len(control)-len(sig)] + spoilLast(sig, 1)},
		{"padded claims", signSegments(hdr, pad(payload))},
		{"padded signature", control + strings.Repeat("=", (4-len(sig)%4)%4)},
	})
	// A line break cannot be sent in a header; through the Go API it is
	// refused all the same.
	ctx := context.Background()
	if _, err := w.h.auth.Authenticate(ctx, control); err != nil {
		t.Fatalf("the control through Authenticate: %v", err)
	}
	for _, tok := range []string{
		control[:len(control)-10] + "\n" + control[len(control)-10:],
		control[:len(control)-10] + "\r\n" + control[len(control)-10:],
		control + "\n",
	} {
		if _, err := w.h.auth.Authenticate(ctx, tok); !errors.Is(err, fiberauth.ErrInvalidToken) {
			t.Errorf("Authenticate(%q) = %v", tok, err)
		}
	}
}

// typ is "at+jwt" or "application/at+jwt", in any case (RFC 9068 §4).
func TestTokenTypForms(t *testing.T) {
	t.Parallel()
	w := newTokenWorld(t)
	c := w.claims()
	header := func(typ string) string { return `{"alg":"HS256","typ":` + typ + `}` }
	for _, typ := range []string{"at+jwt", "AT+JWT", "At+Jwt", "application/at+jwt", "application/AT+JWT", "APPLICATION/AT+JWT", "Application/At+Jwt"} {
		t.Run("accepted "+typ, func(t *testing.T) { w.accepted(t, rawToken(header(jstr(typ)), c), w.ada.ID) })
	}
	var cases []tokenCase
	for _, typ := range []string{
		`"JWT"`, `"jwt"`, `"application/jwt"`, `"at+jwt "`, `" at+jwt"`, `"application/at+jwt; charset=utf-8"`,
		`"application/application/at+jwt"`, `"application/"`, `"text/at+jwt"`, `"applicationXat+jwt"`, `"at+jws"`,
		`"at jwt"`, `"at+jwt\u0000"`, `""`, `null`, `1`, `["at+jwt"]`,
	} {
		cases = append(cases, tokenCase{typ, rawToken(header(typ), c)})
	}
	w.allRefused(t, cases)
}

// NumericDates may have a fraction or an exponent (RFC 7519 §2); they count
// as the second they fall in (rounded down), and every check applies.
func TestTokenFractionalTimes(t *testing.T) {
	t.Parallel()
	w := newTokenWorld(t) // Leeway: 30 s
	now := w.now
	half := func(sec int64) string { return jint(sec) + ".5" }
	// e9 spells sec as d.ddddddddde9 (sec has 10 digits).
	e9 := func(sec int64) string { s := jint(sec); return s[:1] + "." + s[1:] + "e9" }
	good := w.claims()

	for _, tc := range []struct {
		name          string
		iat, nbf, exp string
		wantExp       int64
	}{
		{"halves", half(now), half(now), half(now + 900), now + 900},
		{"exponents", e9(now), e9(now), e9(now + 900), now + 900},
		{"exponent and fraction", jint(now) + "000e-3", jint(now) + "999e-3", jint(now+900) + "999E-3", now + 900},
		// Rounded down, iat and nbf 30.5 s ahead are 30 s ahead, within
		// the leeway (rounded up they would be out); exp 28.5 s ago is 29 s
		// ago, also within it.
		{"at the edges", half(now + 30), half(now + 30), half(now - 29), now - 29},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := rawToken(atHeader, good.set("iat", tc.iat).set("nbf", tc.nbf).set("exp", tc.exp))
			w.accepted(t, tok, w.ada.ID)
			claims, err := w.h.auth.Authenticate(context.Background(), tok)
			if err != nil || claims.ExpiresAt != tc.wantExp {
				t.Fatalf("exp %d, want %d (%v)", claims.ExpiresAt, tc.wantExp, err)
			}
		})
	}
	w.allRefused(t, []tokenCase{
		// Rounded down, exp 29.5 s ago is 30 s ago: out of the leeway.
		// (Rounded to the nearest or up, it would pass.)
		{"expired by half a second", rawToken(atHeader, good.set("exp", half(now-30)))},
		{"expired, exponent", rawToken(atHeader, good.set("exp", e9(now-31)))},
		{"expired long ago", rawToken(atHeader, good.set("exp", "1.5e9"))},
		{"nbf ahead", rawToken(atHeader, good.set("nbf", half(now+31)))},
		{"nbf ahead, exponent", rawToken(atHeader, good.set("nbf", e9(now+31)))},
		{"iat ahead", rawToken(atHeader, good.set("iat", half(now+31)))},
		{"iat ahead, exponent", rawToken(atHeader, good.set("iat", e9(now+31)))},
		{"exp beyond int64", rawToken(atHeader, good.set("exp", "1e19"))},
		{"exp a string", rawToken(atHeader, good.set("exp", jstr(half(now+900))))},
		{"exp null", rawToken(atHeader, good.set("exp", "null"))},
	})
}

// client_id (RFC 9068 §2.2): fiberauth writes Config.ClientID; a token
// without one is accepted (tokens signed before fiberauth wrote it), a token
// naming another client is not.
func TestTokenClientID(t *testing.T) {
	t.Parallel()
	w := newTokenWorld(t) // ClientID: "fiberauth", the Audience
	good := w.claims()
	w.accepted(t, rawToken(atHeader, good), w.ada.ID)
	w.accepted(t, rawToken(atHeader, good.set("client_id", `"fiberauth"`)), w.ada.ID)
	w.accepted(t, w.p.access, w.ada.ID)
	w.allRefused(t, []tokenCase{
		{"another client", rawToken(atHeader, good.set("client_id", `"other-client"`))},
		{"another case", rawToken(atHeader, good.set("client_id", `"FIBERAUTH"`))},
		{"empty", rawToken(atHeader, good.set("client_id", `""`))},
		{"null", rawToken(atHeader, good.set("client_id", `null`))},
		{"a list", rawToken(atHeader, good.set("client_id", `["fiberauth"]`))},
		{"a number", rawToken(atHeader, good.set("client_id", `1`))},
	})

	// Another ClientID: fiberauth's own tokens carry it, and a token of the
	// default client is another client's.
	v := newTokenWorld(t, func(c *fiberauth.Config) { c.ClientID = "web-app" })
	claims, err := v.h.auth.Authenticate(context.Background(), v.p.access)
	if err != nil || claims.ClientID != "web-app" || claims.Audience[0] != "fiberauth" {
		t.Fatalf("own token: %+v, %v", claims, err)
	}
	v.accepted(t, v.p.access, v.ada.ID)
	v.accepted(t, rawToken(atHeader, v.claims()), v.ada.ID)
	v.accepted(t, rawToken(atHeader, v.claims().set("client_id", `"web-app"`)), v.ada.ID)
	v.refused(t, rawToken(atHeader, v.claims().set("client_id", `"fiberauth"`)))
}

// A token verified once is cached; the cache does not let a spoilt token
// in, since any changed byte is another token.
func TestTokenStrictnessWithCache(t *testing.T) {
	t.Parallel()
	w := newTokenWorld(t)
	good := w.claims().set("client_id", `"fiberauth"`)
	tok := rawToken(atHeader, good)
	for range 3 {
		w.accepted(t, tok, w.ada.ID)
	}
	w.refused(t, rawToken(atHeader, good.plus("SUB", jstr(w.bob.ID))))
	// Expiry is re-checked on a cached token.
	w.h.clock.Advance(15*time.Minute + 31*time.Second)
	w.refused(t, tok)
}
