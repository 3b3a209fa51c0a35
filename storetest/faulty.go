package storetest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fiberauth/fiberauth"
)

// ErrFault is what a Faulty store returns for the call it fails: what a
// driver says when the database cannot be reached.
var ErrFault = errors.New("storetest: injected fault: connection refused")

// FullStore is a Store with every optional capability: what NewFaulty wraps.
type FullStore interface {
	fiberauth.Store
	fiberauth.CodeStore
	fiberauth.ChallengeStore
	fiberauth.AttemptStore
	fiberauth.TOTPStore
	fiberauth.PasskeyStore
	fiberauth.Cleaner
	fiberauth.SessionUserReader
	fiberauth.UserRotator
}

// Faulty implements every method itself rather than embedding the store it
// wraps: a method added to any interface then fails to compile here until
// it can fail too, instead of slipping through unfaulted.
var _ FullStore = (*Faulty)(nil)

// Faulty wraps a FullStore and fails one chosen call with ErrFault, writing
// nothing, to check that every operation answers 503 for any failure and
// leaves no partial change. Every method counts as one call. It is safe for
// concurrent use.
type Faulty struct {
	inner  FullStore
	mu     sync.Mutex
	calls  int
	failAt int // the call number to fail; 0: none
}

// NewFaulty wraps s; it fails nothing until FailNth.
func NewFaulty(s FullStore) *Faulty { return &Faulty{inner: s} }

// FailNth makes the n-th call from now fail (n ≥ 1), and no other.
func (f *Faulty) FailNth(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failAt = f.calls + n
}

// Heal stops failing, and reports whether the chosen call was reached (and
// so failed).
func (f *Faulty) Heal() (failed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	failed = f.failAt != 0 && f.calls >= f.failAt
	f.failAt = 0
	return failed
}

// fault counts a call and returns ErrFault if it is the chosen one.
func (f *Faulty) fault() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failAt != 0 && f.calls == f.failAt {
		return ErrFault
	}
	return nil
}

// CreateUser implements fiberauth.Store.
func (f *Faulty) CreateUser(ctx context.Context, u fiberauth.User) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.CreateUser(ctx, u)
}

// UserByID implements fiberauth.Store.
func (f *Faulty) UserByID(ctx context.Context, id string) (fiberauth.User, error) {
	if err := f.fault(); err != nil {
		return fiberauth.User{}, err
	}
	return f.inner.UserByID(ctx, id)
}

// UserByEmail implements fiberauth.Store.
func (f *Faulty) UserByEmail(ctx context.Context, email string) (fiberauth.User, error) {
	if err := f.fault(); err != nil {
		return fiberauth.User{}, err
	}
	return f.inner.UserByEmail(ctx, email)
}

// UserByUsername implements fiberauth.Store.
func (f *Faulty) UserByUsername(ctx context.Context, username string) (fiberauth.User, error) {
	if err := f.fault(); err != nil {
		return fiberauth.User{}, err
	}
	return f.inner.UserByUsername(ctx, username)
}

// UpdateUser implements fiberauth.Store.
func (f *Faulty) UpdateUser(ctx context.Context, u fiberauth.UserUpdate) (fiberauth.UpdateResult, error) {
	if err := f.fault(); err != nil {
		return fiberauth.UpdateResult{}, err
	}
	return f.inner.UpdateUser(ctx, u)
}

// CreateSession implements fiberauth.Store.
func (f *Faulty) CreateSession(ctx context.Context, s fiberauth.Session) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.CreateSession(ctx, s)
}

// SessionByID implements fiberauth.Store.
func (f *Faulty) SessionByID(ctx context.Context, id string) (fiberauth.Session, error) {
	if err := f.fault(); err != nil {
		return fiberauth.Session{}, err
	}
	return f.inner.SessionByID(ctx, id)
}

// SessionWithUser implements fiberauth.SessionUserReader.
func (f *Faulty) SessionWithUser(ctx context.Context, id string) (fiberauth.Session, fiberauth.User, error) {
	if err := f.fault(); err != nil {
		return fiberauth.Session{}, fiberauth.User{}, err
	}
	return f.inner.SessionWithUser(ctx, id)
}

// RotateSessionIfUser implements fiberauth.UserRotator.
func (f *Faulty) RotateSessionIfUser(ctx context.Context, r fiberauth.Rotation, userID, etag string) (fiberauth.Session, fiberauth.User, error) {
	if err := f.fault(); err != nil {
		return fiberauth.Session{}, fiberauth.User{}, err
	}
	return f.inner.RotateSessionIfUser(ctx, r, userID, etag)
}

// RotateSession implements fiberauth.Store.
func (f *Faulty) RotateSession(ctx context.Context, r fiberauth.Rotation) (fiberauth.Session, error) {
	if err := f.fault(); err != nil {
		return fiberauth.Session{}, err
	}
	return f.inner.RotateSession(ctx, r)
}

