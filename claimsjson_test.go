package fiberauth

import (
	"encoding/json"
	"math"
	"math/big"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzClaimsJSON checks the two decoders of Claims against each other and
// against encoding/json:
//
//   - whatever the short path (decodeClaimsFast) takes, the slow path
//     (decodeClaimsSlow) takes too and decodes the same;
//   - whatever the slow path takes, encoding/json decodes to the same claims
//     (with its case-insensitive, last-one-wins key matching, so a key the
//     slow path ignored but encoding/json would read shows up as a
//     difference), the times being the exact floor of the JSON number,
//     computed with math/big.
func FuzzClaimsJSON(f *testing.F) {
	for _, s := range []string{
		`{"iss":"fiberauth","sub":"u1","aud":["fiberauth"],"iat":1900000000,"exp":1900000900,"jti":"j","sid":"s","etag":"e","client_id":"fiberauth"}`,
		`{"aud":"x","nbf":-5}`, `{"aud":["a","b"]}`, `{"aud":[]}`, `{}`, ` { "sub" : "a" } `,
		`{"sub":"a\u00e9"}`, `{"sub":"é"}`, `{"exp":1.5}`, `{"exp":1e3}`, `{"exp":01}`, `{"exp":9223372036854775808}`,
		`{"exp":-1.5}`, `{"exp":1900000000.5}`, `{"exp":1.9e9}`, `{"exp":1.9E+9}`, `{"iat":-0.0}`, `{"nbf":0.1e1}`,
		`{"exp":9223372036854775807.9}`, `{"exp":-9223372036854775808.0}`, `{"exp":-9223372036854775807.5}`,
		`{"exp":1e-99999999999}`, `{"exp":-1e-99999999999}`, `{"exp":0e99999999999}`, `{"exp":1e19}`, `{"exp":"1"}`,
		`{"Sub":"a"}`, `{"sub":"a","SUB":"b"}`, `{"\u017fub":"a"}`, `{"Client_ID":"x"}`, `{"client_id":""}`,
		`{"sub":null}`, `{"sub":"a",}`, `{"sub":"a"} x`, `{"sub":"a","sub":"b"}`, `{"x":1,"x":2}`, `[]`, `{"x":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast, slow Claims
		fastOK := decodeClaimsFast(b, &fast)
		slowErr := decodeClaimsSlow(b, &slow)
		if fastOK {
			if slowErr != nil {
				t.Fatalf("the short path took %q, which the slow path refuses: %v", b, slowErr)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%q: short path %+v, slow path %+v", b, fast, slow)
			}
		}
		if slowErr != nil {
			return
		}
		want, err := claimsOracle(b)
		if err != nil {
			t.Fatalf("the slow path took %q, which encoding/json refuses: %v", b, err)
		}
		if !sameClaims(slow, want) {
			t.Fatalf("%q: slow path %+v, encoding/json %+v", b, slow, want)
		}
	})
}

// claimsOracle decodes b with encoding/json alone, and rounds the times down
// with math/big.
func claimsOracle(b []byte) (Claims, error) {
	var o struct {
		Issuer    string          `json:"iss"`
		Subject   string          `json:"sub"`
		Audience  json.RawMessage `json:"aud"`
		IssuedAt  json.RawMessage `json:"iat"`
		NotBefore json.RawMessage `json:"nbf"`
		ExpiresAt json.RawMessage `json:"exp"`
		ID        string          `json:"jti"`
		SessionID string          `json:"sid"`
		ETag      string          `json:"etag"`
		ClientID  string          `json:"client_id"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return Claims{}, err
	}
	c := Claims{Issuer: o.Issuer, Subject: o.Subject, ID: o.ID, SessionID: o.SessionID, ETag: o.ETag, ClientID: o.ClientID}
	if len(o.Audience) > 0 {
		var s string
		if err := json.Unmarshal(o.Audience, &s); err == nil {
			c.Audience = Audience{s}
		} else if err := json.Unmarshal(o.Audience, (*[]string)(&c.Audience)); err != nil {
			return Claims{}, err
		}
	}
	for _, f := range []struct {
		raw json.RawMessage
		dst *int64
	}{{o.IssuedAt, &c.IssuedAt}, {o.NotBefore, &c.NotBefore}, {o.ExpiresAt, &c.ExpiresAt}} {
		if len(f.raw) == 0 {
			continue
		}
		v, err := floorNumber(string(f.raw))
		if err != nil {
			return Claims{}, err
		}
		*f.dst = v
	}
	return c, nil
}

var jsonNumber = regexp.MustCompile(`^(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?)(?:[eE]([+-]?[0-9]+))?$`)

// floorNumber is the floor of the JSON number s, if it fits an int64.
func floorNumber(s string) (int64, error) {
	m := jsonNumber.FindStringSubmatch(s)
	if m == nil {
		return 0, &strconv.NumError{Func: "floorNumber", Num: s, Err: strconv.ErrSyntax}
	}
	// An exponent beyond ±10000 changes nothing for a mantissa of fewer
	// than 10000 digits (fuzz inputs are shorter): the value is 0, below 1
	// in magnitude, or beyond int64 either way.
	exp := 0
	if m[2] != "" {
		e, err := strconv.Atoi(strings.TrimLeft(m[2], "+-"))
		if err != nil || e > 10000 {
			e = 10000
		}
		if strings.HasPrefix(m[2], "-") {
			e = -e
		}
		exp = e
	}
	r, ok := new(big.Rat).SetString(m[1] + "e" + strconv.Itoa(exp))
	if !ok {
		return 0, &strconv.NumError{Func: "floorNumber", Num: s, Err: strconv.ErrSyntax}
	}
	q := new(big.Int).Div(r.Num(), r.Denom()) // Euclidean: the floor, as Denom > 0
	if !q.IsInt64() {
		return 0, &strconv.NumError{Func: "floorNumber", Num: s, Err: strconv.ErrRange}
	}
	return q.Int64(), nil
}

// sameClaims is reflect.DeepEqual but for an empty audience array, which
// both may hold as nil or as empty.
func sameClaims(a, b Claims) bool {
	if !slices.Equal(a.Audience, b.Audience) {
		return false
	}
	a.Audience, b.Audience = nil, nil
	return reflect.DeepEqual(a, b)
}

func TestParseNumericDate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"-0", 0, true}, {"1900000000", 1900000000, true}, {"-5", -5, true},
		{"1900000000.5", 1900000000, true}, {"1900000000.999999999999999999999", 1900000000, true},
		{"-1.5", -2, true}, {"-0.5", -1, true}, {"-0.0", 0, true}, {"0.5", 0, true}, {"-1.0", -1, true},
		{"1.9e9", 1900000000, true}, {"1.9E+9", 1900000000, true}, {"19e8", 1900000000, true},
		{"190000000000e-2", 1900000000, true}, {"190000000050e-2", 1900000000, true}, {"-190000000050e-2", -1900000001, true},
		{"1e0", 1, true}, {"0.00001e5", 1, true}, {"0e99999999999999999999", 0, true},
		{"1e-99999999999999999999", 0, true}, {"-1e-99999999999999999999", -1, true},
		{"9223372036854775807", math.MaxInt64, true}, {"9223372036854775807.9", math.MaxInt64, true},
		{"9223372036854775808", 0, false}, {"9.223372036854775808e18", 0, false},
		{"-9223372036854775808", math.MinInt64, true}, {"-9223372036854775808.0", math.MinInt64, true},
		{"-9223372036854775807.5", math.MinInt64, true}, {"-9223372036854775808.5", 0, false},
		{"1e19", 0, false}, {"1e99999999999999999999", 0, false}, {"00000000000000000000001", 0, false},
		{"", 0, false}, {"-", 0, false}, {"01", 0, false}, {"1.", 0, false}, {".5", 0, false}, {"1e", 0, false},
		{"1e+", 0, false}, {"+1", 0, false}, {"1.5.5", 0, false}, {"0x10", 0, false}, {"1 ", 0, false},
		{"NaN", 0, false}, {"Infinity", 0, false}, {`"1"`, 0, false}, {"--1", 0, false},
	} {
		got, ok := parseNumericDate([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseNumericDate(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if tc.ok { // and the oracle of FuzzClaimsJSON agrees
			if want, err := floorNumber(tc.in); err != nil || want != tc.want {
				t.Errorf("floorNumber(%q) = %d, %v", tc.in, want, err)
			}
		}
	}
}

// TestClaimsJSONStrict: what Claims.UnmarshalJSON refuses, each next to a
// control it takes.
func TestClaimsJSONStrict(t *testing.T) {
	t.Parallel()
	const good = `{"iss":"fiberauth","sub":"u1","aud":["fiberauth"],"iat":1900000000,"exp":1900000900,"jti":"j","sid":"s","etag":"e","client_id":"c"}`
	with := func(extra string) string { return strings.TrimSuffix(good, "}") + "," + extra + "}" }
	var c Claims
	if err := json.Unmarshal([]byte(good), &c); err != nil || c.Subject != "u1" || c.ClientID != "c" || c.ExpiresAt != 1900000900 {
		t.Fatalf("the control: %+v, %v", c, err)
	}
	// Keys we do not read are ignored, in any case and any number of times.
	for _, extra := range []string{`"scope":"x"`, `"Scope":1,"Scope":2`, `"subject":"u2"`, `"sub_":"u2"`, `"su":"u2"`} {
		if err := json.Unmarshal([]byte(with(extra)), &c); err != nil || c.Subject != "u1" {
			t.Errorf("%s: %+v, %v", extra, c, err)
		}
	}
	refused := []string{}
	for _, name := range claimNames {
		// Every case variant that differs from the name: the first letter
		// upper, all upper.
		up := strings.ToUpper(name)
		refused = append(refused, with(strconv.Quote(strings.ToUpper(name[:1])+name[1:])+`:"x"`), with(strconv.Quote(up)+`:"x"`))
		// Given twice, even with the same value.
		refused = append(refused, with(strconv.Quote(name)+`:"x"`))
	}
	refused = append(refused,
		with(`"ETag":"e"`), with(`"Client_ID":"c"`), with(`"CLIENT_id":"c"`), with(`"\u0053UB":"u2"`),
		// U+017F folds to s: encoding/json would match it.
		with(`"ſub":"u2"`),
		// Twice, with the same value.
		with(`"exp":1900000900`), with(`"iat":1900000000`), with(`"sub":"u1"`),
		`{"sub":null}`, `{"nbf":null}`, `{"client_id":null}`, `{"aud":null}`, `{"exp":null}`,
		`{"client_id":""}`, `{"client_id":1}`, `{"exp":"1900000900"}`, `{"exp":true}`, `{"exp":1e19}`,
		`{"aud":1}`, `{"sub":1}`, `[]`, `null`, `"x"`, `{"sub":"a"} {}`, `{"sub":"a",}`, ``,
	)
	for _, in := range refused {
		c = Claims{}
		if err := json.Unmarshal([]byte(in), &c); err == nil {
			t.Errorf("took %s: %+v", in, c)
		}
		if err := c.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("UnmarshalJSON took %s: %+v", in, c)
		}
	}
	// NumericDates with fractions and exponents, rounded down; whatever
	// path decodes them.
	for _, in := range []string{
		`{"iat":1900000000.5,"nbf":1.9e9,"exp":1900000900.99}`,
		`{"iat": 1900000000.5, "nbf": 19e8, "exp": 190000090099E-2}`,
		`{"iat":1900000000.5,"nbf":1.9e9,"exp":1900000900.99,"x":"\u00e9"}`,
	} {
		c = Claims{Subject: "left over"}
		if err := json.Unmarshal([]byte(in), &c); err != nil || c.IssuedAt != 1900000000 || c.NotBefore != 1900000000 || c.ExpiresAt != 1900000900 || c.Subject != "" {
			t.Errorf("%s: %+v, %v", in, c, err)
		}
	}
	// Claims a fiberauth token carries take the short path.
	if !decodeClaimsFast([]byte(good), new(Claims)) || !decodeClaimsFast([]byte(`{"exp":1.9e9}`), new(Claims)) {
		t.Error("the short path refused the claims fiberauth issues")
	}
	for _, in := range []string{with(`"sub":"u2"`), `{"client_id":""}`, `{"Sub":"a"}`} {
		if decodeClaimsFast([]byte(in), new(Claims)) {
			t.Errorf("the short path took %s", in)
		}
	}
}
