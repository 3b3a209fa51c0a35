package sqlstore

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/fiberauth/fiberauth"
)

// A change naming many families is split into notices that PostgreSQL
// takes (under 8000 bytes each), even for ids that JSON escapes to six
// times their size, and together they name every family once.
func TestEncodeChangeSplits(t *testing.T) {
	var ids []string
	for i := range 600 {
		ids = append(ids, strings.Repeat("<&>\u2028", 5)+string(rune('a'+i%26))+strings.Repeat("x", i%7))
	}
	c := fiberauth.Change{UserID: "user<1>", ETag: "etag&", Sessions: ids}
	payloads, err := encodeChange(c)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	users := 0
	for _, p := range payloads {
		if len(p) > maxNoticeBytes {
			t.Fatalf("a notice of %d bytes, over %d", len(p), maxNoticeBytes)
		}
		var n notice
		if err := json.Unmarshal([]byte(p), &n); err != nil {
			t.Fatal(err)
		}
		if n.User != "" {
			users++
			if n.User != c.UserID || n.ETag != c.ETag {
				t.Fatalf("user notice %+v", n)
			}
		}
		got = append(got, n.Sessions...)
	}
	if users != 1 || len(payloads) < 2 || !slices.Equal(got, ids) {
		t.Fatalf("%d notices, %d naming the user, %d of %d families", len(payloads), users, len(got), len(ids))
	}
}
