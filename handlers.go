package fiberauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
)

// MaxBodySize is the largest request body a fiberauth handler reads, whatever
// the host app's own limit; a larger one gets 413 payload_too_large.
const MaxBodySize = 16 << 10

// Mount registers the handlers on r (see docs/api.md for each):
//
//	POST   /login              POST /password/change
//	POST   /login/2fa          POST /2fa/setup
//	POST   /login/new-password POST /2fa/enable
//	POST   /refresh            POST /password/forgot
//	POST   /2fa/disable
//	POST   /logout             POST /password/reset
//	POST   /logout/all         POST /signup
//	POST   /revoke             POST /email/confirm
//	GET    /me                 GET  /sessions
//	DELETE /sessions/:id
//
// With WithCookieTransport the refresh token travels in a cookie instead of
// the body (for browsers).
func (a *Auth) Mount(r fiber.Router, opts ...MountOption) {
	var mc mountConfig
	for _, o := range opts {
		o(&mc)
	}
	h := func(fn func(c *fiber.Ctx) error) fiber.Handler { return a.handler(mc, fn) }
	r.Post("/login", h(a.handleLogin))
	r.Post("/login/2fa", h(a.handleLoginMFA))
	r.Post("/login/new-password", h(a.handleLoginNewPassword))
	r.Post("/refresh", h(a.handleRefresh))
	r.Post("/logout", h(a.handleLogout))
	r.Post("/logout/all", h(a.handleLogoutAll))
	r.Post("/revoke", h(a.handleRevoke))
	r.Get("/me", h(a.handleMe))
	r.Get("/sessions", h(a.handleSessions))
	r.Delete("/sessions/:id", h(a.handleDeleteSession))
	r.Post("/password/change", h(a.handlePasswordChange))
	r.Post("/password/forgot", h(a.handlePasswordForgot))
	r.Post("/password/reset", h(a.handlePasswordReset))
	r.Post("/signup", h(a.handleSignup))
	r.Post("/email/confirm", h(a.handleEmailConfirm))
	r.Post("/2fa/setup", h(a.handleMFASetup))
	r.Post("/2fa/enable", h(a.handleMFAEnable))
	r.Post("/2fa/disable", h(a.handleMFADisable))
}

// handler wraps every fiberauth handler: the body limit, no caching of
// anything that may hold a token, and errors written in one place.
func (a *Auth) handler(mc mountConfig, fn func(c *fiber.Ctx) error) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "no-store")
		if mc.cookie {
			c.Locals(cookieModeKey{}, true)
		}
		// The raw body: Ctx.Body would inflate a compressed one first.
		if len(c.Request().Body()) > MaxBodySize {
			return a.writeError(c, ErrPayloadTooLarge)
		}
		if err := fn(c); err != nil {
			return a.writeError(c, err)
		}
		return nil
	}
}

// decode reads the JSON body into dst. An empty body is an empty object, so
// that missing fields are reported by name.
func decode(c *fiber.Ctx, dst any) error {
	body := c.Request().Body()
	if len(body) == 0 {
		return nil
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD.
	if !utf8.Valid(body) {
		return fieldErr("body", "invalid_utf8", "The body must be valid UTF-8.")
	}
	if err := json.Unmarshal(body, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fieldErr(te.Field, "wrong_type", fmt.Sprintf("The field %q must be a %s.", te.Field, jsonKind(te)))
		}
		return fieldErr("body", "malformed_json", "The body is not a JSON object.")
	}
	return checkStrings(dst)
}

// checkStrings applies each string field's `limit` tag (bytes) and refuses
// NUL characters, which JSON can smuggle in as \u0000.
func checkStrings(dst any) error {
	v := reflect.ValueOf(dst).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() != reflect.String {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		s := v.Field(i).String()
		if strings.IndexByte(s, 0) >= 0 {
			return fieldErr(name, "nul_byte", fmt.Sprintf("The field %q must not contain NUL characters.", name))
		}
		if limit, err := strconv.Atoi(f.Tag.Get("limit")); err == nil && len(s) > limit {
			return fieldErr(name, "too_long", fmt.Sprintf("The field %q must be at most %d bytes.", name, limit))
		}
	}
	return nil
}

func jsonKind(te *json.UnmarshalTypeError) string {
	switch te.Type.Kind().String() {
	case "bool":
		return "boolean"
	case "string":
		return "string"
	}
	return te.Type.String()
}

