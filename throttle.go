package fiberauth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// RateLimitError is a throttled call: 429 rate_limited with Retry-After.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("fiberauth: rate limited; retry after %s", e.RetryAfter)
}

func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// retryAfterSeconds is the Retry-After value of err, at least 1.
func retryAfterSeconds(err error) (int, bool) {
	var rl *RateLimitError
	if !errors.As(err, &rl) {
		return 0, false
	}
	return max(1, int(math.Ceil(rl.RetryAfter.Seconds()))), true
}

// Throttling keys. Counters live in the store, so every instance that shares
// it shares them.
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
	n, ends, err := a.store.Attempts(ctx, key, now)
	if err != nil {
		return storeErr("attempts", err)
	}
	if n >= limit {
		return &RateLimitError{RetryAfter: ends.Sub(now)}
	}
	return nil
}

// addFailure counts one failed attempt under each key.
func (a *Auth) addFailure(ctx context.Context, window time.Duration, keys ...string) error {
	now := a.now()
	for _, k := range keys {
		if _, _, err := a.store.AddAttempt(ctx, k, now, window); err != nil {
			return storeErr("add attempt", err)
		}
	}
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
		if ferr := a.addFailure(ctx, a.cfg.ThrottleWindow, key); ferr != nil {
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
	n, _, err := a.store.AddAttempt(ctx, sendKey(userID), a.now(), time.Hour)
	if err != nil {
		return false, storeErr("add attempt", err)
	}
	return n <= a.cfg.MaxCodeSends, nil
}

// parseTrustedProxies turns Config.TrustedProxies into prefixes.
func parseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("fiberauth: Config.TrustedProxies: %q is neither an IP nor a CIDR", s)
		}
		ip = ip.Unmap()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}

func (a *Auth) trusted(ip netip.Addr) bool {
	for _, p := range a.proxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// clientIP is the socket's peer, unless that peer is a trusted proxy: then
// X-Forwarded-For is read from the right, skipping trusted proxies, and the
// first address that is not one is the client. A malformed entry stops the
// walk at the last address known good.
func (a *Auth) clientIP(c *fiber.Ctx) string {
	ip, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	ip = ip.Unmap()
	if len(a.proxies) == 0 || !a.trusted(ip) {
		return ip.String()
	}
	var hops []string
	for _, h := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		hops = append(hops, strings.Split(string(h), ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		ip = hop.Unmap()
		if !a.trusted(ip) {
			break
		}
	}
	return ip.String()
}
