package fiberauth_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/internal/testdb"
	"github.com/fiberauth/fiberauth/sqlstore"
	"github.com/fiberauth/fiberauth/sqlstore/sqlite"
)

// 600 parallel refreshes, each of its own family, on a SQLite file store
// (WAL, synchronous=FULL) through the HTTP handler: every one answers 200.
// The writes queue for their turn, and no call's timeout runs while it
// waits.
func TestRefreshBurstSQLite(t *testing.T) {
	t.Parallel()
	const n = 600
	path := testdb.SQLite(t)

	// The families are made on the same file without fsyncs, which would
	// only make the test slow; the burst runs on a Store as Open makes it.
	fast, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(OFF)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	setupStore, err := sqlstore.New(fast, sqlite.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	setup := newHarnessOn(t, setupStore, testEpoch, func(c *fiberauth.Config) { c.Logger = quiet })
	setup.createUser("ada@example.com")
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = setup.login("ada@example.com", goodPassword).refresh
	}
	if err := setup.auth.Close(); err != nil {
		t.Fatal(err)
	}
	if err := setupStore.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fast.Close(); err != nil {
		t.Fatal(err)
	}

	store, err := sqlstore.Open(context.Background(), sqlite.Dialect, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	h := newHarnessOn(t, store, testEpoch)
	got := h.burst(n, func(i int) response { return h.refresh(tokens[i]) })
	if got[200] != n {
		t.Fatalf("%d parallel refreshes on SQLite: answers %v; want %d × 200; first error: %s", n, got, n, h.firstError())
	}
}
