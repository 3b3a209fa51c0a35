// Package sqlstore is a fiberauth.Store over database/sql: SQLite embedded
// (modernc.org/sqlite, pure Go) for one machine, PostgreSQL (pgx) for apps
// that run several instances against one database. The drivers are in
// packages of their own, so that a program links only the one it uses:
//
//	store, err := sqlite.Open(ctx, "fiberauth.db")        // sqlstore/sqlite
//	store, err := postgres.Open(ctx, "postgres://app@db/app") // sqlstore/postgres
//
// Besides the core Store, a *Store has every optional capability: CodeStore,
// ChallengeStore, AttemptStore, TOTPStore, PasskeyStore, KeyStore, Cleaner
// and Notifier, so one-time codes, login challenges, throttling counters,
// TOTP replay protection, passkeys and generated signing keys are shared by
// every instance on the
// database and survive a restart, and every instance hears at once of a
// logout or user change made through another (notify.go: LISTEN/NOTIFY on
// PostgreSQL, a polled change log on SQLite). Its only background work is
// that listener, while an Auth subscribes; fiberauth calls DeleteExpired on
// its own schedule, with its own clock.
//
// Every method that reads and then writes does so in one transaction. On
// SQLite every transaction takes the write lock at BEGIN (Open sets
// _txlock=immediate), so such transactions take turns; on PostgreSQL they
// lock the row they read (SELECT ... FOR UPDATE) or change it with one
// conditional statement checked by rows affected.
//
// The schema is in migrations/*.sql; Open and New apply what is missing.
package sqlstore

import (
	"bytes"
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/sqlstore/internal/driver"
)

var (
	_ fiberauth.Store          = (*Store)(nil)
	_ fiberauth.CodeStore      = (*Store)(nil)
	_ fiberauth.ChallengeStore = (*Store)(nil)
	_ fiberauth.AttemptStore   = (*Store)(nil)
	_ fiberauth.TOTPStore      = (*Store)(nil)
	_ fiberauth.PasskeyStore   = (*Store)(nil)
	_ fiberauth.Cleaner        = (*Store)(nil)
	_ fiberauth.Notifier       = (*Store)(nil)

	_ fiberauth.SessionUserReader = (*Store)(nil)
)

// DefaultQueryTimeout bounds each store call whose context has no deadline,
// so an unreachable database answers 503 instead of hanging.
const DefaultQueryTimeout = 5 * time.Second

// Store is a fiberauth.Store, with every optional capability, on a SQL
// database. It is safe for concurrent use.
type Store struct {
	db        *sql.DB
	drv       *driver.Driver
	pg        bool   // PostgreSQL, else SQLite
	sql       family // what the SQL of pg or SQLite needs
	ownDB     bool
	timeout   time.Duration
	closeOnce sync.Once

	// writer, for SQLite, is the one write in progress: writes take turns
	// here rather than in SQLite's busy handler, which polls with sleeps
	// of up to 100 ms and so leaves the database idle while a burst waits.
	// Nil for PostgreSQL.
	writer    chan struct{}
	waiting   atomic.Int64 // writes queued for writer
	maxQueued int64        // how many may be (WithMaxQueuedWrites)

	stmts     prepared  // SQLite: the statements of the hot paths
	rotations rotations // SQLite: the rotations waiting for the writer

	deadlines deadlines // PostgreSQL: shared by calls that cannot end (call)

	log     *slog.Logger
	channel string        // PostgreSQL: the NOTIFY channel of changes
	poll    time.Duration // SQLite: how often the change log is polled
	subs    subscribers   // Notifier (notify.go)
}

// DefaultMaxQueuedWrites bounds the SQLite writes waiting their turn
// (WithMaxQueuedWrites); beyond it a write fails at once with
// fiberauth.ErrBusy (503 unavailable) rather than wait behind them.
const DefaultMaxQueuedWrites = 4096

// errWriteQueueFull is a write refused because too many are waiting.
var errWriteQueueFull = fmt.Errorf("sqlstore: too many writes waiting for the database: %w", fiberauth.ErrBusy)

// Option configures a Store.
type Option func(*options) error

type options struct {
	timeout   time.Duration
	poll      time.Duration
	log       *slog.Logger
	maxQueued int
}

// WithLogger receives what the change listener has to say: that it lost
// its link to the database (and what error, never a secret), and that it
// is back. Optional. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("sqlstore: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithQueryTimeout bounds each call whose context has no deadline. On
// SQLite, Open makes it the busy_timeout too, the bound of a wait for
// another process's write lock, and that is all that bounds a call whose
// context can never end (context.Background): such a call gets no deadline
// of its own there, as watching one costs database/sql and the driver a
// goroutine each per statement. Optional. Default: DefaultQueryTimeout.
func WithQueryTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("sqlstore: query timeout must be positive")
		}
		o.timeout = d
		return nil
	}
}

