package fiberauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
)

// Session families: issuing the pairs of a family, refreshing it (rotation,
// grace-window replays, reuse detection), and ending it.

// Tokens is a signed-in session: a new access token and the current refresh
// token of one of the user's session families.
type Tokens struct {
	AccessToken     string
	AccessExpiresAt time.Time
	// RefreshToken is single use: Refresh answers the next pair for it.
	RefreshToken string
	// User is the user as the access token carries it (its etag).
	User User
	// Session is the family; Session.ExpiresAt is when RefreshToken
	// expires.
	Session Session
}

// issuedPair is the tokens of one family's step, kept sealed for grace
// replays (the JSON names keep the sealed form short).
type issuedPair struct {
	Access        string    `json:"a"`
	Refresh       string    `json:"r"`
	AccessExpires time.Time `json:"e"`
}

func (p issuedPair) tokens(u *User, s *Session) Tokens {
	return Tokens{AccessToken: p.Access, AccessExpiresAt: p.AccessExpires, RefreshToken: p.Refresh, User: *u, Session: *s}
}

// newSession builds a family for u (with u's current etag) and its first
// pair, without storing it.
func (a *Auth) newSession(ctx context.Context, u *User, sliding bool, now time.Time) (Session, issuedPair, error) {
	id := randomID()
	refresh := a.newRefreshToken(id, 0)
	cl := ClientFrom(ctx)
	s := Session{
		ID:                id,
		UserID:            u.ID,
		TokenHash:         hashToken(refresh),
		Sliding:           sliding,
		CreatedAt:         now,
		LastUsedAt:        now,
		ExpiresAt:         now.Add(a.cfg.RefreshIdleTTL),
		AbsoluteExpiresAt: now.Add(a.cfg.RefreshMaxTTL),
		UserAgent:         cl.UserAgent,
		IP:                cl.IP,
	}
	access, claims, err := a.tokens.sign(u.ID, s.ID, u.ETag, now)
	if err != nil {
		return Session{}, issuedPair{}, err
	}
	return s, issuedPair{Access: access, Refresh: refresh, AccessExpires: claims.Expiry()}, nil
}

// startSession stores a new family for u and answers its first pair.
func (a *Auth) startSession(ctx context.Context, u *User, sliding bool) (Tokens, error) {
	s, p, err := a.newSession(ctx, u, sliding, a.now())
	if err != nil {
		return Tokens{}, err
	}
	gen, at := a.sessionWrite()
	if err := a.store.CreateSession(ctx, s); err != nil {
		return Tokens{}, storeErr("create session", err)
	}
	a.cacheSession(&s, gen, at)
	a.maybeSweep()
	return p.tokens(u, &s), nil
}

// newRotation makes the next pair of family s for u (with u's etag) and the
// Rotation that records it, from s's current token: token, whose pair is
// sealed for grace replays, or, when token is "", the one s holds (as
// read: the rotation fails with ErrNotCurrent if the family has moved on
// since), without a replay.
func (a *Auth) newRotation(u *User, s *Session, token string, now time.Time) (Rotation, issuedPair, error) {
	gen := s.Generation + 1
	refresh := a.newRefreshToken(s.ID, gen)
	access, claims, err := a.tokens.sign(u.ID, s.ID, u.ETag, now)
	if err != nil {
		return Rotation{}, issuedPair{}, err
	}
	p := issuedPair{Access: access, Refresh: refresh, AccessExpires: claims.Expiry()}
	r := Rotation{SessionID: s.ID, From: s.TokenHash, To: hashToken(refresh), Generation: gen, At: now, ExpiresAt: s.ExpiresAt}
	if token != "" {
		r.From = hashToken(token)
		if r.Replay, err = a.sealPair(token, p); err != nil {
			return Rotation{}, issuedPair{}, err
		}
	}
	if s.Sliding {
		r.ExpiresAt = now.Add(a.cfg.RefreshIdleTTL)
		if r.ExpiresAt.After(s.AbsoluteExpiresAt) {
			r.ExpiresAt = s.AbsoluteExpiresAt
		}
	}
	return r, p, nil
}

