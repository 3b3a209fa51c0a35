package memstore

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// A family's rotations add nothing to the store: it keeps the current and
// previous token hashes only (fiberauth tells old tokens by their
// generation). Every map of the Store is counted, so a map added later to
// remember tokens would fail here.
func TestRotationsKeepNoHistory(t *testing.T) {
	m := New()
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := fiberauth.Session{ID: "s1", UserID: "u1", TokenHash: []byte("t0"), CreatedAt: at, LastUsedAt: at,
		ExpiresAt: at.Add(time.Hour), AbsoluteExpiresAt: at.Add(24 * time.Hour)}
	if err := m.CreateSession(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	rotate := func(gen int) {
		from, to := fmt.Appendf(nil, "t%d", gen-1), fmt.Appendf(nil, "t%d", gen)
		r := fiberauth.Rotation{SessionID: s.ID, From: from, To: to, Generation: int64(gen), At: at, ExpiresAt: at.Add(time.Hour), Replay: []byte("sealed")}
		if _, err := m.RotateSession(t.Context(), r); err != nil {
			t.Fatalf("rotation %d: %v", gen, err)
		}
	}
	rotate(1)
	before := mapSizes(m)
	for gen := 2; gen <= 1000; gen++ {
		rotate(gen)
	}
	if after := mapSizes(m); !reflect.DeepEqual(after, before) {
		t.Fatalf("1000 rotations of one family grew the store's maps from %v to %v", before, after)
	}
}

// mapSizes is the length of every map field of m, by field name.
func mapSizes(m *Store) map[string]int {
	sizes := map[string]int{}
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Map {
			sizes[v.Type().Field(i).Name] = f.Len()
		}
	}
	if len(sizes) < 5 {
		panic(fmt.Sprintf("only %d maps in memstore.Store: mapSizes is out of date", len(sizes)))
	}
	return sizes
}
