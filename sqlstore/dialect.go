package sqlstore

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// Dialect is what differs between the databases sqlstore supports. Every
// statement is shared (both accept $1 placeholders, RETURNING and ON
// CONFLICT); only these few things are not.
type Dialect struct {
	name string
	// forUpdate ends a SELECT whose row the transaction goes on to change,
	// so that concurrent transactions take turns on it. SQLite needs none:
	// its transactions take the write lock at BEGIN (_txlock=immediate).
	forUpdate string
	// lock and unlock bracket migrations so that several processes opening
	// one database at once apply each version once.
	lock, unlock string
	// isUnique reports a unique-constraint violation.
	isUnique func(error) bool
}

// String returns the dialect's name.
func (d Dialect) String() string { return d.name }

// SQLite is modernc.org/sqlite (driver name "sqlite"). Nothing needs a lock
// of its own: a migration's transaction begins with a write, which takes
// SQLite's write lock, and with _txlock=immediate (Open sets it) every other
// transaction takes it at BEGIN.
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
	name:      "postgres",
	forUpdate: " FOR UPDATE",
	// An arbitrary constant that names fiberauth's migration lock.
	lock:   "SELECT pg_advisory_lock(7262536735180145921)",
	unlock: "SELECT pg_advisory_unlock(7262536735180145921)",
	isUnique: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505"
	},
}
