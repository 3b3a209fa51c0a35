package fiberauth

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patrickmn/go-cache"
)

// Authenticating a request: an access token is good when its signature and
// claims verify, its etag is the user's current etag and its session family
// is live. The last two are read through in-process caches.

// Authenticate verifies an access token as Middleware does and answers its
// claims: its encoding (strict base64url), the header (HS256, typ at+jwt,
// no crit), the signature, the claims (iss, aud, client_id, exp, nbf and a
// required iat; exact, unrepeated names), then that its etag is the user's
// current etag and its family is live. docs/api.md lists every rule. It
// fails with ErrInvalidToken, or ErrUnavailable when the store cannot tell.
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
	stamp
}

func (u userState) hasRole(r string) bool { return slices.Contains(u.roles, r) }

func userStateOf(u *User) userState {
	return userState{etag: u.ETag, disabled: u.Disabled, roles: slices.Clone(u.Roles)}
}

// sessionState is what authenticating needs of a session family, cached by
// id.
type sessionState struct {
	userID    string
	expiresAt time.Time // the earlier of ExpiresAt and AbsoluteExpiresAt
	revoked   bool
	stamp
}

func (s sessionState) live(now time.Time) bool { return !s.revoked && now.Before(s.expiresAt) }

func sessionStateOf(s *Session) sessionState {
	exp := s.ExpiresAt
	if s.AbsoluteExpiresAt.Before(exp) {
		exp = s.AbsoluteExpiresAt
	}
	return sessionState{userID: s.UserID, expiresAt: exp, revoked: !s.RevokedAt.IsZero()}
}

// missingUser is cached for an id the store does not know, so that tokens of
// a deleted user do not reach the store on every request.
var missingUser = userState{disabled: true}

// userState returns the cached state of a user, or reads it from the store
// and caches it (unless a change this process made meanwhile got there
// first).
func (a *Auth) userState(ctx context.Context, id string, now time.Time) (userState, error) {
	if v, ok := a.users.get(id); ok {
		if s := v.(userState); s.fresh(now) {
			return s, nil
		}
	}
	a.maybeSweep()
	read := a.users.reading()
	u, err := a.store.UserByID(ctx, id)
	s := missingUser
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return userState{}, storeErr("user by id", err)
	default:
		s = userStateOf(&u)
	}
	s.stamp = a.users.stamp(now, read)
	a.users.fill(id, s)
	return s, nil
}

// cacheUser records a change this process made to u, so that its own
// middleware sees it at once, whatever reads are in flight.
func (a *Auth) cacheUser(u *User) {
	s := userStateOf(u)
	s.stamp = a.users.stamp(a.now(), a.users.changing())
	a.users.set(u.ID, s)
}

// sessionState is userState for a session family.
func (a *Auth) sessionState(ctx context.Context, id string, now time.Time) (sessionState, error) {
	if v, ok := a.sessions.get(id); ok {
		if s := v.(sessionState); s.fresh(now) {
			return s, nil
		}
	}
	a.maybeSweep()
	read := a.sessions.reading()
	s, err := a.store.SessionByID(ctx, id)
	st := sessionState{revoked: true}
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return sessionState{}, storeErr("session by id", err)
	default:
		st = sessionStateOf(&s)
	}
	st.stamp = a.sessions.stamp(now, read)
	a.sessions.fill(id, st)
	return st, nil
}

// cacheSession records a family this process started or rotated.
func (a *Auth) cacheSession(s *Session) {
	st := sessionStateOf(s)
	st.stamp = a.sessions.stamp(a.now(), a.sessions.changing())
	a.sessions.set(s.ID, st)
}

// forgetSessions records families this process revoked.
func (a *Auth) forgetSessions(ids ...string) {
	st := sessionState{revoked: true, stamp: a.sessions.stamp(a.now(), a.sessions.changing())}
	for _, id := range ids {
		a.sessions.set(id, st)
	}
}

// stateCache is a go-cache of what the store said. Each entry carries its
// own deadline on Config.Now, so a test's clock moves it as it moves
// everything else, and no lookup reads the wall clock; go-cache itself
// never expires entries, and the cleanup (maybeSweep) forgets stale ones.
//
// A state read from the store may be out of date by the time it is cached:
// a revocation this process made while the read was in flight must win. So
// every entry carries a generation: a change takes a new one, a read the
// one current when it began, and a read is cached only over an entry no
// newer than it (checked and written under a lock per id).
type stateCache struct {
	c     *cache.Cache // nil: no cache (Config.CacheTTL < 0)
	ttl   time.Duration
	gen   *atomic.Uint64
	locks *[stateLocks]sync.Mutex
}

const stateLocks = 64

// stamp is what every cached state carries.
type stamp struct {
	until int64  // Unix nanoseconds on Config.Now: trusted until then
	gen   uint64 // see stateCache
}

func (s stamp) fresh(now time.Time) bool { return now.UnixNano() < s.until }

func (s stamp) generation() uint64 { return s.gen }

// stamped is what every cached state is.
type stamped interface {
	fresh(now time.Time) bool
	generation() uint64
}

func newStateCache(ttl time.Duration) stateCache {
	if ttl < 0 {
		return stateCache{}
	}
	return stateCache{c: cache.New(cache.NoExpiration, 0), ttl: ttl, gen: new(atomic.Uint64), locks: new([stateLocks]sync.Mutex)}
}

// reading is the generation of a store read about to begin.
func (s stateCache) reading() uint64 {
	if s.c == nil {
		return 0
	}
	return s.gen.Load()
}

// changing is the generation of a change this process has just made.
func (s stateCache) changing() uint64 {
	if s.c == nil {
		return 0
	}
	return s.gen.Add(1)
}

// stamp is the stamp of a state cached at now, of generation gen.
func (s stateCache) stamp(now time.Time, gen uint64) stamp {
	return stamp{until: now.Add(s.ttl).UnixNano(), gen: gen}
}

// get returns the state cached under id, fresh or not; the caller checks.
func (s stateCache) get(id string) (any, bool) {
	if s.c == nil {
		return nil, false
	}
	return s.c.Get(id)
}

func (s stateCache) lock(id string) *sync.Mutex {
	return &s.locks[maphash.String(lockSeed, id)%stateLocks]
}

var lockSeed = maphash.MakeSeed()

// set caches v, a change this process made: it replaces what is there.
func (s stateCache) set(id string, v stamped) {
	if s.c == nil {
		return
	}
	l := s.lock(id)
	l.Lock()
	s.c.SetDefault(id, v)
	l.Unlock()
}

// fill caches v, read from the store, unless what is there is newer.
func (s stateCache) fill(id string, v stamped) {
	if s.c == nil {
		return
	}
	l := s.lock(id)
	l.Lock()
	defer l.Unlock()
	if cur, ok := s.c.Get(id); ok && cur.(stamped).generation() > v.generation() {
		return
	}
	s.c.SetDefault(id, v)
}

// sweep forgets the states that are no longer fresh at now. A state put
// meanwhile may be forgotten too: that costs one store read.
func (s stateCache) sweep(now time.Time) {
	if s.c == nil {
		return
	}
	for id, it := range s.c.Items() {
		if st, ok := it.Object.(stamped); ok && !st.fresh(now) {
			s.c.Delete(id)
		}
	}
}