// WithMaxQueuedWrites bounds how many writes may wait for their turn on
// SQLite, which takes one writer at a time: a burst queues (the query
// timeout of each write starts when its turn comes, so a long queue does
// not time out), and a write beyond the bound fails at once with an error
// matching fiberauth.ErrBusy, which answers 503 unavailable with Retry-After.
// Each queued write is a request waiting, with its memory; reads do not
// queue. No effect on PostgreSQL, whose writes wait for a pool connection
// within the query timeout. Optional. Default: DefaultMaxQueuedWrites.
func WithMaxQueuedWrites(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return errors.New("sqlstore: the write queue bound must be positive")
		}
		o.maxQueued = n
		return nil
	}
}

// WithPollInterval is how often a SQLite Store looks for changes other
// processes made (fiberauth.Notifier), while an Auth listens: a cheap
// PRAGMA data_version, then a read of the change log when anything was
// committed. Optional. Default: DefaultPollInterval.
func WithPollInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("sqlstore: poll interval must be positive")
		}
		o.poll = d
		return nil
	}
}

// Open opens the database at dsn with d's driver (sqlite.Dialect: a file
// path, optionally with query parameters, to which fiberauth's pragmas are
// added; postgres.Dialect: a PostgreSQL URL or key=value string), and
// migrates it. Close closes it. sqlite.Open and postgres.Open are this with
// their Dialect.
func Open(ctx context.Context, d Dialect, dsn string, opts ...Option) (*Store, error) {
	drv, err := driverOf(d)
	if err != nil {
		return nil, err
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(drv.SQLDriver, drv.DSN(dsn, o.timeout))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open: %w", err)
	}
	db.SetMaxOpenConns(drv.MaxConns)
	db.SetMaxIdleConns(drv.MaxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: connect: %w", err)
	}
	s, err := newStore(ctx, db, drv, o)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.ownDB = true
	return s, nil
}

// New uses a database the caller opened with d's driver, and migrates it;
// Close leaves db open. For SQLite, open it with sqlite.DSN, which sets
// what Open sets (WAL, busy_timeout as long as the query timeout,
// synchronous=FULL, _txlock=immediate): without _txlock=immediate the store
// stays correct (SQLite transactions are serializable), but concurrent
// calls may fail with SQLITE_BUSY instead of waiting their turn.
func New(db *sql.DB, d Dialect, opts ...Option) (*Store, error) {
	drv, err := driverOf(d)
	if err != nil {
		return nil, err
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return newStore(ctx, db, drv, o)
}

func newOptions(opts []Option) (options, error) {
	o := options{timeout: DefaultQueryTimeout, poll: DefaultPollInterval, log: slog.Default(), maxQueued: DefaultMaxQueuedWrites}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

func newStore(ctx context.Context, db *sql.DB, drv *driver.Driver, o options) (*Store, error) {
	s := &Store{db: db, drv: drv, pg: drv.Postgres, sql: sqliteSQL, timeout: o.timeout, poll: o.poll, log: o.log, maxQueued: int64(o.maxQueued)}
	if s.pg {
		s.sql = postgresSQL
	}
	if err := migrate(ctx, db, s.sql); err != nil {
		return nil, err
	}
	if !s.pg {
		s.writer = make(chan struct{}, 1)
		s.stmts.m = map[string]*sql.Stmt{}
	} else {
		var schema string
		if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return nil, fmt.Errorf("sqlstore: current schema: %w", err)
		}
		s.channel = channelFor(schema)
	}
	return s, nil
}

// Close closes the database when Open opened it, and does nothing when New
// was given it. Closing twice is a no-op.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.stopListening()
		s.stmts.close()
		if s.ownDB {
			err = s.db.Close()
		}
	})
	return err
}

// DB returns the underlying database.
func (s *Store) DB() *sql.DB { return s.db }

// call bounds ctx by the query timeout unless it has a deadline. On SQLite
// a context that can never end (context.Background, as Fiber's handlers
// pass) is left as it is: the one wait a SQLite statement has is for
// another process's write lock, which busy_timeout bounds (Open sets it to
// the query timeout), while a context that can end costs database/sql and
// modernc.org/sqlite a goroutine each per statement, about as much as the
// statement itself on a busy machine. On PostgreSQL such a context gets a
// deadline shared with the calls that start about when it does
// (deadline.go), which costs no timer of its own.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || s.writer != nil && ctx.Done() == nil {
		return ctx, func() {}
	}
	if ctx.Done() == nil {
		return s.deadlines.bound(ctx, s.timeout), func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// write is call for a store method that writes. On SQLite it first waits
// its turn for the one writer (as long as ctx lets it, and only behind a
// bounded queue); the query timeout starts when the turn comes, so that a
// burst queues instead of timing out. done releases the turn.
func (s *Store) write(ctx context.Context) (_ context.Context, done func(), err error) {
	if s.writer != nil {
		if s.waiting.Add(1) > s.maxQueued {
			s.waiting.Add(-1)
			return nil, nil, errWriteQueueFull
		}
		select {
		case s.writer <- struct{}{}:
			s.waiting.Add(-1)
		case <-ctx.Done():
			s.waiting.Add(-1)
			return nil, nil, ctx.Err()
		}
	}
	ctx, cancel := s.call(ctx)
	return ctx, func() {
		cancel()
		if s.writer != nil {
			<-s.writer
		}
	}, nil
}

// prepared are statements prepared on the pool, by their text.
type prepared struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func (p *prepared) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, st := range p.m {
		_ = st.Close()
	}
	p.m = nil
}

