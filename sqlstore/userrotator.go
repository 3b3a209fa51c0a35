package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/fiberauth/fiberauth"
)

var _ fiberauth.UserRotator = (*Store)(nil)

// userCheck is RotateSessionIfUser's condition on the family's user.
type userCheck struct {
	userID, etag string
}

// rotateIfUserSet and rotateIfUserWhere are RotateSession's UPDATE (see
// rotate) with the user's condition: $8 the user, $9 its etag.
const (
	rotateIfUserSet = `UPDATE fiberauth_sessions
		SET prev_token_hash = $2, token_hash = $3, generation = $7, rotated_at = $4, replay = $5, expires_at = $6, last_used_at = $4`
	rotateIfUserWhere = `
		WHERE id = $1 AND token_hash = $2 AND revoked_at = 0 AND expires_at > $4 AND absolute_expires_at > $4
		AND user_id = $8 AND EXISTS (SELECT 1 FROM fiberauth_users WHERE id = $8 AND etag = $9 AND NOT disabled)`
)

// rotateIfUserPostgres rotates and returns the family with its user in one
// statement: the UPDATE in a WITH, joined with the user.
var rotateIfUserPostgres = `WITH r AS (` + rotateIfUserSet + rotateIfUserWhere + `
		RETURNING ` + sessionColumns + `)
	SELECT ` + qualified("r", sessionColumns) + `, ` + qualified("u", userColumns) + `
	FROM r JOIN fiberauth_users u ON u.id = r.user_id`

// rotateIfUserSQLite rotates and returns the family and its user in one
// statement: SQLite allows no UPDATE in a WITH, nor another table in
// RETURNING but through a subquery, so each user column is one.
var rotateIfUserSQLite = rotateIfUserSet + rotateIfUserWhere + `
		RETURNING ` + sessionColumns + `, ` + userSubqueries()

// userSubqueries is userColumns, each read by a subquery of the user $8.
func userSubqueries() string {
	cols := strings.Split(userColumns, ",")
	for i, c := range cols {
		cols[i] = "(SELECT " + strings.TrimSpace(c) + " FROM fiberauth_users WHERE id = $8)"
	}
	return strings.Join(cols, ", ")
}

// RotateSessionIfUser implements fiberauth.UserRotator: RotateSession whose
// UPDATE also requires the user (one more condition in the same
// statement, so the check and the rotation are one atomic step), and
// returns the user too. On SQLite it joins the rotations waiting for the
// writer (rotateSQLite).
func (s *Store) RotateSessionIfUser(ctx context.Context, r fiberauth.Rotation, userID, etag string) (fiberauth.Session, fiberauth.User, error) {
	check := &userCheck{userID: userID, etag: etag}
	if s.writer != nil {
		x, err := s.queueRotation(ctx, &rotation{r: r, check: check})
		return x.out, x.user, err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	x := &rotation{r: r, check: check}
	rotateChecked(x, s.d.name == Postgres.name, func(query string, args ...any) scanner { return s.queryRow(ctx, query, args...) })
	return x.out, x.user, x.err
}

// rotateChecked does x, a rotation with a user check, by row, and sets its
// answer: ErrNotCurrent when it rotated nothing but the family exists,
// ErrNotFound when it does not.
func rotateChecked(x *rotation, postgres bool, row func(query string, args ...any) scanner) {
	r := &x.r
	query := rotateIfUserSQLite
	if postgres {
		query = rotateIfUserPostgres
	}
	var (
		sr sessionRow
		ur userRow
	)
	err := row(query, r.SessionID, r.From, r.To, micros(r.At), r.Replay, micros(r.ExpiresAt), r.Generation, x.check.userID, x.check.etag).
		Scan(append(sr.dest(), ur.dest()...)...)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		x.err = probeFamily(r.SessionID, row)
	case err != nil:
		x.err = err
	default:
		x.out = sr.session()
		x.user, x.err = ur.user()
	}
}

// probeFamily is the answer to a rotation that rotated nothing:
// ErrNotFound if the family does not exist, else ErrNotCurrent.
func probeFamily(id string, row func(query string, args ...any) scanner) error {
	var one int
	err := row(`SELECT 1 FROM fiberauth_sessions WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fiberauth.ErrNotFound
	}
	return errOr(err, fiberauth.ErrNotCurrent)
}
