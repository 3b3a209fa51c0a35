package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// keyTests check KeyStore.
var keyTests = []test{
	{name: "AddSigningKey", fn: testAddSigningKey},
	{name: "AddSigningKeyRefused", fn: testAddSigningKeyRefused},
	{name: "AddSigningKeyConcurrent", fn: testAddSigningKeyConcurrent},
	{name: "DeleteSigningKey", fn: testDeleteSigningKey},
}

// storedKey is a key record with every field set; the sealed bytes are not
// a real key (a store only keeps them).
func storedKey(gen int64, at time.Time) fiberauth.StoredSigningKey {
	return fiberauth.StoredSigningKey{
		ID:         newID(),
		Generation: gen,
		Algorithm:  fiberauth.AlgorithmEdDSA,
		Sealed:     hash(fmt.Sprint("sealed key ", gen, newID())),
		CreatedAt:  at,
		NotBefore:  at.Add(7 * time.Minute),
	}
}

func keyDiff(got, want fiberauth.StoredSigningKey) string {
	var d []string
	field := func(name string, same bool, g, w any) {
		if !same {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	field("ID", got.ID == want.ID, got.ID, want.ID)
	field("Generation", got.Generation == want.Generation, got.Generation, want.Generation)
	field("Algorithm", got.Algorithm == want.Algorithm, got.Algorithm, want.Algorithm)
	field("Sealed", bytes.Equal(got.Sealed, want.Sealed), got.Sealed, want.Sealed)
	field("CreatedAt", got.CreatedAt.Equal(want.CreatedAt), got.CreatedAt, want.CreatedAt)
	field("NotBefore", got.NotBefore.Equal(want.NotBefore), got.NotBefore, want.NotBefore)
	return strings.Join(d, "; ")
}

func mustAddKey(t *testing.T, ks fiberauth.KeyStore, k fiberauth.StoredSigningKey) {
	t.Helper()
	if err := ks.AddSigningKey(t.Context(), k); err != nil {
		t.Fatalf("AddSigningKey(generation %d): %v", k.Generation, err)
	}
}

// keysAre checks that the store holds exactly want, in order.
func keysAre(t *testing.T, ks fiberauth.KeyStore, what string, want ...fiberauth.StoredSigningKey) []fiberauth.StoredSigningKey {
	t.Helper()
	got, err := ks.SigningKeys(t.Context())
	if err != nil {
		t.Fatalf("%s: SigningKeys: %v", what, err)
	}
	if got == nil {
		t.Fatalf("%s: SigningKeys returned nil, want a non-nil list", what)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: SigningKeys returned %d keys, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := keyDiff(got[i], want[i]); d != "" {
			t.Fatalf("%s: key %d differs: %s", what, i, d)
		}
	}
	return got
}

// Keys come back as stored, by generation, copied in and out; an empty
// store lists none (non-nil). Times before 1970 or in the far future are
// kept, as any time a caller passes.
func testAddSigningKey(t *testing.T, s fiberauth.Store) {
	ks := s.(fiberauth.KeyStore)
	keysAre(t, ks, "an empty store")
	k1, k2, k3 := storedKey(1, past), storedKey(2, base), storedKey(3, base.Add(30*24*time.Hour))
	k2.Algorithm = fiberauth.AlgorithmES256
	for _, k := range []fiberauth.StoredSigningKey{k1, k2, k3} {
		in := k
		in.Sealed = bytes.Clone(k.Sealed)
		mustAddKey(t, ks, in)
		in.Sealed[0] ^= 0xff // the store kept its own copy
	}
	got := keysAre(t, ks, "after three adds", k1, k2, k3)
	got[0].Sealed[0] ^= 0xff // and gives out copies
	keysAre(t, ks, "after changing a returned key", k1, k2, k3)
}

// A key whose generation does not follow the greatest stored one (a
// replay, a gap, a stale view), or whose id is taken, is ErrConflict and
// writes nothing.
func testAddSigningKeyRefused(t *testing.T, s fiberauth.Store) {
	ks := s.(fiberauth.KeyStore)
	wantErr(t, "AddSigningKey(generation 2 into an empty store)", ks.AddSigningKey(t.Context(), storedKey(2, base)), fiberauth.ErrConflict)
	wantErr(t, "AddSigningKey(generation 0)", ks.AddSigningKey(t.Context(), storedKey(0, base)), fiberauth.ErrConflict)
	k1, k2 := storedKey(1, base), storedKey(2, base.Add(time.Hour))
	mustAddKey(t, ks, k1)
	mustAddKey(t, ks, k2)
	for _, tc := range []struct {
		what string
		k    fiberauth.StoredSigningKey
	}{
		{"a generation already stored", storedKey(2, base)},
		{"an older generation", storedKey(1, base)},
		{"a gap", storedKey(4, base)},
		{"a taken id", func() fiberauth.StoredSigningKey { k := storedKey(3, base); k.ID = k1.ID; return k }()},
	} {
		wantErr(t, "AddSigningKey("+tc.what+")", ks.AddSigningKey(t.Context(), tc.k), fiberauth.ErrConflict)
	}
	keysAre(t, ks, "after the refused adds", k1, k2)
	k3 := storedKey(3, base.Add(2*time.Hour))
	mustAddKey(t, ks, k3)
	keysAre(t, ks, "after the next generation", k1, k2, k3)
}

// Of many instances adding the same generation at once, exactly one
// succeeds; the others get ErrConflict.
func testAddSigningKeyConcurrent(t *testing.T, s fiberauth.Store) {
	ks := s.(fiberauth.KeyStore)
	var gen int64
	for round := range raceRounds() {
		gen++
		keys := make([]fiberauth.StoredSigningKey, crowd)
		for i := range keys {
			keys[i] = storedKey(gen, base.Add(time.Duration(gen)*time.Hour))
		}
		errs := together(crowd, func(i int) error { return ks.AddSigningKey(t.Context(), keys[i]) })
		if n := tally(t, "AddSigningKey", errs, fiberauth.ErrConflict); n[nil] != 1 {
			t.Fatalf("round %d: %d of %d concurrent adds of generation %d succeeded, want exactly 1", round, n[nil], crowd, gen)
		}
		got, err := ks.SigningKeys(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != int(gen) || !slices.ContainsFunc(keys, func(k fiberauth.StoredSigningKey) bool { return keyDiff(got[gen-1], k) == "" }) {
			t.Fatalf("round %d: after the race the store holds %d keys, the last not one of those added", round, len(got))
		}
	}
}

// Deleting removes one key by id; deleting a missing one is a no-op. The
// next generation still follows the greatest stored, whatever was
// deleted before it.
func testDeleteSigningKey(t *testing.T, s fiberauth.Store) {
	ks := s.(fiberauth.KeyStore)
	k1, k2, k3 := storedKey(1, base), storedKey(2, base), storedKey(3, base)
	for _, k := range []fiberauth.StoredSigningKey{k1, k2, k3} {
		mustAddKey(t, ks, k)
	}
	if err := ks.DeleteSigningKey(t.Context(), k1.ID); err != nil {
		t.Fatalf("DeleteSigningKey: %v", err)
	}
	if err := ks.DeleteSigningKey(t.Context(), "no such key"); err != nil {
		t.Fatalf("DeleteSigningKey(unknown): %v, want nil", err)
	}
	if err := ks.DeleteSigningKey(t.Context(), k1.ID); err != nil {
		t.Fatalf("DeleteSigningKey twice: %v, want nil", err)
	}
	keysAre(t, ks, "after deleting the oldest", k2, k3)
	wantErr(t, "AddSigningKey(generation 1 again)", ks.AddSigningKey(t.Context(), storedKey(1, base)), fiberauth.ErrConflict)
	k4 := storedKey(4, base)
	mustAddKey(t, ks, k4)
	keysAre(t, ks, "after adding generation 4", k2, k3, k4)
	for _, k := range []fiberauth.StoredSigningKey{k2, k3, k4} {
		if err := ks.DeleteSigningKey(t.Context(), k.ID); err != nil {
			t.Fatal(err)
		}
	}
	keysAre(t, ks, "after deleting every key")
	mustAddKey(t, ks, storedKey(1, base)) // an empty store starts over at 1
}
