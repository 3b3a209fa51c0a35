package fiberauth

// Test seams: tests reach the package's internals only through these.

// PasswordHashOps reports how many argon2 runs a has made.
func PasswordHashOps(a *Auth) int64 { return a.hasher.ops.Load() }

// HashSlots is how many password hashes a runs at once
// (Config.HashConcurrency).
func HashSlots(a *Auth) int { return cap(a.hasher.slots) }

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
		KeyStore
	}{s, l, l, l, l, l}
}

// SigningKeyDER is k's private key in PKCS#8 DER, for tests that look for
// it where it must not be.
func SigningKeyDER(k *SigningKey) []byte {
	der, err := k.marshalPrivate()
	if err != nil {
		panic(err)
	}
	return der
}

// CurrentSigningKey is the key a signs with at its Now (nil with HS256).
func CurrentSigningKey(a *Auth) *SigningKey {
	if a.tokens.ring == nil {
		return nil
	}
	k, _ := a.tokens.ring.signing(a.now())
	return k
}

// StateJoins reports how many lookups of a's middleware waited for a store
// read another request had begun, instead of reading themselves.
func StateJoins(a *Auth) int64 { return a.users.joins.Load() + a.sessions.joins.Load() }

// OpenAPIFor is the OpenAPI document of every endpoint, as a Mount in
// cookie mode or not at prefix would serve it if it mounted them all.
func OpenAPIFor(prefix string, cookie bool) ([]byte, error) { return openAPIFor(prefix, cookie, nil) }
