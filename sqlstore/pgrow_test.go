package sqlstore_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/sqlstore"
	"github.com/fiberauth/fiberauth/sqlstore/postgres"
)

// pgxConn is what pgx's stdlib connections do that database/sql uses.
type pgxConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.NamedValueChecker
}

// opaqueConnector hands out pgx connections behind another type, as a
// wrapping driver (tracing, metrics) would.
type opaqueConnector struct{ driver.Connector }

type opaqueConn struct{ pgxConn }

func (c opaqueConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return opaqueConn{conn.(pgxConn)}, nil
}

// The hot reads and the rotation, which sqlstore runs through pgx itself on
// PostgreSQL, answer the same through a driver that wraps pgx's.
func TestPostgresThroughAnotherDriver(t *testing.T) {
	t.Parallel()
	connector, err := stdlib.GetDefaultDriver().(driver.DriverContext).OpenConnector(postgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(opaqueConnector{connector})
	t.Cleanup(func() { _ = db.Close() })
	s, err := sqlstore.New(db, postgres.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := fiberauth.User{ID: "u1", Email: "ada@example.com", ETag: "e1", Roles: []string{"admin"}, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	x := fiberauth.Session{ID: "s1", UserID: "u1", TokenHash: []byte("t0"), CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}
	if err := s.CreateSession(ctx, x); err != nil {
		t.Fatal(err)
	}
	got, gotUser, err := s.SessionWithUser(ctx, "s1")
	if err != nil || string(got.TokenHash) != "t0" || gotUser.ETag != "e1" || gotUser.Roles[0] != "admin" {
		t.Fatalf("SessionWithUser = %+v, %+v, %v", got, gotUser, err)
	}
	if u, err := s.UserByID(ctx, "u1"); err != nil || u.Email != "ada@example.com" {
		t.Fatalf("UserByID = %+v, %v", u, err)
	}
	r := fiberauth.Rotation{SessionID: "s1", From: []byte("t0"), To: []byte("t1"), Generation: 1, At: now, ExpiresAt: now.Add(time.Hour), Replay: []byte("sealed")}
	if got, err := s.RotateSession(ctx, r); err != nil || string(got.TokenHash) != "t1" || string(got.PrevTokenHash) != "t0" {
		t.Fatalf("RotateSession = %+v, %v", got, err)
	}
	if _, err := s.RotateSession(ctx, r); !errors.Is(err, fiberauth.ErrNotCurrent) {
		t.Fatalf("RotateSession of a token rotated already: %v, want ErrNotCurrent", err)
	}
	r.SessionID = "none"
	if _, err := s.RotateSession(ctx, r); !errors.Is(err, fiberauth.ErrNotFound) {
		t.Fatalf("RotateSession of an unknown family: %v, want ErrNotFound", err)
	}
	if _, err := s.SessionByID(ctx, "none"); !errors.Is(err, fiberauth.ErrNotFound) {
		t.Fatalf("SessionByID of an unknown family: %v, want ErrNotFound", err)
	}
}
