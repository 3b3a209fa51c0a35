package sqlstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/sqlstore"
)

// A user row another program spoiled (its JSON columns no longer decode,
// its etag unchanged): a refresh on a warm cache answers 503, as the read
// of the path without the cache does, and writes nothing, so the client's
// token still works once the row is mended.
func TestRefreshOfSpoiledUser(t *testing.T) {
	for _, db := range databases {
		for _, spoil := range []struct{ column, value string }{
			{"roles", "not json"},
			{"roles", `{"admin":true}`},
			{"attributes", "[1]"},
			{"recovery_codes", `"x"`},
		} {
			t.Run(db.Name+"/"+spoil.column+"="+spoil.value, func(t *testing.T) {
				t.Parallel()
				store := open(t, db.Dialect, db.DSN(t))
				in := newInstance(t, store, time.Hour, nil)
				ctx := context.Background()
				user, err := in.auth.CreateUser(ctx, fiberauth.NewUser{Email: "ada@example.com", Password: password, Verified: true})
				if err != nil {
					t.Fatal(err)
				}
				u := user.ID
				_, refresh := in.login(t, "ada@example.com")
				sid, _, _ := strings.Cut(refresh, ".")
				before, err := store.SessionByID(ctx, sid)
				if err != nil {
					t.Fatal(err)
				}
				var good string
				if err := store.DB().QueryRow(`SELECT `+spoil.column+` FROM fiberauth_users WHERE id = $1`, u).Scan(&good); err != nil {
					t.Fatal(err)
				}
				spoilUser(t, store, u, spoil.column, spoil.value)
				if status, out := in.do(t, "POST", "/auth/refresh", "", map[string]any{"refresh_token": refresh}); status != 503 {
					t.Fatalf("refresh of a spoiled user: %d %v, want 503", status, out)
				}
				after, err := store.SessionByID(ctx, sid)
				if err != nil {
					t.Fatal(err)
				}
				if after.Generation != before.Generation || string(after.TokenHash) != string(before.TokenHash) {
					t.Fatalf("the refused refresh moved the family: generation %d -> %d", before.Generation, after.Generation)
				}
				spoilUser(t, store, u, spoil.column, good)
				if status, out := in.do(t, "POST", "/auth/refresh", "", map[string]any{"refresh_token": refresh}); status != 200 {
					t.Fatalf("refresh once the row is mended: %d %v", status, out)
				}
			})
		}
	}
}

func spoilUser(t *testing.T, store *sqlstore.Store, id, column, value string) {
	t.Helper()
	if _, err := store.DB().Exec(`UPDATE fiberauth_users SET `+column+` = $1 WHERE id = $2`, value, id); err != nil {
		t.Fatal(err)
	}
}