// RefreshInput is a refresh token as a client presents it.
type RefreshInput struct {
	RefreshToken string
	// RequireCSRF says the token came in a cookie, which a browser sends by
	// itself: the call must then carry the family's CSRF token (the
	// csrf_token of cookie-mode token responses) in CSRFToken, or it fails
	// with ErrCSRF and changes nothing, not even a reuse revocation.
	RequireCSRF bool
	CSRFToken   string
	// Keep is the non-rotating policy (ProfileCognito's): the answer has a
	// new access token and no new refresh token, which stays the family's
	// until the family expires or is revoked. An older token of the family
	// (rotated meanwhile by a refresh without Keep: a copy was used) ends
	// the family with ErrRefreshTokenReused, grace or not. A sliding
	// family does not slide on such a refresh (nothing is written).
	Keep bool
}

// maxRefreshTokenLength bounds the refresh tokens and challenge sessions
// looked up (ours are about 90–110 and 43 bytes).
const maxRefreshTokenLength = 512

func (in *RefreshInput) check() error {
	switch {
	case in.RefreshToken == "":
		return fieldErr("refresh_token", "missing", "A refresh token is required.")
	case len(in.RefreshToken) > maxRefreshTokenLength:
		return ErrInvalidGrant
	}
	return nil
}

// Refresh rotates a refresh token: it answers the family's next pair, with
// the user's current etag. The same token presented again within
// Config.ReuseGrace answers the same pair (a client retrying over a bad
// network); later, or for any older token of the family, it is reuse: the
// family is revoked and Refresh fails with ErrRefreshTokenReused. A token
// that is unknown, expired or revoked, or whose user is disabled, fails with
// ErrInvalidGrant.
func (a *Auth) Refresh(ctx context.Context, in RefreshInput) (_ Tokens, err error) {
	ctx, end := a.trace(ctx, "Refresh")
	defer func() { end(err) }()
	sid, gen, err := a.refreshTokenOf(in)
	if err != nil {
		return Tokens{}, err
	}
	if in.Keep {
		return a.refreshKept(ctx, in, sid, gen)
	}
	if t, done, err := a.refreshCached(ctx, in, sid, gen); done {
		return t, err
	}
	s, u, err := a.familyWithUser(ctx, sid)
	if err != nil {
		return Tokens{}, err
	}
	hash := hashToken(in.RefreshToken)
	if err := a.checkCSRF(&s, in); err != nil {
		return Tokens{}, err
	}
	now := a.now()
	if !s.Live(now) {
		return Tokens{}, ErrInvalidGrant
	}
	if u == nil {
		read, err := a.readUser(ctx, a.store.UserByID, s.UserID)
		if errors.Is(err, ErrNotFound) {
			return Tokens{}, ErrInvalidGrant
		}
		if err != nil {
			return Tokens{}, storeErr("user by id", err)
		}
		u = &read
	}
	if u.Disabled {
		return Tokens{}, ErrInvalidGrant
	}
	if equalHash(s.TokenHash, hash) {
		t, err := a.rotate(ctx, u, &s, in.RefreshToken, now)
		if !errors.Is(err, ErrNotCurrent) {
			return t, err
		}
		// A concurrent refresh of the same token won: answer as a replay.
		if s, err = a.readSession(ctx, s.ID); err != nil {
			return Tokens{}, storeErr("session by id", err)
		}
		if !s.Live(now) {
			return Tokens{}, ErrInvalidGrant
		}
	}
	previous := equalHash(s.PrevTokenHash, hash)
	if previous && now.Sub(s.RotatedAt) <= a.cfg.ReuseGrace {
		p, err := a.openPair(in.RefreshToken, s.Replay)
		if err != nil {
			return Tokens{}, err
		}
		return p.tokens(u, &s), nil
	}
	if !previous && gen >= s.Generation {
		// Ours (its tag says so) but never handed out: a rotation that
		// failed. Nothing to answer, and nothing stolen.
		return Tokens{}, ErrInvalidGrant
	}
	// An old token after the grace window: someone holds a copy. End the
	// family so that neither copy works.
	if err := a.revokeSession(ctx, s.ID); err != nil {
		return Tokens{}, err
	}
	a.emit(ctx, Event{Type: EventRefreshReused, UserID: s.UserID, SessionID: s.ID})
	return Tokens{}, ErrRefreshTokenReused
}

