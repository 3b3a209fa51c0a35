package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/sqlstore"
	"github.com/fiberauth/fiberauth/sqlstore/sqlite"
)

// eventually waits, without sleeping, until cond holds; it fails t after
// a generous bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s", what)
		}
		runtime.Gosched()
	}
}

// refreshAnswer is a refresh's status, error code and Retry-After.
type refreshAnswer struct {
	status     int
	code       string
	retryAfter string
}

func (in instance) refreshAnswer(t *testing.T, token string) refreshAnswer {
	req := httptest.NewRequest("POST", "/auth/refresh", strings.NewReader(`{"refresh_token":"`+token+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := in.app.Test(req, -1)
	if err != nil {
		t.Error(err)
		return refreshAnswer{}
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return refreshAnswer{resp.StatusCode, body.Error, resp.Header.Get("Retry-After")}
}

// SQLite writes queue for their turn up to WithMaxQueuedWrites; a write
// beyond answers 503 unavailable at once, with Retry-After, and changes nothing;
// the queued ones go through once the database is free.
func TestWriteQueueBound(t *testing.T) {
	t.Parallel()
	path := sqliteDSN(t)
	store := open(t, sqlite.Dialect, path, sqlstore.WithMaxQueuedWrites(2))
	in := newInstance(t, store, 0, nil)
	ctx := context.Background()
	if _, err := in.auth.CreateUser(ctx, fiberauth.NewUser{Email: "ada@example.com", Password: password, Verified: true}); err != nil {
		t.Fatal(err)
	}
	tokens := make([]string, 4)
	for i := range tokens {
		_, tokens[i] = in.login(t, "ada@example.com")
	}

	// Another process holds SQLite's write lock: the write whose turn it
	// is waits for it, and the others queue behind.
	lock := holdWriteLock(t, path)
	answers := make(chan refreshAnswer, 3)
	go func() { answers <- in.refreshAnswer(t, tokens[0]) }()
	eventually(t, "a write's turn", func() bool { return sqlstore.WriterBusy(store) })
	for _, tok := range tokens[1:3] {
		go func() { answers <- in.refreshAnswer(t, tok) }()
	}
	eventually(t, "two writes queued", func() bool { return sqlstore.QueuedWrites(store) == 2 })

	if got := in.refreshAnswer(t, tokens[3]); got != (refreshAnswer{503, "unavailable", "1"}) {
		t.Fatalf("a refresh beyond the queue's bound: %+v; want 503 unavailable with Retry-After: 1", got)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := <-answers; got.status != 200 {
			t.Fatalf("a queued refresh: %+v; want 200", got)
		}
	}
	// The refused one changed nothing: its token still rotates.
	if got := in.refreshAnswer(t, tokens[3]); got.status != 200 {
		t.Fatalf("the refused refresh's token, retried: %+v; want 200", got)
	}
}

func TestWithMaxQueuedWritesRefusesZero(t *testing.T) {
	t.Parallel()
	if _, err := sqlstore.Open(context.Background(), sqlite.Dialect, sqliteDSN(t), sqlstore.WithMaxQueuedWrites(0)); err == nil {
		t.Fatal("a write queue bound of 0 was accepted")
	}
}

// On SQLite a call whose context can never end runs without a deadline of
// its own; what bounds its wait for another process's write lock is
// busy_timeout, which Open sets to the query timeout: the call fails
// (503) instead of hanging.
func TestSQLiteLockWaitBoundedByQueryTimeout(t *testing.T) {
	t.Parallel()
	path := sqliteDSN(t)
	store := open(t, sqlite.Dialect, path, sqlstore.WithQueryTimeout(100*time.Millisecond))
	var busy int
	if err := store.DB().QueryRow(`PRAGMA busy_timeout`).Scan(&busy); err != nil || busy != 100 {
		t.Fatalf("busy_timeout = %d (%v); want the query timeout, 100 ms", busy, err)
	}
	ctx := context.Background()
	now := time.Now()
	if err := store.CreateUser(ctx, fiberauth.User{ID: "u1", Email: "ada@example.com", ETag: "e", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	lock := holdWriteLock(t, path)
	defer lock.Rollback() //nolint:errcheck // wrote nothing
	err := store.CreateSession(ctx, fiberauth.Session{ID: "s1", UserID: "u1", TokenHash: []byte("t"), CreatedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)})
	if err == nil || !strings.Contains(err.Error(), "locked") && !strings.Contains(err.Error(), "busy") {
		t.Fatalf("a write while another process holds the lock: %v; want SQLITE_BUSY after busy_timeout", err)
	}
}

// holdWriteLock takes SQLite's write lock on the database at path from
// another connection pool, as another process would, until the caller
// ends the transaction.
func holdWriteLock(t *testing.T, path string) *sql.Tx {
	t.Helper()
	other, err := sql.Open("sqlite", sqlite.DSN(path, sqlstore.DefaultQueryTimeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	lock, err := other.BeginTx(context.Background(), nil) // BEGIN IMMEDIATE
	if err != nil {
		t.Fatal(err)
	}
	return lock
}
