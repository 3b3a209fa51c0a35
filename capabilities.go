package fiberauth

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fiberauth/fiberauth/internal/attempts"
)

// useCapabilities takes each optional capability from the Store, or keeps
// its state in process memory when the Store lacks it, and says once what
// that means.
func (a *Auth) useCapabilities() error {
	var (
		local   *localState
		missing []string
	)
	a.codes = capability[CodeStore](a, &local, &missing,
		"CodeStore (one-time codes live in this process: lost at restart, and a code works only on the instance that sent it)")
	a.challenges = capability[ChallengeStore](a, &local, &missing,
		"ChallengeStore (a login's second step must reach the instance that issued its challenge)")
	a.attempts = capability[AttemptStore](a, &local, &missing,
		"AttemptStore (throttling counters live in this process: each instance counts alone)")
	a.totpSteps = capability[TOTPStore](a, &local, &missing,
		"TOTPStore (a TOTP code is refused a second time only on the instance that accepted it)")
	if a.cfg.SigningAlgorithm != "" {
		a.keyStore = capability[KeyStore](a, &local, &missing,
			"KeyStore (generated signing keys live in this process: each instance signs with its own and refuses the others' tokens, and every access token ends at restart)")
	}
	a.sessionUsers, _ = a.store.(SessionUserReader) // only a matter of speed
	a.userRotator, _ = a.store.(UserRotator)        // so is this
	if c, ok := a.store.(Cleaner); ok {
		a.cleaners = append(a.cleaners, c)
	} else {
		missing = append(missing, "Cleaner (fiberauth never deletes expired sessions from the store)")
	}
	if local != nil {
		a.cleaners = append(a.cleaners, local)
	}
	if n, ok := a.store.(Notifier); ok {
		cancel, err := n.Subscribe(a.onChange)
		if err != nil {
			return fmt.Errorf("fiberauth: subscribing to the store's changes: %w", err)
		}
		a.unsubscribe = cancel
	} else {
		missing = append(missing, "Notifier (a change made through another instance is seen here within CacheTTL)")
	}
	a.nextSweep.Store(a.now().Add(a.sweepEvery()).UnixNano())
	if len(missing) > 0 {
		a.log.Warn("fiberauth: the store lacks optional capabilities; kept in process memory instead", "missing", strings.Join(missing, "; "))
	}
	return nil
}

// onChange is what a Notifier tells of a change made through any instance:
// the caches forget what it makes stale (see stateCache).
func (a *Auth) onChange(c Change) {
	if c.Lost {
		a.users.flush()
		a.sessions.flush()
		a.log.Warn("fiberauth: the store's change notices may have been lost; the caches were emptied")
		return
	}
	now := a.now()
	if c.UserID != "" {
		a.users.invalidate(c.UserID, func(u userState) bool { return c.ETag != "" && u.etag == c.ETag }, nil, now)
	}
	gone := goneSession
	for _, id := range c.Sessions {
		a.sessions.invalidate(id, nil, &gone, now)
	}
}

// capability is the Store as a T, or else the process's local state (made
// at the first need), with what that means noted in missing.
func capability[T any](a *Auth, local **localState, missing *[]string, lacks string) T {
	if s, ok := a.store.(T); ok {
		return s
	}
	*missing = append(*missing, lacks)
	if *local == nil {
		*local = newLocalState(a.store)
	}
	return any(*local).(T)
}

// maybeSweep starts a cleanup when one is due, off the request path: it
// forgets the middleware's stale cached states and, unless
// Config.CleanupInterval is negative, deletes expired records (the store's
// through its Cleaner, and the process's own). The flows that add records
// and the middleware's cache misses call it, so a busy app cleans up and an
// idle one has nothing to clean.
func (a *Auth) maybeSweep() {
	now := a.now()
	due := a.nextSweep.Load()
	if now.UnixNano() < due || !a.nextSweep.CompareAndSwap(due, now.Add(a.sweepEvery()).UnixNano()) {
		return
	}
	a.pending.Add(1)
	go func() {
		defer a.pending.Done()
		a.users.sweep(now)
		a.sessions.sweep(now)
		if a.cfg.CleanupInterval < 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, c := range a.cleaners {
			if err := c.DeleteExpired(ctx, now); err != nil {
				a.log.Warn("fiberauth: deleting expired records failed; next try in CleanupInterval", "err", err)
			}
		}
	}()
}

// sweepEvery is how often maybeSweep runs: every CleanupInterval, or, when
// records are never deleted, as often as by default, for the caches.
func (a *Auth) sweepEvery() time.Duration {
	if a.cfg.CleanupInterval < 0 {
		return ConfigDefault.CleanupInterval
	}
	return a.cfg.CleanupInterval
}

// localState keeps in process memory the state of the capabilities a Store
// lacks. It follows the same contract as a Store would, for one process.
type localState struct {
	store Store // UseCode updates the user through it

	mu         sync.Mutex
	codes      map[codeSlot]localCode
	codeGen    uint64               // PutCodes so far
	challenges map[string]Challenge // by hash
	attempts   *attempts.Windows    // capped: their keys are chosen by whoever sends requests
	steps      map[string]int64     // last TOTP step by user id
	keys       []StoredSigningKey   // by generation (keystore.go)
}

type codeSlot struct{ userID, purpose string }

