package sqlstore

// Test seams: the external tests reach the package's internals only through
// these.

// SQLiteDSN is the DSN Open uses for a SQLite path (fiberauth's pragmas
// added), for tests that open the database themselves and hand it to New.
func SQLiteDSN(path string) string { return sqliteDSN(path, DefaultQueryTimeout) }

// DialectOf is the dialect s speaks.
func DialectOf(s *Store) Dialect { return s.d }

// MaxConns is the pool bound Open sets for s's database.
func MaxConns(s *Store) int {
	if s.d.name == SQLite.name {
		return sqliteMaxConns
	}
	return postgresMaxConns
}

// QueuedWrites is how many writes wait for their turn on s (SQLite).
func QueuedWrites(s *Store) int64 { return s.waiting.Load() }

// WriterBusy reports whether a write has the turn on s (SQLite).
func WriterBusy(s *Store) bool { return len(s.writer) == 1 }
