package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/sqlstore"
	"github.com/fiberauth/fiberauth/storetest"
)

// postgresEnv names the PostgreSQL server the tests use; .ci/run sets it.
const postgresEnv = "FIBERAUTH_TEST_POSTGRES_DSN"

// databases are the backends every test here runs on.
var databases = []struct {
	name string
	// dsn returns a DSN for a fresh, empty database.
	dsn    func(t testing.TB) string
	driver string
}{
	{"sqlite", sqliteDSN, "sqlite"},
	{"postgres", postgresDSN, "pgx"},
}

func sqliteDSN(t testing.TB) string {
	return filepath.Join(t.TempDir(), "fiberauth.db")
}

// postgresDSN gives each caller a schema of its own on the shared server, so
// tests run in parallel without seeing each other's rows.
func postgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(postgresEnv)
	if base == "" {
		t.Skipf("%s is not set; .ci/run starts a PostgreSQL and sets it", postgresEnv)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	schema := "t_" + strings.ToLower(rand.Text())
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

func open(t testing.TB, driver, dsn string, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), driver, dsn, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) fiberauth.Store { return open(t, db.driver, db.dsn(t)) })
		})
	}
}

// Several processes opening one database at once apply each migration once,
// and opening it again changes nothing.
func TestMigrationsConcurrentAndIdempotent(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			dsn := db.dsn(t)
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := sqlstore.Open(context.Background(), db.driver, dsn)
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
			s := open(t, db.driver, dsn)
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
	if _, err := sqlstore.Open(context.Background(), "mysql", "x"); err == nil {
		t.Fatal("an unknown driver was accepted")
	}
	if _, err := sqlstore.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")); err == nil {
		t.Fatal("an unreachable SQLite path was accepted")
	}
	if _, err := sqlstore.Open(context.Background(), "pgx", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"); err == nil {
		t.Fatal("an unreachable PostgreSQL was accepted")
	}
	if _, err := sqlstore.Open(context.Background(), "sqlite", sqliteDSN(t), sqlstore.WithQueryTimeout(0)); err == nil {
		t.Fatal("a zero query timeout was accepted")
	}
}

// The pragmas Open promises are in force on its connections.
func TestSQLitePragmas(t *testing.T) {
	t.Parallel()
	s := open(t, "sqlite", sqliteDSN(t))
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
}

// The cleanup loop removes expired records off the request path, and Close
// stops it.
func TestCleanupLoop(t *testing.T) {
	t.Parallel()
	s, err := sqlstore.Open(context.Background(), "sqlite", sqliteDSN(t), sqlstore.WithCleanupInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	past := time.Now().Add(-time.Hour)
	gone := fiberauth.Session{ID: "gone", UserID: "u", TokenHash: []byte("h1"), CreatedAt: past, LastUsedAt: past,
		ExpiresAt: past.Add(time.Minute), AbsoluteExpiresAt: past.Add(time.Hour * 2)}
	kept := gone
	kept.ID, kept.TokenHash, kept.ExpiresAt = "kept", []byte("h2"), time.Now().Add(time.Hour)
	for _, x := range []fiberauth.Session{gone, kept} {
		if err := s.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.SessionByID(ctx, "gone")
		if errors.Is(err, fiberauth.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cleanup loop did not remove an expired session: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := s.SessionByID(ctx, "kept"); err != nil {
		t.Fatalf("the cleanup loop removed a live session: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}