// signedIn authenticates the request (as Middleware does) and decodes its
// body into dst, for handlers that need both.
func (a *Auth) signedIn(c *fiber.Ctx, dst any) (*principal, error) {
	p, err := a.principal(c)
	if err != nil {
		return nil, err
	}
	return p, decode(c, dst)
}

// nameField returns the account name of a request that accepts `username`
// or `email`, lowercased.
func nameField(username, email string) (string, error) {
	where, name := "email", email
	if name == "" {
		where, name = "username", username
	}
	name = strings.ToLower(strings.TrimSpace(name))
	switch {
	case name == "":
		return "", fieldErr("username", "missing", "A username or email is required.")
	case len(name) > maxEmailLength:
		return "", fieldErr(where, "too_long", "The username or email is too long.")
	case !utf8.ValidString(name):
		return "", fieldErr(where, "invalid", "The username or email is not valid UTF-8.")
	}
	return name, nil
}

func required(where, v string) error {
	if v == "" {
		return fieldErr(where, "missing", fmt.Sprintf("The field %q is required.", where))
	}
	return nil
}

// clientInfo is request metadata kept with sessions and events, copied out of
// Fiber's reused buffers.
type clientInfo struct {
	ip, userAgent string
}

func (a *Auth) client(c *fiber.Ctx) clientInfo {
	ua := c.Get(fiber.HeaderUserAgent)
	if len(ua) > 512 {
		ua = ua[:512]
	}
	if !utf8.ValidString(ua) {
		ua = strings.ToValidUTF8(ua, "?")
	}
	return clientInfo{ip: a.clientIP(c), userAgent: strings.Clone(ua)}
}

// --- wire shapes (CONTRACT §2) ---

// PublicUser is a user as responses show it: never a hash or a secret.
type PublicUser struct {
	ID            string            `json:"id"`
	Email         string            `json:"email"`
	Username      string            `json:"username"`
	DisplayName   string            `json:"display_name"`
	EmailVerified bool              `json:"email_verified"`
	MFAEnabled    bool              `json:"mfa_enabled"`
	Roles         []string          `json:"roles"`
	Attributes    map[string]string `json:"attributes"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
}

// wireTime is how times go on the wire: UTC, whole seconds (RFC 3339).
func wireTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// Public returns the user as responses show it, for hosts that answer users
// from their own routes.
func (u *User) Public() *PublicUser {
	j := &PublicUser{
		ID: u.ID, Email: u.Email, Username: u.Username, DisplayName: u.DisplayName,
		EmailVerified: u.EmailVerified, MFAEnabled: u.MFAEnabled,
		Roles: u.Roles, Attributes: u.Attributes,
		CreatedAt: wireTime(u.CreatedAt), UpdatedAt: wireTime(u.UpdatedAt),
	}
	if j.Roles == nil {
		j.Roles = []string{}
	}
	if j.Attributes == nil {
		j.Attributes = map[string]string{}
	}
	return j
}

type sessionJSON struct {
	SessionFamilyID  string    `json:"session_family_id"`
	AccessExpiresAt  time.Time `json:"access_expires_at"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at"`
}

type tokenResponse struct {
	Access       string      `json:"access"`
	AccessToken  string      `json:"access_token"`
	Refresh      string      `json:"refresh,omitempty"`
	RefreshToken string      `json:"refresh_token,omitempty"`
	TokenType    string      `json:"token_type"`
	ExpiresIn    int         `json:"expires_in"`
	UserETag     string      `json:"user_etag"`
	User         *PublicUser `json:"user,omitempty"`
	Session      sessionJSON `json:"session"`
	CSRFToken    string      `json:"csrf_token,omitempty"` // cookie mode only
}

type okResponse struct {
	OK bool `json:"ok"`
}

var ok = okResponse{OK: true}

// tokenResponse builds the answer for a pair. The user is left out when the
// client's etag is current.
func (a *Auth) tokenResponse(u *User, s *Session, p issuedPair, clientETag string, now time.Time) tokenResponse {
	r := tokenResponse{
		Access: p.Access, AccessToken: p.Access,
		Refresh: p.Refresh, RefreshToken: p.Refresh,
		TokenType: "Bearer",
		ExpiresIn: max(int(math.Ceil(p.AccessExpires.Sub(now).Seconds())), 0),
		UserETag:  u.ETag,
		Session: sessionJSON{
			SessionFamilyID:  s.ID,
			AccessExpiresAt:  wireTime(p.AccessExpires),
			RefreshExpiresAt: wireTime(s.ExpiresAt),
		},
	}
	if clientETag == "" || clientETag != u.ETag {
		r.User = u.Public()
	}
	return r
}

