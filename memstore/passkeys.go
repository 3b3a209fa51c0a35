package memstore

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/fiberauth/fiberauth"
)

// The users' passkeys (fiberauth.PasskeyStore), by credential id.

func copyPasskey(p *fiberauth.Passkey) fiberauth.Passkey {
	c := *p
	c.ID, c.PublicKey, c.AAGUID = bytes.Clone(p.ID), bytes.Clone(p.PublicKey), bytes.Clone(p.AAGUID)
	c.Transports = slices.Clone(p.Transports)
	return c
}

// AddPasskey implements fiberauth.PasskeyStore.
func (m *Store) AddPasskey(_ context.Context, p fiberauth.Passkey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[p.UserID]; !ok {
		return fiberauth.ErrNotFound
	}
	if _, taken := m.passkeys[string(p.ID)]; taken {
		return fiberauth.ErrConflict
	}
	c := copyPasskey(&p)
	m.passkeys[string(p.ID)] = &c
	return nil
}

// PasskeyByID implements fiberauth.PasskeyStore.
func (m *Store) PasskeyByID(_ context.Context, id []byte) (fiberauth.Passkey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.passkeys[string(id)]
	if !ok {
		return fiberauth.Passkey{}, fiberauth.ErrNotFound
	}
	return copyPasskey(p), nil
}

// PasskeysOf implements fiberauth.PasskeyStore.
func (m *Store) PasskeysOf(_ context.Context, userID string) ([]fiberauth.Passkey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []fiberauth.Passkey{}
	for _, p := range m.passkeys {
		if p.UserID == userID {
			out = append(out, copyPasskey(p))
		}
	}
	slices.SortFunc(out, func(a, b fiberauth.Passkey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(string(a.ID), string(b.ID))
	})
	return out, nil
}

// UsePasskey implements fiberauth.PasskeyStore.
func (m *Store) UsePasskey(_ context.Context, id []byte, count uint32, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.passkeys[string(id)]
	if !ok {
		return fiberauth.ErrNotFound
	}
	if count <= p.SignCount && (count != 0 || p.SignCount != 0) {
		return fiberauth.ErrNotCurrent
	}
	p.SignCount, p.LastUsedAt = count, at
	return nil
}

// RenamePasskey implements fiberauth.PasskeyStore.
func (m *Store) RenamePasskey(_ context.Context, userID string, id []byte, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.passkeys[string(id)]
	if !ok || p.UserID != userID {
		return fiberauth.ErrNotFound
	}
	p.Name = name
	return nil
}

// DeletePasskey implements fiberauth.PasskeyStore.
func (m *Store) DeletePasskey(_ context.Context, userID string, id []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.passkeys[string(id)]
	if !ok || p.UserID != userID {
		return fiberauth.ErrNotFound
	}
	delete(m.passkeys, string(id))
	return nil
}