// queryRow is QueryRowContext on the pool for the statements of the hot
// paths (reads of users and families, the rotation), made cheaper for each
// database:
//   - on SQLite each is prepared once per connection: modernc.org/sqlite
//     parses a statement at every call otherwise, which costs more than
//     running these;
//   - on PostgreSQL it runs through the driver's own QueryRow, on a
//     connection of the pool (rawRow): database/sql would start a goroutine
//     per query to watch its context and scan through reflection, a third
//     of a point read's time.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) scanner {
	if s.drv.QueryRow != nil {
		return rawRow{s, ctx, query, args}
	}
	if st := s.prepare(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.db.QueryRowContext(ctx, query, args...)
}

// prepare returns query prepared on the pool; nil after the Store is
// closed, or when preparing fails (running it will say why).
func (s *Store) prepare(ctx context.Context, query string) *sql.Stmt {
	p := &s.stmts
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.m[query]; st != nil {
		return st
	}
	if p.m == nil {
		return nil // closed, or not made by newStore
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	p.m[query] = st
	return st
}

// rawRow is a one-row query that Scan runs through the driver's QueryRow
// on a connection of the pool (through database/sql when the pool's driver
// is another).
type rawRow struct {
	s     *Store
	ctx   context.Context
	query string
	args  []any
}

func (r rawRow) Scan(dest ...any) error {
	conn, err := r.s.db.Conn(r.ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	handled := true
	err = conn.Raw(func(dc any) error {
		var err error
		handled, err = r.s.drv.QueryRow(r.ctx, dc, r.query, r.args, dest)
		return err
	})
	if !handled {
		return conn.QueryRowContext(r.ctx, r.query, r.args...).Scan(dest...)
	}
	return err
}

// inTx runs fn in a transaction, committed when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func nullIfEmpty(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// --- users ---

// userColumns are what a User carries. totp_last_step is not among them:
// it is UseTOTPStep's alone (CreateUser writes 0 and nothing else reads or
// writes it).
const userColumns = `id, email, username, display_name, password_hash, email_verified, mfa_enabled, roles, attributes, disabled, etag, created_at, updated_at,
	password_temporary, password_expires_at, totp_secret, recovery_codes`

func userArgs(u *fiberauth.User) ([]any, error) {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	r, err := json.Marshal(roles)
	if err != nil {
		return nil, err
	}
	attrs := u.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	a, err := json.Marshal(attrs)
	if err != nil {
		return nil, err
	}
	codes := u.RecoveryCodes
	if codes == nil {
		codes = [][]byte{}
	}
	rc, err := json.Marshal(codes)
	if err != nil {
		return nil, err
	}
	return []any{u.ID, u.Email, nullIfEmpty(u.Username), u.DisplayName, u.PasswordHash, u.EmailVerified, u.MFAEnabled,
		string(r), string(a), u.Disabled, u.ETag, micros(u.CreatedAt), micros(u.UpdatedAt),
		u.PasswordTemporary, micros(u.PasswordExpiresAt), u.TOTPSecret, string(rc)}, nil
}

func scanUser(row scanner) (fiberauth.User, error) {
	var r userRow
	if err := row.Scan(r.dest()...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = fiberauth.ErrNotFound
		}
		return fiberauth.User{}, err
	}
	return r.user()
}

// userRow is what the userColumns of a row scan into.
type userRow struct {
	u                fiberauth.User
	username         sql.NullString
	roles, attrs, rc string
	created, updated int64
	pwExpires        int64
}

func (r *userRow) dest() []any {
	u := &r.u
	return []any{&u.ID, &u.Email, &r.username, &u.DisplayName, &u.PasswordHash, &u.EmailVerified, &u.MFAEnabled,
		&r.roles, &r.attrs, &u.Disabled, &u.ETag, &r.created, &r.updated,
		&u.PasswordTemporary, &r.pwExpires, &u.TOTPSecret, &r.rc}
}

// user is the User scanned.
func (r *userRow) user() (fiberauth.User, error) {
	u := r.u
	u.Username = r.username.String
	u.CreatedAt, u.UpdatedAt, u.PasswordExpiresAt = fromMicros(r.created), fromMicros(r.updated), fromMicros(r.pwExpires)
	// The empty lists userArgs writes for most users are decoded as
	// json.Unmarshal would decode them, without it: every refresh reads a
	// user.
	if r.rc != "[]" {
		if err := json.Unmarshal([]byte(r.rc), &u.RecoveryCodes); err != nil {
			return u, fmt.Errorf("sqlstore: recovery codes of user %s: %w", u.ID, err)
		}
	}
	if len(u.RecoveryCodes) == 0 {
		u.RecoveryCodes = nil
	}
	if r.roles == "[]" {
		u.Roles = []string{}
	} else if err := json.Unmarshal([]byte(r.roles), &u.Roles); err != nil {
		return u, fmt.Errorf("sqlstore: roles of user %s: %w", u.ID, err)
	}
	if r.attrs == "{}" {
		u.Attributes = map[string]string{}
	} else if err := json.Unmarshal([]byte(r.attrs), &u.Attributes); err != nil {
		return u, fmt.Errorf("sqlstore: attributes of user %s: %w", u.ID, err)
	}
	return u, nil
}

// CreateUser implements fiberauth.Store.
func (s *Store) CreateUser(ctx context.Context, u fiberauth.User) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	args, err := userArgs(&u)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO fiberauth_users (`+userColumns+`, totp_last_step)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 0)`, args...)
	if s.drv.IsUnique(err) {
		return fiberauth.ErrConflict
	}
	return err
}

func (s *Store) userWhere(ctx context.Context, column, value string) (fiberauth.User, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	return scanUser(s.queryRow(ctx, `SELECT `+userColumns+` FROM fiberauth_users WHERE `+column+` = $1`, value))
}

// UserByID implements fiberauth.Store.
func (s *Store) UserByID(ctx context.Context, id string) (fiberauth.User, error) {
	return s.userWhere(ctx, "id", id)
}

// UserByEmail implements fiberauth.Store.
func (s *Store) UserByEmail(ctx context.Context, email string) (fiberauth.User, error) {
	return s.userWhere(ctx, "email", email)
}

// UserByUsername implements fiberauth.Store.
func (s *Store) UserByUsername(ctx context.Context, username string) (fiberauth.User, error) {
	if username == "" {
		return fiberauth.User{}, fiberauth.ErrNotFound
	}
	return s.userWhere(ctx, "username", username)
}

// UpdateUser implements fiberauth.Store: the user row, the revocations, the
// rotation and the new family commit together or not at all.
func (s *Store) UpdateUser(ctx context.Context, up fiberauth.UserUpdate) (fiberauth.UpdateResult, error) {
	return s.update(ctx, nil, &up)
}

// UseCode implements fiberauth.CodeStore: UpdateUser's transaction, opened
// by the deletion of the code. On PostgreSQL the DELETE locks the code row,
// so of concurrent calls for one code the first to delete it holds the
// others until it commits (they then find it gone) or rolls back (one of
// them then deletes it).
func (s *Store) UseCode(ctx context.Context, c fiberauth.Code, up fiberauth.UserUpdate) (fiberauth.UpdateResult, error) {
	return s.update(ctx, &c, &up)
}

// update is UpdateUser, and UseCode when c is set.
func (s *Store) update(ctx context.Context, c *fiberauth.Code, up *fiberauth.UserUpdate) (fiberauth.UpdateResult, error) {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return fiberauth.UpdateResult{}, err
	}
	defer done()
	var res fiberauth.UpdateResult
	args, err := userArgs(&up.User)
	if err != nil {
		return res, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if c != nil {
			// A code a failed check has burnt is deleted with that check;
			// attempts < max only guards against rows an older sqlstore
			// counted without deleting.
			r, err := tx.ExecContext(ctx, `DELETE FROM fiberauth_codes
				WHERE user_id = $1 AND purpose = $2 AND hash = $3 AND expires_at > $4 AND attempts < $5`,
				c.UserID, c.Purpose, c.Hash, micros(up.At), fiberauth.CodeMaxAttempts)
			if ok, err := changed(r, err); err != nil || !ok {
				return errOr(err, fiberauth.ErrCodeSpent)
			}
		}
		var err error
		if res, err = s.updateTx(ctx, tx, up, args); err != nil {
			return err
		}
		return s.announce(ctx, tx, up.At, fiberauth.Change{UserID: up.User.ID, ETag: up.User.ETag, Sessions: res.Revoked})
	})
	if s.drv.IsUnique(err) {
		return fiberauth.UpdateResult{}, fiberauth.ErrConflict
	}
	if err != nil {
		return fiberauth.UpdateResult{}, err
	}
	return res, nil
}

// updateTx is the body of UpdateUser's transaction; args are
// userArgs(&up.User).
func (s *Store) updateTx(ctx context.Context, tx *sql.Tx, up *fiberauth.UserUpdate, args []any) (fiberauth.UpdateResult, error) {
	var res fiberauth.UpdateResult
	// On PostgreSQL the UPDATE locks the row; a concurrent update read at
	// the same etag waits, then finds the etag changed and matches nothing.
	r, err := tx.ExecContext(ctx, `UPDATE fiberauth_users SET email = $2, username = $3, display_name = $4, password_hash = $5,
		email_verified = $6, mfa_enabled = $7, roles = $8, attributes = $9, disabled = $10, etag = $11, created_at = $12, updated_at = $13,
		password_temporary = $14, password_expires_at = $15, totp_secret = $16, recovery_codes = $17
		WHERE id = $1 AND etag = $18`, append(args, up.IfETag)...)
	if s.drv.IsUnique(err) {
		return res, fiberauth.ErrConflict
	}
	if err := changedOr(ctx, tx, r, err, fiberauth.ErrETagMismatch, `SELECT 1 FROM fiberauth_users WHERE id = $1`, up.User.ID); err != nil {
		return res, err
	}
	if up.RevokeSessions {
		if res.Revoked, err = revokeUser(ctx, tx, up.User.ID, up.KeepSession, up.At); err != nil {
			return res, err
		}
	}
	if up.Rotate != nil {
		// ErrNotFound would say the user is unknown: an unknown family is
		// ErrNotCurrent here, so there is nothing to probe.
		rowTx := func(query string, args ...any) scanner { return tx.QueryRowContext(ctx, query, args...) }
		if res.Session, err = rotate(*up.Rotate, rowTx); err != nil {
			return res, err
		}
	}
	if up.CreateSession != nil {
		if err := createSessionTx(ctx, tx, up.CreateSession); err != nil {
			return res, err
		}
	}
	return res, nil
}

// changed reports whether a statement changed any row.
func changed(r sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n > 0, err
}

// errOr is err, or otherwise when err is nil.
func errOr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// changedOr checks a conditional statement by rows affected: nil when it
// changed a row; otherwise ErrNotFound when probe finds no row (the record
// is not there at all), else ifPresent (it is, but did not match).
func changedOr(ctx context.Context, q rowQuerier, r sql.Result, err error, ifPresent error, probe string, args ...any) error {
	if ok, err := changed(r, err); err != nil || ok {
		return err
	}
	var one int
	err = q.QueryRowContext(ctx, probe, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fiberauth.ErrNotFound
	}
	return errOr(err, ifPresent)
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// revokeUser revokes the user's families live at at but except, and
// returns their ids (empty, not nil, when none).
func revokeUser(ctx context.Context, q querier, userID, except string, at time.Time) ([]string, error) {
	now := micros(at)
	rows, err := q.QueryContext(ctx, `UPDATE fiberauth_sessions SET revoked_at = $3
		WHERE user_id = $1 AND id <> $2 AND revoked_at = 0 AND expires_at > $3 AND absolute_expires_at > $3
		RETURNING id`, userID, except, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// --- sessions ---

const sessionColumns = `id, user_id, token_hash, generation, prev_token_hash, rotated_at, replay, sliding, created_at, last_used_at, expires_at, absolute_expires_at, revoked_at, user_agent, ip`

type scanner interface{ Scan(dest ...any) error }

func scanSession(row scanner) (fiberauth.Session, error) {
	var r sessionRow
	if err := row.Scan(r.dest()...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = fiberauth.ErrNotFound
		}
		return fiberauth.Session{}, err
	}
	return r.session(), nil
}

// sessionRow is what the sessionColumns of a row scan into.
type sessionRow struct {
	x                                         fiberauth.Session
	rotated, created, used, exp, abs, revoked int64
}

func (r *sessionRow) dest() []any {
	x := &r.x
	return []any{&x.ID, &x.UserID, &x.TokenHash, &x.Generation, &x.PrevTokenHash, &r.rotated, &x.Replay, &x.Sliding,
		&r.created, &r.used, &r.exp, &r.abs, &r.revoked, &x.UserAgent, &x.IP}
}

// session is the Session scanned.
func (r *sessionRow) session() fiberauth.Session {
	x := r.x
	x.RotatedAt, x.CreatedAt, x.LastUsedAt = fromMicros(r.rotated), fromMicros(r.created), fromMicros(r.used)
	x.ExpiresAt, x.AbsoluteExpiresAt, x.RevokedAt = fromMicros(r.exp), fromMicros(r.abs), fromMicros(r.revoked)
	return x
}

// CreateSession implements fiberauth.Store.
func (s *Store) CreateSession(ctx context.Context, x fiberauth.Session) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	err = s.inTx(ctx, func(tx *sql.Tx) error { return createSessionTx(ctx, tx, &x) })
	if s.drv.IsUnique(err) {
		return fiberauth.ErrConflict
	}
	return err
}

func createSessionTx(ctx context.Context, tx *sql.Tx, x *fiberauth.Session) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO fiberauth_sessions (`+sessionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		x.ID, x.UserID, x.TokenHash, x.Generation, x.PrevTokenHash, micros(x.RotatedAt), x.Replay, x.Sliding,
		micros(x.CreatedAt), micros(x.LastUsedAt), micros(x.ExpiresAt), micros(x.AbsoluteExpiresAt), micros(x.RevokedAt),
		x.UserAgent, x.IP)
	return err
}