// --- login ---

type loginRequest struct {
	Username string `json:"username" limit:"254"`
	Email    string `json:"email" limit:"254"`
	Password string `json:"password" limit:"1024"`
	Sliding  bool   `json:"sliding"`
}

func (a *Auth) handleLogin(c *fiber.Ctx) error {
	var req loginRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	name, err := nameField(req.Username, req.Email)
	if err != nil {
		return err
	}
	if err := required("password", req.Password); err != nil {
		return err
	}
	if len(req.Password) > maxPasswordBytes {
		return fieldErr("password", "too_long", fmt.Sprintf("The password must be at most %d bytes.", maxPasswordBytes))
	}
	ci := a.client(c)
	ctx := c.UserContext()
	u, err := a.throttledCredentials(ctx, name, req.Password, ci)
	if err != nil {
		return err
	}
	if a.cfg.RequireVerifiedEmail && !u.EmailVerified {
		return ErrEmailNotVerified
	}
	resp, err := a.signIn(ctx, &u, req.Sliding, ci)
	if err != nil {
		return err
	}
	return a.respond(c, resp)
}

// throttledCredentials is checkCredentials under the per-account and per-IP
// limits on failed logins. An unknown name is counted exactly like a known
// one; a success resets the account's count.
func (a *Auth) throttledCredentials(ctx context.Context, name, password string, ci clientInfo) (User, error) {
	acct, ip := loginAccountKey(name), loginIPKey(ci.ip)
	err := a.checkLimit(ctx, acct, a.cfg.MaxLoginFailuresPerAccount)
	if err == nil {
		err = a.checkLimit(ctx, ip, a.cfg.MaxLoginFailuresPerIP)
	}
	if errors.Is(err, ErrRateLimited) {
		a.emit(Event{Type: EventLoginFailed, IP: ci.ip, UserAgent: ci.userAgent, Reason: "throttled"})
	}
	if err != nil {
		return User{}, err
	}
	u, err := a.checkCredentials(ctx, name, password, ci)
	if errors.Is(err, ErrInvalidCredentials) {
		if ferr := a.addFailure(ctx, a.cfg.ThrottleWindow, acct, ip); ferr != nil {
			return User{}, ferr
		}
	}
	if err != nil {
		return User{}, err
	}
	if err := a.store.ResetAttempts(ctx, acct); err != nil {
		return User{}, storeErr("reset attempts", err)
	}
	return u, nil
}

// checkCredentials verifies name and password with one password hash whatever
// the outcome, so neither the answer nor its time tells whether the account
// exists.
func (a *Auth) checkCredentials(ctx context.Context, name, password string, ci clientInfo) (User, error) {
	u, err := a.userByName(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return User{}, err
	}
	found := err == nil
	match, weak, err := a.hasher.verify(ctx, password, u.PasswordHash)
	if err != nil {
		return User{}, err
	}
	reason := ""
	switch {
	case !found:
		reason = "unknown_user"
	case !match:
		reason = "wrong_password"
	case u.Disabled:
		reason = "disabled"
	case u.PasswordTemporary && !a.now().Before(u.PasswordExpiresAt):
		reason = "temporary_password_expired"
	}
	if reason != "" {
		a.emit(Event{Type: EventLoginFailed, UserID: u.ID, IP: ci.ip, UserAgent: ci.userAgent, Reason: reason})
		return User{}, ErrInvalidCredentials
	}
	if weak {
		a.rehash(ctx, u.ID, password)
	}
	return u, nil
}

// rehash upgrades a stored hash made with weaker parameters. The password is
// unchanged, so the etag stays and no token dies. A failure is only logged:
// the next login tries again.
func (a *Auth) rehash(ctx context.Context, userID, password string) {
	hash, err := a.hasher.hash(ctx, password)
	if err == nil {
		_, err = a.modifyUser(ctx, userID, userChange{sameETag: true}, func(u *User) error {
			u.PasswordHash = hash
			return nil
		})
	}
	if err != nil {
		a.log.Warn("fiberauth: rehash at login failed", "user_id", userID, "err", err)
	}
}