// refreshKept is Refresh under the non-rotating policy (RefreshInput.Keep):
// the family's current token answers a new access token for the user as
// they are now; nothing is written. A token the family has moved on from
// (someone rotated it on another mount: a kept client never does) is
// reuse, as on the rotating path, grace or not: the family ends, so that
// neither the client nor whoever rotated its copy goes on.
func (a *Auth) refreshKept(ctx context.Context, in RefreshInput, sid string, gen int64) (Tokens, error) {
	s, err := a.readSession(ctx, sid)
	if errors.Is(err, ErrNotFound) {
		return Tokens{}, ErrInvalidGrant
	}
	if err != nil {
		return Tokens{}, storeErr("session by id", err)
	}
	if err := a.checkCSRF(&s, in); err != nil {
		return Tokens{}, err
	}
	now := a.now()
	if !s.Live(now) {
		return Tokens{}, ErrInvalidGrant
	}
	if !equalHash(s.TokenHash, hashToken(in.RefreshToken)) {
		if gen >= s.Generation {
			return Tokens{}, ErrInvalidGrant // ours, never handed out
		}
		if err := a.revokeSession(ctx, s.ID); err != nil {
			return Tokens{}, err
		}
		a.emit(ctx, Event{Type: EventRefreshReused, UserID: s.UserID, SessionID: s.ID})
		return Tokens{}, ErrRefreshTokenReused
	}
	u, err := a.readUser(ctx, a.store.UserByID, s.UserID)
	if errors.Is(err, ErrNotFound) {
		return Tokens{}, ErrInvalidGrant
	}
	if err != nil {
		return Tokens{}, storeErr("user by id", err)
	}
	if u.Disabled {
		return Tokens{}, ErrInvalidGrant
	}
	t, err := a.accessFor(&u, &s, now)
	if err != nil {
		return Tokens{}, err
	}
	a.emit(ctx, Event{Type: EventRefresh, UserID: u.ID, SessionID: s.ID})
	return t, nil
}

// accessFor is a new access token of family s for u, with no new refresh
// token (Tokens.RefreshToken is "": the client keeps its own).
func (a *Auth) accessFor(u *User, s *Session, now time.Time) (Tokens, error) {
	access, claims, err := a.tokens.sign(u.ID, s.ID, u.ETag, now)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, AccessExpiresAt: claims.Expiry(), User: *u, Session: *s}, nil
}

