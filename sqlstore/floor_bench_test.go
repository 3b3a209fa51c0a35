package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/sqlstore"
)

// BenchmarkRefreshVsFloor sets POST /auth/refresh against the floor of the
// database under it, in one run. The floor is one durable write
// transaction: a single-row UPDATE of the sessions table in its own
// (implicit) transaction, of the same columns and sizes a rotation writes,
// prepared, through the same pool and settings (SQLite: WAL,
// synchronous=FULL; PostgreSQL: whatever the server has, so measure
// against one with fsync on and synchronous_commit on). floor-tx is the
// same UPDATE between BEGIN and COMMIT, as a transaction is often written:
// a second reference, not the floor. With 8 clients, 8 goroutines each
// refresh a chain of their own, or update a row of their own; on SQLite
// the floor's writers take turns on a mutex, the best a process can do
// (SQLite's busy handler would sleep), and each commits alone.
//
// The sides alternate in blocks of refreshOps operations, so that the
// noise of a shared machine falls on all of them; each sub-benchmark
// reports refreshes/s, floor/s and floor-tx/s, the ratios of refreshes/s
// to them (ratio: the target, ≥ 0.7), and as ns/op the refresh's wall time
// per refresh, all clients together.
//
//	FIBERAUTH_TEST_POSTGRES_DSN=postgres://…(fsync on) \
//	  go test -run '^$' -bench RefreshVsFloor -benchtime 2048x -count 6 ./sqlstore | tee bench/refresh.txt
//	benchstat bench/refresh.txt
func BenchmarkRefreshVsFloor(b *testing.B) {
	for _, st := range benchStores() {
		if st.name == "memory" {
			continue
		}
		for _, clients := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/clients=%d", st.name, clients), func(b *testing.B) {
				benchRefreshVsFloor(b, st.open(b).(*sqlstore.Store), clients)
			})
		}
	}
}

// refreshOps is how many operations of one side a block has.
const refreshOps = 64

func benchRefreshVsFloor(b *testing.B, store *sqlstore.Store, clients int) {
	// The production pool bounds (the test helper sets its own).
	store.DB().SetMaxOpenConns(sqlstore.MaxConns(store))
	in := newBenchInstance(b, store)
	h := in.app.Handler()
	ctx := context.Background()
	chains := make([]string, clients)
	var sid string
	for i := range chains {
		_, chains[i] = in.benchLogin(b)
		// One refresh, for a rotation's sizes.
		chains[i] = benchRefresh(b, h, chains[i])
		sid, _, _ = strings.Cut(chains[i], ".")
	}
	s, err := store.SessionByID(ctx, sid)
	if err != nil {
		b.Fatal(err)
	}
	floor := newFloor(b, store, &s, clients)

	// The sides, in the order of even blocks (odd blocks run them in
	// reverse), and the time each took.
	sides := []func(c int){
		func(c int) { chains[c] = benchRefresh(b, h, chains[c]) },
		floor.write,
		floor.writeTx,
	}
	took := make([]time.Duration, len(sides))
	b.ResetTimer()
	for done, block := 0, 0; done < b.N; block++ {
		k := min(refreshOps, b.N-done)
		for i := range sides {
			if block%2 == 1 {
				i = len(sides) - 1 - i
			}
			took[i] += inParallel(clients, k, sides[i])
		}
		done += k
		if b.Failed() {
			b.FailNow()
		}
	}
	b.StopTimer()
	n := float64(b.N)
	refresh, floorTime, floorTx := took[0].Seconds(), took[1].Seconds(), took[2].Seconds()
	b.ReportMetric(refresh*1e9/n, "ns/op")
	b.ReportMetric(n/refresh, "refreshes/s")
	b.ReportMetric(n/floorTime, "floor/s")
	b.ReportMetric(floorTime/refresh, "ratio")
	b.ReportMetric(n/floorTx, "floor-tx/s")
	b.ReportMetric(floorTx/refresh, "ratio-tx")
}

// inParallel runs n calls of op spread over clients goroutines (op gets the
// goroutine's index) and returns the wall time they took.
func inParallel(clients, n int, op func(c int)) time.Duration {
	start := time.Now()
	if clients == 1 {
		for range n {
			op(0)
		}
		return time.Since(start)
	}
	var wg sync.WaitGroup
	for c := range clients {
		share := n / clients
		if c < n%clients {
			share++
		}
		wg.Go(func() {
			for range share {
				op(c)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// benchRefresh is one refresh of token through h, which answers the next
// token (token itself after an error, which fails b).
func benchRefresh(b *testing.B, h fasthttp.RequestHandler, token string) string {
	body, _ := json.Marshal(map[string]string{"refresh_token": token})
	status, out := serve(h, "POST", "/auth/refresh", body)
	var r struct {
		Refresh string `json:"refresh_token"`
	}
	if err := json.Unmarshal(out, &r); status != 200 || err != nil {
		b.Errorf("refresh: %d %s", status, out)
		return token
	}
	return r.Refresh
}

// floor is the durable write a refresh is measured against: per client, a
// family of its own whose row it updates as a rotation would.
type floor struct {
	b      *testing.B
	store  *sqlstore.Store
	ids    []string
	replay []byte
	hashes int
	stmt   *sql.Stmt
	mu     *sync.Mutex // SQLite: the writers take turns
}

func newFloor(b *testing.B, store *sqlstore.Store, like *fiberauth.Session, clients int) *floor {
	f := &floor{b: b, store: store, replay: make([]byte, len(like.Replay)), hashes: len(like.TokenHash)}
	if sqlstore.DialectName(store) == "sqlite" {
		f.mu = new(sync.Mutex)
	}
	rand.Read(f.replay)
	// Prepared, as sqlstore prepares the rotation (pgx would anyway).
	var err error
	f.stmt, err = store.DB().Prepare(`UPDATE fiberauth_sessions
		SET prev_token_hash = token_hash, token_hash = $2, generation = generation + 1, rotated_at = $3, replay = $4, expires_at = $5, last_used_at = $3
		WHERE id = $1`)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.stmt.Close() })
	for range clients {
		x := *like
		x.ID = rand.Text()
		if err := store.CreateSession(context.Background(), x); err != nil {
			b.Fatal(err)
		}
		f.ids = append(f.ids, x.ID)
	}
	return f
}

// write is the floor: the UPDATE alone, its own transaction.
func (f *floor) write(c int) { f.update(c, false) }

// writeTx is the same UPDATE between BEGIN and COMMIT, as a transaction
// is often written (on PostgreSQL three round trips instead of one).
func (f *floor) writeTx(c int) { f.update(c, true) }

func (f *floor) update(c int, inTx bool) {
	hash := make([]byte, f.hashes)
	rand.Read(hash)
	now := time.Now()
	if f.mu != nil {
		f.mu.Lock()
		defer f.mu.Unlock()
	}
	ctx := context.Background()
	args := []any{f.ids[c], hash, now.UnixMicro(), f.replay, now.Add(time.Hour).UnixMicro()}
	if !inTx {
		if _, err := f.stmt.ExecContext(ctx, args...); err != nil {
			f.b.Error(err)
		}
		return
	}
	tx, err := f.store.DB().BeginTx(ctx, nil)
	if err != nil {
		f.b.Error(err)
		return
	}
	if _, err := tx.StmtContext(ctx, f.stmt).ExecContext(ctx, args...); err != nil {
		f.b.Error(err)
		_ = tx.Rollback()
		return
	}
	if err := tx.Commit(); err != nil {
		f.b.Error(err)
	}
}
