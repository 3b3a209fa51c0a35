package sqlstore

import (
	"context"
	"database/sql"

	"github.com/fiberauth/fiberauth"
)

var _ fiberauth.KeyStore = (*Store)(nil)

// AddSigningKey implements fiberauth.KeyStore in one transaction: it reads
// the greatest generation and inserts the key only when its generation
// follows it. Two instances adding the same generation at once cannot both
// succeed: the generation is the primary key (and on SQLite the
// transaction holds the write lock from BEGIN).
func (s *Store) AddSigningKey(ctx context.Context, k fiberauth.StoredSigningKey) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(generation), 0) FROM fiberauth_signing_keys`).Scan(&last); err != nil {
			return err
		}
		if k.Generation != last+1 {
			return fiberauth.ErrConflict
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO fiberauth_signing_keys (generation, id, algorithm, sealed, created_at, not_before)
			VALUES ($1, $2, $3, $4, $5, $6)`, k.Generation, k.ID, k.Algorithm, k.Sealed, micros(k.CreatedAt), micros(k.NotBefore))
		return err
	})
	if err != nil && s.drv.IsUnique(err) {
		return fiberauth.ErrConflict
	}
	return err
}

// SigningKeys implements fiberauth.KeyStore.
func (s *Store) SigningKeys(ctx context.Context) ([]fiberauth.StoredSigningKey, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT generation, id, algorithm, sealed, created_at, not_before
		FROM fiberauth_signing_keys ORDER BY generation`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []fiberauth.StoredSigningKey{}
	for rows.Next() {
		var k fiberauth.StoredSigningKey
		var created, notBefore int64
		if err := rows.Scan(&k.Generation, &k.ID, &k.Algorithm, &k.Sealed, &created, &notBefore); err != nil {
			return nil, err
		}
		k.CreatedAt, k.NotBefore = fromMicros(created), fromMicros(notBefore)
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeleteSigningKey implements fiberauth.KeyStore.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	_, err = s.db.ExecContext(ctx, `DELETE FROM fiberauth_signing_keys WHERE id = $1`, id)
	return err
}
