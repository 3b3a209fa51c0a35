// Package sqlstore is a fiberauth.Store over database/sql: SQLite embedded
// (modernc.org/sqlite, pure Go) for one machine, PostgreSQL (pgx) for apps
// that run several instances against one database.
//
// The schema is in migrations/*.sql; Open and New apply what is missing.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"

	"github.com/fiberauth/fiberauth"
)

var _ fiberauth.Store = (*Store)(nil)

// Defaults of the options.
const (
	// DefaultCleanupInterval is how often expired sessions and codes are
	// deleted.
	DefaultCleanupInterval = 10 * time.Minute
	// DefaultQueryTimeout bounds each store call whose context has no
	// deadline, so an unreachable database answers 503 instead of hanging.
	DefaultQueryTimeout = 5 * time.Second
)

// sqlitePragmas are applied to every SQLite connection Open makes:
//   - WAL, so readers never wait for the writer;
//   - busy_timeout, so a writer waits for the lock instead of failing with
//     SQLITE_BUSY;
//   - synchronous=FULL, so a rotation a client has seen survives power loss
//     (NORMAL is faster but may lose the last transactions on power loss,
//     which would bring back refresh tokens already rotated);
//   - _txlock=immediate, so every transaction takes the write lock at BEGIN
//     and two writers never deadlock upgrading their locks.
const sqlitePragmas = "_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"

// Store is a fiberauth.Store on a SQL database. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	d       Dialect
	ownDB   bool
	timeout time.Duration

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Option configures a Store.
type Option func(*options) error

type options struct {
	cleanup time.Duration
	timeout time.Duration
}

// WithCleanupInterval sets how often expired records are deleted; 0 turns the
// background cleanup off (call DeleteExpired yourself).
// Optional. Default: DefaultCleanupInterval.
func WithCleanupInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return errors.New("sqlstore: negative cleanup interval")
		}
		o.cleanup = d
		return nil
	}
}

// WithQueryTimeout bounds each call whose context has no deadline.
// Optional. Default: DefaultQueryTimeout.
func WithQueryTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("sqlstore: query timeout must be positive")
		}
		o.timeout = d
		return nil
	}
}

// Open opens the database and migrates it. driver is "sqlite" (dsn: a file
// path, optionally with query parameters; fiberauth's pragmas are added) or
// "pgx" (dsn: a PostgreSQL URL or key=value string). Close closes it.
func Open(ctx context.Context, driver, dsn string, opts ...Option) (*Store, error) {
	var d Dialect
	switch driver {
	case "sqlite":
		d = SQLite
		dsn = sqliteDSN(dsn)
	case "pgx", "postgres":
		d, driver = Postgres, "pgx"
	default:
		return nil, fmt.Errorf("sqlstore: unknown driver %q (want sqlite or pgx)", driver)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: connect: %w", err)
	}
	s, err := newStore(ctx, db, d, opts)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.ownDB = true
	return s, nil
}

// sqliteDSN adds fiberauth's pragmas to a SQLite path or file: URI.
func sqliteDSN(dsn string) string {
	path, query, _ := strings.Cut(dsn, "?")
	if !strings.HasPrefix(path, "file:") {
		path = "file:" + path
	}
	if query != "" {
		return path + "?" + sqlitePragmas + "&" + query
	}
	return path + "?" + sqlitePragmas
}

// New uses a database the caller opened, and migrates it; Close leaves db
// open. For SQLite, the caller's DSN should set what Open sets (WAL,
// busy_timeout, synchronous=FULL, _txlock=immediate).
func New(db *sql.DB, d Dialect, opts ...Option) (*Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return newStore(ctx, db, d, opts)
}

func newStore(ctx context.Context, db *sql.DB, d Dialect, opts []Option) (*Store, error) {
	if d.isUnique == nil {
		return nil, errors.New("sqlstore: unknown dialect; use sqlstore.SQLite or sqlstore.Postgres")
	}
	o := options{cleanup: DefaultCleanupInterval, timeout: DefaultQueryTimeout}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := migrate(ctx, db, d); err != nil {
		return nil, err
	}
	s := &Store{db: db, d: d, timeout: o.timeout, stop: make(chan struct{}), done: make(chan struct{})}
	if o.cleanup > 0 {
		go s.cleanupLoop(o.cleanup)
	} else {
		close(s.done)
	}
	return s, nil
}

