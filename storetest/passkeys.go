package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// passkeyTests check PasskeyStore.
var passkeyTests = []test{
	{name: "Passkeys", fn: testPasskeys},
	{name: "PasskeysOfOtherUsers", fn: testPasskeysOfOtherUsers},
	{name: "UsePasskey", fn: testUsePasskey},
	{name: "UsePasskeyConcurrent", fn: testUsePasskeyConcurrent},
}

// passkey is a passkey of userID with every field set.
func passkey(id, userID string, count uint32, created time.Time) fiberauth.Passkey {
	return fiberauth.Passkey{
		ID: []byte(id), UserID: userID, PublicKey: []byte("cose key of " + id), SignCount: count,
		Transports: []string{"internal", "hybrid"}, AAGUID: bytes.Repeat([]byte{7}, 16),
		BackupEligible: true, BackupState: true, AttestationType: "none", Name: "passkey " + id,
		CreatedAt: created, LastUsedAt: created,
	}
}

// samePasskey reports whether a and b are the same record.
func samePasskey(a, b fiberauth.Passkey) bool {
	return bytes.Equal(a.ID, b.ID) && a.UserID == b.UserID && bytes.Equal(a.PublicKey, b.PublicKey) && a.SignCount == b.SignCount &&
		slices.Equal(a.Transports, b.Transports) && bytes.Equal(a.AAGUID, b.AAGUID) && a.BackupEligible == b.BackupEligible &&
		a.BackupState == b.BackupState && a.AttestationType == b.AttestationType && a.Name == b.Name &&
		a.CreatedAt.Equal(b.CreatedAt) && a.LastUsedAt.Equal(b.LastUsedAt)
}

func passkeyIs(t *testing.T, ps fiberauth.PasskeyStore, what string, want fiberauth.Passkey) {
	t.Helper()
	got, err := ps.PasskeyByID(t.Context(), want.ID)
	if err != nil || !samePasskey(got, want) {
		t.Fatalf("%s: PasskeyByID = %+v, %v; want %+v", what, got, err, want)
	}
}

func mustAddPasskey(t *testing.T, ps fiberauth.PasskeyStore, p fiberauth.Passkey) {
	t.Helper()
	if err := ps.AddPasskey(t.Context(), p); err != nil {
		t.Fatalf("AddPasskey(%s): %v", p.ID, err)
	}
}

// A passkey is stored as given and found by its id; a user's come oldest
// first; an id is unique across users; a passkey needs its user.
func testPasskeys(t *testing.T, s fiberauth.Store) {
	ps := s.(fiberauth.PasskeyStore)
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	if list, err := ps.PasskeysOf(t.Context(), u.ID); err != nil || len(list) != 0 {
		t.Fatalf("PasskeysOf(a user with none) = %v, %v; want none", list, err)
	}
	second, first := passkey("k2", u.ID, 5, base.Add(time.Minute)), passkey("k1", u.ID, 0, base)
	mustAddPasskey(t, ps, second)
	mustAddPasskey(t, ps, first)
	passkeyIs(t, ps, "after AddPasskey", first)
	passkeyIs(t, ps, "after AddPasskey", second)
	list, err := ps.PasskeysOf(t.Context(), u.ID)
	if err != nil || len(list) != 2 || !samePasskey(list[0], first) || !samePasskey(list[1], second) {
		t.Fatalf("PasskeysOf = %+v, %v; want k1 then k2", list, err)
	}
	// The caller's slices are not the store's.
	list[0].ID[0], list[0].Transports[0] = 'x', "x"
	passkeyIs(t, ps, "after the caller changed what it read", first)

	again := passkey("k1", u.ID, 9, base.Add(time.Hour))
	wantErr(t, "AddPasskey(a taken id)", ps.AddPasskey(t.Context(), again), fiberauth.ErrConflict)
	passkeyIs(t, ps, "after a refused AddPasskey", first)
	wantErr(t, "AddPasskey(an unknown user)", ps.AddPasskey(t.Context(), passkey("k3", "nobody", 0, base)), fiberauth.ErrNotFound)
	wantErr(t, "PasskeyByID(k3)", func() error { _, err := ps.PasskeyByID(t.Context(), []byte("k3")); return err }(), fiberauth.ErrNotFound)

	if err := ps.RenamePasskey(t.Context(), u.ID, first.ID, "laptop"); err != nil {
		t.Fatalf("RenamePasskey: %v", err)
	}
	first.Name = "laptop"
	passkeyIs(t, ps, "after RenamePasskey", first)
	if err := ps.DeletePasskey(t.Context(), u.ID, first.ID); err != nil {
		t.Fatalf("DeletePasskey: %v", err)
	}
	wantErr(t, "PasskeyByID(deleted)", func() error { _, err := ps.PasskeyByID(t.Context(), first.ID); return err }(), fiberauth.ErrNotFound)
	wantErr(t, "DeletePasskey(deleted)", ps.DeletePasskey(t.Context(), u.ID, first.ID), fiberauth.ErrNotFound)
	wantErr(t, "RenamePasskey(deleted)", ps.RenamePasskey(t.Context(), u.ID, first.ID, "x"), fiberauth.ErrNotFound)
	if list, err := ps.PasskeysOf(t.Context(), u.ID); err != nil || len(list) != 1 || !samePasskey(list[0], second) {
		t.Fatalf("PasskeysOf after DeletePasskey = %+v, %v", list, err)
	}
	// The id is free again.
	mustAddPasskey(t, ps, first)
}

