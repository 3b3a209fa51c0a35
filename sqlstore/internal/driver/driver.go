// Package driver is the seam between sqlstore's shared SQL code and the
// packages that bring a database driver (sqlstore/sqlite,
// sqlstore/postgres), so that a program links only the drivers it imports.
// It is internal: the drivers sqlstore supports are the ones it tests.
package driver

import (
	"context"
	"time"
)

// Driver is what sqlstore needs of a database driver beyond database/sql.
type Driver struct {
	// Name is "sqlite" or "postgres".
	Name string
	// Postgres chooses the SQL sqlstore speaks: PostgreSQL's, else SQLite's.
	Postgres bool
	// SQLDriver is the database/sql driver name; the package that made the
	// Driver registers it.
	SQLDriver string
	// DSN is what sqlstore.Open hands to sql.Open for a caller's dsn, given
	// the store's query timeout.
	DSN func(dsn string, queryTimeout time.Duration) string
	// MaxConns bounds the pool sqlstore.Open makes.
	MaxConns int
	// IsUnique reports a unique-constraint violation.
	IsUnique func(error) bool

	// QueryRow, when set, runs a one-row query on conn, a driver
	// connection of the pool (from sql.Conn.Raw), scanning into dest; ok is
	// false when conn is not the driver's (a pool opened with another
	// driver), and the caller then uses database/sql.
	QueryRow func(ctx context.Context, conn any, query string, args, dest []any) (ok bool, err error)

	// Listener, for PostgreSQL, takes the configuration of conn (a driver
	// connection of the pool) and returns how to open a connection outside
	// the pool that listens on a channel, named name to the server.
	Listener func(conn any, name string) (Listen, error)
}

// String returns the driver's name.
func (d *Driver) String() string { return d.Name }

// Driver returns a copy of d: it makes a *Driver a sqlstore.Dialect whose
// settings a program cannot change for every other user of it.
func (d *Driver) Driver() Driver { return *d }

// Listen opens a connection that listens on channel.
type Listen func(ctx context.Context, channel string) (Listening, error)

// Listening is a connection listening for notices.
type Listening interface {
	// Wait returns the payload of the next notice, or the error that ended
	// the connection (ctx's when it ends).
	Wait(ctx context.Context) (string, error)
	// Close closes the connection.
	Close()
}