// startSession starts a session family for u and issues its first pair.
func (a *Auth) startSession(ctx context.Context, u *User, sliding bool, ci clientInfo) (tokenResponse, error) {
	now := a.now()
	s, p, err := a.newSession(u, sliding, ci, now)
	if err != nil {
		return tokenResponse{}, err
	}
	if err := a.store.CreateSession(ctx, s); err != nil {
		return tokenResponse{}, storeErr("create session", err)
	}
	a.cacheSession(&s)
	return a.tokenResponse(u, &s, p, "", now), nil
}

// newSession builds a session family for u (with u's current etag) and its
// first pair, without storing it.
func (a *Auth) newSession(u *User, sliding bool, ci clientInfo, now time.Time) (Session, issuedPair, error) {
	refresh := randomToken()
	s := Session{
		ID:                randomID(),
		UserID:            u.ID,
		TokenHash:         hashToken(refresh),
		Sliding:           sliding,
		CreatedAt:         now,
		LastUsedAt:        now,
		ExpiresAt:         now.Add(a.cfg.RefreshIdleTTL),
		AbsoluteExpiresAt: now.Add(a.cfg.RefreshMaxTTL),
		UserAgent:         ci.userAgent,
		IP:                ci.ip,
	}
	access, claims, err := a.tokens.sign(u.ID, s.ID, u.ETag, now)
	if err != nil {
		return Session{}, issuedPair{}, err
	}
	return s, issuedPair{Access: access, Refresh: refresh, AccessExpires: claims.Expiry()}, nil
}

// --- refresh ---

type refreshRequest struct {
	Refresh      string `json:"refresh" limit:"512"`
	RefreshToken string `json:"refresh_token" limit:"512"`
	ETag         string `json:"etag" limit:"128"`
}

func (r *refreshRequest) token() (string, error) {
	t := r.RefreshToken
	if t == "" {
		t = r.Refresh
	}
	if t == "" {
		return "", fieldErr("refresh_token", "missing", "A refresh token is required.")
	}
	if len(t) > 512 {
		return "", ErrInvalidGrant
	}
	return t, nil
}

func (a *Auth) handleRefresh(c *fiber.Ctx) error {
	var req refreshRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	token, check, err := a.presentedRefresh(c, &req)
	if err != nil {
		return err
	}
	resp, err := a.refresh(c.UserContext(), token, req.ETag, a.client(c), check)
	if err != nil {
		if cookieMode(c) && !errors.Is(err, ErrCSRF) && !errors.Is(err, ErrUnavailable) {
			clearRefreshCookie(c) // the cookie's token is dead
		}
		return err
	}
	return a.respond(c, resp)
}

// presentedRefresh returns the refresh token of the request and the check
// its family must pass before anything changes: in cookie mode the token is
// the cookie's and the check is CSRF; in body mode it is the body's.
func (a *Auth) presentedRefresh(c *fiber.Ctx, req *refreshRequest) (string, func(*Session) error, error) {
	if cookieMode(c) {
		token, err := refreshFromCookie(c)
		return token, func(s *Session) error { return a.checkCSRF(c, s) }, err
	}
	token, err := req.token()
	return token, func(*Session) error { return nil }, err
}

