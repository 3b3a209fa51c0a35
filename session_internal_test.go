package fiberauth

import (
	"encoding/json"
	"testing"
	"time"
)

// The sealed form of a pair is what json.Marshal writes of it, so that
// pairs sealed before and after appendJSON open alike; a time JSON cannot
// hold fails both.
func TestIssuedPairJSON(t *testing.T) {
	odd := []string{"", "eyJhbGciOi.eyJpc3Mi.sig-_", "sid.3.nonce.tag", `q"uote\\<&>`, "\x00é\u2028\xff"}
	times := []time.Time{
		time.Unix(1_900_000_000, 0), time.Unix(1_900_000_000, 0).UTC(), time.Unix(1_900_000_000, 123456789).In(time.FixedZone("", -3*3600-1800)),
		{}, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i, tm := range times {
		p := issuedPair{Access: odd[i%len(odd)], Refresh: odd[(i+2)%len(odd)], AccessExpires: tm}
		want, wantErr := json.Marshal(p)
		got, err := p.appendJSON(nil)
		if (err == nil) != (wantErr == nil) || string(got) != string(want) {
			t.Fatalf("%+v: appendJSON %s (%v), json.Marshal %s (%v)", p, got, err, want, wantErr)
		}
		if err != nil {
			continue
		}
		// Invalid UTF-8 comes back as U+FFFD; the tokens fiberauth seals
		// are ASCII, and the time comes back whole.
		var back issuedPair
		if err := json.Unmarshal(got, &back); err != nil || !back.AccessExpires.Equal(p.AccessExpires) {
			t.Fatalf("%s: decodes to %+v, %v", got, back, err)
		}
	}
}