// A user can neither rename nor delete another's passkey, nor see it in
// their list.
func testPasskeysOfOtherUsers(t *testing.T, s fiberauth.Store) {
	ps := s.(fiberauth.PasskeyStore)
	u, v := newUser("ada@example.com", "ada"), newUser("bob@example.com", "bob")
	mustCreateUser(t, s, u)
	mustCreateUser(t, s, v)
	k := passkey("k1", u.ID, 1, base)
	mustAddPasskey(t, ps, k)
	wantErr(t, "AddPasskey(ada's id, for bob)", ps.AddPasskey(t.Context(), passkey("k1", v.ID, 0, base)), fiberauth.ErrConflict)
	wantErr(t, "RenamePasskey(ada's, as bob)", ps.RenamePasskey(t.Context(), v.ID, k.ID, "mine"), fiberauth.ErrNotFound)
	wantErr(t, "DeletePasskey(ada's, as bob)", ps.DeletePasskey(t.Context(), v.ID, k.ID), fiberauth.ErrNotFound)
	passkeyIs(t, ps, "after bob's attempts", k)
	if list, err := ps.PasskeysOf(t.Context(), v.ID); err != nil || len(list) != 0 {
		t.Fatalf("PasskeysOf(bob) = %+v, %v; want none", list, err)
	}
}

// The sign count only goes up (or stays 0 for an authenticator that keeps
// none); a refusal writes nothing.
func testUsePasskey(t *testing.T, s fiberauth.Store) {
	ps := s.(fiberauth.PasskeyStore)
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	counted, uncounted := passkey("k1", u.ID, 5, base), passkey("k2", u.ID, 0, base)
	mustAddPasskey(t, ps, counted)
	mustAddPasskey(t, ps, uncounted)
	use := func(k *fiberauth.Passkey, count uint32, at time.Time, want error) {
		t.Helper()
		err := ps.UsePasskey(t.Context(), k.ID, count, at)
		wantErr(t, fmt.Sprintf("UsePasskey(%s, %d) at %d", k.ID, count, k.SignCount), err, want)
		if err == nil {
			k.SignCount, k.LastUsedAt = count, at
		}
		passkeyIs(t, ps, "after UsePasskey", *k)
	}
	use(&counted, 5, base.Add(time.Minute), fiberauth.ErrNotCurrent)
	use(&counted, 4, base.Add(time.Minute), fiberauth.ErrNotCurrent)
	use(&counted, 0, base.Add(time.Minute), fiberauth.ErrNotCurrent)
	use(&counted, 6, base.Add(time.Minute), nil)
	use(&counted, 100, base.Add(2*time.Minute), nil)
	use(&uncounted, 0, base.Add(time.Minute), nil)
	use(&uncounted, 0, base.Add(2*time.Minute), nil)
	use(&uncounted, 3, base.Add(3*time.Minute), nil) // it starts counting
	use(&uncounted, 0, base.Add(4*time.Minute), fiberauth.ErrNotCurrent)
	wantErr(t, "UsePasskey(unknown)", ps.UsePasskey(t.Context(), []byte("nope"), 1, base), fiberauth.ErrNotFound)
}

// Of many uses with one count at once, exactly one succeeds: a replayed
// assertion cannot sign in twice. Uses with count 0 all succeed.
func testUsePasskeyConcurrent(t *testing.T, s fiberauth.Store) {
	ps := s.(fiberauth.PasskeyStore)
	u := newUser("ada@example.com", "ada")
	mustCreateUser(t, s, u)
	mustAddPasskey(t, ps, passkey("k1", u.ID, 1, base))
	mustAddPasskey(t, ps, passkey("k0", u.ID, 0, base))
	for round := range raceRounds() {
		count := uint32(2 + round)
		errs := together(crowd, func(int) error { return ps.UsePasskey(t.Context(), []byte("k1"), count, base.Add(time.Minute)) })
		if n := tally(t, "UsePasskey", errs, fiberauth.ErrNotCurrent); n[nil] != 1 {
			t.Fatalf("round %d: %d of %d concurrent uses of count %d succeeded, want exactly 1", round, n[nil], crowd, count)
		}
	}
	errs := together(crowd, func(int) error { return ps.UsePasskey(t.Context(), []byte("k0"), 0, base.Add(time.Minute)) })
	if n := tally(t, "UsePasskey(0)", errs); n[nil] != crowd {
		t.Fatalf("%d of %d uses of an uncounted passkey succeeded, want all", n[nil], crowd)
	}
}
