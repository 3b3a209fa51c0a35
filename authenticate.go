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
	deadline
}

func (u userState) hasRole(r string) bool { return slices.Contains(u.roles, r) }

// sessionState is what authenticating needs of a session family, cached by
// id.
type sessionState struct {
	userID    string
	expiresAt time.Time // the earlier of ExpiresAt and AbsoluteExpiresAt
	revoked   bool
	deadline
}

func (s sessionState) live(now time.Time) bool { return !s.revoked && now.Before(s.expiresAt) }

// missingUser is cached for an id the store does not know, so that tokens of
// a deleted user do not reach the store on every request.
var missingUser = userState{disabled: true}

func (a *Auth) userState(ctx context.Context, id string, now time.Time) (userState, error) {
	if v, ok := a.users.get(id); ok {
		if s := v.(userState); s.fresh(now) {
			return s, nil
		}
	}
	a.maybeSweep()
	u, err := a.store.UserByID(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		s := missingUser
		s.deadline = a.users.deadline(now)
		a.users.put(id, s)
		return s, nil
	case err != nil:
		return userState{}, storeErr("user by id", err)
	}
	return a.cacheUser(&u), nil
}

// cacheUser records u as this process now knows it. Every change this
// process makes to a user goes through here, so its own middleware sees the
// change at once.
func (a *Auth) cacheUser(u *User) userState {
	s := userState{etag: u.ETag, disabled: u.Disabled, roles: slices.Clone(u.Roles), deadline: a.users.deadline(a.now())}
	a.users.put(u.ID, s)
	return s
}

func (a *Auth) sessionState(ctx context.Context, id string, now time.Time) (sessionState, error) {
	if v, ok := a.sessions.get(id); ok {
		if s := v.(sessionState); s.fresh(now) {
			return s, nil
		}
	}
	a.maybeSweep()
	s, err := a.store.SessionByID(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		st := sessionState{revoked: true, deadline: a.sessions.deadline(now)}
		a.sessions.put(id, st)
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
	st := sessionState{userID: s.UserID, expiresAt: exp, revoked: !s.RevokedAt.IsZero(), deadline: a.sessions.deadline(a.now())}
	a.sessions.put(s.ID, st)
	return st
}

// forgetSessions marks families revoked in this process's cache.
func (a *Auth) forgetSessions(ids ...string) {
	st := sessionState{revoked: true, deadline: a.sessions.deadline(a.now())}
	for _, id := range ids {
		a.sessions.put(id, st)
	}
}

// stateCache is a go-cache of what the store said. Each entry carries its
// own deadline on Config.Now, so a test's clock moves it as it moves
// everything else, and no lookup reads the wall clock; go-cache itself
// never expires entries, and the cleanup (maybeSweep) forgets stale ones.
type stateCache struct {
	c   *cache.Cache // nil: no cache (Config.CacheTTL < 0)
	ttl time.Duration
}

// deadline is when a cached state stops being trusted, in Unix nanoseconds
// on Config.Now.
type deadline int64

func (d deadline) fresh(now time.Time) bool { return now.UnixNano() < int64(d) }

func newStateCache(ttl time.Duration) stateCache {
	if ttl < 0 {
		return stateCache{}
	}
	return stateCache{c: cache.New(cache.NoExpiration, 0), ttl: ttl}
}

// deadline is the deadline of a state cached at now.
func (s stateCache) deadline(now time.Time) deadline { return deadline(now.Add(s.ttl).UnixNano()) }

// get returns the state cached under id, fresh or not; the caller checks.
func (s stateCache) get(id string) (any, bool) {
	if s.c == nil {
		return nil, false
	}
	return s.c.Get(id)
}

func (s stateCache) put(id string, v any) {
	if s.c != nil {
		s.c.SetDefault(id, v)
	}
}

// sweep forgets the states that are no longer fresh at now. A state put
// meanwhile may be forgotten too: that costs one store read.
func (s stateCache) sweep(now time.Time) {
	if s.c == nil {
		return
	}
	for id, it := range s.c.Items() {
		if st, ok := it.Object.(interface{ fresh(time.Time) bool }); ok && !st.fresh(now) {
			s.c.Delete(id)
		}
	}
}
