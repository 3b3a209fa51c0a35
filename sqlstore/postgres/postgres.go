// Package postgres runs sqlstore on PostgreSQL through
// github.com/jackc/pgx/v5: import it (and not sqlstore/sqlite) and a
// program links pgx but not SQLite. The store itself, its options and its
// behaviour are package sqlstore's.
//
//	store, err := postgres.Open(ctx, "postgres://app@db/app")
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // registers database/sql driver "pgx"

	"github.com/fiberauth/fiberauth/sqlstore"
	"github.com/fiberauth/fiberauth/sqlstore/internal/driver"
)

// maxConns is the pool bound Open sets: enough connections for the
// concurrency a server has, so that a burst queues for them instead of
// opening hundreds.
const maxConns = 16

// Dialect is PostgreSQL through pgx's database/sql driver ("pgx"), for
// sqlstore.New with a pool the caller opened (sql.Open("pgx", dsn)).
var Dialect sqlstore.Dialect = dialect

var dialect = &driver.Driver{
	Name:      "postgres",
	Postgres:  true,
	SQLDriver: "pgx",
	DSN:       func(dsn string, _ time.Duration) string { return dsn },
	MaxConns:  maxConns,
	IsUnique: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505"
	},
	QueryRow: queryRow,
	Listener: listener,
}

// Open connects to the PostgreSQL database at dsn (a postgres:// URL or a
// key=value string, as pgx reads them) with a pool of 16 connections, and
// migrates it. The Store's Close closes the pool.
func Open(ctx context.Context, dsn string, opts ...sqlstore.Option) (*sqlstore.Store, error) {
	return sqlstore.Open(ctx, Dialect, dsn, opts...)
}

// queryRow runs a one-row query through pgx itself: database/sql would
// start a goroutine per query to watch its context and scan through
// reflection, a third of a point read's time. pgx prepares and caches
// statements on its own.
func queryRow(ctx context.Context, conn any, query string, args, dest []any) (bool, error) {
	pc, ok := conn.(*stdlib.Conn)
	if !ok {
		return false, nil
	}
	return true, pc.Conn().QueryRow(ctx, query, args...).Scan(dest...)
}

// listener copies the configuration of a connection of the pool for
// connections of its own, outside the pool.
func listener(conn any, name string) (driver.Listen, error) {
	pc, ok := conn.(*stdlib.Conn)
	if !ok {
		return nil, fmt.Errorf("sqlstore: change notices need the pgx driver (github.com/jackc/pgx/v5/stdlib), not %T", conn)
	}
	cfg := pc.Conn().Config()
	// The pool's connection delivers notices to itself: the listener's own
	// buffers them for WaitForNotification.
	cfg.OnNotification = nil
	cfg.RuntimeParams["application_name"] = name
	return func(ctx context.Context, channel string) (driver.Listening, error) {
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
			_ = c.Close(context.Background())
			return nil, err
		}
		return listening{c}, nil
	}, nil
}

type listening struct{ c *pgx.Conn }

func (l listening) Wait(ctx context.Context) (string, error) {
	n, err := l.c.WaitForNotification(ctx)
	if err != nil {
		return "", err
	}
	return n.Payload, nil
}

func (l listening) Close() { _ = l.c.Close(context.Background()) }
