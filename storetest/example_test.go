package storetest_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
	"github.com/fiberauth/fiberauth/storetest"
)

// auditedStore is a store of a host's own: here, memstore with every
// session revocation written to an audit log. It has the core Store and,
// through the embedded memstore, every optional capability.
type auditedStore struct {
	*memstore.Store
	audit *slog.Logger
}

func (s auditedStore) RevokeSession(ctx context.Context, id string, at time.Time) error {
	s.audit.Info("session revoked", "session_id", id)
	return s.Store.RevokeSession(ctx, id, at)
}

// A store of your own passes the conformance suite in its tests: Run
// checks every promise of the Store contract, and of each optional
// capability the store has, on a fresh store per subtest.
func ExampleRun() {
	// In the store's package, a test:
	//
	//	func TestStore(t *testing.T) {
	//		storetest.Run(t, func(t *testing.T) fiberauth.Store {
	//			return auditedStore{memstore.New(), slog.New(slog.DiscardHandler)}
	//		})
	//	}
	//
	// TestAuditedStore below is that test. A store then goes into
	// fiberauth.Config.Store like memstore or sqlstore.
	_ = fiberauth.Config{Store: auditedStore{memstore.New(), slog.Default()}}
}

func TestAuditedStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) fiberauth.Store {
		return auditedStore{memstore.New(), slog.New(slog.DiscardHandler)}
	})
}
