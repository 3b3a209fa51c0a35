package fiberauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Authenticating a request: an access token is good when its signature and
// claims verify, its etag is the user's current etag and its session family
// is live. The last two are read through in-process caches.

// Authenticate verifies an access token as Middleware does and answers its
// claims: its encoding (strict base64url), the header (the configured
// algorithm: HS256, or EdDSA or ES256 with the kid of a key in use; typ
// at+jwt; no crit), the signature, the claims (iss, aud, client_id, exp, nbf and a
// required iat; exact, unrepeated names), then that its etag is the user's
// current etag and its family is live. docs/api.md lists every rule. It
// fails with ErrInvalidToken, or ErrUnavailable when the store cannot tell.
func (a *Auth) Authenticate(ctx context.Context, accessToken string) (_ Claims, err error) {
	ctx, end := a.trace(ctx, "Authenticate")
	defer func() { end(err) }()
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
	// auth is the Auth that authenticated it (nil: a Verifier), so that
	// another Auth's middleware on the same request does not take it for
	// its own.
	auth *Auth
	// fromCookie: the token came from a cookie (TokenLookup), so unsafe
	// methods need the CSRF token, checked again if the request is routed
	// anew with another method.
	fromCookie bool
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

// authenticate returns the caller of a request whose context is ctx (which
// the principal wraps).
func (a *Auth) authenticate(ctx context.Context, raw string) (*principal, error) {
	now := a.now()
	t, err := a.verifiedToken(raw, now)
	if err != nil {
		return nil, err
	}
	// The entries that last accepted the token, while they are what the
	// lookups below would find: entries do not change, so they still
	// accept it. The family's expiry is the one thing that time changes.
	if m := t.memo.Load(); m != nil && m.user.current(now) && m.session.current(now) && m.session.v.live(now) {
		if ctx == context.Background() {
			return &m.p, nil
		}
		return &principal{Context: ctx, claims: &t.claims, user: m.user.v, auth: a}, nil
	}
	// The family first: a change that ended it (a password change on
	// another device, DisableUser) changed the etag too, and the client
	// must hear "revoked" (sign in), not "stale" (refresh).
	session, err := a.checkSession(ctx, t, now)
	if err != nil {
		return nil, err
	}
	user, err := a.userFor(ctx, t, now)
	if err != nil {
		return nil, err
	}
	if t.cached && user.current(now) && session.current(now) {
		t.memo.Store(&tokenMemo{user: user, session: session,
			p: principal{Context: context.Background(), claims: &t.claims, user: user.v, auth: a}})
	}
	return &principal{Context: ctx, claims: &t.claims, user: user.v, auth: a}, nil
}

// verifiedToken returns the verification of a token whose signature and
// claims check out: from the cache of tokens already verified (re-checking
// what time can change: expiry, and whether the key that verified it still
// verifies, as it stops when it has retired and its tokens' time is up, or
// leaves the store), or by verifying it now.
func (a *Auth) verifiedToken(raw string, now time.Time) (*cachedToken, error) {
	t, shard := a.verified.get(raw)
	if t != nil {
		// The parser's test: refused from exp + Leeway on.
		if !now.Before(time.Unix(t.claims.ExpiresAt, 0).Add(a.cfg.Leeway)) {
			return nil, fmt.Errorf("%w: %w", ErrInvalidToken, jwt.ErrTokenExpired)
		}
		if k := t.key; k != nil {
			// A reload as the keys age, as on a miss: it is what tells k it
			// has gone.
			a.tokens.ring.keys(now)
			if !k.live(now) {
				return nil, fmt.Errorf("%w: %w", ErrInvalidToken, errKeyRetired)
			}
		}
		return t, nil
	}
	c, k, err := a.tokens.verify(raw)
	if err != nil {
		return nil, err
	}
	return shard.put(&cachedToken{raw: raw, claims: *c, key: k}), nil
}

// The caches and other instances. What the caches hold may be behind the
// store: another instance may have changed the user or started or rotated
// the family since it was read. So a cached state refuses a token only when
// it cannot be behind that token (an accepted token is always checked
// against the newest state this process knows of, changes it was told of
// included):
//   - a revoked family, or a family of another user, stays so;
//   - otherwise the state must be no older than the token: read after the
//     request arrived, or read when the token was already at least
//     tokenSkew old (the token's iat is in whole seconds, and instances'
//     clocks differ a little). If not, the store is read again before
//     refusing, by a read that can have seen the token: concurrent requests
//     with the same etag (or the same token, for a family) share one.
//
// Every user and family the flows read or write is cached too (readUser,
// readSession, cacheUser, cacheSession), so a token an instance has just
// issued is accepted there without another read. A family written is
// cached as a read begun before the write would be: a revocation this
// process makes or hears of while the write is on its way wins.

// tokenSkew bounds how much older than a token's iat the token may really
// be: iat is rounded down to the second, and the issuing instance's clock
// may be up to a second ahead of this one's.
const tokenSkew = 2 * time.Second

// userFor returns the entry of the token's user if it accepts the token
// (its etag, not disabled), or ErrInvalidToken.
func (a *Auth) userFor(ctx context.Context, t *cachedToken, now time.Time) (*entry[userState], error) {
	c := &t.claims
	arrived := a.users.generation()
	e, ok := a.users.get(c.Subject, now)
	if !ok {
		var err error
		if e, err = a.loadUser(ctx, c.Subject, ""); err != nil {
			return nil, err
		}
	}
	if !e.v.accepts(c) && e.gen <= arrived && mayPrecede(e.at, c) {
		var err error
		if e, err = a.loadUser(ctx, c.Subject, c.ETag); err != nil {
			return nil, err
		}
	}
	if e.v.disabled {
		return nil, fmt.Errorf("%w: %w: user disabled or gone", ErrInvalidToken, errTokenRevoked)
	}
	if !e.v.accepts(c) {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, errTokenStale)
	}
	return e, nil
}

