package fiberauth

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"sync/atomic"

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
	// waiting counts callers queued for a slot.
	waiting atomic.Int64
}

func newPasswordHasher(p argon2id.Params, concurrency int) (*passwordHasher, error) {
	h := &passwordHasher{params: p, slots: make(chan struct{}, concurrency)}
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

func (h *passwordHasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for a password hash slot: %w", ErrUnavailable, ctx.Err())
	}
}

// release frees the slot. While others queue for one (a login flood), it
// first has the collector reclaim the hash's memory block (19 MiB at the
// default parameters), so that dead blocks do not pile up to twice the live
// ones before the next collection: memory stays near slots × memory. The
// blocks hold no pointers, so the collection is cheap next to a hash.
func (h *passwordHasher) release() {
	if h.waiting.Load() > 0 {
		runtime.GC()
	}
	<-h.slots
}

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
