package sqlstore_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	msqlite "modernc.org/sqlite"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/sqlstore"
	"github.com/fiberauth/fiberauth/sqlstore/postgres"
	"github.com/fiberauth/fiberauth/sqlstore/sqlite"
)

// Statement counting: what one call sends to the database. Only statements
// whose context carries counted are counted, so that the SQLite change
// poller and the PostgreSQL listener, which run beside the call, are not.

type countedKey struct{}

// counted marks ctx: the statements made under it are counted.
func counted(ctx context.Context) context.Context { return context.WithValue(ctx, countedKey{}, true) }

func isCounted(ctx context.Context) bool { return ctx != nil && ctx.Value(countedKey{}) != nil }

// statements counts statements by their first word (BEGIN, SELECT, UPDATE,
// COMMIT…). On PostgreSQL each is one round trip (pgx caches prepared
// statements: a statement's first use on a connection adds a PREPARE,
// counted apart).
type statements struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *statements) add(sql string) {
	verb, _, _ := strings.Cut(strings.TrimSpace(sql), " ")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[strings.ToUpper(verb)]++
}

// take returns the counts so far and starts again.
func (s *statements) take() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.n
	s.n = nil
	return n
}

func total(n map[string]int) int {
	sum := 0
	for _, v := range n {
		sum += v
	}
	return sum
}

// countingStore is a Store on a fresh database of db's kind whose counted
// statements go to the returned counter.
func countingStore(t testing.TB, dialect sqlstore.Dialect, dsn string) (*sqlstore.Store, *statements) {
	t.Helper()
	st := &statements{}
	var db *sql.DB
	switch dialect {
	case sqlite.Dialect:
		db = sql.OpenDB(&countingConnector{dsn: sqlite.DSN(dsn, sqlstore.DefaultQueryTimeout), st: st})
	case postgres.Dialect:
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Tracer = pgTracer{st}
		db = stdlib.OpenDB(*cfg)
	default:
		t.Fatalf("unknown dialect %v", dialect)
	}
	db.SetMaxOpenConns(8)
	t.Cleanup(func() { _ = db.Close() })
	s, err := sqlstore.New(db, dialect)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, st
}

// pgTracer counts what pgx sends: statements and the PREPAREs of their
// first use on a connection.
type pgTracer struct{ st *statements }

func (p pgTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if isCounted(ctx) {
		p.st.add(data.SQL)
	}
	return ctx
}

func (pgTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (p pgTracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	if isCounted(ctx) {
		p.st.add("PREPARE")
	}
	return ctx
}

func (pgTracer) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

// countingConnector opens modernc.org/sqlite connections that count.
type countingConnector struct {
	dsn string
	st  *statements
}

func (c *countingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := (&msqlite.Driver{}).Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &countingConn{conn.(sqliteConn), c.st}, nil
}

func (c *countingConnector) Driver() driver.Driver { return &msqlite.Driver{} }

// sqliteConn is what modernc.org/sqlite's connections do that database/sql
// uses.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type countingConn struct {
	sqliteConn
	st *statements
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.sqliteConn.BeginTx(ctx, opts)
	if err != nil || !isCounted(ctx) {
		return tx, err
	}
	c.st.add("BEGIN")
	return countingTx{tx, c.st}, nil
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if isCounted(ctx) {
		c.st.add(query)
	}
	return c.sqliteConn.ExecContext(ctx, query, args)
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if isCounted(ctx) {
		c.st.add(query)
	}
	return c.sqliteConn.QueryContext(ctx, query, args)
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if isCounted(ctx) {
		c.st.add("PREPARE")
	}
	stmt, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &countingStmt{stmt.(sqliteStmt), query, c.st}, nil
}

// sqliteStmt is what modernc.org/sqlite's prepared statements do that
// database/sql uses.
type sqliteStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

type countingStmt struct {
	sqliteStmt
	query string
	st    *statements
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if isCounted(ctx) {
		s.st.add(s.query)
	}
	return s.sqliteStmt.ExecContext(ctx, args)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if isCounted(ctx) {
		s.st.add(s.query)
	}
	return s.sqliteStmt.QueryContext(ctx, args)
}

type countingTx struct {
	driver.Tx
	st *statements
}

func (t countingTx) Commit() error {
	t.st.add("COMMIT")
	return t.Tx.Commit()
}

func (t countingTx) Rollback() error {
	t.st.add("ROLLBACK")
	return t.Tx.Rollback()
}

// TestRefreshStatements counts the statements one refresh sends to the
// database. On a warm cache (the family and its user cached, as after a
// login or a refresh on this instance) it is one: the rotation, checked
// against the user as it writes (UserRotator). Without the cache, the
// family and its user are read together first: two. Each is one statement
// in its own transaction (on PostgreSQL one round trip each). A
// statement's first use on a connection also prepares it (pgx; sqlstore on
// SQLite), which is logged apart and not counted. The counts are logged
// (go test -v -run RefreshStatements ./sqlstore).
func TestRefreshStatements(t *testing.T) {
	for _, db := range databases {
		for _, tc := range []struct {
			name     string
			cacheTTL time.Duration
			want     map[string]int
		}{
			{"warm", 0, map[string]int{"UPDATE": 1}},
			{"uncached", -1, map[string]int{"SELECT": 1, "UPDATE": 1}},
		} {
			t.Run(db.Name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				store, st := countingStore(t, db.Dialect, db.DSN(t))
				in := newInstance(t, store, tc.cacheTTL, nil)
				ctx := context.Background()
				if _, err := in.auth.CreateUser(ctx, fiberauth.NewUser{Email: "ada@example.com", Password: password, Verified: true}); err != nil {
					t.Fatal(err)
				}
				_, refresh := in.login(t, "ada@example.com")
				prepares := 0
				for i := range 20 {
					tk, err := in.auth.Refresh(counted(ctx), fiberauth.RefreshInput{RefreshToken: refresh})
					if err != nil {
						t.Fatal(err)
					}
					refresh = tk.RefreshToken
					n := st.take()
					prepares += n["PREPARE"]
					delete(n, "PREPARE")
					if i == 0 {
						t.Logf("%s, %s: a refresh sends %v (%d statements)", db.Name, tc.name, n, total(n))
					}
					if !maps.Equal(n, tc.want) {
						t.Fatalf("refresh %d sent %v to the database; want %v, no explicit transaction", i+1, n, tc.want)
					}
				}
				t.Logf("%s, %s: and %d PREPAREs in 20 refreshes", db.Name, tc.name, prepares)
			})
		}
	}
}
