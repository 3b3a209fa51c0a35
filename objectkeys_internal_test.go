package fiberauth

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// decoderKeys is objectKeys done by encoding/json's Decoder, the oracle:
// the top-level keys of a valid JSON body, and whether it is an object.
func decoderKeys(body []byte) ([]string, bool) {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		keys = append(keys, t.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, false
		}
	}
	return keys, true
}

// FuzzObjectKeys checks the scan of a body's top-level keys against
// encoding/json's Decoder on any valid JSON in valid UTF-8.
func FuzzObjectKeys(f *testing.F) {
	for _, seed := range []string{
		`{}`, `null`, `[]`, `"x"`, `1`, ` {"a":1, "b" : [1,{"c":"}"}], "d\"e":"\\", "\u017F":null} `,
		`{"a":{"b":{"c":[[],{}]}},"a":true}`, "\t{\n\"pa\\u017Fsword\":\"x\"\r}", `{"x":-1.5e+3,"y":false}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !utf8.Valid(body) || !json.Valid(body) {
			return // what checkKeys refuses before it scans
		}
		var got []string
		isObject, err := objectKeys(body, func(k string) error { got = append(got, k); return nil })
		want, wantObject := decoderKeys(body)
		if err != nil || isObject != wantObject || !slices.Equal(got, want) {
			t.Fatalf("%q: keys %q (object %v, %v), want %q (object %v)", body, got, isObject, err, want, wantObject)
		}
	})
}

// The refusals checkKeys makes of a body's top-level keys.
func TestCheckKeys(t *testing.T) {
	fields := []string{"password", "code"}
	for _, c := range []struct {
		body, reason string
	}{
		{`{"password":"x","code":"1"}`, ""},
		{`{"password":"x","other":{"password":1,"PASSWORD":2}}`, ""}, // nested keys are the value's business
		{`{"password":"x","password":"y"}`, "duplicate_field"},
		{`{"Password":"x"}`, "wrong_case"},
		{`{"pa\u017Fsword":"x"}`, "wrong_case"},
		{`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"a":0}`, "duplicate_field"}, // past the small set
		{`null`, "malformed_json"},
		{`[{"password":"x"}]`, "malformed_json"},
		{`{"password":`, "malformed_json"},
		{"{\"\xba\":1}", "malformed_json"}, // invalid UTF-8, which json.Valid passes
	} {
		err := checkKeys([]byte(c.body), fields)
		var fe *FieldError
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%s: %v", c.body, err)
		case c.reason != "" && (!errors.As(err, &fe) || fe.Reason != c.reason):
			t.Errorf("%s: %v, want reason %s", c.body, err, c.reason)
		}
	}
}
