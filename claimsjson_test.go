package fiberauth

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzClaimsJSON checks that the short path of Claims.UnmarshalJSON decodes
// exactly what encoding/json decodes, and takes nothing it would refuse.
func FuzzClaimsJSON(f *testing.F) {
	for _, s := range []string{
		`{"iss":"fiberauth","sub":"u1","aud":["fiberauth"],"iat":1900000000,"exp":1900000900,"jti":"j","sid":"s","etag":"e"}`,
		`{"aud":"x","nbf":-5}`, `{"aud":["a","b"]}`, `{"aud":[]}`, `{}`, ` { "sub" : "a" } `,
		`{"sub":"a\u00e9"}`, `{"sub":"é"}`, `{"exp":1.5}`, `{"exp":1e3}`, `{"exp":01}`, `{"exp":9223372036854775808}`,
		`{"Sub":"a"}`, `{"sub":null}`, `{"sub":"a",}`, `{"sub":"a"} x`, `{"sub":"a","sub":"b"}`, `[]`, `{"x":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast Claims
		if !decodeClaimsFast(b, &fast) {
			return
		}
		type plain Claims
		var std Claims
		if err := json.Unmarshal(b, (*plain)(&std)); err != nil {
			t.Fatalf("the short path took %q, which encoding/json refuses: %v", b, err)
		}
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("%q: short path %+v, encoding/json %+v", b, fast, std)
		}
	})
}
