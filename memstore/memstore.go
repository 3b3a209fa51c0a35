// Package memstore is an in-memory fiberauth.Store for tests, demos and
// single-process apps that can lose their users at restart.
//
// It offers every optional capability (CodeStore, ChallengeStore,
// AttemptStore, TOTPStore, KeyStore, Cleaner and Notifier), all in the same
// maps behind one mutex, and is the reference implementation of the
// contract that storetest checks.
package memstore

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/internal/attempts"
)

var (
	_ fiberauth.Store          = (*Store)(nil)
	_ fiberauth.CodeStore      = (*Store)(nil)
	_ fiberauth.ChallengeStore = (*Store)(nil)
	_ fiberauth.AttemptStore   = (*Store)(nil)
	_ fiberauth.TOTPStore      = (*Store)(nil)
	_ fiberauth.PasskeyStore   = (*Store)(nil)
	_ fiberauth.Cleaner        = (*Store)(nil)
	_ fiberauth.Notifier       = (*Store)(nil)

	_ fiberauth.SessionUserReader = (*Store)(nil)
	_ fiberauth.UserRotator       = (*Store)(nil)
)

// Store keeps everything in maps behind one mutex, so that every method,
// however many records it touches, is one atomic step. The zero value is
// not usable; call New.
//
// Nothing expires by itself: fiberauth calls DeleteExpired every
// Config.CleanupInterval.
type Store struct {
	mu         sync.Mutex
	users      map[string]*fiberauth.User // by id
	byEmail    map[string]string          // email → id
	byUsername map[string]string          // username → id
	// totpSteps is the last TOTP step accepted per user id. It lives apart
	// from users because UpdateUser replaces the whole record and must not
	// reset it.
	totpSteps  map[string]int64
	sessions   map[string]*fiberauth.Session
	codes      map[codeKey]*fiberauth.Code
	challenges map[string]*fiberauth.Challenge // by hash
	// attempts are the throttling windows, at most attempts.DefaultMaxKeys
	// of them: their keys are chosen by whoever sends requests.
	attempts *attempts.Windows
	// keys are the generated signing keys, by generation (keys.go).
	keys []fiberauth.StoredSigningKey
	// passkeys are the users' passkeys by credential id (passkeys.go).
	passkeys map[string]*fiberauth.Passkey

	subs subscribers // Notifier
}

type codeKey struct{ userID, purpose string }

// New returns an empty Store.
func New() *Store {
	return &Store{
		users:      map[string]*fiberauth.User{},
		byEmail:    map[string]string{},
		byUsername: map[string]string{},
		totpSteps:  map[string]int64{},
		sessions:   map[string]*fiberauth.Session{},
		codes:      map[codeKey]*fiberauth.Code{},
		challenges: map[string]*fiberauth.Challenge{},
		attempts:   attempts.New(attempts.DefaultMaxKeys),
		passkeys:   map[string]*fiberauth.Passkey{},
	}
}

// Clone returns a deep copy of the store: for tests that start many cases
// from one prepared state.
func (m *Store) Clone() *Store {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := New()
	for id, u := range m.users {
		cu := copyUser(u)
		c.users[id] = &cu
	}
	maps.Copy(c.byEmail, m.byEmail)
	maps.Copy(c.byUsername, m.byUsername)
	maps.Copy(c.totpSteps, m.totpSteps)
	for id, s := range m.sessions {
		cs := copySession(s)
		c.sessions[id] = &cs
	}
	for k, code := range m.codes {
		cc := copyCode(code)
		c.codes[k] = &cc
	}
	for k, ch := range m.challenges {
		cc := copyChallenge(ch)
		c.challenges[k] = &cc
	}
	c.attempts = m.attempts.Clone()
	c.keys = copyKeys(m.keys)
	for id, p := range m.passkeys {
		cp := copyPasskey(p)
		c.passkeys[id] = &cp
	}
	return c
}

