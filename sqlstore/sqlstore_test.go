package sqlstore_test

import (
	"context"
	"database/sql/driver"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/internal/testdb"
	"github.com/fiberauth/fiberauth/sqlstore"
	"github.com/fiberauth/fiberauth/sqlstore/postgres"
	"github.com/fiberauth/fiberauth/sqlstore/sqlite"
	"github.com/fiberauth/fiberauth/storetest"
)

// databases are the backends every test here runs on.
var databases = testdb.All

func sqliteDSN(t testing.TB) string   { return testdb.SQLite(t) }
func postgresDSN(t testing.TB) string { return testdb.Postgres(t) }

func open(t testing.TB, d sqlstore.Dialect, dsn string, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), d, dsn, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	// Enough connections for real contention, few enough that the
	// concurrent cases do not spend their time opening them.
	s.DB().SetMaxOpenConns(8)
	return s
}

func TestConformance(t *testing.T) {
	for _, db := range databases {
		t.Run(db.Name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) fiberauth.Store { return open(t, db.Dialect, db.DSN(t)) })
		})
	}
}

// Several processes opening one database at once apply each migration once,
// and opening it again changes nothing.
func TestMigrationsConcurrentAndIdempotent(t *testing.T) {
	for _, db := range databases {
		t.Run(db.Name, func(t *testing.T) {
			t.Parallel()
			dsn := db.DSN(t)
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := sqlstore.Open(context.Background(), db.Dialect, dsn)
					if err != nil {
						errs <- err
						return
					}
					errs <- s.Close()
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("concurrent Open: %v", err)
				}
			}
			s := open(t, db.Dialect, dsn)
			var n, distinct int
			if err := s.DB().QueryRow(`SELECT COUNT(*), COUNT(DISTINCT version) FROM fiberauth_schema_migrations`).Scan(&n, &distinct); err != nil {
				t.Fatal(err)
			}
			if n == 0 || n != distinct {
				t.Fatalf("migrations table has %d rows for %d versions", n, distinct)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	if _, err := sqlstore.Open(context.Background(), nil, "x"); err == nil {
		t.Fatal("no dialect was accepted")
	}
	var wrapped struct{ sqlstore.Dialect } // wraps none: no panic
	if _, err := sqlstore.Open(context.Background(), wrapped, "x"); err == nil {
		t.Fatal("a dialect wrapping none was accepted")
	}
	if _, err := sqlstore.New(nil, wrapped); err == nil {
		t.Fatal("New: a dialect wrapping none was accepted")
	}
	// The shared dialect is not the caller's to change.
	d := sqlite.Dialect.Driver()
	d.MaxConns = 1
	if sqlite.Dialect.Driver().MaxConns == 1 {
		t.Fatal("a caller changed sqlite.Dialect for everyone")
	}
	for _, path := range []string{"", ":memory:", "file::memory:", "file:x?mode=memory"} {
		if _, err := sqlite.Open(context.Background(), path); err == nil || !strings.Contains(err.Error(), "in-memory") {
			t.Fatalf("sqlite.Open(%q): %v, want an in-memory refusal", path, err)
		}
	}
	s, err := sqlite.Open(context.Background(), "file::memory:?cache=shared")
	if err != nil {
		t.Fatalf("a shared in-memory database: %v", err)
	}
	s.Close()
	if _, err := sqlstore.Open(context.Background(), sqlite.Dialect, filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")); err == nil {
		t.Fatal("an unreachable SQLite path was accepted")
	}
	if _, err := sqlstore.Open(context.Background(), postgres.Dialect, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"); err == nil {
		t.Fatal("an unreachable PostgreSQL was accepted")
	}
	if _, err := sqlstore.Open(context.Background(), sqlite.Dialect, sqliteDSN(t), sqlstore.WithQueryTimeout(0)); err == nil {
		t.Fatal("a zero query timeout was accepted")
	}
}

// The pragmas Open promises are in force on its connections.
func TestSQLitePragmas(t *testing.T) {
	t.Parallel()
	s := open(t, sqlite.Dialect, sqliteDSN(t))
	var mode string
	var sync, busy int
	db := s.DB()
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA busy_timeout`).Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || sync != 2 || busy < 1000 {
		t.Fatalf("journal_mode=%s synchronous=%d busy_timeout=%d; want wal, 2 (FULL), ≥ 1000", mode, sync, busy)
	}

	// _txlock=immediate: a transaction holds the write lock from BEGIN, so
	// another connection cannot begin one. That connection does not wait
	// (busy_timeout 0) and is discarded afterwards.
	ctx := context.Background()
	other, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Raw(func(any) error { return driver.ErrBadConn }) //nolint:errcheck // discards the connection
	if _, err := other.ExecContext(ctx, `PRAGMA busy_timeout = 0`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // read nothing, wrote nothing
	if tx2, err := other.BeginTx(ctx, nil); err == nil {
		_ = tx2.Rollback()
		t.Fatal("a second transaction began while one was open: transactions do not take the write lock at BEGIN (_txlock=immediate)")
	} else if !strings.Contains(err.Error(), "locked") && !strings.Contains(err.Error(), "busy") {
		t.Fatalf("BEGIN while another transaction is open: %v; want SQLITE_BUSY", err)
	}
}