// SessionByID implements fiberauth.Store.
func (s *Store) SessionByID(ctx context.Context, id string) (fiberauth.Session, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	return scanSession(s.queryRow(ctx, `SELECT `+sessionColumns+` FROM fiberauth_sessions WHERE id = $1`, id))
}

// sessionWithUserQuery reads a family and its user in one statement.
var sessionWithUserQuery = `SELECT ` + qualified("s", sessionColumns) + `, ` + qualified("u", userColumns) + `
	FROM fiberauth_sessions s JOIN fiberauth_users u ON u.id = s.user_id WHERE s.id = $1`

// qualified is a list of columns, each prefixed with table.
func qualified(table, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = table + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// SessionWithUser implements fiberauth.SessionUserReader: one statement,
// a join.
func (s *Store) SessionWithUser(ctx context.Context, id string) (fiberauth.Session, fiberauth.User, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	var (
		sr sessionRow
		ur userRow
	)
	if err := s.queryRow(ctx, sessionWithUserQuery, id).Scan(append(sr.dest(), ur.dest()...)...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = fiberauth.ErrNotFound
		}
		return fiberauth.Session{}, fiberauth.User{}, err
	}
	u, err := ur.user()
	if err != nil {
		return fiberauth.Session{}, fiberauth.User{}, err
	}
	return sr.session(), u, nil
}