// refreshCached is Refresh on the word of this instance's caches, when the
// store has UserRotator and the token's family and its user are cached
// (live, enabled): the new pair is made from what they say (the user's
// etag; the family's user and expiry rule, which never change) and written
// by one store call that checks, as it writes, that the token is current,
// the family live, and the user still the family's, at that etag and
// enabled. So a refresh on a warm cache is one statement. done is false
// when the caches cannot tell or the store's check fails (the cache was
// behind, or the token is not current: a replay, reuse, or a family
// revoked elsewhere): the caller then reads and decides.
func (a *Auth) refreshCached(ctx context.Context, in RefreshInput, sid string, gen int64) (t Tokens, done bool, err error) {
	if a.userRotator == nil {
		return Tokens{}, false, nil
	}
	now := a.now()
	se, ok := a.sessions.get(sid, now)
	if !ok || !se.v.live(now) {
		return Tokens{}, false, nil
	}
	ue, ok := a.users.get(se.v.userID, now)
	if !ok || ue.v.disabled {
		return Tokens{}, false, nil
	}
	s := Session{ID: sid, UserID: se.v.userID, Generation: gen, Sliding: se.v.sliding,
		ExpiresAt: se.v.idleExpiresAt, AbsoluteExpiresAt: se.v.absoluteExpiresAt}
	if err := a.checkCSRF(&s, in); err != nil {
		return Tokens{}, true, err
	}
	r, p, err := a.newRotation(&User{ID: s.UserID, ETag: ue.v.etag}, &s, in.RefreshToken, now)
	if err != nil {
		return Tokens{}, true, err
	}
	wgen, at := a.sessionWrite()
	ns, u, err := a.userRotator.RotateSessionIfUser(ctx, r, s.UserID, ue.v.etag)
	switch {
	case errors.Is(err, ErrNotCurrent) || errors.Is(err, ErrNotFound):
		return Tokens{}, false, nil
	case err != nil:
		return Tokens{}, true, storeErr("rotate session", err)
	}
	a.cacheSession(&ns, wgen, at)
	a.maybeSweep()
	a.emit(ctx, Event{Type: EventRefresh, UserID: u.ID, SessionID: sid})
	return p.tokens(&u, &ns), true, nil
}

// rotate replaces s's current token (token) with a new one and answers the
// new pair. ErrNotCurrent: another rotation of token won.
func (a *Auth) rotate(ctx context.Context, u *User, s *Session, token string, now time.Time) (Tokens, error) {
	r, p, err := a.newRotation(u, s, token, now)
	if err != nil {
		return Tokens{}, err
	}
	gen, at := a.sessionWrite()
	ns, err := a.store.RotateSession(ctx, r)
	if err != nil {
		return Tokens{}, storeErr("rotate session", err)
	}
	a.cacheSession(&ns, gen, at)
	a.maybeSweep()
	a.emit(ctx, Event{Type: EventRefresh, UserID: u.ID, SessionID: s.ID})
	return p.tokens(u, &ns), nil
}

// familyOf finds the family in's refresh token was issued for, the token's
// hash and its generation; ErrInvalidGrant for a token fiberauth did not
// issue or a family that is gone.
func (a *Auth) familyOf(ctx context.Context, in RefreshInput) (Session, []byte, int64, error) {
	sid, gen, err := a.refreshTokenOf(in)
	if err != nil {
		return Session{}, nil, 0, err
	}
	s, err := a.family(ctx, sid)
	if err != nil {
		return Session{}, nil, 0, err
	}
	return s, hashToken(in.RefreshToken), gen, nil
}

// family reads the family sid; ErrInvalidGrant when it is gone.
func (a *Auth) family(ctx context.Context, sid string) (Session, error) {
	s, err := a.readSession(ctx, sid)
	if errors.Is(err, ErrNotFound) {
		return Session{}, ErrInvalidGrant
	}
	if err != nil {
		return Session{}, storeErr("session by id", err)
	}
	return s, nil
}

// familyWithUser is family for Refresh, which needs the family's user
// too: where the store reads both in one step (SessionUserReader), the user
// comes with the family. It is nil otherwise, and when that read finds
// nothing: family then tells an unknown family from an unknown user, and
// the caller reads the user as it would without the capability.
func (a *Auth) familyWithUser(ctx context.Context, sid string) (Session, *User, error) {
	if a.sessionUsers == nil {
		s, err := a.family(ctx, sid)
		return s, nil, err
	}
	s, u, err := a.readSessionWithUser(ctx, sid)
	if errors.Is(err, ErrNotFound) {
		s, err := a.family(ctx, sid)
		return s, nil, err
	}
	if err != nil {
		return Session{}, nil, storeErr("session with user", err)
	}
	return s, &u, nil
}

