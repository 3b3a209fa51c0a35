// Package memstore is an in-memory fiberauth.Store for tests, demos and
// single-process apps that can lose their users at restart.
package memstore

import (
	"bytes"
	"context"
	"crypto/subtle"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/fiberauth/fiberauth"
)

var _ fiberauth.Store = (*Store)(nil)

// Store is a fiberauth.Store held in maps behind one mutex. The zero value is
// not usable; call New.
type Store struct {
	mu         sync.Mutex
	users      map[string]*fiberauth.User // by id
	byEmail    map[string]string          // email → id
	byUsername map[string]string          // username → id
	sessions   map[string]*fiberauth.Session
	byToken    map[string]string // refresh token hash → family id, every hash a family held
	codes      map[codeKey]*fiberauth.Code
	challenges map[string]*fiberauth.Challenge // by hash
	attempts   map[string]*window
	creates    int // sessions created, to sweep expired ones now and then
}

// sweepEvery is how many session creations pass between two sweeps of
// expired records, so a long-running process does not grow without bound.
const sweepEvery = 1024

type codeKey struct{ userID, purpose string }

// window is one throttling window.
type window struct {
	count int
	ends  time.Time
}

// New returns an empty Store.
func New() *Store {
	return &Store{
		users:      map[string]*fiberauth.User{},
		byEmail:    map[string]string{},
		byUsername: map[string]string{},
		sessions:   map[string]*fiberauth.Session{},
		byToken:    map[string]string{},
		codes:      map[codeKey]*fiberauth.Code{},
		challenges: map[string]*fiberauth.Challenge{},
		attempts:   map[string]*window{},
	}
}

func copyUser(u *fiberauth.User) fiberauth.User {
	c := *u
	c.Roles = slices.Clone(u.Roles)
	c.Attributes = maps.Clone(u.Attributes)
	c.TOTPSecret = bytes.Clone(u.TOTPSecret)
	c.RecoveryCodes = make([][]byte, len(u.RecoveryCodes))
	for i, h := range u.RecoveryCodes {
		c.RecoveryCodes[i] = bytes.Clone(h)
	}
	if u.RecoveryCodes == nil {
		c.RecoveryCodes = nil
	}
	return c
}

func copySession(s *fiberauth.Session) fiberauth.Session {
	c := *s
	c.TokenHash = bytes.Clone(s.TokenHash)
	c.PrevTokenHash = bytes.Clone(s.PrevTokenHash)
	c.Replay = bytes.Clone(s.Replay)
	return c
}

// CreateUser implements fiberauth.Store.
func (m *Store) CreateUser(_ context.Context, u fiberauth.User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[u.ID]; ok {
		return fiberauth.ErrConflict
	}
	if m.taken(u.ID, u.Email, u.Username) {
		return fiberauth.ErrConflict
	}
	c := copyUser(&u)
	m.users[u.ID] = &c
	m.index(&c)
	return nil
}

// taken reports whether email or username belongs to a user other than id.
func (m *Store) taken(id, email, username string) bool {
	if other, ok := m.byEmail[email]; ok && other != id {
		return true
	}
	if username == "" {
		return false
	}
	other, ok := m.byUsername[username]
	return ok && other != id
}

func (m *Store) index(u *fiberauth.User) {
	m.byEmail[u.Email] = u.ID
	if u.Username != "" {
		m.byUsername[u.Username] = u.ID
	}
}

func (m *Store) userBy(index map[string]string, key string) (fiberauth.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := index[key]
	if !ok {
		return fiberauth.User{}, fiberauth.ErrNotFound
	}
	return copyUser(m.users[id]), nil
}

// UserByID implements fiberauth.Store.
func (m *Store) UserByID(_ context.Context, id string) (fiberauth.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[id]
	if !ok {
		return fiberauth.User{}, fiberauth.ErrNotFound
	}
	return copyUser(u), nil
}

// UserByEmail implements fiberauth.Store.
func (m *Store) UserByEmail(_ context.Context, email string) (fiberauth.User, error) {
	return m.userBy(m.byEmail, email)
}

// UserByUsername implements fiberauth.Store.
func (m *Store) UserByUsername(_ context.Context, username string) (fiberauth.User, error) {
	if username == "" {
		return fiberauth.User{}, fiberauth.ErrNotFound
	}
	return m.userBy(m.byUsername, username)
}

