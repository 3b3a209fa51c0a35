package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fiberauth/fiberauth"
)

// The users' passkeys (fiberauth.PasskeyStore): fiberauth_passkeys.

const passkeyColumns = `id, user_id, public_key, sign_count, transports, aaguid, backup_eligible, backup_state, attestation_type, name, created_at, last_used_at`

func scanPasskey(row scanner) (fiberauth.Passkey, error) {
	var (
		p                   fiberauth.Passkey
		count               int64
		transports          string
		created, lastUsedAt int64
	)
	err := row.Scan(&p.ID, &p.UserID, &p.PublicKey, &count, &transports, &p.AAGUID, &p.BackupEligible, &p.BackupState,
		&p.AttestationType, &p.Name, &created, &lastUsedAt)
	if err != nil {
		return fiberauth.Passkey{}, err
	}
	p.SignCount = uint32(count)
	if transports != "" {
		p.Transports = strings.Split(transports, ",")
	}
	p.CreatedAt, p.LastUsedAt = fromMicros(created), fromMicros(lastUsedAt)
	return p, nil
}

// AddPasskey implements fiberauth.PasskeyStore.
func (s *Store) AddPasskey(ctx context.Context, p fiberauth.Passkey) error {
	for _, t := range p.Transports {
		if strings.Contains(t, ",") {
			return fmt.Errorf("sqlstore: a passkey transport with a comma: %q", t)
		}
	}
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	aaguid := p.AAGUID
	if aaguid == nil {
		aaguid = []byte{}
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM fiberauth_users WHERE id = $1`, p.UserID).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fiberauth.ErrNotFound
			}
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO fiberauth_passkeys (`+passkeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			p.ID, p.UserID, p.PublicKey, int64(p.SignCount), strings.Join(p.Transports, ","), aaguid, p.BackupEligible, p.BackupState,
			p.AttestationType, p.Name, micros(p.CreatedAt), micros(p.LastUsedAt))
		return err
	})
	if s.drv.IsUnique(err) {
		return fiberauth.ErrConflict
	}
	return err
}

// PasskeyByID implements fiberauth.PasskeyStore.
func (s *Store) PasskeyByID(ctx context.Context, id []byte) (fiberauth.Passkey, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	p, err := scanPasskey(s.db.QueryRowContext(ctx, `SELECT `+passkeyColumns+` FROM fiberauth_passkeys WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return fiberauth.Passkey{}, fiberauth.ErrNotFound
	}
	return p, err
}

// PasskeysOf implements fiberauth.PasskeyStore.
func (s *Store) PasskeysOf(ctx context.Context, userID string) ([]fiberauth.Passkey, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT `+passkeyColumns+` FROM fiberauth_passkeys WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []fiberauth.Passkey{}
	for rows.Next() {
		p, err := scanPasskey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// UsePasskey implements fiberauth.PasskeyStore: one conditional UPDATE.
func (s *Store) UsePasskey(ctx context.Context, id []byte, count uint32, at time.Time) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	res, err := s.db.ExecContext(ctx, `UPDATE fiberauth_passkeys SET sign_count = $2, last_used_at = $3
		WHERE id = $1 AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))`, id, int64(count), micros(at))
	return changedOr(ctx, s.db, res, err, fiberauth.ErrNotCurrent, `SELECT 1 FROM fiberauth_passkeys WHERE id = $1`, id)
}

// RenamePasskey implements fiberauth.PasskeyStore.
func (s *Store) RenamePasskey(ctx context.Context, userID string, id []byte, name string) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	return foundOne(s.db.ExecContext(ctx, `UPDATE fiberauth_passkeys SET name = $3 WHERE id = $2 AND user_id = $1`, userID, id, name))
}

// DeletePasskey implements fiberauth.PasskeyStore.
func (s *Store) DeletePasskey(ctx context.Context, userID string, id []byte) error {
	ctx, done, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer done()
	return foundOne(s.db.ExecContext(ctx, `DELETE FROM fiberauth_passkeys WHERE id = $2 AND user_id = $1`, userID, id))
}

// foundOne is ErrNotFound for a statement that changed no row.
func foundOne(r sql.Result, err error) error {
	ok, err := changed(r, err)
	if err == nil && !ok {
		return fiberauth.ErrNotFound
	}
	return err
}
