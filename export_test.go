package fiberauth

// Test seams: tests reach the package's internals only through these.

// PasswordHashOps reports how many argon2 runs a has made.
func PasswordHashOps(a *Auth) int64 { return a.hasher.ops.Load() }

// CheapHashing makes New hash passwords with parameters far below OWASP's,
// so that tests not about the hasher run in milliseconds.
func CheapHashing(c *Config) { c.cheapHashing = true }

// RealHashing undoes CheapHashing, for the tests about the hasher itself.
func RealHashing(c *Config) { c.cheapHashing = false }

// WithLocalCapabilities is s with the capabilities New keeps in process
// memory for a store that lacks them (all but Cleaner, whose local part
// only forgets what the others hold), for storetest to check.
func WithLocalCapabilities(s Store) Store {
	l := newLocalState(s)
	return struct {
		Store
		CodeStore
		ChallengeStore
		AttemptStore
		TOTPStore
	}{s, l, l, l, l}
}

// StateJoins reports how many lookups of a's middleware waited for a store
// read another request had begun, instead of reading themselves.
func StateJoins(a *Auth) int64 { return a.users.joins.Load() + a.sessions.joins.Load() }
