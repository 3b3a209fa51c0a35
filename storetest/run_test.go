package storetest_test

import (
	"testing"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
	"github.com/fiberauth/fiberauth/storetest"
)

// Run tests a store with only some capabilities on those alone, and a
// Faulty that fails nothing is a conforming store.
func TestRunPartialStores(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(m *memstore.Store) fiberauth.Store
	}{
		{"core only", func(m *memstore.Store) fiberauth.Store {
			return struct{ fiberauth.Store }{m}
		}},
		{"codes and cleaner", func(m *memstore.Store) fiberauth.Store {
			return struct {
				fiberauth.Store
				fiberauth.CodeStore
				fiberauth.Cleaner
			}{m, m, m}
		}},
		{"challenges, attempts and TOTP", func(m *memstore.Store) fiberauth.Store {
			return struct {
				fiberauth.Store
				fiberauth.ChallengeStore
				fiberauth.AttemptStore
				fiberauth.TOTPStore
			}{m, m, m, m}
		}},
		{"Faulty", func(m *memstore.Store) fiberauth.Store { return storetest.NewFaulty(m) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(*testing.T) fiberauth.Store { return tc.wrap(memstore.New()) })
		})
	}
}