// RotateSession implements fiberauth.Store. The rotation is one conditional
// UPDATE ("only if this is still the current token and the family is live"),
// checked by the row it returns: of concurrent rotations of one token, on
// any number of instances, the database lets exactly one through. It is one
// statement in its own transaction (no BEGIN or COMMIT: on PostgreSQL one
// round trip, where a transaction around it took three), which is atomic by
// itself; it announces nothing (a rotation leaves the caches of other
// instances right). Only when it rotates nothing does a second statement
// look whether the family exists at all. On SQLite, rotations that queue
// for the writer at once commit together (rotateSQLite).
func (s *Store) RotateSession(ctx context.Context, r fiberauth.Rotation) (fiberauth.Session, error) {
	if s.writer != nil {
		return s.rotateSQLite(ctx, r)
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	return rotateProbed(r, func(query string, args ...any) scanner { return s.queryRow(ctx, query, args...) })
}

// rotateProbed is rotate, then, when it rotated nothing, a look whether the
// family exists at all: ErrNotFound when it does not.
func rotateProbed(r fiberauth.Rotation, row func(query string, args ...any) scanner) (fiberauth.Session, error) {
	out, err := rotate(r, row)
	if !errors.Is(err, fiberauth.ErrNotCurrent) {
		return out, err
	}
	return out, probeFamily(r.SessionID, row)
}

// rotate rotates r in one statement, run by row (on the pool, or in a
// transaction); ErrNotCurrent when the family does not qualify or does not
// exist. The row comes back with only the columns the rotation leaves as
// they were: the others are r's, as written (copies, and the times as
// stored), which spares sending back the sealed replay and the hashes.
func rotate(r fiberauth.Rotation, row func(query string, args ...any) scanner) (fiberauth.Session, error) {
	return rotateRow(r, row, rotationUpdate, nil)
}

// rotationUpdate is RotateSession's statement: $1 the family, $2 From, $3 To, $4
// At, $5 Replay, $6 ExpiresAt, $7 Generation.
var rotationUpdate = `UPDATE fiberauth_sessions ` + rotationSet + ` WHERE ` + rotationWhere("") + ` RETURNING ` + rotationKept

const (
	rotationSet = `SET prev_token_hash = $2, token_hash = $3, generation = $7, rotated_at = $4, replay = $5, expires_at = $6, last_used_at = $4`
	// rotationKept are the columns a rotation leaves as they were.
	rotationKept = `id, user_id, sliding, created_at, absolute_expires_at, revoked_at, user_agent, ip`
)

// rotationWhere is the condition of a rotation, on the columns of table t
// ("" for unqualified).
func rotationWhere(t string) string {
	if t != "" {
		t += "."
	}
	return t + `id = $1 AND ` + t + `token_hash = $2 AND ` + t + `revoked_at = 0 AND ` + t + `expires_at > $4 AND ` + t + `absolute_expires_at > $4`
}

// rotateRow runs query, a rotation of r ($1–$7 as in rotationUpdate, then
// extraArgs) that returns rotationKept and then the columns scanned into
// extra, and builds the rotated family from what it returns and from r: the
// columns the rotation sets are r's, as written (copies, and the times as
// stored), which spares sending back the sealed replay and the hashes.
// ErrNotCurrent when it rotated nothing.
func rotateRow(r fiberauth.Rotation, row func(query string, args ...any) scanner, query string, extraArgs []any, extra ...any) (fiberauth.Session, error) {
	at := micros(r.At)
	var sr sessionRow
	x := &sr.x
	args := append([]any{r.SessionID, r.From, r.To, at, r.Replay, micros(r.ExpiresAt), r.Generation}, extraArgs...)
	dest := append([]any{&x.ID, &x.UserID, &x.Sliding, &sr.created, &sr.abs, &sr.revoked, &x.UserAgent, &x.IP}, extra...)
	err := row(query, args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return fiberauth.Session{}, fiberauth.ErrNotCurrent
	}
	if err != nil {
		return fiberauth.Session{}, err
	}
	x.PrevTokenHash, x.TokenHash, x.Replay = bytes.Clone(r.From), bytes.Clone(r.To), bytes.Clone(r.Replay)
	x.Generation = r.Generation
	sr.rotated, sr.used, sr.exp = at, at, micros(r.ExpiresAt)
	return sr.session(), nil
}

// RevokeSession implements fiberauth.Store.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	change := fiberauth.Change{Sessions: []string{id}}
	if payloads, err := encodeChange(change); err == nil && len(payloads) == 1 && s.pg {
		// One statement (its own transaction): the revocation, and its
		// notice only when it revoked.
		res, err := s.db.ExecContext(ctx, `WITH r AS (UPDATE fiberauth_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at = 0 RETURNING id)
			SELECT pg_notify($3, $4) FROM r`, id, micros(at), s.channel, payloads[0])
		// Present but not changed: revoked already, which is a no-op.
		return changedOr(ctx, s.db, res, err, nil, `SELECT 1 FROM fiberauth_sessions WHERE id = $1`, id)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE fiberauth_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at = 0`, id, micros(at))
		if ok, err := changed(res, err); err != nil || ok {
			return errOr(err, s.announce(ctx, tx, at, change))
		}
		// Present but not changed: revoked already, which is a no-op.
		return changedOr(ctx, tx, res, nil, nil, `SELECT 1 FROM fiberauth_sessions WHERE id = $1`, id)
	})
}

// RevokeUserSessions implements fiberauth.Store.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, except string, at time.Time) ([]string, error) {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var ids []string
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if ids, err = revokeUser(ctx, tx, userID, except, at); err != nil || len(ids) == 0 {
			return err
		}
		return s.announce(ctx, tx, at, fiberauth.Change{Sessions: ids})
	})
	return ids, err
}

// ListSessions implements fiberauth.Store.
func (s *Store) ListSessions(ctx context.Context, userID string, now time.Time) ([]fiberauth.Session, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionColumns+` FROM fiberauth_sessions
		WHERE user_id = $1 AND revoked_at = 0 AND expires_at > $2 AND absolute_expires_at > $2
		ORDER BY created_at, id`, userID, micros(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	list := []fiberauth.Session{}
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, x)
	}
	return list, rows.Err()
}

// --- codes ---

// PutCode implements fiberauth.CodeStore.
func (s *Store) PutCode(ctx context.Context, c fiberauth.Code) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	_, err = s.db.ExecContext(ctx, `INSERT INTO fiberauth_codes (user_id, purpose, hash, expires_at, attempts) VALUES ($1, $2, $3, $4, 0)
		ON CONFLICT (user_id, purpose) DO UPDATE SET hash = excluded.hash, expires_at = excluded.expires_at, attempts = 0`,
		c.UserID, c.Purpose, c.Hash, micros(c.ExpiresAt))
	return err
}

// CheckCode implements fiberauth.CodeStore in one transaction: it reads the
// code (on PostgreSQL locking its row; on SQLite the transaction holds the
// write lock from BEGIN), compares, and on a mismatch counts it, deleting
// the code with the failure that burns it. Checks of one code take turns,
// so each wrong one is counted once and none sees a burnt code.
func (s *Store) CheckCode(ctx context.Context, userID, purpose string, hash []byte, now time.Time) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	var verdict error
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var (
			stored   []byte
			attempts int
		)
		// attempts < max only hides rows an older sqlstore counted without
		// deleting; this one deletes a code with the failure that burns it.
		err := tx.QueryRowContext(ctx, `SELECT hash, attempts FROM fiberauth_codes
			WHERE user_id = $1 AND purpose = $2 AND expires_at > $3 AND attempts < $4`+s.sql.forUpdate,
			userID, purpose, micros(now), fiberauth.CodeMaxAttempts).Scan(&stored, &attempts)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			verdict = fiberauth.ErrNotFound
			return nil
		case err != nil:
			return err
		case subtle.ConstantTimeCompare(stored, hash) == 1:
			return nil
		}
		verdict = fiberauth.ErrCodeMismatch
		if attempts+1 >= fiberauth.CodeMaxAttempts {
			_, err = tx.ExecContext(ctx, `DELETE FROM fiberauth_codes WHERE user_id = $1 AND purpose = $2`, userID, purpose)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE fiberauth_codes SET attempts = attempts + 1 WHERE user_id = $1 AND purpose = $2`, userID, purpose)
		}
		return err
	})
	return errOr(err, verdict)
}

