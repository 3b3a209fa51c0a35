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

// The user's JSON columns are decoded in Go after the statement has
// written, too late to refuse: so the statement itself requires them to be
// JSON of the kind userRow decodes (an array, an object, an array), and a
// row another program spoiled fails the statement (not JSON) or is left
// to the refresh that reads first (not of that kind), writing nothing
// either way, as that read would (TestRefreshOfSpoiledUser). Only JSON of
// the right kind with members of another (roles of numbers) would still
// fail after the write.

// rotateIfUserPostgres rotates and returns the family with its user in one
// statement: the rotation's UPDATE joined with the user, $8, at its etag,
// $9.
var rotateIfUserPostgres = `UPDATE fiberauth_sessions s ` + rotationSet + ` FROM fiberauth_users u
	WHERE ` + rotationWhere("s") + ` AND s.user_id = $8 AND u.id = $8 AND u.etag = $9 AND NOT u.disabled
		AND json_typeof(u.roles::json) = 'array' AND json_typeof(u.attributes::json) = 'object' AND json_typeof(u.recovery_codes::json) = 'array'
	RETURNING ` + qualified("s", rotationKept) + `, ` + qualified("u", userColumns)

// rotateIfUserSQLite is rotateIfUserPostgres on SQLite, which allows no
// other table in RETURNING but through a subquery: the user's condition is
// one, and each of its columns is one.
var rotateIfUserSQLite = `UPDATE fiberauth_sessions ` + rotationSet + `
	WHERE ` + rotationWhere("") + ` AND user_id = $8 AND EXISTS (SELECT 1 FROM fiberauth_users WHERE id = $8 AND etag = $9 AND NOT disabled
		AND json_type(roles) = 'array' AND json_type(attributes) = 'object' AND json_type(recovery_codes) = 'array')
	RETURNING ` + rotationKept + `, ` + userSubqueries()

// userSubqueries is userColumns, each read by a subquery of the user $8.
func userSubqueries() string {
	cols := strings.Split(userColumns, ",")
	for i, c := range cols {
		c = strings.TrimSpace(c)
		// Named, or the driver builds each column's name from the whole
		// subquery on every call.
		cols[i] = "(SELECT " + c + " FROM fiberauth_users WHERE id = $8) AS user_" + c
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
	rotateChecked(x, s.pg, func(query string, args ...any) scanner { return s.queryRow(ctx, query, args...) })
	return x.out, x.user, x.err
}

// rotateChecked does x, a rotation with a user check, by row, and sets its
// answer: ErrNotCurrent when it rotated nothing but the family exists,
// ErrNotFound when it does not.
func rotateChecked(x *rotation, postgres bool, row func(query string, args ...any) scanner) {
	query := rotateIfUserSQLite
	if postgres {
		query = rotateIfUserPostgres
	}
	var ur userRow
	x.out, x.err = rotateRow(x.r, row, query, []any{x.check.userID, x.check.etag}, ur.dest()...)
	switch {
	case errors.Is(x.err, fiberauth.ErrNotCurrent):
		x.err = probeFamily(x.r.SessionID, row)
	case x.err == nil:
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