// refresh rotates token (CONTRACT §4). check runs on the token's family
// before anything else, so a refused request (CSRF) changes nothing, not
// even a reuse revocation.
func (a *Auth) refresh(ctx context.Context, token, clientETag string, ci clientInfo, check func(*Session) error) (tokenResponse, error) {
	hash := hashToken(token)
	s, err := a.store.SessionByTokenHash(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return tokenResponse{}, ErrInvalidGrant
	}
	if err != nil {
		return tokenResponse{}, storeErr("session by token", err)
	}
	if err := check(&s); err != nil {
		return tokenResponse{}, err
	}
	now := a.now()
	if !s.Live(now) {
		return tokenResponse{}, ErrInvalidGrant
	}
	u, err := a.store.UserByID(ctx, s.UserID)
	if errors.Is(err, ErrNotFound) {
		return tokenResponse{}, ErrInvalidGrant
	}
	if err != nil {
		return tokenResponse{}, storeErr("user by id", err)
	}
	if u.Disabled {
		return tokenResponse{}, ErrInvalidGrant
	}
	if equalHash(s.TokenHash, hash) {
		resp, err := a.rotate(ctx, &u, &s, token, clientETag, now, ci)
		if !errors.Is(err, ErrStale) {
			return resp, err
		}
		// A concurrent refresh of the same token won: answer as a replay.
		if s, err = a.store.SessionByID(ctx, s.ID); err != nil {
			return tokenResponse{}, storeErr("session by id", err)
		}
		if !s.Live(now) {
			return tokenResponse{}, ErrInvalidGrant
		}
	}
	if equalHash(s.PrevTokenHash, hash) && now.Sub(s.RotatedAt) <= a.cfg.ReuseGrace {
		p, err := a.openPair(token, s.Replay)
		if err != nil {
			return tokenResponse{}, err
		}
		return a.tokenResponse(&u, &s, p, clientETag, now), nil
	}
	// An old token after the grace window: someone holds a copy. End the
	// family so that neither copy works.
	if err := a.store.RevokeSession(ctx, s.ID, now); err != nil && !errors.Is(err, ErrNotFound) {
		return tokenResponse{}, storeErr("revoke session", err)
	}
	a.forgetSessions(s.ID)
	a.emit(Event{Type: EventRefreshReused, UserID: s.UserID, SessionID: s.ID, IP: ci.ip, UserAgent: ci.userAgent})
	return tokenResponse{}, ErrRefreshTokenReused
}

// rotate replaces s's current token (from = hash of token, or nil for
// "whatever is current") with a new one and issues the new pair.
func (a *Auth) rotate(ctx context.Context, u *User, s *Session, token, clientETag string, now time.Time, ci clientInfo) (tokenResponse, error) {
	r, p, err := a.newRotation(u, s, token, now)
	if err != nil {
		return tokenResponse{}, err
	}
	ns, err := a.store.RotateSession(ctx, r)
	if err != nil {
		return tokenResponse{}, storeErr("rotate session", err)
	}
	a.cacheSession(&ns)
	a.emit(Event{Type: EventRefresh, UserID: u.ID, SessionID: s.ID, IP: ci.ip, UserAgent: ci.userAgent})
	return a.tokenResponse(u, &ns, p, clientETag, now), nil
}

