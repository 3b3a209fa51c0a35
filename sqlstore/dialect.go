package sqlstore

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// Dialect is what differs between the databases sqlstore supports. Every
// statement is shared (both accept $1 placeholders and RETURNING); only
// these few things are not.
type Dialect struct {
	name string
	// lock and unlock bracket migrations so that several processes opening
	// one database at once apply each version once.
	lock, unlock string
	// isUnique reports a unique-constraint violation.
	isUnique func(error) bool
}

// String returns the dialect's name.
func (d Dialect) String() string { return d.name }

// SQLite is modernc.org/sqlite (driver name "sqlite"). Migrations need no
// lock of their own: their transaction takes SQLite's write lock.
var SQLite = Dialect{
	name: "sqlite",
	isUnique: func(err error) bool {
		var e *sqlite.Error
		// SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE
		return errors.As(err, &e) && (e.Code() == 1555 || e.Code() == 2067)
	},
}

// Postgres is PostgreSQL through github.com/jackc/pgx/v5/stdlib (driver
// name "pgx").
var Postgres = Dialect{
	name: "postgres",
	// An arbitrary constant that names fiberauth's migration lock.
	lock:   "SELECT pg_advisory_lock(7262536735180145921)",
	unlock: "SELECT pg_advisory_unlock(7262536735180145921)",
	isUnique: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505"
	},
}