// UpdateUser implements fiberauth.Store: every condition is checked before
// anything is written, all under the one lock.
func (m *Store) UpdateUser(_ context.Context, up fiberauth.UserUpdate) (fiberauth.UpdateResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var res fiberauth.UpdateResult
	old, ok := m.users[up.User.ID]
	if !ok {
		return res, fiberauth.ErrNotFound
	}
	if up.IfETag != "" && old.ETag != up.IfETag {
		return res, fiberauth.ErrStale
	}
	if m.taken(old.ID, up.User.Email, up.User.Username) {
		return res, fiberauth.ErrConflict
	}
	var code codeKey
	if uc := up.UseCode; uc != nil {
		code = codeKey{uc.UserID, uc.Purpose}
		c, ok := m.codes[code]
		if !ok || !up.At.Before(c.ExpiresAt) || subtle.ConstantTimeCompare(c.Hash, uc.Hash) != 1 {
			return res, fiberauth.ErrStale
		}
	}
	if up.Rotate != nil {
		if err := m.canRotate(up.Rotate); err != nil {
			return res, err
		}
	}
	if up.CreateSession != nil {
		if _, ok := m.sessions[up.CreateSession.ID]; ok {
			return res, fiberauth.ErrConflict
		}
	}
	// All checks passed: write.
	delete(m.byEmail, old.Email)
	delete(m.byUsername, old.Username)
	c := copyUser(&up.User)
	c.TOTPLastStep = old.TOTPLastStep
	m.users[c.ID] = &c
	m.index(&c)
	if up.UseCode != nil {
		delete(m.codes, code)
	}
	if up.RevokeSessions {
		res.Revoked = m.revokeUser(c.ID, up.KeepSession, up.At)
	}
	if up.Rotate != nil {
		res.Session = m.rotate(up.Rotate)
	}
	if up.CreateSession != nil {
		m.createSession(up.CreateSession)
	}
	return res, nil
}

// CreateSession implements fiberauth.Store.
func (m *Store) CreateSession(_ context.Context, s fiberauth.Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[s.ID]; ok {
		return fiberauth.ErrConflict
	}
	m.createSession(&s)
	return nil
}

func (m *Store) createSession(s *fiberauth.Session) {
	c := copySession(s)
	m.sessions[s.ID] = &c
	m.byToken[string(s.TokenHash)] = s.ID
	if m.creates++; m.creates%sweepEvery == 0 {
		m.deleteExpired(s.CreatedAt)
	}
}

// SessionByID implements fiberauth.Store.
func (m *Store) SessionByID(_ context.Context, id string) (fiberauth.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return fiberauth.Session{}, fiberauth.ErrNotFound
	}
	return copySession(s), nil
}

// SessionByTokenHash implements fiberauth.Store.
func (m *Store) SessionByTokenHash(_ context.Context, hash []byte) (fiberauth.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[m.byToken[string(hash)]]
	if !ok {
		return fiberauth.Session{}, fiberauth.ErrNotFound
	}
	return copySession(s), nil
}

// RotateSession implements fiberauth.Store.
func (m *Store) RotateSession(_ context.Context, r fiberauth.Rotation) (fiberauth.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.canRotate(&r); err != nil {
		return fiberauth.Session{}, err
	}
	return m.rotate(&r), nil
}

func (m *Store) canRotate(r *fiberauth.Rotation) error {
	s, ok := m.sessions[r.SessionID]
	if !ok {
		return fiberauth.ErrNotFound
	}
	if !s.Live(r.At) || (r.From != nil && subtle.ConstantTimeCompare(s.TokenHash, r.From) != 1) {
		return fiberauth.ErrStale
	}
	return nil
}

func (m *Store) rotate(r *fiberauth.Rotation) fiberauth.Session {
	s := m.sessions[r.SessionID]
	s.PrevTokenHash = bytes.Clone(r.From)
	s.TokenHash = bytes.Clone(r.To)
	s.RotatedAt = r.At
	s.Replay = bytes.Clone(r.Replay)
	s.ExpiresAt = r.ExpiresAt
	s.LastUsedAt = r.At
	m.byToken[string(r.To)] = s.ID
	return copySession(s)
}

// RevokeSession implements fiberauth.Store.
func (m *Store) RevokeSession(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return fiberauth.ErrNotFound
	}
	if s.RevokedAt.IsZero() {
		s.RevokedAt = at
	}
	return nil
}

// RevokeUserSessions implements fiberauth.Store.
func (m *Store) RevokeUserSessions(_ context.Context, userID, except string, at time.Time) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.revokeUser(userID, except, at), nil
}

func (m *Store) revokeUser(userID, except string, at time.Time) []string {
	var ids []string
	for _, s := range m.sessions {
		if s.UserID == userID && s.ID != except && s.Live(at) {
			s.RevokedAt = at
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// ListSessions implements fiberauth.Store.
func (m *Store) ListSessions(_ context.Context, userID string, now time.Time) ([]fiberauth.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	list := []fiberauth.Session{}
	for _, s := range m.sessions {
		if s.UserID == userID && s.Live(now) {
			list = append(list, copySession(s))
		}
	}
	slices.SortFunc(list, func(a, b fiberauth.Session) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a.ID), []byte(b.ID))
	})
	return list, nil
}

