package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrations holds the schema, one file per version: NNNN_name.sql.
//
//go:embed migrations/*.sql
var migrations embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, f := range files {
		base := strings.TrimPrefix(f, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("sqlstore: migration %s is not named NNNN_name.sql", base)
		}
		body, err := migrations.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies every migration not applied yet, each in its own
// transaction. On PostgreSQL an advisory lock makes processes that open the
// database at once take turns; on SQLite each transaction holds the write
// lock. Applying twice is a no-op.
func migrate(ctx context.Context, db *sql.DB, d family) (err error) {
	list, err := loadMigrations()
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer conn.Close()
	if d.lock != "" {
		if _, err := conn.ExecContext(ctx, d.lock); err != nil {
			return fmt.Errorf("sqlstore: migration lock: %w", err)
		}
		defer func() {
			// A fresh context: the lock must go even when ctx has ended.
			if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), d.unlock); uerr != nil && err == nil {
				err = fmt.Errorf("sqlstore: migration unlock: %w", uerr)
			}
		}()
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS fiberauth_schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at BIGINT  NOT NULL
	)`); err != nil {
		return fmt.Errorf("sqlstore: migrations table: %w", err)
	}
	for _, m := range list {
		if err := apply(ctx, conn, m); err != nil {
			return err
		}
	}
	return nil
}

func apply(ctx context.Context, conn *sql.Conn, m migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// Claim the version first: the transaction starts with a write, so on
	// SQLite it holds the write lock from its first statement.
	res, err := tx.ExecContext(ctx, `INSERT INTO fiberauth_schema_migrations (version, applied_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		m.version, time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err // applied before
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	return nil
}
