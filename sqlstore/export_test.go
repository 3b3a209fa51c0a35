package sqlstore

// Test seams: the external tests reach the package's internals only through
// these.

// DialectName is the name of the dialect s speaks ("sqlite", "postgres").
func DialectName(s *Store) string { return s.drv.Name }

// MaxConns is the pool bound Open sets for s's database.
func MaxConns(s *Store) int { return s.drv.MaxConns }

// QueuedWrites is how many writes wait for their turn on s (SQLite).
func QueuedWrites(s *Store) int64 { return s.waiting.Load() }

// WriterBusy reports whether a write has the turn on s (SQLite).
func WriterBusy(s *Store) bool { return len(s.writer) == 1 }
