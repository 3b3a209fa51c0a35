package fiberauth

import (
	"context"
	"errors"
	"time"
)

// Throttling: counters of failed attempts per key in fixed windows, kept by
// the Store's AttemptStore so that every instance sharing it counts
// together (or in process memory when it has none).

// Throttling keys.
func loginAccountKey(name string) string { return "login:acct:" + name }
func loginIPKey(ip string) string        { return "login:ip:" + ip }
func codeKey(account string) string      { return "code:" + account }
func sendKey(userID string) string       { return "send:" + userID }

// checkLimit answers RateLimitError when key has limit attempts or more in
// its open window. A negative limit turns the check off.
func (a *Auth) checkLimit(ctx context.Context, key string, limit int) error {
	if limit < 0 {
		return nil
	}
	now := a.now()
	n, ends, err := a.attempts.Attempts(ctx, key, now)
	if err != nil {
		return storeErr("attempts", err)
	}
	if n >= limit {
		return &RateLimitError{RetryAfter: ends.Sub(now)}
	}
	return nil
}

// addFailure counts one failed attempt under each key, in windows of
// Config.ThrottleWindow.
func (a *Auth) addFailure(ctx context.Context, keys ...string) error {
	now := a.now()
	for _, k := range keys {
		if _, _, err := a.attempts.AddAttempt(ctx, k, now, a.cfg.ThrottleWindow); err != nil {
			return storeErr("add attempt", err)
		}
	}
	a.maybeSweep()
	return nil
}

// checkedCode runs check (a one-time code or TOTP check whose failure is
// ErrInvalidGrant) under the per-account limit on failed code checks.
func (a *Auth) checkedCode(ctx context.Context, account string, check func() error) error {
	key := codeKey(account)
	if err := a.checkLimit(ctx, key, a.cfg.MaxCodeFailures); err != nil {
		return err
	}
	err := check()
	if errors.Is(err, ErrInvalidGrant) {
		if ferr := a.addFailure(ctx, key); ferr != nil {
			return ferr
		}
	}
	return err
}

// mayResend counts a code sent to the user and reports whether it is within
// Config.MaxCodeSends per hour.
func (a *Auth) mayResend(ctx context.Context, userID string) (bool, error) {
	if a.cfg.MaxCodeSends < 0 {
		return true, nil
	}
	n, _, err := a.attempts.AddAttempt(ctx, sendKey(userID), a.now(), time.Hour)
	if err != nil {
		return false, storeErr("add attempt", err)
	}
	return n <= a.cfg.MaxCodeSends, nil
}