// localCode is a code and what UseCode needs to spend it safely while it
// updates the user through the Store, outside the lock.
type localCode struct {
	Code
	gen     uint64 // codeGen when PutCode stored it: a replaced code is never brought back
	pending bool   // a UseCode of it is in flight; no other may spend it
}

func newLocalState(s Store) *localState {
	return &localState{
		store:      s,
		codes:      map[codeSlot]localCode{},
		challenges: map[string]Challenge{},
		attempts:   attempts.New(attempts.DefaultMaxKeys),
		steps:      map[string]int64{},
	}
}

// PutCode implements CodeStore.
func (l *localState) PutCode(_ context.Context, c Code) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c.Attempts = 0
	c.Hash = append([]byte(nil), c.Hash...)
	l.codeGen++
	l.codes[codeSlot{c.UserID, c.Purpose}] = localCode{Code: c, gen: l.codeGen}
	return nil
}

// CheckCode implements CodeStore.
func (l *localState) CheckCode(_ context.Context, userID, purpose string, hash []byte, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := codeSlot{userID, purpose}
	c, ok := l.codes[k]
	if !ok || !now.Before(c.ExpiresAt) {
		return ErrNotFound
	}
	if equalHash(c.Hash, hash) {
		return nil
	}
	if c.Attempts++; c.Attempts >= CodeMaxAttempts {
		delete(l.codes, k)
	} else {
		l.codes[k] = c
	}
	return ErrCodeMismatch
}

// UseCode implements CodeStore for one process: it marks the code pending,
// so that no concurrent call can spend it, updates the user through the
// Store outside the lock, then deletes the code, or unmarks it if the update
// failed. Either only if it is still the same code: one that PutCode
// replaced or CheckCode burnt meanwhile stays as it is.
func (l *localState) UseCode(ctx context.Context, c Code, u UserUpdate) (UpdateResult, error) {
	k := codeSlot{c.UserID, c.Purpose}
	l.mu.Lock()
	cur, ok := l.codes[k]
	if !ok || cur.pending || !u.At.Before(cur.ExpiresAt) || !equalHash(cur.Hash, c.Hash) {
		l.mu.Unlock()
		return UpdateResult{}, ErrCodeSpent
	}
	cur.pending = true
	l.codes[k] = cur
	l.mu.Unlock()
	res, err := l.store.UpdateUser(ctx, u)
	l.mu.Lock()
	defer l.mu.Unlock()
	if now, ok := l.codes[k]; ok && now.gen == cur.gen {
		if err != nil {
			now.pending = false
			l.codes[k] = now
		} else {
			delete(l.codes, k)
		}
	}
	return res, err
}

// CreateChallenge implements ChallengeStore.
func (l *localState) CreateChallenge(_ context.Context, c Challenge) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c.Hash = append([]byte(nil), c.Hash...)
	l.challenges[string(c.Hash)] = c
	return nil
}

// ChallengeByHash implements ChallengeStore.
func (l *localState) ChallengeByHash(_ context.Context, hash []byte, now time.Time) (Challenge, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.challenges[string(hash)]
	if !ok || !now.Before(c.ExpiresAt) {
		return Challenge{}, ErrNotFound
	}
	c.Hash = append([]byte(nil), c.Hash...)
	return c, nil
}

// ConsumeChallenge implements ChallengeStore.
func (l *localState) ConsumeChallenge(_ context.Context, hash []byte, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.challenges[string(hash)]
	if !ok || !now.Before(c.ExpiresAt) {
		return ErrNotFound
	}
	delete(l.challenges, string(hash))
	return nil
}

// FailChallenge implements ChallengeStore.
func (l *localState) FailChallenge(_ context.Context, hash []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.challenges[string(hash)]
	if !ok {
		return ErrNotFound
	}
	if c.Attempts++; c.Attempts >= CodeMaxAttempts {
		delete(l.challenges, string(hash))
	} else {
		l.challenges[string(hash)] = c
	}
	return nil
}

// ReserveAttempt implements AttemptStore.
func (l *localState) ReserveAttempt(_ context.Context, key string, limit int, now time.Time, window time.Duration) (bool, time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok, ends := l.attempts.Reserve(key, limit, now, window)
	return ok, ends, nil
}

// ReleaseAttempt implements AttemptStore.
func (l *localState) ReleaseAttempt(_ context.Context, key string, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempts.Release(key, now)
	return nil
}

// ResetAttempts implements AttemptStore.
func (l *localState) ResetAttempts(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempts.Reset(key)
	return nil
}

// UseTOTPStep implements TOTPStore.
func (l *localState) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	if _, err := l.store.UserByID(ctx, userID); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if step <= l.steps[userID] {
		return ErrStepUsed
	}
	l.steps[userID] = step
	return nil
}

// DeleteExpired implements Cleaner. A TOTP step older than the codes that
// could still be accepted is forgotten too: no code can replay it.
func (l *localState) DeleteExpired(_ context.Context, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, c := range l.codes {
		if !now.Before(c.ExpiresAt) {
			delete(l.codes, k)
		}
	}
	for k, c := range l.challenges {
		if !now.Before(c.ExpiresAt) {
			delete(l.challenges, k)
		}
	}
	l.attempts.DeleteExpired(now)
	oldest := now.Unix()/totpPeriod - totpSkew
	for k, step := range l.steps {
		if step < oldest {
			delete(l.steps, k)
		}
	}
	return nil
}
