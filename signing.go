package fiberauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Setting up an Auth's signing keys (Config.SigningKeys or
// Config.SigningAlgorithm), rotating generated ones, and the process
// memory KeyStore for stores without one.

// checkSigningConfig checks and completes the signing fields of cfg.
func checkSigningConfig(cfg *Config) error {
	switch cfg.SigningAlgorithm {
	case "", AlgorithmEdDSA, AlgorithmES256:
	default:
		return fmt.Errorf("fiberauth: Config.SigningAlgorithm %q: want %q, %q or empty (HS256)", cfg.SigningAlgorithm, AlgorithmEdDSA, AlgorithmES256)
	}
	if cfg.SigningAlgorithm != "" && len(cfg.SigningKeys) > 0 {
		return errors.New("fiberauth: set Config.SigningKeys or Config.SigningAlgorithm, not both")
	}
	seen := map[string]bool{}
	for i, k := range cfg.SigningKeys {
		if k == nil || k.priv == nil {
			return fmt.Errorf("fiberauth: Config.SigningKeys[%d] is not a key", i)
		}
		if seen[k.kid] {
			return fmt.Errorf("fiberauth: Config.SigningKeys: kid %q twice", k.kid)
		}
		seen[k.kid] = true
	}
	if len(cfg.SigningKeys) > 0 && !cfg.SigningKeys[0].retired.IsZero() {
		return errors.New("fiberauth: Config.SigningKeys[0] signs, so it cannot be Retired")
	}
	if cfg.SigningKeyRotation == 0 {
		cfg.SigningKeyRotation = ConfigDefault.SigningKeyRotation
	}
	if cfg.SigningKeyRotation > 0 && cfg.SigningKeyRotation < minKeyRotation {
		return errors.New("fiberauth: Config.SigningKeyRotation must be at least 1 hour (or negative: never)")
	}
	return nil
}

// useSigningKeys sets up the asymmetric keys, if any: the host's, or the
// generated ones, loaded (and made, the first time) now.
func (a *Auth) useSigningKeys() error {
	ttl := a.cfg.AccessTTL + a.cfg.Leeway
	switch {
	case len(a.cfg.SigningKeys) > 0:
		a.tokens.useKeys(newHostRing(a.cfg.SigningKeys, ttl, a.now), a.cfg)
		return nil
	case a.cfg.SigningAlgorithm == "":
		return nil
	}
	key, err := deriveKey(a.cfg.Secret, "signing-key")
	if err != nil {
		return err
	}
	seal, err := newAEAD(key)
	if err != nil {
		return err
	}
	r := &keyRing{
		now: a.now, ttl: ttl,
		store: a.keyStore, seal: seal, alg: a.cfg.SigningAlgorithm,
		rotateEvery: a.cfg.SigningKeyRotation, log: a.log,
		sem: make(chan struct{}, 1),
		spawn: func(fn func()) {
			a.pending.Add(1)
			go func() {
				defer a.pending.Done()
				fn()
			}()
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.reload(ctx, false); err != nil {
		return fmt.Errorf("fiberauth: loading signing keys: %w", err)
	}
	a.tokens.useKeys(r, a.cfg)
	return nil
}

// RotateSigningKey makes a new generated key sign from now on (after a
// suspected leak, say, or to try rotation out). The key it replaces
// verifies until its tokens have expired (Config.AccessTTL + Leeway). This
// instance signs with the new key at once; the others sharing the store
// sign with it within a minute (before they sign with keys older than
// that), and verify its tokens from the first one they see, or, if
// another reload for an unknown kid began there less than a second
// before, from the first one after that second (keyring.go). ErrNotRotatable when fiberauth does not generate the keys
// (Config.SigningAlgorithm is not set).
func (a *Auth) RotateSigningKey(ctx context.Context) (err error) {
	ctx, end := a.trace(ctx, "RotateSigningKey")
	defer func() { end(err) }()
	r := a.tokens.ring
	if r == nil || r.store == nil {
		return ErrNotRotatable
	}
	return r.reload(ctx, true)
}

// PublicKeys are the public keys that verify access tokens now, newest
// first: what GET /.well-known/jwks.json serves, for a Verifier in the
// same program (VerifierConfig.Keys). Empty with HS256.
func (a *Auth) PublicKeys() []PublicKey {
	if a.tokens.ring == nil {
		return nil
	}
	return a.tokens.ring.live(a.now())
}

// --- KeyStore in process memory ---

// AddSigningKey implements KeyStore.
func (l *localState) AddSigningKey(_ context.Context, k StoredSigningKey) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var last int64
	if n := len(l.keys); n > 0 {
		last = l.keys[n-1].Generation
	}
	if k.Generation != last+1 || slices.ContainsFunc(l.keys, func(s StoredSigningKey) bool { return s.ID == k.ID }) {
		return ErrConflict
	}
	k.Sealed = bytes.Clone(k.Sealed)
	l.keys = append(l.keys, k)
	return nil
}

// SigningKeys implements KeyStore.
func (l *localState) SigningKeys(context.Context) ([]StoredSigningKey, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]StoredSigningKey, 0, len(l.keys))
	for _, k := range l.keys {
		k.Sealed = bytes.Clone(k.Sealed)
		out = append(out, k)
	}
	return out, nil
}

// DeleteSigningKey implements KeyStore.
func (l *localState) DeleteSigningKey(_ context.Context, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys = slices.DeleteFunc(l.keys, func(s StoredSigningKey) bool { return s.ID == id })
	return nil
}
