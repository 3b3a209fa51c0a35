package fiberauth

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Throttling: counters of attempts per key in fixed windows, kept by the
// Store's AttemptStore so that every instance sharing it counts together
// (or in process memory when it has none). An attempt is reserved before
// the work it limits, atomically, so that parallel requests cannot pass a
// limit; the outcome then keeps it (a failure) or gives it back.

// Throttling keys. A network is a client IP, or its /64 for IPv6, where an
// attacker has the whole /64 for free.
func loginUserKey(userID string) string     { return "login:user:" + userID }
func loginNameKey(name string) string       { return "login:name:" + name }
func loginNetKey(ip string) string          { return "login:net:" + network(ip) }
func codeKey(purpose, userID string) string { return "code:" + purpose + ":" + userID }
func codeNetKey(ip string) string           { return "code:net:" + network(ip) }
func sendKey(userID string) string          { return "send:" + userID }
func sendEmailKey(email string) string      { return "send:email:" + email }
func resetNetKey(ip string) string          { return "reset:net:" + network(ip) }
func signupNetKey(ip string) string         { return "signup:net:" + network(ip) }
func passkeyNetKey(ip string) string        { return "passkey:net:" + network(ip) }
func passkeyUserKey(userID string) string   { return "passkey:user:" + userID }

// limitName is the name of the limit a throttling key counts under, for
// EventThrottled: never the account name or address in the key.
func limitName(key string) string {
	for _, l := range []struct{ prefix, name string }{
		{"login:net:", "login_ip"}, {"login:", "login_account"},
		{"code:net:", "code_ip"}, {"code:", "code"},
		{"send:", "code_sends"}, {"reset:net:", "reset_ip"}, {"signup:net:", "signup_ip"},
		{"passkey:net:", "passkey_ip"}, {"passkey:user:", "passkey_account"},
	} {
		if strings.HasPrefix(key, l.prefix) {
			return l.name
		}
	}
	return "other"
}

func loginKey(u *User, found bool, name string) string {
	if found {
		return loginUserKey(u.ID)
	}
	return loginNameKey(name)
}

// purposeMFA is the code purpose of TOTP and recovery codes, for their
// limit: each purpose counts apart, so that wrong reset codes never lock a
// user's second factor.
const purposeMFA = "mfa"

// network is the part of a client IP that limits key on: the address for
// IPv4, the /64 for IPv6.
func network(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil || !addr.Is6() || addr.Is4In6() {
		return ip
	}
	p, _ := addr.Prefix(64)
	return p.String()
}

// A limit caps the attempts under one key in one window.
type limit struct {
	key    string
	max    int // negative: no limit
	window time.Duration
}

// A reservation holds one attempt under each of its keys, taken before the
// work they limit.
type reservation struct {
	a    *Auth
	keys []string
	at   time.Time
}

// reserve takes an attempt under every limit, all or none: over any of them
// it gives back what it took and answers a *RateLimitError.
func (a *Auth) reserve(ctx context.Context, limits ...limit) (*reservation, error) {
	r := &reservation{a: a, at: a.now()}
	for _, l := range limits {
		if l.max < 0 {
			continue
		}
		ok, ends, err := a.attempts.ReserveAttempt(ctx, l.key, l.max, r.at, l.window)
		if err == nil && !ok {
			err = &RateLimitError{RetryAfter: ends.Sub(r.at)}
			a.emit(ctx, Event{Type: EventThrottled, Reason: limitName(l.key)})
		}
		if err != nil {
			_ = r.release(ctx) // logged; the caller has err
			return nil, storeErr("reserve attempt", err)
		}
		r.keys = append(r.keys, l.key)
	}
	a.maybeSweep()
	return r, nil
}

// release gives back the attempts reserved under keys (all of r's when none
// is named; none when r is nil): their work turned out not to count
// against them. A failure is logged and returned: after a success it
// answers 503 before anything else is written, after a failure the caller
// has its own error and the attempt counts until its window ends.
func (r *reservation) release(ctx context.Context, keys ...string) error {
	if r == nil {
		return nil
	}
	var first error
	for _, k := range r.keys {
		if len(keys) > 0 && !slices.Contains(keys, k) {
			continue
		}
		if err := r.a.attempts.ReleaseAttempt(ctx, k, r.at); err != nil {
			r.a.log.Warn("fiberauth: giving back a throttling attempt failed", "err", err)
			if first == nil {
				first = storeErr("release attempt", err)
			}
		}
	}
	return first
}

// errNoCode is a code check that found no code to check: it counts nothing
// against the account (an attacker must not be able to lock a flow the
// user never started), and answers as a wrong code.
var errNoCode = errors.New("fiberauth: no code pending")

// checkedCode runs check, a code check, under the limit on wrong codes of
// the user and purpose: an attempt is reserved first; a wrong code
// (ErrInvalidGrant) keeps it, anything else gives it back. check returns
// errNoCode when there was no code to guess. check verifies and spends
// nothing but the one-time credential it checks: the change a right code
// allows comes after.
func (a *Auth) checkedCode(ctx context.Context, userID, purpose string, check func() error) error {
	r, err := a.reserve(ctx, limit{codeKey(purpose, userID), a.cfg.MaxCodeFailures, a.cfg.ThrottleWindow})
	if err != nil {
		return err
	}
	switch err := check(); {
	case errors.Is(err, errNoCode):
		_ = r.release(ctx)
		return ErrInvalidGrant
	case errors.Is(err, ErrInvalidGrant):
		return err // a wrong code: the attempt counts
	case err != nil:
		_ = r.release(ctx)
		return err
	}
	return r.release(ctx)
}

// mayResend counts a code sent under key and reports whether it is within
// Config.MaxCodeSends per hour.
func (a *Auth) mayResend(ctx context.Context, key string) (bool, error) {
	_, err := a.reserve(ctx, limit{key, a.cfg.MaxCodeSends, time.Hour})
	if errors.Is(err, ErrRateLimited) {
		return false, nil
	}
	return err == nil, err
}