// checkSession returns the entry of the token's family if it is live and
// the user's, or ErrInvalidToken.
func (a *Auth) checkSession(ctx context.Context, t *cachedToken, now time.Time) (*entry[sessionState], error) {
	c := &t.claims
	arrived := a.sessions.generation()
	e, ok := a.sessions.get(c.SessionID, now)
	if !ok {
		var err error
		if e, err = a.loadSession(ctx, c.SessionID, ""); err != nil {
			return nil, err
		}
	}
	// Revocation is final; only an expiry can be behind the store (a
	// rotation elsewhere moved it).
	if !e.v.revoked && !e.v.live(now) && e.gen <= arrived && mayPrecede(e.at, c) {
		var err error
		if e, err = a.loadSession(ctx, c.SessionID, c.ID); err != nil {
			return nil, err
		}
	}
	if !e.v.accepts(c, now) {
		return nil, fmt.Errorf("%w: %w: session not live", ErrInvalidToken, errTokenRevoked)
	}
	return e, nil
}

// mayPrecede reports whether a state learnt at (Unix nanoseconds) may
// predate the token: whether the token may have been issued after it.
func mayPrecede(at int64, c *Claims) bool {
	return time.Unix(c.IssuedAt, 0).Add(tokenSkew).UnixNano() > at
}

// userState is what authenticating needs of a user, cached by id.
type userState struct {
	etag     string
	disabled bool
	roles    []string
}

func (u userState) hasRole(r string) bool { return slices.Contains(u.roles, r) }

func (u userState) accepts(c *Claims) bool { return !u.disabled && u.etag == c.ETag }

func userStateOf(u *User) userState {
	return userState{etag: u.ETag, disabled: u.Disabled, roles: slices.Clone(u.Roles)}
}

// missingUser is cached for an id the store does not know, so that tokens of
// a deleted user do not reach the store on every request.
var missingUser = userState{disabled: true}

// sessionState is what authenticating needs of a session family, cached by
// id.
type sessionState struct {
	userID    string
	expiresAt time.Time // the earlier of ExpiresAt and AbsoluteExpiresAt
	revoked   bool
	// What Refresh needs to rotate the family on the cache's word
	// (refreshCached); none of them changes but ExpiresAt, which only a
	// rotation moves.
	sliding           bool
	idleExpiresAt     time.Time // Session.ExpiresAt
	absoluteExpiresAt time.Time
}

func (s sessionState) live(now time.Time) bool { return !s.revoked && now.Before(s.expiresAt) }