// cleanupLoop deletes expired records off the request path until Close.
func (s *Store) cleanupLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			_ = s.DeleteExpired(context.Background(), time.Now())
		}
	}
}

// Close stops the cleanup loop and, when Open opened the database, closes it.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		if s.ownDB {
			err = s.db.Close()
		}
	})
	return err
}

// DB returns the underlying database.
func (s *Store) DB() *sql.DB { return s.db }

// call bounds ctx by the query timeout unless it has a deadline.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
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

const userColumns = `id, email, username, display_name, password_hash, email_verified, mfa_enabled, roles, attributes, disabled, etag, created_at, updated_at,
	password_temporary, password_expires_at, totp_secret, recovery_codes, totp_last_step`

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

func scanUser(row *sql.Row) (fiberauth.User, error) {
	var (
		u                fiberauth.User
		username         sql.NullString
		roles, attrs, rc string
		created, updated int64
		pwExpires        int64
	)
	err := row.Scan(&u.ID, &u.Email, &username, &u.DisplayName, &u.PasswordHash, &u.EmailVerified, &u.MFAEnabled,
		&roles, &attrs, &u.Disabled, &u.ETag, &created, &updated,
		&u.PasswordTemporary, &pwExpires, &u.TOTPSecret, &rc, &u.TOTPLastStep)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fiberauth.ErrNotFound
	}
	if err != nil {
		return u, err
	}
	u.Username = username.String
	u.CreatedAt, u.UpdatedAt, u.PasswordExpiresAt = fromMicros(created), fromMicros(updated), fromMicros(pwExpires)
	if err := json.Unmarshal([]byte(rc), &u.RecoveryCodes); err != nil {
		return u, fmt.Errorf("sqlstore: recovery codes of user %s: %w", u.ID, err)
	}
	if len(u.RecoveryCodes) == 0 {
		u.RecoveryCodes = nil
	}
	if err := json.Unmarshal([]byte(roles), &u.Roles); err != nil {
		return u, fmt.Errorf("sqlstore: roles of user %s: %w", u.ID, err)
	}
	if err := json.Unmarshal([]byte(attrs), &u.Attributes); err != nil {
		return u, fmt.Errorf("sqlstore: attributes of user %s: %w", u.ID, err)
	}
	return u, nil
}

// CreateUser implements fiberauth.Store.
func (s *Store) CreateUser(ctx context.Context, u fiberauth.User) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	args, err := userArgs(&u)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO fiberauth_users (`+userColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`, append(args, u.TOTPLastStep)...)
	if s.d.isUnique(err) {
		return fiberauth.ErrConflict
	}
	return err
}

