package memstore_test

import (
	"testing"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
	"github.com/fiberauth/fiberauth/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) fiberauth.Store { return memstore.New() })
}