// accepts reports whether the family is live and the token's user's.
func (s sessionState) accepts(c *Claims, now time.Time) bool {
	return s.live(now) && s.userID == c.Subject
}

func sessionStateOf(s *Session) sessionState {
	exp := s.ExpiresAt
	if s.AbsoluteExpiresAt.Before(exp) {
		exp = s.AbsoluteExpiresAt
	}
	return sessionState{userID: s.UserID, expiresAt: exp, revoked: !s.RevokedAt.IsZero(),
		sliding: s.Sliding, idleExpiresAt: s.ExpiresAt, absoluteExpiresAt: s.AbsoluteExpiresAt}
}

// goneSession is cached for a family revoked, or unknown to the store.
var goneSession = sessionState{revoked: true}

// loadUser reads the user's state from the store, sharing the read with
// concurrent callers of the same key, and caches it.
func (a *Auth) loadUser(ctx context.Context, id, key string) (*entry[userState], error) {
	a.maybeSweep()
	e, err := a.users.load(ctx, id, key, a.now, func(ctx context.Context) (userState, error) {
		u, err := a.store.UserByID(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			return missingUser, nil
		case err != nil:
			return userState{}, storeErr("user by id", err)
		}
		return userStateOf(&u), nil
	})
	return e, err
}

// loadSession is loadUser for a session family.
func (a *Auth) loadSession(ctx context.Context, id, key string) (*entry[sessionState], error) {
	a.maybeSweep()
	return a.sessions.load(ctx, id, key, a.now, func(ctx context.Context) (sessionState, error) {
		s, err := a.store.SessionByID(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			return goneSession, nil
		case err != nil:
			return sessionState{}, storeErr("session by id", err)
		}
		return sessionStateOf(&s), nil
	})
}

// readUser is a Store lookup of a user (by, with its key) for the flows:
// what it reads is cached.
func (a *Auth) readUser(ctx context.Context, by func(context.Context, string) (User, error), key string) (User, error) {
	gen := a.users.begin()
	at := a.now()
	u, err := by(ctx, key)
	if err == nil {
		a.users.note(u.ID, userStateOf(&u), at, gen)
	}
	return u, err
}

// readSession is Store.SessionByID for the flows: what it reads is cached.
func (a *Auth) readSession(ctx context.Context, id string) (Session, error) {
	gen := a.sessions.begin()
	at := a.now()
	s, err := a.store.SessionByID(ctx, id)
	if err == nil {
		a.sessions.note(s.ID, sessionStateOf(&s), at, gen)
	}
	return s, err
}

// readSessionWithUser is SessionUserReader.SessionWithUser for Refresh:
// what it reads is cached, as readSession and readUser cache it.
func (a *Auth) readSessionWithUser(ctx context.Context, id string) (Session, User, error) {
	sgen, ugen := a.sessions.begin(), a.users.begin()
	at := a.now()
	s, u, err := a.sessionUsers.SessionWithUser(ctx, id)
	if err == nil {
		a.sessions.note(s.ID, sessionStateOf(&s), at, sgen)
		a.users.note(u.ID, userStateOf(&u), at, ugen)
	}
	return s, u, err
}

// cacheUser records a change this process made to u, so that its own
// middleware sees it at once, whatever reads are in flight.
func (a *Auth) cacheUser(u *User) { a.users.set(u.ID, userStateOf(u), a.now()) }

// sessionWrite is the generation and time of a store write of a family
// about to begin, for cacheSession.
func (a *Auth) sessionWrite() (uint64, time.Time) { return a.sessions.begin(), a.now() }

// cacheSession records a family this process started or rotated by a write
// that began at gen and at (sessionWrite), as a read begun then would be:
// unless a change of the family made or heard of since is newer (a logout
// that landed between the write and this), whose state the write's answer
// is then behind; the next request reads the store instead.
func (a *Auth) cacheSession(s *Session, gen uint64, at time.Time) {
	a.sessions.note(s.ID, sessionStateOf(s), at, gen)
}

// forgetSessions records families this process revoked.
func (a *Auth) forgetSessions(ids ...string) {
	now := a.now()
	for _, id := range ids {
		a.sessions.set(id, goneSession, now)
	}
}