func (s *Store) userWhere(ctx context.Context, column, value string) (fiberauth.User, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	return scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM fiberauth_users WHERE `+column+` = $1`, value))
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

// UpdateUser implements fiberauth.Store: the user row, the code it spends,
// the revocations and the rotation commit together or not at all.
func (s *Store) UpdateUser(ctx context.Context, up fiberauth.UserUpdate) (fiberauth.UpdateResult, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	var res fiberauth.UpdateResult
	args, err := userArgs(&up.User)
	if err != nil {
		return res, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// $18 = '' means "whatever the etag". totp_last_step is
		// UseTOTPStep's alone.
		r, err := tx.ExecContext(ctx, `UPDATE fiberauth_users SET email = $2, username = $3, display_name = $4, password_hash = $5,
			email_verified = $6, mfa_enabled = $7, roles = $8, attributes = $9, disabled = $10, etag = $11, created_at = $12, updated_at = $13,
			password_temporary = $14, password_expires_at = $15, totp_secret = $16, recovery_codes = $17
			WHERE id = $1 AND ($18 = '' OR etag = $18)`, append(args, up.IfETag)...)
		if s.d.isUnique(err) {
			return fiberauth.ErrConflict
		}
		if err := affectedOrMissing(ctx, tx, r, err, `SELECT 1 FROM fiberauth_users WHERE id = $1`, up.User.ID); err != nil {
			return err
		}
		if c := up.UseCode; c != nil {
			r, err := tx.ExecContext(ctx, `DELETE FROM fiberauth_codes WHERE user_id = $1 AND purpose = $2 AND hash = $3 AND expires_at > $4`,
				c.UserID, c.Purpose, c.Hash, micros(up.At))
			if err := affected(r, err); err != nil {
				return err
			}
		}
		if up.RevokeSessions {
			if res.Revoked, err = revokeUser(ctx, tx, up.User.ID, up.KeepSession, up.At); err != nil {
				return err
			}
		}
		if up.Rotate != nil {
			if res.Session, err = rotateTx(ctx, tx, up.Rotate); err != nil {
				return err
			}
		}
		if up.CreateSession != nil {
			err = createSessionTx(ctx, tx, up.CreateSession)
		}
		return err
	})
	if s.d.isUnique(err) {
		return fiberauth.UpdateResult{}, fiberauth.ErrConflict
	}
	if err != nil {
		return fiberauth.UpdateResult{}, err
	}
	return res, nil
}

// affected turns "no row matched" into ErrStale.
func affected(r sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fiberauth.ErrStale
	}
	return nil
}

// affectedOrMissing is affected, telling ErrNotFound (the row is not there
// at all, by the probe query) from ErrStale (it is, but did not match).
func affectedOrMissing(ctx context.Context, q rowQuerier, r sql.Result, err error, probe string, args ...any) error {
	if err := affected(r, err); !errors.Is(err, fiberauth.ErrStale) {
		return err
	}
	var one int
	err = q.QueryRowContext(ctx, probe, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fiberauth.ErrNotFound
	}
	if err != nil {
		return err
	}
	return fiberauth.ErrStale
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func revokeUser(ctx context.Context, q querier, userID, except string, at time.Time) ([]string, error) {
	now := micros(at)
	rows, err := q.QueryContext(ctx, `UPDATE fiberauth_sessions SET revoked_at = $3
		WHERE user_id = $1 AND id <> $2 AND revoked_at = 0 AND expires_at > $3 AND absolute_expires_at > $3
		RETURNING id`, userID, except, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
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

const sessionColumns = `id, user_id, token_hash, prev_token_hash, rotated_at, replay, sliding, created_at, last_used_at, expires_at, absolute_expires_at, revoked_at, user_agent, ip`

type scanner interface{ Scan(dest ...any) error }

func scanSession(row scanner) (fiberauth.Session, error) {
	var (
		x                                         fiberauth.Session
		rotated, created, used, exp, abs, revoked int64
	)
	err := row.Scan(&x.ID, &x.UserID, &x.TokenHash, &x.PrevTokenHash, &rotated, &x.Replay, &x.Sliding,
		&created, &used, &exp, &abs, &revoked, &x.UserAgent, &x.IP)
	if errors.Is(err, sql.ErrNoRows) {
		return x, fiberauth.ErrNotFound
	}
	if err != nil {
		return x, err
	}
	x.RotatedAt, x.CreatedAt, x.LastUsedAt = fromMicros(rotated), fromMicros(created), fromMicros(used)
	x.ExpiresAt, x.AbsoluteExpiresAt, x.RevokedAt = fromMicros(exp), fromMicros(abs), fromMicros(revoked)
	return x, nil
}

// CreateSession implements fiberauth.Store.
func (s *Store) CreateSession(ctx context.Context, x fiberauth.Session) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	err := s.inTx(ctx, func(tx *sql.Tx) error { return createSessionTx(ctx, tx, &x) })
	if s.d.isUnique(err) {
		return fiberauth.ErrConflict
	}
	return err
}

func createSessionTx(ctx context.Context, tx *sql.Tx, x *fiberauth.Session) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO fiberauth_sessions (`+sessionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		x.ID, x.UserID, x.TokenHash, x.PrevTokenHash, micros(x.RotatedAt), x.Replay, x.Sliding,
		micros(x.CreatedAt), micros(x.LastUsedAt), micros(x.ExpiresAt), micros(x.AbsoluteExpiresAt), micros(x.RevokedAt),
		x.UserAgent, x.IP); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO fiberauth_refresh_tokens (hash, session_id) VALUES ($1, $2)`, x.TokenHash, x.ID)
	return err
}

// SessionByID implements fiberauth.Store.
func (s *Store) SessionByID(ctx context.Context, id string) (fiberauth.Session, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	return scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM fiberauth_sessions WHERE id = $1`, id))
}

// SessionByTokenHash implements fiberauth.Store.
func (s *Store) SessionByTokenHash(ctx context.Context, hash []byte) (fiberauth.Session, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	return scanSession(s.db.QueryRowContext(ctx, `SELECT `+prefixed("s.", sessionColumns)+`
		FROM fiberauth_refresh_tokens t JOIN fiberauth_sessions s ON s.id = t.session_id WHERE t.hash = $1`, hash))
}