// newRotation makes the next pair of family s for u (with u's etag) and the
// Rotation that records it: from token (sealing the pair for grace replays),
// or from whatever is current when token is "".
func (a *Auth) newRotation(u *User, s *Session, token string, now time.Time) (Rotation, issuedPair, error) {
	refresh := randomToken()
	access, claims, err := a.tokens.sign(u.ID, s.ID, u.ETag, now)
	if err != nil {
		return Rotation{}, issuedPair{}, err
	}
	p := issuedPair{Access: access, Refresh: refresh, AccessExpires: claims.Expiry()}
	r := Rotation{SessionID: s.ID, To: hashToken(refresh), At: now, ExpiresAt: s.ExpiresAt}
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

func equalHash(a, b []byte) bool {
	// Hashes of secrets, compared in constant time all the same.
	return len(a) > 0 && len(a) == len(b) && subtleEqual(a, b)
}

// --- logout and revoke ---

func (a *Auth) handleLogout(c *fiber.Ctx) error {
	ctx := c.UserContext()
	ci := a.client(c)
	if c.Get(fiber.HeaderAuthorization) != "" {
		if cookieMode(c) {
			clearRefreshCookie(c)
		}
		p, err := a.principal(c)
		if err != nil {
			return err
		}
		if err := a.revokeSession(ctx, p.claims.SessionID); err != nil {
			return err
		}
		a.emit(Event{Type: EventLogout, UserID: p.claims.Subject, SessionID: p.claims.SessionID, IP: ci.ip, UserAgent: ci.userAgent})
		return c.JSON(ok)
	}
	var req refreshRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	token, check, err := a.presentedRefresh(c, &req)
	if err != nil {
		return err
	}
	s, err := a.liveSessionByToken(ctx, token)
	if err == nil {
		err = check(&s)
	}
	if err != nil {
		return err
	}
	if err := a.revokeSession(ctx, s.ID); err != nil {
		return err
	}
	if cookieMode(c) {
		clearRefreshCookie(c)
	}
	a.emit(Event{Type: EventLogout, UserID: s.UserID, SessionID: s.ID, IP: ci.ip, UserAgent: ci.userAgent})
	return c.JSON(ok)
}

// liveSessionByToken finds the live family that holds token as its current
// or previous refresh token; ErrInvalidGrant otherwise.
func (a *Auth) liveSessionByToken(ctx context.Context, token string) (Session, error) {
	hash := hashToken(token)
	s, err := a.store.SessionByTokenHash(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return Session{}, ErrInvalidGrant
	}
	if err != nil {
		return Session{}, storeErr("session by token", err)
	}
	if !s.Live(a.now()) || !(equalHash(s.TokenHash, hash) || equalHash(s.PrevTokenHash, hash)) {
		return Session{}, ErrInvalidGrant
	}
	return s, nil
}

func (a *Auth) revokeSession(ctx context.Context, id string) error {
	if err := a.store.RevokeSession(ctx, id, a.now()); err != nil && !errors.Is(err, ErrNotFound) {
		return storeErr("revoke session", err)
	}
	a.forgetSessions(id)
	return nil
}

func (a *Auth) handleLogoutAll(c *fiber.Ctx) error {
	p, err := a.principal(c)
	if err != nil {
		return err
	}
	if err := a.RevokeAllSessions(c.UserContext(), p.claims.Subject); err != nil {
		return err
	}
	ci := a.client(c)
	a.emit(Event{Type: EventLogoutAll, UserID: p.claims.Subject, SessionID: p.claims.SessionID, IP: ci.ip, UserAgent: ci.userAgent})
	return c.JSON(ok)
}

// handleRevoke ends the family of a refresh token (RFC 7009): 200 whether or
// not the token was known, so it tells nothing.
func (a *Auth) handleRevoke(c *fiber.Ctx) error {
	var req refreshRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	token, check, err := a.presentedRefresh(c, &req)
	if errors.Is(err, ErrInvalidGrant) {
		return c.JSON(ok) // cookie mode without a cookie
	}
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	s, err := a.liveSessionByToken(ctx, token)
	if errors.Is(err, ErrInvalidGrant) {
		return c.JSON(ok)
	}
	if err != nil {
		return err
	}
	if err := check(&s); err != nil {
		return err
	}
	if cookieMode(c) {
		clearRefreshCookie(c)
	}
	if err := a.revokeSession(ctx, s.ID); err != nil {
		return err
	}
	ci := a.client(c)
	a.emit(Event{Type: EventSessionRevoked, UserID: s.UserID, SessionID: s.ID, IP: ci.ip, UserAgent: ci.userAgent})
	return c.JSON(ok)
}

// --- signed-in user ---

type meResponse struct {
	User     *PublicUser `json:"user"`
	UserETag string      `json:"user_etag"`
	Session  sessionJSON `json:"session"`
}

func (a *Auth) handleMe(c *fiber.Ctx) error {
	p, err := a.principal(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	u, err := a.UserByID(ctx, p.claims.Subject)
	if err != nil {
		return err
	}
	s, err := a.store.SessionByID(ctx, p.claims.SessionID)
	if err != nil {
		return storeErr("session by id", err)
	}
	return c.JSON(meResponse{
		User:     u.Public(),
		UserETag: u.ETag,
		Session: sessionJSON{
			SessionFamilyID:  s.ID,
			AccessExpiresAt:  wireTime(p.claims.Expiry()),
			RefreshExpiresAt: wireTime(s.ExpiresAt),
		},
	})
}

type sessionListItem struct {
	SessionFamilyID string    `json:"session_family_id"`
	CreatedAt       time.Time `json:"created_at"`
	LastUsedAt      time.Time `json:"last_used_at"`
	UserAgent       string    `json:"user_agent"`
	IP              string    `json:"ip"`
	Current         bool      `json:"current"`
}

func (a *Auth) handleSessions(c *fiber.Ctx) error {
	p, err := a.principal(c)
	if err != nil {
		return err
	}
	list, err := a.store.ListSessions(c.UserContext(), p.claims.Subject, a.now())
	if err != nil {
		return storeErr("list sessions", err)
	}
	items := make([]sessionListItem, 0, len(list))
	for _, s := range list {
		items = append(items, sessionListItem{
			SessionFamilyID: s.ID, CreatedAt: wireTime(s.CreatedAt), LastUsedAt: wireTime(s.LastUsedAt),
			UserAgent: s.UserAgent, IP: s.IP, Current: s.ID == p.claims.SessionID,
		})
	}
	return c.JSON(fiber.Map{"sessions": items})
}

// handleDeleteSession ends one of the caller's own families; another user's,
// or an unknown id, is 404 not_found.
func (a *Auth) handleDeleteSession(c *fiber.Ctx) error {
	p, err := a.principal(c)
	if err != nil {
		return err
	}
	id := c.Params("id")
	ctx := c.UserContext()
	s, err := a.store.SessionByID(ctx, id)
	if err != nil {
		return storeErr("session by id", err)
	}
	if s.UserID != p.claims.Subject || !s.RevokedAt.IsZero() {
		return ErrNotFound
	}
	if err := a.revokeSession(ctx, s.ID); err != nil {
		return err
	}
	ci := a.client(c)
	a.emit(Event{Type: EventSessionRevoked, UserID: s.UserID, SessionID: s.ID, IP: ci.ip, UserAgent: ci.userAgent})
	return c.JSON(ok)
}

// --- passwords ---

type passwordChangeRequest struct {
	PreviousPassword string `json:"previous_password" limit:"1024"`
	ProposedPassword string `json:"proposed_password" limit:"1024"`
}

// handlePasswordChange sets a new password, revokes every other family,
// changes the etag (so every access token issued before dies) and answers a
// fresh pair for the caller's session. The caller's previous refresh token is
// replaced without a grace window.
func (a *Auth) handlePasswordChange(c *fiber.Ctx) error {
	var req passwordChangeRequest
	p, err := a.signedIn(c, &req)
	if err != nil {
		return err
	}
	if err := required("previous_password", req.PreviousPassword); err != nil {
		return err
	}
	if err := a.checkPassword("proposed_password", req.ProposedPassword); err != nil {
		return err
	}
	ctx := c.UserContext()
	u, err := a.verifyPassword(ctx, p.claims.Subject, req.PreviousPassword)
	if err != nil {
		return err
	}
	hash, err := a.hasher.hash(ctx, req.ProposedPassword)
	if err != nil {
		return err
	}
	sid := p.claims.SessionID
	s, err := a.store.SessionByID(ctx, sid)
	if err != nil {
		return storeErr("session by id", err)
	}
	// One store call: the new password, the other families revoked and this
	// one rotated to a pair with the new etag, or none of it.
	var (
		rot  Rotation
		pair issuedPair
		res  UpdateResult
	)
	now := a.now()
	u, err = a.modifyUser(ctx, u.ID, userChange{revoke: true, keep: sid, rotate: &rot, result: &res}, func(u *User) error {
		u.PasswordHash = hash
		var err error
		rot, pair, err = a.newRotation(u, &s, "", now)
		return err
	})
	if errors.Is(err, ErrStale) {
		return ErrInvalidToken // the session ended meanwhile
	}
	if err != nil {
		return err
	}
	ci := a.client(c)
	a.emit(Event{Type: EventPasswordChanged, UserID: u.ID, SessionID: sid, IP: ci.ip, UserAgent: ci.userAgent})
	return a.respond(c, a.tokenResponse(&u, &res.Session, pair, "", now))
}

type nameRequest struct {
	Username string `json:"username" limit:"254"`
	Email    string `json:"email" limit:"254"`
}

// handlePasswordForgot sends a reset code to the account, if there is one,
// and answers 202 either way.
func (a *Auth) handlePasswordForgot(c *fiber.Ctx) error {
	var req nameRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	name, err := nameField(req.Username, req.Email)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	u, err := a.userByName(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	case !u.Disabled:
		send, err := a.mayResend(ctx, u.ID)
		if err != nil {
			return err
		}
		ci := a.client(c)
		if !send {
			a.log.Info("fiberauth: reset code not sent: too many this hour", "user_id", u.ID)
			break
		}
		if err := a.sendCode(ctx, &u, PurposePasswordReset); err != nil {
			return err
		}
		a.emit(Event{Type: EventPasswordResetRequested, UserID: u.ID, IP: ci.ip, UserAgent: ci.userAgent})
	}
	return c.Status(http.StatusAccepted).JSON(ok)
}

type passwordResetRequest struct {
	Username         string `json:"username" limit:"254"`
	Email            string `json:"email" limit:"254"`
	ConfirmationCode string `json:"confirmation_code" limit:"64"`
	Password         string `json:"password" limit:"1024"`
}

// handlePasswordReset sets a new password with a reset code. It also marks
// the email verified (the code proved the mailbox), revokes every family and
// changes the etag.
func (a *Auth) handlePasswordReset(c *fiber.Ctx) error {
	var req passwordResetRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	name, err := nameField(req.Username, req.Email)
	if err != nil {
		return err
	}
	if err := required("confirmation_code", req.ConfirmationCode); err != nil {
		return err
	}
	// Checked before the code, so a weak password does not cost a try.
	if err := a.checkPassword("password", req.Password); err != nil {
		return err
	}
	ctx := c.UserContext()
	u, err := a.userByName(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	code, err := a.codeFor(ctx, &u, err == nil, name, PurposePasswordReset, req.ConfirmationCode)
	if err != nil {
		return err
	}
	hash, err := a.hasher.hash(ctx, req.Password)
	if err != nil {
		return err
	}
	if _, err := a.modifyUser(ctx, u.ID, userChange{revoke: true, useCode: code}, func(u *User) error {
		u.PasswordHash = hash
		u.PasswordTemporary = false
		u.PasswordExpiresAt = time.Time{}
		u.EmailVerified = true
		return nil
	}); err != nil {
		return codeSpent(err)
	}
	ci := a.client(c)
	a.emit(Event{Type: EventPasswordReset, UserID: u.ID, IP: ci.ip, UserAgent: ci.userAgent})
	return c.JSON(ok)
}

// --- signup and email confirmation ---

type signupRequest struct {
	Email       string `json:"email" limit:"254"`
	Username    string `json:"username" limit:"254"`
	Password    string `json:"password" limit:"1024"`
	DisplayName string `json:"display_name" limit:"256"`
}

type userResponse struct {
	User     *PublicUser `json:"user"`
	UserETag string      `json:"user_etag"`
}

func (a *Auth) handleSignup(c *fiber.Ctx) error {
	if !a.cfg.AllowSignup {
		return ErrSignupDisabled
	}
	var req signupRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if len(req.DisplayName) > 256 || !utf8.ValidString(req.DisplayName) {
		return fieldErr("display_name", "invalid", "The display name must be valid UTF-8 of at most 256 bytes.")
	}
	ctx := c.UserContext()
	u, err := a.newUser(ctx, NewUser{Email: req.Email, Username: req.Username, Password: req.Password, DisplayName: req.DisplayName})
	if err != nil {
		return err
	}
	// The code first: if storing the user then fails, a stray code expires
	// unseen, and the address is not left taken without a code.
	m, err := a.putCode(ctx, &u, PurposeEmailConfirm)
	if err != nil {
		return err
	}
	if err := a.storeNewUser(ctx, &u); err != nil {
		return err
	}
	a.deliver(ctx, m)
	ci := a.client(c)
	a.emit(Event{Type: EventSignup, UserID: u.ID, IP: ci.ip, UserAgent: ci.userAgent})
	return c.Status(http.StatusCreated).JSON(userResponse{User: u.Public(), UserETag: u.ETag})
}

type confirmRequest struct {
	Email string `json:"email" limit:"254"`
	Code  string `json:"code" limit:"64"`
}

func (a *Auth) handleEmailConfirm(c *fiber.Ctx) error {
	var req confirmRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	email, err := normalizeEmail("email", req.Email)
	if err != nil {
		return err
	}
	if err := required("code", req.Code); err != nil {
		return err
	}
	ctx := c.UserContext()
	u, err := a.store.UserByEmail(ctx, email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return storeErr("user by email", err)
	}
	code, err := a.codeFor(ctx, &u, err == nil, email, PurposeEmailConfirm, req.Code)
	if err != nil {
		return err
	}
	if _, err := a.modifyUser(ctx, u.ID, userChange{useCode: code}, func(u *User) error {
		u.EmailVerified = true
		return nil
	}); err != nil {
		return codeSpent(err)
	}
	ci := a.client(c)
	a.emit(Event{Type: EventEmailConfirmed, UserID: u.ID, IP: ci.ip, UserAgent: ci.userAgent})
	return c.JSON(ok)
}