// --- attempts ---

// ReserveAttempt implements fiberauth.AttemptStore: one conditional
// upsert, atomic on both databases. It counts an attempt in the open window
// (or opens one) only while the window holds fewer than limit; a refusal
// then reads when the full window ends.
func (s *Store) ReserveAttempt(ctx context.Context, key string, limit int, now time.Time, window time.Duration) (bool, time.Time, error) {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return false, time.Time{}, err
	}
	defer done()
	var ends int64
	err = s.db.QueryRowContext(ctx, `INSERT INTO fiberauth_attempts (name, count, ends_at) VALUES ($1, 1, $3)
		ON CONFLICT (name) DO UPDATE SET
			count   = CASE WHEN fiberauth_attempts.ends_at <= $2 THEN 1  ELSE fiberauth_attempts.count + 1 END,
			ends_at = CASE WHEN fiberauth_attempts.ends_at <= $2 THEN $3 ELSE fiberauth_attempts.ends_at END
		WHERE fiberauth_attempts.ends_at <= $2 OR fiberauth_attempts.count < $4
		RETURNING ends_at`, key, micros(now), micros(now.Add(window)), limit).Scan(&ends)
	if err == nil {
		return true, fromMicros(ends), nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, time.Time{}, err
	}
	err = s.db.QueryRowContext(ctx, `SELECT ends_at FROM fiberauth_attempts WHERE name = $1`, key).Scan(&ends)
	if errors.Is(err, sql.ErrNoRows) {
		// Reset between the two statements: the window is gone; come back
		// at once.
		return false, now, nil
	}
	return false, fromMicros(ends), err
}