func prefixed(p, columns string) string {
	return p + strings.ReplaceAll(columns, ", ", ", "+p)
}

// RotateSession implements fiberauth.Store. The rotation is one conditional
// UPDATE ("only if this is still the current token and the family is live"),
// checked by rows affected: of concurrent rotations of one token, on any
// number of instances, the database lets exactly one through.
func (s *Store) RotateSession(ctx context.Context, r fiberauth.Rotation) (fiberauth.Session, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	var out fiberauth.Session
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = rotateTx(ctx, tx, &r)
		return err
	})
	return out, err
}

func rotateTx(ctx context.Context, tx *sql.Tx, r *fiberauth.Rotation) (fiberauth.Session, error) {
	at := micros(r.At)
	row := tx.QueryRowContext(ctx, `UPDATE fiberauth_sessions
		SET prev_token_hash = $3, token_hash = $4, rotated_at = $5, replay = $6, expires_at = $7, last_used_at = $5
		WHERE id = $1 AND ($2 OR token_hash = $3) AND revoked_at = 0 AND expires_at > $5 AND absolute_expires_at > $5
		RETURNING `+sessionColumns,
		r.SessionID, r.From == nil, r.From, r.To, at, r.Replay, micros(r.ExpiresAt))
	out, err := scanSession(row)
	if errors.Is(err, fiberauth.ErrNotFound) {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM fiberauth_sessions WHERE id = $1`, r.SessionID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return out, fiberauth.ErrNotFound
		}
		if err != nil {
			return out, err
		}
		return out, fiberauth.ErrStale
	}
	if err != nil {
		return out, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO fiberauth_refresh_tokens (hash, session_id) VALUES ($1, $2)`, r.To, r.SessionID)
	return out, err
}

// RevokeSession implements fiberauth.Store.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	res, err := s.db.ExecContext(ctx, `UPDATE fiberauth_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at = 0`, id, micros(at))
	err = affectedOrMissing(ctx, s.db, res, err, `SELECT 1 FROM fiberauth_sessions WHERE id = $1`, id)
	if errors.Is(err, fiberauth.ErrStale) {
		return nil // revoked already
	}
	return err
}

// RevokeUserSessions implements fiberauth.Store.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, except string, at time.Time) ([]string, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	return revokeUser(ctx, s.db, userID, except, at)
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

// PutCode implements fiberauth.Store.
func (s *Store) PutCode(ctx context.Context, c fiberauth.Code) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	_, err := s.db.ExecContext(ctx, `INSERT INTO fiberauth_codes (user_id, purpose, hash, expires_at, attempts) VALUES ($1, $2, $3, $4, 0)
		ON CONFLICT (user_id, purpose) DO UPDATE SET hash = excluded.hash, expires_at = excluded.expires_at, attempts = 0`,
		c.UserID, c.Purpose, c.Hash, micros(c.ExpiresAt))
	return err
}

// CheckCode implements fiberauth.Store. A match is one SELECT; a miss is
// one UPDATE that counts it, so every wrong try is counted under
// concurrency.
func (s *Store) CheckCode(ctx context.Context, userID, purpose string, hash []byte, now time.Time) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	at := micros(now)
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM fiberauth_codes WHERE user_id = $1 AND purpose = $2 AND hash = $3 AND expires_at > $4`,
		userID, purpose, hash, at).Scan(&one)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	var attempts int
	err = s.db.QueryRowContext(ctx, `UPDATE fiberauth_codes SET attempts = attempts + 1
		WHERE user_id = $1 AND purpose = $2 AND expires_at > $3 RETURNING attempts`, userID, purpose, at).Scan(&attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return fiberauth.ErrNotFound
	}
	if err != nil {
		return err
	}
	if attempts >= fiberauth.CodeMaxAttempts {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM fiberauth_codes WHERE user_id = $1 AND purpose = $2 AND attempts >= $3`,
			userID, purpose, fiberauth.CodeMaxAttempts); err != nil {
			return err
		}
	}
	return fiberauth.ErrCodeMismatch
}

// Attempts implements fiberauth.Store.
func (s *Store) Attempts(ctx context.Context, key string, now time.Time) (int, time.Time, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	var n int
	var ends int64
	err := s.db.QueryRowContext(ctx, `SELECT count, ends_at FROM fiberauth_attempts WHERE name = $1 AND ends_at > $2`, key, micros(now)).Scan(&n, &ends)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	return n, fromMicros(ends), err
}