func copyUser(u *fiberauth.User) fiberauth.User {
	c := *u
	c.Roles = slices.Clone(u.Roles)
	c.Attributes = maps.Clone(u.Attributes)
	c.TOTPSecret = bytes.Clone(u.TOTPSecret)
	if u.RecoveryCodes != nil {
		c.RecoveryCodes = make([][]byte, len(u.RecoveryCodes))
		for i, h := range u.RecoveryCodes {
			c.RecoveryCodes[i] = bytes.Clone(h)
		}
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

func copyCode(c *fiberauth.Code) fiberauth.Code {
	cc := *c
	cc.Hash = bytes.Clone(c.Hash)
	return cc
}

func copyChallenge(c *fiberauth.Challenge) fiberauth.Challenge {
	cc := *c
	cc.Hash = bytes.Clone(c.Hash)
	return cc
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

// UpdateUser implements fiberauth.Store.
func (m *Store) UpdateUser(_ context.Context, up fiberauth.UserUpdate) (fiberauth.UpdateResult, error) {
	m.mu.Lock()
	res, err := m.update(&up)
	m.mu.Unlock()
	if err == nil {
		m.subs.updated(&up, &res)
	}
	return res, err
}

// update is UpdateUser with m.mu held, shared with UseCode so that both
// apply a change the same way. Every condition is checked before anything
// is written, so a refusal leaves the store as it was.
func (m *Store) update(up *fiberauth.UserUpdate) (fiberauth.UpdateResult, error) {
	var res fiberauth.UpdateResult
	old, ok := m.users[up.User.ID]
	if !ok {
		return res, fiberauth.ErrNotFound
	}
	if old.ETag != up.IfETag {
		return res, fiberauth.ErrETagMismatch
	}
	if m.taken(old.ID, up.User.Email, up.User.Username) {
		return res, fiberauth.ErrConflict
	}
	if r := up.Rotate; r != nil {
		// Inside an update an unknown family is one more way of not being
		// current: the change was planned around a token that is gone. The
		// parts apply in order, so a family this update revokes is not live
		// by the time it would rotate.
		s, ok := m.sessions[r.SessionID]
		revoked := up.RevokeSessions && ok && s.UserID == old.ID && s.ID != up.KeepSession
		if !ok || revoked || !current(s, r.From, r.At) {
			return res, fiberauth.ErrNotCurrent
		}
	}
	if up.CreateSession != nil {
		if _, ok := m.sessions[up.CreateSession.ID]; ok {
			return res, fiberauth.ErrConflict
		}
	}

	// Every check passed: write.
	delete(m.byEmail, old.Email)
	delete(m.byUsername, old.Username)
	c := copyUser(&up.User)
	m.users[c.ID] = &c
	m.index(&c)
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

// SessionWithUser implements fiberauth.SessionUserReader.
func (m *Store) SessionWithUser(_ context.Context, id string) (fiberauth.Session, fiberauth.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return fiberauth.Session{}, fiberauth.User{}, fiberauth.ErrNotFound
	}
	u, ok := m.users[s.UserID]
	if !ok {
		return fiberauth.Session{}, fiberauth.User{}, fiberauth.ErrNotFound
	}
	return copySession(s), copyUser(u), nil
}

// RotateSession implements fiberauth.Store.
func (m *Store) RotateSession(_ context.Context, r fiberauth.Rotation) (fiberauth.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[r.SessionID]
	if !ok {
		return fiberauth.Session{}, fiberauth.ErrNotFound
	}
	if !current(s, r.From, r.At) {
		return fiberauth.Session{}, fiberauth.ErrNotCurrent
	}
	return m.rotate(&r), nil
}

// RotateSessionIfUser implements fiberauth.UserRotator.
func (m *Store) RotateSessionIfUser(_ context.Context, r fiberauth.Rotation, userID, etag string) (fiberauth.Session, fiberauth.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[r.SessionID]
	if !ok {
		return fiberauth.Session{}, fiberauth.User{}, fiberauth.ErrNotFound
	}
	u, ok := m.users[userID]
	if !ok || s.UserID != userID || u.ETag != etag || u.Disabled || !current(s, r.From, r.At) {
		return fiberauth.Session{}, fiberauth.User{}, fiberauth.ErrNotCurrent
	}
	return m.rotate(&r), copyUser(u), nil
}

// current reports whether s is live at at and from is its current token
// hash (never, when from is empty).
func current(s *fiberauth.Session, from []byte, at time.Time) bool {
	return s.Live(at) && len(from) > 0 && subtle.ConstantTimeCompare(s.TokenHash, from) == 1
}

// rotate applies r, whose conditions the caller has checked.
func (m *Store) rotate(r *fiberauth.Rotation) fiberauth.Session {
	s := m.sessions[r.SessionID]
	s.PrevTokenHash = bytes.Clone(r.From)
	s.TokenHash = bytes.Clone(r.To)
	s.Generation = r.Generation
	s.RotatedAt = r.At
	s.Replay = bytes.Clone(r.Replay)
	s.ExpiresAt = r.ExpiresAt
	s.LastUsedAt = r.At
	return copySession(s)
}

// RevokeSession implements fiberauth.Store.
func (m *Store) RevokeSession(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	s, ok := m.sessions[id]
	revoked := ok && s.RevokedAt.IsZero()
	if revoked {
		s.RevokedAt = at
	}
	m.mu.Unlock()
	if !ok {
		return fiberauth.ErrNotFound
	}
	if revoked {
		m.subs.announce(fiberauth.Change{Sessions: []string{id}})
	}
	return nil
}

// RevokeUserSessions implements fiberauth.Store.
func (m *Store) RevokeUserSessions(_ context.Context, userID, except string, at time.Time) ([]string, error) {
	m.mu.Lock()
	ids := m.revokeUser(userID, except, at)
	m.mu.Unlock()
	if len(ids) > 0 {
		m.subs.announce(fiberauth.Change{Sessions: slices.Clone(ids)})
	}
	return ids, nil
}

func (m *Store) revokeUser(userID, except string, at time.Time) []string {
	ids := []string{}
	for _, s := range m.sessions {
		if s.UserID == userID && s.ID != except && s.Live(at) {
			s.RevokedAt = at
			ids = append(ids, s.ID)
		}
	}
	slices.Sort(ids) // map order is random; a stable answer is kinder to callers
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
		return cmp.Compare(a.ID, b.ID)
	})
	return list, nil
}

// PutCode implements fiberauth.CodeStore.
func (m *Store) PutCode(_ context.Context, c fiberauth.Code) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cc := copyCode(&c)
	cc.Attempts = 0
	m.codes[codeKey{c.UserID, c.Purpose}] = &cc
	return nil
}

