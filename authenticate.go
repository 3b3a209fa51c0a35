package fiberauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/patrickmn/go-cache"
)

// Authenticating a request: an access token is good when its signature and
// claims verify, its etag is the user's current etag and its session family
// is live. The last two are read through in-process caches.

// Authenticate verifies an access token as Middleware does and answers its
// claims: signature, algorithm, typ, iss, aud, exp, nbf and iat, then that
// its etag is the user's current etag and its family is live. It fails with
// ErrInvalidToken, or ErrUnavailable when the store cannot tell.
func (a *Auth) Authenticate(ctx context.Context, accessToken string) (Claims, error) {
	p, err := a.authenticate(ctx, accessToken)
	if err != nil {
		return Claims{}, err
	}
	return p.claimsCopy(), nil
}

// principal is what authenticating a request learnt about the caller. It is
// also the request's context below the middleware (ClaimsFromContext), so
// that one allocation serves both.
type principal struct {
	context.Context
	claims *Claims // shared with the token cache: read only
	user   userState
}

type principalKey struct{}

// Value implements context.Context.
func (p *principal) Value(key any) any {
	if key == (principalKey{}) {
		return p
	}
	return p.Context.Value(key)
}

// claimsCopy returns the claims as a value the caller may change.
func (p *principal) claimsCopy() Claims {
	c := *p.claims
	c.Audience = slices.Clone(c.Audience)
	return c
}

func (a *Auth) authenticate(ctx context.Context, raw string) (*principal, error) {
	now := a.now()
	claims, err := a.verifiedClaims(raw, now)
	if err != nil {
		return nil, err
	}
	user, err := a.userState(ctx, claims.Subject, now)
	if err != nil {
		return nil, err
	}
	if user.disabled || user.etag != claims.ETag {
		return nil, fmt.Errorf("%w: stale etag", ErrInvalidToken)
	}
	sess, err := a.sessionState(ctx, claims.SessionID, now)
	if err != nil {
		return nil, err
	}
	if !sess.live(now) || sess.userID != claims.Subject {
		return nil, fmt.Errorf("%w: session not live", ErrInvalidToken)
	}
	return &principal{claims: claims, user: user}, nil
}

// verifiedClaims returns the claims of a token whose signature and claims
// check out: from the cache of tokens already verified (re-checking expiry,
// the one check time can change), or by verifying it now.
func (a *Auth) verifiedClaims(raw string, now time.Time) (*Claims, error) {
	c, shard := a.verified.get(raw)
	if c != nil {
		if now.Add(-a.cfg.Leeway).Unix() > c.ExpiresAt {
			return nil, fmt.Errorf("%w: token is expired", ErrInvalidToken)
		}
		return c, nil
	}
	c, err := a.tokens.verify(raw)
	if err != nil {
		return nil, err
	}
	shard.put(raw, c)
	return c, nil
}

// userState is what authenticating needs of a user, cached by id.
type userState struct {
	etag     string
	disabled bool
	roles    []string
}

func (u userState) hasRole(r string) bool { return slices.Contains(u.roles, r) }

// sessionState is what authenticating needs of a session family, cached by
// id.
type sessionState struct {
	userID    string
	expiresAt time.Time // the earlier of ExpiresAt and AbsoluteExpiresAt
	revoked   bool
}

func (s sessionState) live(now time.Time) bool { return !s.revoked && now.Before(s.expiresAt) }

// missingUser is cached for an id the store does not know, so that tokens of
// a deleted user do not reach the store on every request.
var missingUser = userState{disabled: true}

func (a *Auth) userState(ctx context.Context, id string, now time.Time) (userState, error) {
	if s, ok := a.users.get(id, now); ok {
		return s, nil
	}
	u, err := a.store.UserByID(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		a.users.put(id, missingUser, now)
		return missingUser, nil
	case err != nil:
		return userState{}, storeErr("user by id", err)
	}
	return a.cacheUser(&u), nil
}

// cacheUser records u as this process now knows it. Every change this
// process makes to a user goes through here, so its own middleware sees the
// change at once.
func (a *Auth) cacheUser(u *User) userState {
	s := userState{etag: u.ETag, disabled: u.Disabled, roles: slices.Clone(u.Roles)}
	a.users.put(u.ID, s, a.now())
	return s
}

func (a *Auth) sessionState(ctx context.Context, id string, now time.Time) (sessionState, error) {
	if s, ok := a.sessions.get(id, now); ok {
		return s, nil
	}
	s, err := a.store.SessionByID(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		st := sessionState{revoked: true}
		a.sessions.put(id, st, now)
		return st, nil
	case err != nil:
		return sessionState{}, storeErr("session by id", err)
	}
	return a.cacheSession(&s), nil
}

func (a *Auth) cacheSession(s *Session) sessionState {
	exp := s.ExpiresAt
	if s.AbsoluteExpiresAt.Before(exp) {
		exp = s.AbsoluteExpiresAt
	}
	st := sessionState{userID: s.UserID, expiresAt: exp, revoked: !s.RevokedAt.IsZero()}
	a.sessions.put(s.ID, st, a.now())
	return st
}

// forgetSessions marks families revoked in this process's cache.
func (a *Auth) forgetSessions(ids ...string) {
	now := a.now()
	for _, id := range ids {
		a.sessions.put(id, sessionState{revoked: true}, now)
	}
}

// stateCache is a go-cache of what the store said, whose entries also carry
// their own deadline on Config.Now: a test's clock moves them as it moves
// everything else, while go-cache's janitor still frees memory on the wall
// clock.
type stateCache[T any] struct {
	c   *cache.Cache // nil: no cache (Config.CacheTTL < 0)
	ttl time.Duration
}

type stamped[T any] struct {
	v     T
	until int64 // Unix nanoseconds on Config.Now
}

func newStateCache[T any](ttl time.Duration) stateCache[T] {
	if ttl < 0 {
		return stateCache[T]{}
	}
	return stateCache[T]{c: cache.New(ttl, max(2*ttl, time.Minute)), ttl: ttl}
}

func (s stateCache[T]) get(id string, now time.Time) (T, bool) {
	var zero T
	if s.c == nil {
		return zero, false
	}
	v, ok := s.c.Get(id)
	if !ok {
		return zero, false
	}
	e := v.(stamped[T])
	if now.UnixNano() >= e.until {
		return zero, false
	}
	return e.v, true
}

func (s stateCache[T]) put(id string, v T, now time.Time) {
	if s.c != nil {
		s.c.SetDefault(id, stamped[T]{v: v, until: now.Add(s.ttl).UnixNano()})
	}
}
