package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/sqlstore"
	"github.com/fiberauth/fiberauth/sqlstore/sqlite"
)

// lockedSQLite is a SQLite store (counting its statements) whose database
// another process has locked for writing; unlock lets writes through.
func lockedSQLite(t *testing.T, families int, setup ...string) (s *sqlstore.Store, st *statements, unlock func()) {
	t.Helper()
	path := sqliteDSN(t)
	s, st = countingStore(t, sqlite.Dialect, path)
	ctx := context.Background()
	now := time.Now()
	if err := s.CreateUser(ctx, fiberauth.User{ID: "u1", Email: "ada@example.com", ETag: "e", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for i := range families {
		x := fiberauth.Session{ID: fmt.Sprint("s", i), UserID: "u1", TokenHash: []byte("t0"), CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}
		if err := s.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range setup {
		if _, err := s.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	other, err := sql.Open("sqlite", sqlite.DSN(path, sqlstore.DefaultQueryTimeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	lock, err := other.BeginTx(ctx, nil) // BEGIN IMMEDIATE
	if err != nil {
		t.Fatal(err)
	}
	return s, st, func() {
		if err := lock.Rollback(); err != nil {
			t.Error(err)
		}
	}
}

func rotation(id string, at time.Time) fiberauth.Rotation {
	return fiberauth.Rotation{SessionID: id, From: []byte("t0"), To: []byte("t1 " + id), Generation: 1, At: at, ExpiresAt: at.Add(time.Hour), Replay: []byte("sealed")}
}

// Rotations that queue for the SQLite writer together commit in one
// transaction, each as its own conditional UPDATE: of two rotations of one
// token in it exactly one wins, an unknown family is ErrNotFound, and the
// others rotate.
func TestSQLiteRotationsCommitTogether(t *testing.T) {
	t.Parallel()
	s, st, unlock := lockedSQLite(t, 5)
	ctx := counted(context.Background())
	at := time.Now()
	errs := make(chan error, 8)
	rotate := func(r fiberauth.Rotation) {
		_, err := s.RotateSession(ctx, r)
		errs <- err
	}
	go rotate(rotation("s0", at)) // takes the turn, waits for the lock
	eventually(t, "a write's turn", func() bool { return sqlstore.WriterBusy(s) })
	queued := []fiberauth.Rotation{rotation("s1", at), rotation("s2", at), rotation("s3", at), rotation("s4", at), rotation("s4", at), rotation("none", at)}
	queued[4].To = []byte("t1 other")
	for _, r := range queued {
		go rotate(r)
	}
	eventually(t, "six rotations queued", func() bool { return sqlstore.QueuedWrites(s) == int64(len(queued)) })
	unlock()
	count := map[error]int{}
	for range 1 + len(queued) {
		err := <-errs
		if err != nil && !errors.Is(err, fiberauth.ErrNotCurrent) && !errors.Is(err, fiberauth.ErrNotFound) {
			t.Fatalf("a rotation: %v", err)
		}
		count[err]++
	}
	if count[nil] != 5 || count[fiberauth.ErrNotCurrent] != 1 || count[fiberauth.ErrNotFound] != 1 {
		t.Fatalf("answers %v; want 5 rotated, 1 ErrNotCurrent (s4's second), 1 ErrNotFound", count)
	}
	n := st.take()
	if n["BEGIN"] != 1 || n["COMMIT"] != 1 || n["UPDATE"] != 7 {
		t.Fatalf("statements %v; want the first rotation alone, then one transaction of six UPDATEs", n)
	}
	for i := range 4 {
		if x, err := s.SessionByID(ctx, fmt.Sprint("s", i)); err != nil || string(x.TokenHash) != fmt.Sprint("t1 s", i) {
			t.Fatalf("family s%d after its rotation: %+v, %v", i, x, err)
		}
	}
}

// A rotation whose context ends while it waits in the queue fails and
// writes nothing; the others go through.
func TestSQLiteRotationLeavesQueue(t *testing.T) {
	t.Parallel()
	s, _, unlock := lockedSQLite(t, 2)
	at := time.Now()
	first := make(chan error, 1)
	go func() {
		_, err := s.RotateSession(context.Background(), rotation("s0", at))
		first <- err
	}()
	eventually(t, "a write's turn", func() bool { return sqlstore.WriterBusy(s) })
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() {
		_, err := s.RotateSession(ctx, rotation("s1", at))
		second <- err
	}()
	eventually(t, "a rotation queued", func() bool { return sqlstore.QueuedWrites(s) == 1 })
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Fatalf("a rotation canceled in the queue: %v; want context.Canceled", err)
	}
	unlock()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if x, err := s.SessionByID(context.Background(), "s1"); err != nil || string(x.TokenHash) != "t0" {
		t.Fatalf("the canceled rotation's family: %+v, %v; want it unchanged", x, err)
	}
}

// A batch that fails as a whole fails every rotation in it, and writes
// none of them.
func TestSQLiteRotationBatchFailsWhole(t *testing.T) {
	t.Parallel()
	s, _, unlock := lockedSQLite(t, 4, `CREATE TRIGGER fail_s3 BEFORE UPDATE ON fiberauth_sessions WHEN NEW.id = 's3'
		BEGIN SELECT RAISE(ABORT, 'injected failure'); END`)
	at := time.Now()
	errs := make(chan error, 4)
	rotate := func(id string) {
		_, err := s.RotateSession(context.Background(), rotation(id, at))
		errs <- err
	}
	go rotate("s0")
	eventually(t, "a write's turn", func() bool { return sqlstore.WriterBusy(s) })
	for _, id := range []string{"s1", "s2", "s3"} {
		go rotate(id)
	}
	eventually(t, "three rotations queued", func() bool { return sqlstore.QueuedWrites(s) == 3 })
	unlock()
	failed := 0
	for range 4 {
		if err := <-errs; err != nil {
			if errors.Is(err, fiberauth.ErrNotCurrent) || errors.Is(err, fiberauth.ErrNotFound) {
				t.Fatalf("a rotation in the failed batch: %v; want the batch's error", err)
			}
			failed++
		}
	}
	if failed != 3 {
		t.Fatalf("%d rotations failed; want the batch's 3", failed)
	}
	for _, id := range []string{"s1", "s2", "s3"} {
		if x, err := s.SessionByID(context.Background(), id); err != nil || string(x.TokenHash) != "t0" {
			t.Fatalf("family %s of the failed batch: %+v, %v; want it unchanged", id, x, err)
		}
	}
}