// CheckCode implements fiberauth.CodeStore.
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
	if c.Attempts++; c.Attempts >= fiberauth.CodeMaxAttempts {
		delete(m.codes, k)
	}
	return fiberauth.ErrCodeMismatch
}

// UseCode implements fiberauth.CodeStore: the code is checked first, then
// the update is applied as UpdateUser applies it, and the code goes only
// when the update went through, all under the one lock.
func (m *Store) UseCode(_ context.Context, c fiberauth.Code, up fiberauth.UserUpdate) (fiberauth.UpdateResult, error) {
	res, err := m.useCode(&c, &up)
	if err == nil {
		m.subs.updated(&up, &res)
	}
	return res, err
}

func (m *Store) useCode(c *fiberauth.Code, up *fiberauth.UserUpdate) (fiberauth.UpdateResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := codeKey{c.UserID, c.Purpose}
	stored, ok := m.codes[k]
	if !ok || !up.At.Before(stored.ExpiresAt) || subtle.ConstantTimeCompare(stored.Hash, c.Hash) != 1 {
		return fiberauth.UpdateResult{}, fiberauth.ErrCodeSpent
	}
	res, err := m.update(up)
	if err != nil {
		return fiberauth.UpdateResult{}, err
	}
	delete(m.codes, k)
	return res, nil
}

// CreateChallenge implements fiberauth.ChallengeStore.
func (m *Store) CreateChallenge(_ context.Context, c fiberauth.Challenge) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cc := copyChallenge(&c)
	m.challenges[string(c.Hash)] = &cc
	return nil
}

// ChallengeByHash implements fiberauth.ChallengeStore.
func (m *Store) ChallengeByHash(_ context.Context, hash []byte, now time.Time) (fiberauth.Challenge, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.challenges[string(hash)]
	if !ok || !now.Before(c.ExpiresAt) {
		return fiberauth.Challenge{}, fiberauth.ErrNotFound
	}
	return copyChallenge(c), nil
}

// ConsumeChallenge implements fiberauth.ChallengeStore.
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

// FailChallenge implements fiberauth.ChallengeStore.
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

// ReserveAttempt implements fiberauth.AttemptStore.
func (m *Store) ReserveAttempt(_ context.Context, key string, limit int, now time.Time, window time.Duration) (bool, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ok, ends := m.attempts.Reserve(key, limit, now, window)
	return ok, ends, nil
}

// ReleaseAttempt implements fiberauth.AttemptStore.
func (m *Store) ReleaseAttempt(_ context.Context, key string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts.Release(key, now)
	return nil
}

// ResetAttempts implements fiberauth.AttemptStore.
func (m *Store) ResetAttempts(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts.Reset(key)
	return nil
}

// UseTOTPStep implements fiberauth.TOTPStore.
func (m *Store) UseTOTPStep(_ context.Context, userID string, step int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[userID]; !ok {
		return fiberauth.ErrNotFound
	}
	if step <= m.totpSteps[userID] {
		return fiberauth.ErrStepUsed
	}
	m.totpSteps[userID] = step
	return nil
}

// DeleteExpired implements fiberauth.Cleaner.
func (m *Store) DeleteExpired(_ context.Context, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, s := range m.sessions {
		if !now.Before(s.ExpiresAt) || !now.Before(s.AbsoluteExpiresAt) {
			delete(m.sessions, id)
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
	m.attempts.DeleteExpired(now)
	return nil
}
