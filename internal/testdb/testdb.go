// Package testdb gives tests fresh, empty SQL databases for sqlstore: a
// SQLite file in the test's temporary directory, and a schema of its own on
// the PostgreSQL server named by FIBERAUTH_TEST_POSTGRES_DSN (which .ci/run
// starts and sets; without it, a PostgreSQL test skips with a message).
package testdb

import (
	"crypto/rand"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fiberauth/fiberauth/sqlstore"
	"github.com/fiberauth/fiberauth/sqlstore/postgres"
	"github.com/fiberauth/fiberauth/sqlstore/sqlite"
)

// PostgresEnv names the PostgreSQL server the tests use.
const PostgresEnv = "FIBERAUTH_TEST_POSTGRES_DSN"

// A Database is a kind of database a test runs on.
type Database struct {
	Name    string           // "sqlite" or "postgres"
	Dialect sqlstore.Dialect // for sqlstore.Open and New
	// DSN returns the DSN of a fresh, empty database, removed when t ends.
	DSN func(t testing.TB) string
}

// All are the databases sqlstore supports.
var All = []Database{
	{"sqlite", sqlite.Dialect, SQLite},
	{"postgres", postgres.Dialect, Postgres},
}

// SQLite is a new SQLite file in t's temporary directory.
func SQLite(t testing.TB) string {
	return filepath.Join(t.TempDir(), "fiberauth.db")
}

// Postgres is a schema of its own on the shared server, so tests run in
// parallel without seeing each other's rows; it is dropped when t ends.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skipf("%s is not set; .ci/run starts a PostgreSQL and sets it", PostgresEnv)
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
