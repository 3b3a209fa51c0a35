package memstore

import (
	"bytes"
	"context"
	"slices"

	"github.com/fiberauth/fiberauth"
)

var _ fiberauth.KeyStore = (*Store)(nil)

// AddSigningKey implements fiberauth.KeyStore.
func (m *Store) AddSigningKey(_ context.Context, k fiberauth.StoredSigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var last int64
	if n := len(m.keys); n > 0 {
		last = m.keys[n-1].Generation
	}
	if k.Generation != last+1 || slices.ContainsFunc(m.keys, func(s fiberauth.StoredSigningKey) bool { return s.ID == k.ID }) {
		return fiberauth.ErrConflict
	}
	m.keys = append(m.keys, copyKey(k))
	return nil
}

// SigningKeys implements fiberauth.KeyStore.
func (m *Store) SigningKeys(context.Context) ([]fiberauth.StoredSigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copyKeys(m.keys), nil
}

// DeleteSigningKey implements fiberauth.KeyStore.
func (m *Store) DeleteSigningKey(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = slices.DeleteFunc(m.keys, func(s fiberauth.StoredSigningKey) bool { return s.ID == id })
	return nil
}

func copyKey(k fiberauth.StoredSigningKey) fiberauth.StoredSigningKey {
	k.Sealed = bytes.Clone(k.Sealed)
	return k
}

// copyKeys is a copy of keys: never nil.
func copyKeys(keys []fiberauth.StoredSigningKey) []fiberauth.StoredSigningKey {
	out := make([]fiberauth.StoredSigningKey, 0, len(keys))
	for _, k := range keys {
		out = append(out, copyKey(k))
	}
	return out
}
