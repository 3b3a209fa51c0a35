package sqlstore

import (
	"errors"

	"github.com/fiberauth/fiberauth/sqlstore/internal/driver"
)

var errNoDialect = errors.New("sqlstore: no dialect; use sqlite.Dialect or postgres.Dialect")

// Dialect is a database a Store runs on, with its driver: sqlite.Dialect
// (package github.com/fiberauth/fiberauth/sqlstore/sqlite, modernc.org/sqlite)
// or postgres.Dialect (package .../sqlstore/postgres, pgx). The SQL is
// shared; a program links only the drivers whose packages it imports.
// Those two are the only Dialects: the interface cannot be implemented
// outside this module (its method names an internal type), as sqlstore
// supports the databases it tests.
type Dialect interface {
	// Driver is what sqlstore needs of the driver beyond database/sql.
	Driver() driver.Driver
}

// driverOf is d's driver; errNoDialect for none (nil, or a value that
// wraps none).
func driverOf(d Dialect) (drv *driver.Driver, err error) {
	if d == nil {
		return nil, errNoDialect
	}
	defer func() {
		if recover() != nil {
			drv, err = nil, errNoDialect
		}
	}()
	v := d.Driver()
	if v.IsUnique == nil || v.DSN == nil || v.SQLDriver == "" {
		return nil, errNoDialect
	}
	return &v, nil
}

// family is what the SQL of the two databases differs in. Every statement
// is otherwise shared: both accept $1 placeholders, RETURNING and ON
// CONFLICT.
type family struct {
	// forUpdate ends a SELECT whose row the transaction goes on to change,
	// so that concurrent transactions take turns on it. SQLite needs none:
	// its transactions take the write lock at BEGIN (_txlock=immediate).
	forUpdate string
	// lock and unlock bracket migrations so that several processes opening
	// one database at once apply each version once. SQLite needs none: a
	// migration's transaction begins with a write, which takes its write
	// lock, and with _txlock=immediate every other transaction takes it at
	// BEGIN.
	lock, unlock string
}

var (
	sqliteSQL   = family{}
	postgresSQL = family{
		forUpdate: " FOR UPDATE",
		// An arbitrary constant that names fiberauth's migration lock.
		lock:   "SELECT pg_advisory_lock(7262536735180145921)",
		unlock: "SELECT pg_advisory_unlock(7262536735180145921)",
	}
)