// refreshTokenOf checks in and returns the family and generation of its
// refresh token; ErrInvalidGrant for a token fiberauth did not issue.
func (a *Auth) refreshTokenOf(in RefreshInput) (string, int64, error) {
	if err := in.check(); err != nil {
		return "", 0, err
	}
	sid, gen, ok := a.parseRefreshToken(in.RefreshToken)
	if !ok {
		return "", 0, ErrInvalidGrant
	}
	return sid, gen, nil
}

// newRefreshToken is a refresh token of family sid at generation gen:
// "<sid>.<gen>.<nonce>.<tag>", where the nonce is 256 random bits and the
// tag, an HMAC under a key derived from the secret, proves fiberauth issued
// it for that family and generation. So a token older than the family's
// last two is known for reuse from its generation, without the store
// keeping every hash a family held, and a made-up one revokes nothing.
func (a *Auth) newRefreshToken(sid string, gen int64) string {
	body := sid + "." + strconv.FormatInt(gen, 10) + "." + randomToken()
	return body + "." + a.refreshTag(body)
}

// refreshTag is the tag of a refresh token's body. Every refresh makes two
// (the token's, checked, and the next one's), so the keyed HMACs are pooled
// rather than keyed anew each time.
func (a *Auth) refreshTag(body string) string {
	m := a.refreshMACs.Get().(hash.Hash)
	defer a.refreshMACs.Put(m)
	m.Reset()
	m.Write(stringBytes(body))
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0])[:16])
}