// RevokeSession implements fiberauth.Store.
func (f *Faulty) RevokeSession(ctx context.Context, id string, at time.Time) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.RevokeSession(ctx, id, at)
}

// RevokeUserSessions implements fiberauth.Store.
func (f *Faulty) RevokeUserSessions(ctx context.Context, userID, except string, at time.Time) ([]string, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.inner.RevokeUserSessions(ctx, userID, except, at)
}

// ListSessions implements fiberauth.Store.
func (f *Faulty) ListSessions(ctx context.Context, userID string, now time.Time) ([]fiberauth.Session, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.inner.ListSessions(ctx, userID, now)
}

// PutCode implements fiberauth.CodeStore.
func (f *Faulty) PutCode(ctx context.Context, c fiberauth.Code) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.PutCode(ctx, c)
}

// CheckCode implements fiberauth.CodeStore.
func (f *Faulty) CheckCode(ctx context.Context, userID, purpose string, hash []byte, now time.Time) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.CheckCode(ctx, userID, purpose, hash, now)
}

// UseCode implements fiberauth.CodeStore.
func (f *Faulty) UseCode(ctx context.Context, c fiberauth.Code, u fiberauth.UserUpdate) (fiberauth.UpdateResult, error) {
	if err := f.fault(); err != nil {
		return fiberauth.UpdateResult{}, err
	}
	return f.inner.UseCode(ctx, c, u)
}

// CreateChallenge implements fiberauth.ChallengeStore.
func (f *Faulty) CreateChallenge(ctx context.Context, c fiberauth.Challenge) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.CreateChallenge(ctx, c)
}

// ChallengeByHash implements fiberauth.ChallengeStore.
func (f *Faulty) ChallengeByHash(ctx context.Context, hash []byte, now time.Time) (fiberauth.Challenge, error) {
	if err := f.fault(); err != nil {
		return fiberauth.Challenge{}, err
	}
	return f.inner.ChallengeByHash(ctx, hash, now)
}

// ConsumeChallenge implements fiberauth.ChallengeStore.
func (f *Faulty) ConsumeChallenge(ctx context.Context, hash []byte, now time.Time) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.ConsumeChallenge(ctx, hash, now)
}

// FailChallenge implements fiberauth.ChallengeStore.
func (f *Faulty) FailChallenge(ctx context.Context, hash []byte) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.FailChallenge(ctx, hash)
}

// ReserveAttempt implements fiberauth.AttemptStore.
func (f *Faulty) ReserveAttempt(ctx context.Context, key string, limit int, now time.Time, window time.Duration) (bool, time.Time, error) {
	if err := f.fault(); err != nil {
		return false, time.Time{}, err
	}
	return f.inner.ReserveAttempt(ctx, key, limit, now, window)
}

// ReleaseAttempt implements fiberauth.AttemptStore.
func (f *Faulty) ReleaseAttempt(ctx context.Context, key string, now time.Time) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.ReleaseAttempt(ctx, key, now)
}

// ResetAttempts implements fiberauth.AttemptStore.
func (f *Faulty) ResetAttempts(ctx context.Context, key string) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.ResetAttempts(ctx, key)
}

// UseTOTPStep implements fiberauth.TOTPStore.
func (f *Faulty) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.UseTOTPStep(ctx, userID, step)
}

// DeleteExpired implements fiberauth.Cleaner.
func (f *Faulty) DeleteExpired(ctx context.Context, now time.Time) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.DeleteExpired(ctx, now)
}

// AddPasskey implements fiberauth.PasskeyStore.
func (f *Faulty) AddPasskey(ctx context.Context, p fiberauth.Passkey) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.AddPasskey(ctx, p)
}

// PasskeyByID implements fiberauth.PasskeyStore.
func (f *Faulty) PasskeyByID(ctx context.Context, id []byte) (fiberauth.Passkey, error) {
	if err := f.fault(); err != nil {
		return fiberauth.Passkey{}, err
	}
	return f.inner.PasskeyByID(ctx, id)
}

// PasskeysOf implements fiberauth.PasskeyStore.
func (f *Faulty) PasskeysOf(ctx context.Context, userID string) ([]fiberauth.Passkey, error) {
	if err := f.fault(); err != nil {
		return nil, err
	}
	return f.inner.PasskeysOf(ctx, userID)
}

// UsePasskey implements fiberauth.PasskeyStore.
func (f *Faulty) UsePasskey(ctx context.Context, id []byte, count uint32, at time.Time) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.UsePasskey(ctx, id, count, at)
}

// RenamePasskey implements fiberauth.PasskeyStore.
func (f *Faulty) RenamePasskey(ctx context.Context, userID string, id []byte, name string) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.RenamePasskey(ctx, userID, id, name)
}

// DeletePasskey implements fiberauth.PasskeyStore.
func (f *Faulty) DeletePasskey(ctx context.Context, userID string, id []byte) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.inner.DeletePasskey(ctx, userID, id)
}
