package fiberauth

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/alexedwards/argon2id"
)

// passwordHasher hashes and verifies passwords with argon2id, at most
// `slots` at a time: each hash holds Memory KiB while it runs, so a login
// flood waits here instead of exhausting memory.
type passwordHasher struct {
	params argon2id.Params
	slots  chan struct{}
	// dummy is a hash of a random password with the configured parameters,
	// verified for unknown accounts so they cost what known ones do.
	dummy string
	// ops counts argon2 runs (hash and verify), for tests that check a
	// login costs exactly one.
	ops atomic.Int64
	// onWait is Config.OnHashWait.
	onWait func(time.Duration)
}

func newPasswordHasher(p argon2id.Params, concurrency int, onWait func(time.Duration)) (*passwordHasher, error) {
	h := &passwordHasher{params: p, slots: make(chan struct{}, concurrency), onWait: onWait}
	if p == minHashParams {
		h.dummy = dummyHashDefault
		return h, nil
	}
	var err error
	if h.dummy, err = argon2id.CreateHash(rand.Text(), &h.params); err != nil {
		return nil, fmt.Errorf("fiberauth: creating dummy hash: %w", err)
	}
	return h, nil
}

// cheapHashParams are what Config's test seam (export_test.go) uses: fast,
// and far too weak for anything else.
var cheapHashParams = argon2id.Params{Memory: 8, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// dummyHashDefault is the argon2id hash, at the default parameters, of a
// random password nobody knows; it saves New from computing one.
const dummyHashDefault = "$argon2id$v=19$m=19456,t=2,p=1$QXqS0lI9RJXf0fZ9ItSiWw$4Bq8m2pGZ3W1gQ5x0JgMHgC0HrxL3Jb5Sx6FVPK2oc8"

// acquire waits for a slot. The memory a flood of logins holds is slots ×
// Memory KiB of live hash blocks, plus the dead ones the collector has not
// yet reclaimed: a host that must stay under a ceiling sets GOMEMLIMIT (or
// debug.SetMemoryLimit), which makes the collector reclaim them in time.
func (h *passwordHasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}: // free: no clock read
		h.waited(0)
		return nil
	default:
	}
	start := time.Now()
	select {
	case h.slots <- struct{}{}:
		h.waited(time.Since(start))
		return nil
	case <-ctx.Done():
		h.waited(time.Since(start))
		return fmt.Errorf("%w: waiting for a password hash slot: %w", ErrUnavailable, ctx.Err())
	}
}

// waited tells Config.OnHashWait of a wait for a slot.
func (h *passwordHasher) waited(d time.Duration) {
	if h.onWait != nil {
		h.onWait(d)
	}
}

func (h *passwordHasher) release() { <-h.slots }

// hash returns the PHC string of password.
func (h *passwordHasher) hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	h.ops.Add(1)
	s, err := argon2id.CreateHash(password, &h.params)
	if err != nil {
		return "", fmt.Errorf("%w: hashing password: %w", ErrUnavailable, err)
	}
	return s, nil
}

// verify reports whether password matches hash, and whether hash was made
// with weaker parameters than the configured ones. An empty hash (unknown
// account, or no password set) is verified against the dummy and never
// matches.
func (h *passwordHasher) verify(ctx context.Context, password, hash string) (ok, weak bool, err error) {
	known := hash != ""
	if !known {
		hash = h.dummy
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	h.ops.Add(1)
	ok, p, err := argon2id.CheckHash(password, hash)
	if err != nil {
		// A corrupt stored hash: refuse the password, as for a wrong one.
		return false, false, nil
	}
	weak = p.Memory < h.params.Memory || p.Iterations < h.params.Iterations ||
		p.Parallelism < h.params.Parallelism || p.KeyLength < h.params.KeyLength
	return ok && known, weak, nil
}