// ReleaseAttempt implements fiberauth.AttemptStore: one conditional
// UPDATE.
func (s *Store) ReleaseAttempt(ctx context.Context, key string, now time.Time) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	_, err = s.db.ExecContext(ctx, `UPDATE fiberauth_attempts SET count = count - 1 WHERE name = $1 AND ends_at > $2 AND count > 0`,
		key, micros(now))
	return err
}

// ResetAttempts implements fiberauth.AttemptStore.
func (s *Store) ResetAttempts(ctx context.Context, key string) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	_, err = s.db.ExecContext(ctx, `DELETE FROM fiberauth_attempts WHERE name = $1`, key)
	return err
}

// --- TOTP ---

// UseTOTPStep implements fiberauth.TOTPStore: one conditional UPDATE.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	res, err := s.db.ExecContext(ctx, `UPDATE fiberauth_users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2`, userID, step)
	return changedOr(ctx, s.db, res, err, fiberauth.ErrStepUsed, `SELECT 1 FROM fiberauth_users WHERE id = $1`, userID)
}

// --- challenges ---

// CreateChallenge implements fiberauth.ChallengeStore.
func (s *Store) CreateChallenge(ctx context.Context, c fiberauth.Challenge) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	_, err = s.db.ExecContext(ctx, `INSERT INTO fiberauth_challenges (hash, user_id, kind, sliding, expires_at, attempts, etag) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		c.Hash, c.UserID, c.Kind, c.Sliding, micros(c.ExpiresAt), c.Attempts, c.ETag)
	return err
}

// ChallengeByHash implements fiberauth.ChallengeStore.
func (s *Store) ChallengeByHash(ctx context.Context, hash []byte, now time.Time) (fiberauth.Challenge, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	c := fiberauth.Challenge{}
	var exp int64
	err := s.db.QueryRowContext(ctx, `SELECT hash, user_id, kind, sliding, expires_at, attempts, etag FROM fiberauth_challenges
		WHERE hash = $1 AND expires_at > $2`, hash, micros(now)).Scan(&c.Hash, &c.UserID, &c.Kind, &c.Sliding, &exp, &c.Attempts, &c.ETag)
	if errors.Is(err, sql.ErrNoRows) {
		return fiberauth.Challenge{}, fiberauth.ErrNotFound
	}
	if err != nil {
		return fiberauth.Challenge{}, err
	}
	c.ExpiresAt = fromMicros(exp)
	return c, nil
}

// ConsumeChallenge implements fiberauth.ChallengeStore: one DELETE, checked
// by rows affected.
func (s *Store) ConsumeChallenge(ctx context.Context, hash []byte, now time.Time) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	res, err := s.db.ExecContext(ctx, `DELETE FROM fiberauth_challenges WHERE hash = $1 AND expires_at > $2`, hash, micros(now))
	if ok, err := changed(res, err); err != nil || ok {
		return err
	}
	return fiberauth.ErrNotFound
}

// FailChallenge implements fiberauth.ChallengeStore in one transaction: the
// UPDATE that counts the failure locks the row (on SQLite the transaction
// holds the write lock from BEGIN), and the failure that burns the
// challenge deletes it before the lock goes. A concurrent call waits, then
// counts on the new value or finds the row gone.
func (s *Store) FailChallenge(ctx context.Context, hash []byte) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var attempts int
		err := tx.QueryRowContext(ctx, `UPDATE fiberauth_challenges SET attempts = attempts + 1 WHERE hash = $1 RETURNING attempts`, hash).Scan(&attempts)
		if errors.Is(err, sql.ErrNoRows) {
			return fiberauth.ErrNotFound
		}
		if err != nil || attempts < fiberauth.CodeMaxAttempts {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM fiberauth_challenges WHERE hash = $1`, hash)
		return err
	})
}

// --- cleanup ---

// DeleteExpired implements fiberauth.Cleaner. fiberauth calls it on its own
// schedule, off the request path; it deletes in one transaction.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	at := micros(now)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM fiberauth_sessions WHERE expires_at <= $1 OR absolute_expires_at <= $1`, at); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM fiberauth_codes WHERE expires_at <= $1`, at); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM fiberauth_challenges WHERE expires_at <= $1`, at); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM fiberauth_attempts WHERE ends_at <= $1`, at); err != nil {
			return err
		}
		// The newest change stays, so that the next one's seq follows it.
		_, err := tx.ExecContext(ctx, `DELETE FROM fiberauth_changes
			WHERE at <= $1 AND seq < (SELECT MAX(seq) FROM fiberauth_changes)`, micros(now.Add(-changeRetention)))
		return err
	})
}
