// Package sqlite runs sqlstore on SQLite through modernc.org/sqlite (pure
// Go, no cgo): import it (and not sqlstore/postgres) and a program links
// SQLite but not pgx. The store itself, its options and its behaviour are
// package sqlstore's.
//
//	store, err := sqlite.Open(ctx, "fiberauth.db")
package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	msqlite "modernc.org/sqlite" // registers database/sql driver "sqlite"

	"github.com/fiberauth/fiberauth/sqlstore"
	"github.com/fiberauth/fiberauth/sqlstore/internal/driver"
)

// maxConns is the pool bound Open sets: SQLite needs few connections
// (readers; writes take turns).
const maxConns = 8

// Dialect is SQLite through modernc.org/sqlite's database/sql driver
// ("sqlite"), for sqlstore.New with a database the caller opened: open it
// with DSN.
var Dialect sqlstore.Dialect = dialect

var dialect = &driver.Driver{
	Name:      "sqlite",
	SQLDriver: "sqlite",
	DSN:       DSN,
	MaxConns:  maxConns,
	IsUnique: func(err error) bool {
		var e *msqlite.Error
		// SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE
		return errors.As(err, &e) && (e.Code() == 1555 || e.Code() == 2067)
	},
}

// Open opens (creating it if need be) the SQLite database at path, a file
// path or file: URI, optionally with query parameters, with the pragmas DSN
// adds, and migrates it. The Store's Close closes it. A private in-memory
// database ("", ":memory:", mode=memory) is refused: each connection of
// the pool would have one of its own (use memstore, or a shared cache:
// file::memory:?cache=shared).
func Open(ctx context.Context, path string, opts ...sqlstore.Option) (*sqlstore.Store, error) {
	if privateMemory(path) {
		return nil, fmt.Errorf("sqlstore/sqlite: %q is an in-memory database private to each connection of the pool; use a file, memstore, or file::memory:?cache=shared", path)
	}
	return sqlstore.Open(ctx, Dialect, path, opts...)
}

// privateMemory reports whether path names an in-memory database that is
// not shared between connections.
func privateMemory(path string) bool {
	name, query, _ := strings.Cut(path, "?")
	memory := name == "" || name == ":memory:" || name == "file::memory:" || name == "file:" || strings.Contains(query, "mode=memory")
	return memory && !strings.Contains(query, "cache=shared")
}

// pragmas are applied to every connection, in this order:
//   - busy_timeout (the query timeout), so a writer waits for the lock
//     instead of failing with SQLITE_BUSY; first, as switching to WAL takes
//     a lock too (several processes opening a new file at once);
//   - WAL, so readers never wait for the writer;
//   - synchronous=FULL, so a rotation a client has seen survives power loss
//     (NORMAL is faster but may lose the last transactions on power loss,
//     which would bring back refresh tokens already rotated);
//   - _txlock=immediate, so every transaction takes the write lock at BEGIN:
//     read-then-write transactions take turns, and two writers never
//     deadlock upgrading their locks.
//
// They come first in the DSN, and the driver takes the first value of a
// key, so a caller's query parameters cannot turn them off.
const pragmas = "_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"

// DSN is the data source name Open uses for path (a file path or file: URI,
// optionally with query parameters): fiberauth's pragmas added, with
// busy_timeout set to queryTimeout (sqlstore.WithQueryTimeout; Open passes
// sqlstore.DefaultQueryTimeout unless told otherwise). Open a database with
// it to hand to sqlstore.New. (As with Open, a private in-memory database
// is one per connection of the pool.)
func DSN(path string, queryTimeout time.Duration) string {
	path, query, _ := strings.Cut(path, "?")
	if !strings.HasPrefix(path, "file:") {
		path = "file:" + path
	}
	p := fmt.Sprintf(pragmas, max(1, queryTimeout.Milliseconds()))
	if query != "" {
		return path + "?" + p + "&" + query
	}
	return path + "?" + p
}