// AddAttempt implements fiberauth.Store: one upsert, atomic on both
// databases.
func (s *Store) AddAttempt(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	var n int
	var ends int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO fiberauth_attempts (name, count, ends_at) VALUES ($1, 1, $3)
		ON CONFLICT (name) DO UPDATE SET
			count   = CASE WHEN fiberauth_attempts.ends_at <= $2 THEN 1  ELSE fiberauth_attempts.count + 1 END,
			ends_at = CASE WHEN fiberauth_attempts.ends_at <= $2 THEN $3 ELSE fiberauth_attempts.ends_at END
		RETURNING count, ends_at`, key, micros(now), micros(now.Add(window))).Scan(&n, &ends)
	return n, fromMicros(ends), err
}

// ResetAttempts implements fiberauth.Store.
func (s *Store) ResetAttempts(ctx context.Context, key string) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	_, err := s.db.ExecContext(ctx, `DELETE FROM fiberauth_attempts WHERE name = $1`, key)
	return err
}

// UseTOTPStep implements fiberauth.Store: one conditional UPDATE.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	res, err := s.db.ExecContext(ctx, `UPDATE fiberauth_users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2`, userID, step)
	return affectedOrMissing(ctx, s.db, res, err, `SELECT 1 FROM fiberauth_users WHERE id = $1`, userID)
}

// CreateChallenge implements fiberauth.Store.
func (s *Store) CreateChallenge(ctx context.Context, c fiberauth.Challenge) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	_, err := s.db.ExecContext(ctx, `INSERT INTO fiberauth_challenges (hash, user_id, kind, sliding, expires_at, attempts) VALUES ($1, $2, $3, $4, $5, $6)`,
		c.Hash, c.UserID, c.Kind, c.Sliding, micros(c.ExpiresAt), c.Attempts)
	return err
}

// ChallengeByHash implements fiberauth.Store.
func (s *Store) ChallengeByHash(ctx context.Context, hash []byte, now time.Time) (fiberauth.Challenge, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	c := fiberauth.Challenge{}
	var exp int64
	err := s.db.QueryRowContext(ctx, `SELECT hash, user_id, kind, sliding, expires_at, attempts FROM fiberauth_challenges
		WHERE hash = $1 AND expires_at > $2`, hash, micros(now)).Scan(&c.Hash, &c.UserID, &c.Kind, &c.Sliding, &exp, &c.Attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fiberauth.ErrNotFound
	}
	c.ExpiresAt = fromMicros(exp)
	return c, err
}

// ConsumeChallenge implements fiberauth.Store: one DELETE, checked by rows
// affected.
func (s *Store) ConsumeChallenge(ctx context.Context, hash []byte, now time.Time) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	res, err := s.db.ExecContext(ctx, `DELETE FROM fiberauth_challenges WHERE hash = $1 AND expires_at > $2`, hash, micros(now))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	return fiberauth.ErrNotFound
}

// FailChallenge implements fiberauth.Store.
func (s *Store) FailChallenge(ctx context.Context, hash []byte) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	var attempts int
	err := s.db.QueryRowContext(ctx, `UPDATE fiberauth_challenges SET attempts = attempts + 1 WHERE hash = $1 RETURNING attempts`, hash).Scan(&attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return fiberauth.ErrNotFound
	}
	if err != nil || attempts < fiberauth.CodeMaxAttempts {
		return err
	}
	_, err = s.db.ExecContext(ctx, `DELETE FROM fiberauth_challenges WHERE hash = $1 AND attempts >= $2`, hash, fiberauth.CodeMaxAttempts)
	return err
}

// DeleteExpired implements fiberauth.Store. It runs from the cleanup loop,
// never on the request path.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	at := micros(now)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM fiberauth_refresh_tokens WHERE session_id IN
			(SELECT id FROM fiberauth_sessions WHERE expires_at <= $1 OR absolute_expires_at <= $1)`, at); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM fiberauth_sessions WHERE expires_at <= $1 OR absolute_expires_at <= $1`, at); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM fiberauth_codes WHERE expires_at <= $1`, at); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM fiberauth_challenges WHERE expires_at <= $1`, at); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM fiberauth_attempts WHERE ends_at <= $1`, at)
		return err
	})
}