// parseRefreshToken returns the family and generation of a refresh token
// fiberauth issued, and false for anything else.
func (a *Auth) parseRefreshToken(token string) (sid string, gen int64, ok bool) {
	body, tag, found := cutLast(token, ".")
	if !found || !hmac.Equal([]byte(tag), []byte(a.refreshTag(body))) {
		return "", 0, false
	}
	sid, rest, _ := strings.Cut(body, ".")
	g, _, _ := strings.Cut(rest, ".")
	gen, err := strconv.ParseInt(g, 10, 64)
	return sid, gen, err == nil && sid != "" && gen >= 0
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// liveSessionByToken finds the live family that holds token as its current
// or previous refresh token and passes in's CSRF check; ErrInvalidGrant
// when there is none.
func (a *Auth) liveSessionByToken(ctx context.Context, in RefreshInput) (Session, error) {
	s, hash, _, err := a.familyOf(ctx, in)
	if err != nil {
		return Session{}, err
	}
	if !s.Live(a.now()) || !(equalHash(s.TokenHash, hash) || equalHash(s.PrevTokenHash, hash)) {
		return Session{}, ErrInvalidGrant
	}
	return s, a.checkCSRF(&s, in)
}

// LogoutInput names the session family a logout ends.
type LogoutInput struct {
	// Caller is the verified access token of the request (ClaimsFrom,
	// Authenticate): its family ends.
	Caller *Claims
	// Refresh names the family by one of its refresh tokens instead, when
	// Caller is nil (a browser in cookie mode holds only that).
	Refresh RefreshInput
}

// Logout ends one session family: its refresh tokens stop working, and so
// do its access tokens, at once in this process and in others whose store
// has Notifier (within Config.CacheTTL in others otherwise). A refresh
// token whose family is not live fails with ErrInvalidGrant.
func (a *Auth) Logout(ctx context.Context, in LogoutInput) (err error) {
	ctx, end := a.trace(ctx, "Logout")
	defer func() { end(err) }()
	var s Session
	if in.Caller != nil {
		s, err = a.callerSession(ctx, *in.Caller)
	} else {
		s, err = a.liveSessionByToken(ctx, in.Refresh)
	}
	if err != nil {
		return err
	}
	if err := a.revokeSession(ctx, s.ID); err != nil {
		return err
	}
	a.emit(ctx, Event{Type: EventLogout, UserID: s.UserID, SessionID: s.ID})
	return nil
}

// callerSession returns the caller's session family: ErrInvalidToken unless
// it is the caller's user's and live. The middleware has checked as much
// for a request; a Go caller's Claims are checked here.
func (a *Auth) callerSession(ctx context.Context, caller Claims) (Session, error) {
	if err := checkCaller(caller); err != nil {
		return Session{}, err
	}
	s, err := a.readSession(ctx, caller.SessionID)
	if errors.Is(err, ErrNotFound) {
		return Session{}, fmt.Errorf("%w: %w: unknown session", ErrInvalidToken, errTokenRevoked)
	}
	if err != nil {
		return Session{}, storeErr("session by id", err)
	}
	if s.UserID != caller.Subject || !s.Live(a.now()) {
		return Session{}, fmt.Errorf("%w: %w: session not the caller's or not live", ErrInvalidToken, errTokenRevoked)
	}
	return s, nil
}

// RevokeRefreshToken ends the family of a refresh token (RFC 7009). A token
// that is unknown or whose family is not live is no error: the answer tells
// nothing about it.
func (a *Auth) RevokeRefreshToken(ctx context.Context, in RefreshInput) (err error) {
	ctx, end := a.trace(ctx, "RevokeRefreshToken")
	defer func() { end(err) }()
	s, err := a.liveSessionByToken(ctx, in)
	if errors.Is(err, ErrInvalidGrant) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := a.revokeSession(ctx, s.ID); err != nil {
		return err
	}
	a.emit(ctx, Event{Type: EventSessionRevoked, UserID: s.UserID, SessionID: s.ID})
	return nil
}

// LogoutAll ends every session family of the caller's user.
func (a *Auth) LogoutAll(ctx context.Context, caller Claims) (err error) {
	ctx, end := a.trace(ctx, "LogoutAll")
	defer func() { end(err) }()
	if err := checkCaller(caller); err != nil {
		return err
	}
	if err := a.revokeAllSessions(ctx, caller.Subject); err != nil {
		return err
	}
	a.emit(ctx, Event{Type: EventLogoutAll, UserID: caller.Subject, SessionID: caller.SessionID})
	return nil
}

// Sessions returns the caller's user's live session families, oldest
// first.
func (a *Auth) Sessions(ctx context.Context, caller Claims) (_ []Session, err error) {
	ctx, end := a.trace(ctx, "Sessions")
	defer func() { end(err) }()
	if err := checkCaller(caller); err != nil {
		return nil, err
	}
	list, err := a.store.ListSessions(ctx, caller.Subject, a.now())
	return list, storeErr("list sessions", err)
}

// EndSession ends one of the caller's user's live families. Another user's
// family, an unknown id or a family that is no longer live fail alike with
// ErrNotFound.
func (a *Auth) EndSession(ctx context.Context, caller Claims, sessionID string) (err error) {
	ctx, end := a.trace(ctx, "EndSession")
	defer func() { end(err) }()
	if err := checkCaller(caller); err != nil {
		return err
	}
	if !validID(sessionID) {
		return ErrNotFound
	}
	s, err := a.readSession(ctx, sessionID)
	if err != nil {
		return storeErr("session by id", err)
	}
	if s.UserID != caller.Subject || !s.Live(a.now()) {
		return ErrNotFound
	}
	if err := a.revokeSession(ctx, s.ID); err != nil {
		return err
	}
	a.emit(ctx, Event{Type: EventSessionRevoked, UserID: s.UserID, SessionID: s.ID})
	return nil
}

// Me returns the caller's user and session family, as they are now.
func (a *Auth) Me(ctx context.Context, caller Claims) (_ User, _ Session, err error) {
	ctx, end := a.trace(ctx, "Me")
	defer func() { end(err) }()
	s, err := a.callerSession(ctx, caller)
	if err != nil {
		return User{}, Session{}, err
	}
	u, err := a.callerUser(ctx, caller.Subject)
	if err != nil {
		return User{}, Session{}, err
	}
	return u, s, nil
}

// maxIDLength bounds the user and session ids a caller may name (ours are
// 22 bytes; a host's store may have longer ones).
const maxIDLength = 256

// validID reports whether id could be a user or session id: not empty,
// not too long, printable.
func validID(id string) bool {
	return id != "" && len(id) <= maxIDLength && validText(id)
}

// checkCaller refuses Claims that no access token of ours carries, before
// they reach the store: the signed-in flows trust the Claims they are
// given (from Authenticate or ClaimsFrom) to name the caller.
func checkCaller(c Claims) error {
	if !validID(c.Subject) || !validID(c.SessionID) {
		return fmt.Errorf("%w: malformed caller", ErrInvalidToken)
	}
	return nil
}

// revokeSession ends one family in the store and in this process's cache.
func (a *Auth) revokeSession(ctx context.Context, id string) error {
	if err := a.store.RevokeSession(ctx, id, a.now()); err != nil && !errors.Is(err, ErrNotFound) {
		return storeErr("revoke session", err)
	}
	a.forgetSessions(id)
	return nil
}

// csrfToken is the OWASP signed double-submit token of a session family: an
// HMAC of its id under a key derived from the secret, the same for the
// family's life, so it survives rotation and dies with the family.
func (a *Auth) csrfToken(sessionID string) string {
	m := hmac.New(sha256.New, a.csrfKey)
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF compares in's CSRF token with the family's in constant time,
// when in requires it.
func (a *Auth) checkCSRF(s *Session, in RefreshInput) error {
	if !in.RequireCSRF {
		return nil
	}
	if in.CSRFToken == "" || !hmac.Equal([]byte(in.CSRFToken), []byte(a.csrfToken(s.ID))) {
		return fmt.Errorf("%w: session %s", ErrCSRF, s.ID)
	}
	return nil
}

// replayAEAD returns the cipher that seals the pair a rotation of oldToken
// issued. Its key needs both the server's replay key and the old token, which
// the store holds only as a hash: a copy of the database alone opens nothing.
func (a *Auth) replayAEAD(oldToken string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, []byte(oldToken), a.replayKey, "fiberauth v1 replay", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (a *Auth) sealPair(oldToken string, p issuedPair) ([]byte, error) {
	aead, err := a.replayAEAD(oldToken)
	if err != nil {
		return nil, fmt.Errorf("%w: sealing replay: %w", ErrUnavailable, err)
	}
	plain, err := p.appendJSON(make([]byte, 0, 64+len(p.Access)+len(p.Refresh)))
	if err != nil {
		return nil, fmt.Errorf("%w: sealing replay: %w", ErrUnavailable, err)
	}
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	_, _ = rand.Read(out)
	return aead.Seal(out, out, plain, nil), nil
}

// appendJSON appends p as json.Marshal writes it (TestIssuedPairJSON),
// without its reflection: every rotation seals one.
func (p *issuedPair) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"a":`...)
	b = appendJSONString(b, p.Access)
	b = append(b, `,"r":`...)
	b = appendJSONString(b, p.Refresh)
	b = append(b, `,"e":"`...)
	b, err := p.AccessExpires.AppendText(b) // MarshalJSON's text, unquoted
	if err != nil {
		return nil, err
	}
	return append(b, `"}`...), nil
}

func (a *Auth) openPair(oldToken string, sealed []byte) (issuedPair, error) {
	var p issuedPair
	aead, err := a.replayAEAD(oldToken)
	if err != nil || len(sealed) < aead.NonceSize() {
		return p, ErrInvalidGrant
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return p, ErrInvalidGrant
	}
	if err := json.Unmarshal(plain, &p); err != nil {
		return p, ErrInvalidGrant
	}
	return p, nil
}