// PutCode implements fiberauth.Store.
func (m *Store) PutCode(_ context.Context, c fiberauth.Code) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cc := c
	cc.Hash = bytes.Clone(c.Hash)
	m.codes[codeKey{c.UserID, c.Purpose}] = &cc
	return nil
}

// CheckCode implements fiberauth.Store.
func (m *Store) CheckCode(_ context.Context, userID, purpose string, hash []byte, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := codeKey{userID, purpose}
	c, ok := m.codes[k]
	if !ok || !now.Before(c.ExpiresAt) {
		return fiberauth.ErrNotFound
	}
	if subtle.ConstantTimeCompare(c.Hash, hash) == 1 {
		return nil
	}
	c.Attempts++
	if c.Attempts >= fiberauth.CodeMaxAttempts {
		delete(m.codes, k)
	}
	return fiberauth.ErrCodeMismatch
}

// Attempts implements fiberauth.Store.
func (m *Store) Attempts(_ context.Context, key string, now time.Time) (int, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.attempts[key]
	if !ok || !now.Before(w.ends) {
		return 0, time.Time{}, nil
	}
	return w.count, w.ends, nil
}

// AddAttempt implements fiberauth.Store.
func (m *Store) AddAttempt(_ context.Context, key string, now time.Time, d time.Duration) (int, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.attempts[key]
	if !ok || !now.Before(w.ends) {
		w = &window{ends: now.Add(d)}
		m.attempts[key] = w
	}
	w.count++
	return w.count, w.ends, nil
}

// ResetAttempts implements fiberauth.Store.
func (m *Store) ResetAttempts(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.attempts, key)
	return nil
}

// UseTOTPStep implements fiberauth.Store.
func (m *Store) UseTOTPStep(_ context.Context, userID string, step int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[userID]
	if !ok {
		return fiberauth.ErrNotFound
	}
	if step <= u.TOTPLastStep {
		return fiberauth.ErrStale
	}
	u.TOTPLastStep = step
	return nil
}

// CreateChallenge implements fiberauth.Store.
func (m *Store) CreateChallenge(_ context.Context, c fiberauth.Challenge) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cc := c
	cc.Hash = bytes.Clone(c.Hash)
	m.challenges[string(c.Hash)] = &cc
	return nil
}

// ChallengeByHash implements fiberauth.Store.
func (m *Store) ChallengeByHash(_ context.Context, hash []byte, now time.Time) (fiberauth.Challenge, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.challenges[string(hash)]
	if !ok || !now.Before(c.ExpiresAt) {
		return fiberauth.Challenge{}, fiberauth.ErrNotFound
	}
	cc := *c
	cc.Hash = bytes.Clone(c.Hash)
	return cc, nil
}

// ConsumeChallenge implements fiberauth.Store.
func (m *Store) ConsumeChallenge(_ context.Context, hash []byte, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.challenges[string(hash)]
	if !ok || !now.Before(c.ExpiresAt) {
		return fiberauth.ErrNotFound
	}
	delete(m.challenges, string(hash))
	return nil
}

// FailChallenge implements fiberauth.Store.
func (m *Store) FailChallenge(_ context.Context, hash []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.challenges[string(hash)]
	if !ok {
		return fiberauth.ErrNotFound
	}
	if c.Attempts++; c.Attempts >= fiberauth.CodeMaxAttempts {
		delete(m.challenges, string(hash))
	}
	return nil
}

// DeleteExpired implements fiberauth.Store.
func (m *Store) DeleteExpired(_ context.Context, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleteExpired(now)
	return nil
}

func (m *Store) deleteExpired(now time.Time) {
	for id, s := range m.sessions {
		if !now.Before(s.ExpiresAt) || !now.Before(s.AbsoluteExpiresAt) {
			delete(m.sessions, id)
		}
	}
	for h, id := range m.byToken {
		if _, ok := m.sessions[id]; !ok {
			delete(m.byToken, h)
		}
	}
	for k, c := range m.codes {
		if !now.Before(c.ExpiresAt) {
			delete(m.codes, k)
		}
	}
	for k, c := range m.challenges {
		if !now.Before(c.ExpiresAt) {
			delete(m.challenges, k)
		}
	}
	for k, w := range m.attempts {
		if !now.Before(w.ends) {
			delete(m.attempts, k)
		}
	}
}
