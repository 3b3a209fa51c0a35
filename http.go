package fiberauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
)

// The HTTP transport: Mount, and what every handler shares (decoding
// bodies, encoding answers). The handlers themselves are in handlers.go.

// MaxBodySize is the largest request body a fiberauth handler reads, whatever
// the host app's own limit; a larger one gets 413 payload_too_large.
const MaxBodySize = 16 << 10

// MountOption changes how Mount serves its handlers.
type MountOption func(*mountConfig)

type mountConfig struct {
	cookie    bool                                 // WithCookieTransport
	endpoints Endpoints                            // EndpointsAll, or WithEndpoints's set
	profile   Profile                              // WithProfile
	userShape func(u *User, fields map[string]any) // WithUserShape
	idTokens  bool                                 // WithIDTokens
}

// WithIDTokens adds an "id_token" (IssueIDToken) to every answer that signs
// a user in or refreshes, in fiberauth's own shape and ProfileMisaka's
// (ProfileCognito's answers always carry one; ProfileHaltman's carry no
// token at all).
func WithIDTokens() MountOption {
	return func(c *mountConfig) { c.idTokens = true }
}

// Profile is the shape of the API a Mount serves: fiberauth's own, or that
// of one of the APIs fiberauth follows, for clients written for it
// (docs/profiles.md). Every profile is a transport over the same service
// calls: one Auth's profiles share users, sessions, limits and the
// middleware.
type Profile int

const (
	// ProfileDefault is fiberauth's own API (docs/api.md).
	ProfileDefault Profile = iota
	// ProfileMisaka is the Misaka v3 session API: /login, /login/2fa,
	// /refresh, /logout, /change-password, /confirm-email, /me, with
	// {"detail": …} errors.
	ProfileMisaka
	// ProfileHaltman is haltman's cookie sessions: /login, /login/2fa,
	// /refresh, /logout answering {"ok", "action", "refreshed",
	// "session"}, the tokens in the __Host-refresh and __Host-access
	// cookies (cookie mode, whatever WithCookieTransport says).
	ProfileHaltman
	// ProfileCognito is the Cognito-style v1 API: /login, /token-refresh,
	// /token-revoke, /forgot-password, /forgot-password-confirm,
	// /change-password, /new-password-required, answering ID tokens, with
	// a refresh token that does not rotate and {"message", "status"}
	// errors.
	ProfileCognito
)

// WithProfile serves profile's paths and shapes instead of fiberauth's
// own. WithEndpoints still chooses among the groups the profile has; the
// OpenAPI document describes ProfileDefault only and is not served by
// another profile.
func WithProfile(profile Profile) MountOption {
	return func(c *mountConfig) { c.profile = profile }
}

// WithUserShape sets the fields a profile's user object has beyond id,
// email, username and display_name (Misaka's first_name, last_name,
// avatar_url, country, is_staff, …): shape adds them to fields. By default
// each of the user's Attributes is a string field of its name; a host
// with typed fields (is_staff as a boolean) shapes them itself. It must not
// add a secret.
func WithUserShape(shape func(u *User, fields map[string]any)) MountOption {
	return func(c *mountConfig) { c.userShape = shape }
}

// Endpoints is a set of Mount's endpoint groups, for WithEndpoints.
type Endpoints uint

const (
	// EndpointsSignIn: POST /login, /login/2fa, /login/new-password,
	// /refresh, /logout, /logout/all, /revoke; GET /me.
	EndpointsSignIn Endpoints = 1 << iota
	// EndpointsSessions: GET /sessions, DELETE /sessions/:id.
	EndpointsSessions
	// EndpointsPasswordChange: POST /password/change.
	EndpointsPasswordChange
	// EndpointsPasswordReset: POST /password/forgot, /password/reset.
	// Mounted only with Config.SendCode.
	EndpointsPasswordReset
	// EndpointsSignup: POST /signup (which answers 403 without
	// Config.AllowSignup), /email/confirm. Mounted only with
	// Config.SendCode.
	EndpointsSignup
	// EndpointsTwoFactor: POST /2fa/setup, /2fa/enable, /2fa/disable,
	// /2fa/recovery-codes. (A user with 2FA on still signs in through
	// /login/2fa, which is EndpointsSignIn's.)
	EndpointsTwoFactor
	// EndpointsOpenAPI: GET /openapi.json, the OpenAPI 3.1 document of the
	// endpoints this Mount serves (openapi.go).
	EndpointsOpenAPI
	// EndpointsPasskeys: POST /login/passkey/options, /login/passkey,
	// /login/2fa/passkey/options, /passkeys/register/options,
	// /passkeys/register; GET /passkeys; PATCH and DELETE /passkeys/:id.
	// Mounted only with Config.Passkeys.
	EndpointsPasskeys

	// EndpointsAll is every group: what Mount serves unless told
	// otherwise.
	EndpointsAll = EndpointsSignIn | EndpointsSessions | EndpointsPasswordChange | EndpointsPasswordReset | EndpointsSignup | EndpointsTwoFactor | EndpointsOpenAPI | EndpointsPasskeys
)

// WithEndpoints mounts only the endpoint groups in set (a union of the
// Endpoints constants), for a host that serves some flows itself or not at
// all. The groups that need Config.SendCode are left out without it,
// whatever set says (New says so once).
func WithEndpoints(set Endpoints) MountOption {
	return func(c *mountConfig) { c.endpoints = set }
}

// needsSendCode are the groups whose flows send codes.
const needsSendCode = EndpointsPasswordReset | EndpointsSignup

// mount is one Mount of an Auth: its handlers and how they answer.
type mount struct {
	a *Auth
	mountConfig
}

// Mount registers the handlers on r (see docs/api.md for each):
//
//	POST   /login              POST /password/change
//	POST   /login/2fa          POST /password/forgot
//	POST   /login/new-password POST /password/reset
//	POST   /refresh            POST /signup
//	POST   /logout             POST /email/confirm
//	POST   /logout/all         POST /2fa/setup
//	POST   /revoke             POST /2fa/enable
//	GET    /me                 POST /2fa/disable
//	GET    /sessions           POST /2fa/recovery-codes
//	DELETE /sessions/:id       GET  /openapi.json
//
// with Config.Passkeys also
//
//	POST   /login/passkey/options      POST /passkeys/register/options
//	POST   /login/passkey              POST /passkeys/register
//	POST   /login/2fa/passkey/options  GET  /passkeys
//	PATCH  /passkeys/:id               DELETE /passkeys/:id
//
// and, when access tokens are signed with asymmetric keys (SigningKeys,
// SigningAlgorithm), GET /.well-known/jwks.json: their public keys.
// GET /openapi.json is the OpenAPI 3.1 document (docs/openapi.json in the
// repository) of the endpoints this Mount serves, and only those, with
// the group's prefix as its server.
//
// WithEndpoints mounts only some of them (the JWKS is not one of its
// groups: it is mounted whenever there are asymmetric keys); without
// Config.SendCode the password reset, signup and email confirmation
// endpoints are not mounted.
// With WithCookieTransport the refresh token travels in a cookie instead of
// the body (for browsers). Each handler decodes its request, calls the Go
// method of the same flow (Login, Refresh, …) and encodes the answer.
func (a *Auth) Mount(r fiber.Router, opts ...MountOption) {
	m := &mount{a: a, mountConfig: mountConfig{endpoints: EndpointsAll}}
	for _, o := range opts {
		o(&m.mountConfig)
	}
	if m.profile == ProfileHaltman {
		m.cookie = true // its tokens are cookies
	}
	serve := m.endpoints
	if a.cfg.SendCode == nil {
		serve &^= needsSendCode
	}
	if a.webauthn == nil {
		serve &^= EndpointsPasskeys
	}
	if m.profile != ProfileDefault {
		for _, route := range m.profileRoutes() {
			if serve&route.group != 0 {
				r.Add(route.method, route.path, m.handler(route.fn))
			}
		}
		if a.tokens.ring != nil {
			r.Get(jwksPath, a.serveJWKS)
		}
		return
	}
	var mounted []mountedRoute
	for _, route := range append([]route{
		{EndpointsSignIn, fiber.MethodPost, "/login", m.login},
		{EndpointsSignIn, fiber.MethodPost, "/login/2fa", m.loginMFA},
		{EndpointsSignIn, fiber.MethodPost, "/login/new-password", m.loginNewPassword},
		{EndpointsSignIn, fiber.MethodPost, "/refresh", m.refresh},
		{EndpointsSignIn, fiber.MethodPost, "/logout", m.logout},
		{EndpointsSignIn, fiber.MethodPost, "/logout/all", m.logoutAll},
		{EndpointsSignIn, fiber.MethodPost, "/revoke", m.revoke},
		{EndpointsSignIn, fiber.MethodGet, "/me", m.me},
		{EndpointsSessions, fiber.MethodGet, "/sessions", m.sessions},
		{EndpointsSessions, fiber.MethodDelete, "/sessions/:id", m.endSession},
		{EndpointsPasswordChange, fiber.MethodPost, "/password/change", m.passwordChange},
		{EndpointsPasswordReset, fiber.MethodPost, "/password/forgot", m.passwordForgot},
		{EndpointsPasswordReset, fiber.MethodPost, "/password/reset", m.passwordReset},
		{EndpointsSignup, fiber.MethodPost, "/signup", m.signup},
		{EndpointsSignup, fiber.MethodPost, "/email/confirm", m.emailConfirm},
		{EndpointsTwoFactor, fiber.MethodPost, "/2fa/setup", m.mfaSetup},
		{EndpointsTwoFactor, fiber.MethodPost, "/2fa/enable", m.mfaEnable},
		{EndpointsTwoFactor, fiber.MethodPost, "/2fa/disable", m.mfaDisable},
		{EndpointsTwoFactor, fiber.MethodPost, "/2fa/recovery-codes", m.recoveryCodes},
	}, m.passkeyRoutes()...) {
		if serve&route.group != 0 {
			r.Add(route.method, route.path, m.handler(route.fn))
			mounted = append(mounted, mountedRoute{route.method, route.path})
		}
	}
	if a.tokens.ring != nil {
		r.Get(jwksPath, a.serveJWKS)
		mounted = append(mounted, mountedRoute{fiber.MethodGet, jwksPath})
	}
	if serve&EndpointsOpenAPI != 0 {
		a.mountOpenAPI(r, m.cookie, mounted)
	}
}

// route is one endpoint of a Mount: its group (WithEndpoints), method,
// path and handler.
type route struct {
	group        Endpoints
	method, path string
	fn           func(*fiber.Ctx) error
}

// profileRoutes are the endpoints of the mount's profile.
func (m *mount) profileRoutes() []route {
	switch m.profile {
	case ProfileMisaka:
		return m.misakaRoutes()
	case ProfileHaltman:
		return m.haltmanRoutes()
	case ProfileCognito:
		return m.cognitoRoutes()
	}
	return nil
}

// writeError answers err in the mount's profile.
func (m *mount) writeError(c *fiber.Ctx, err error) error {
	switch m.profile {
	case ProfileMisaka:
		return m.profileError(c, err, func(_ int, message string) fiber.Map { return fiber.Map{"detail": message} })
	case ProfileCognito:
		return m.profileError(c, err, func(status int, message string) fiber.Map {
			return fiber.Map{"message": message, "status": status}
		})
	}
	return m.a.writeError(c, err)
}

// profileError answers err in a profile's shape, with the status and
// headers fiberauth's own answer would have; for a refused access token
// the message says why (never anything about keys or signatures).
func (m *mount) profileError(c *fiber.Ctx, err error, shape func(status int, message string) fiber.Map) error {
	status, body := prepareError(c, m.a.log, err)
	if status == http.StatusUnauthorized && body.Error == "invalid_token" {
		body.Message = refusalDetail(body.Reason)
	}
	return c.Status(status).JSON(shape(status, body.Message))
}

// refusalDetail is what a refused access token's detail says: the reason,
// in words (never anything about keys or signatures).
func refusalDetail(reason string) string {
	if d, ok := refusalDescriptions[reason]; ok {
		return d + "."
	}
	return "The access token is missing, invalid or expired."
}

// handler wraps every fiberauth handler: no caching of anything that may
// hold a token or a code (RFC 6749 §5.1), the body limit, the origin check
// of cookie mode, the request's Client in its context, and errors written
// in one place.
func (m *mount) handler(fn func(c *fiber.Ctx) error) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "no-store")
		c.Set(fiber.HeaderPragma, "no-cache")
		// The raw body: Ctx.Body would inflate a compressed one first.
		if len(c.Request().Body()) > MaxBodySize {
			return m.writeError(c, ErrPayloadTooLarge)
		}
		if m.cookie {
			if err := m.a.checkOrigin(c); err != nil {
				return m.writeError(c, err)
			}
		}
		c.SetUserContext(WithClient(c.UserContext(), m.a.client(c)))
		if err := fn(c); err != nil {
			return m.writeError(c, err)
		}
		return nil
	}
}

// decode reads the JSON body into dst. An empty body is an empty object, so
// that missing fields are reported by name. A body that is not JSON by its
// Content-Type is refused unread: a cross-site form may post text/plain
// without a preflight, but never JSON.
func decode(c *fiber.Ctx, dst any) error {
	body := c.Request().Body()
	if len(body) == 0 {
		return nil
	}
	if !isJSON(c.Get(fiber.HeaderContentType)) {
		return ErrUnsupportedMedia
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD.
	if !utf8.Valid(body) {
		return fieldErr("body", "invalid_utf8", "The body must be valid UTF-8.")
	}
	if err := checkKeys(body, fieldNames(dst)); err != nil {
		return err
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

// errNotObject is a body that is not one JSON object.
var errNotObject = fieldErr("body", "malformed_json", "The body is not a JSON object.")

// checkKeys refuses a body that encoding/json would read otherwise than a
// JSON Schema validator, a proxy or a WAF in front of the app does: one
// that is not an object (encoding/json reads null as nothing at all), a
// key given twice (encoding/json keeps the last), or one of fields spelled
// in another case (encoding/json matches names case-insensitively, with
// Unicode's simple folding: ſ is s). Other keys are ignored.
func checkKeys(body []byte, fields []string) error {
	if !utf8.Valid(body) || !json.Valid(body) {
		return errNotObject
	}
	var small [8]string // the keys seen, without a map for a usual body
	seen := small[:0]
	var many map[string]bool
	isObject, err := objectKeys(body, func(key string) error {
		dup := many[key] || many == nil && slices.Contains(seen, key)
		if dup {
			return fieldErr(key, "duplicate_field", fmt.Sprintf("The field %q is given more than once.", key))
		}
		if many != nil {
			many[key] = true
		} else if seen = append(seen, key); len(seen) > len(small) {
			many = make(map[string]bool, 2*len(seen))
			for _, k := range seen {
				many[k] = true
			}
		}
		for _, f := range fields {
			if key != f && strings.EqualFold(key, f) {
				return fieldErr(key, "wrong_case", fmt.Sprintf("Unknown field %q: the field is %q.", key, f))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !isObject {
		return errNotObject
	}
	return nil
}

// objectKeys calls fn with each key of the top-level object of body, in
// order and unescaped, and reports whether body is an object at all. body
// must be valid UTF-8 and valid JSON (json.Valid, which passes invalid
// UTF-8 in strings): the scan relies on it, and so needs to know only
// where strings and nested values end.
func objectKeys(body []byte, fn func(key string) error) (bool, error) {
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return false, nil
	}
	i = skipSpace(body, i+1)
	for body[i] != '}' {
		if body[i] == ',' {
			i = skipSpace(body, i+1)
		}
		end := stringEnd(body, i)
		key := string(body[i+1 : end-1])
		if strings.IndexByte(key, '\\') >= 0 {
			if err := json.Unmarshal(body[i:end], &key); err != nil {
				return true, errNotObject
			}
		}
		if err := fn(key); err != nil {
			return true, err
		}
		i = skipSpace(body, end) // at the colon
		i = skipSpace(body, valueEnd(body, skipSpace(body, i+1)))
	}
	return true, nil
}

// skipSpace is the index of the first byte at or after i that is not JSON
// whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd is the index just past the string that begins at b[i] (a
// quote).
func stringEnd(b []byte, i int) int {
	for i++; ; i++ {
		switch b[i] {
		case '\\':
			i++ // the escaped byte (of \uXXXX, the u: the digits are plain)
		case '"':
			return i + 1
		}
	}
}

// valueEnd is the index just past the value that begins at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for {
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\n\r", rune(b[i])) {
		i++ // a number, true, false or null
	}
	return i
}

// fieldNames are the JSON names of a request struct's fields.
func fieldNames(dst any) []string {
	t := reflect.TypeOf(dst).Elem()
	if names, ok := fieldNamesOf.Load(t); ok {
		return names.([]string)
	}
	names := make([]string, 0, t.NumField())
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	fieldNamesOf.Store(t, names)
	return names
}

// fieldNamesOf caches fieldNames by type.
var fieldNamesOf sync.Map

// isJSON reports whether a Content-Type is JSON: application/json, or
// another application type whose subtype says json (application/ld+json,
// Cognito's application/x-amz-json-1.1).
func isJSON(contentType string) bool {
	if contentType == fiber.MIMEApplicationJSON {
		return true // what clients send, without parsing (a map per call)
	}
	typ, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	sub, ok := strings.CutPrefix(typ, "application/")
	return ok && (sub == "json" || strings.HasSuffix(sub, "+json") || strings.Contains(sub, "-json"))
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
	switch te.Type.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	}
	return te.Type.String()
}

// signedIn authenticates the request (as Middleware does) and decodes its
// body into dst, for handlers that need both.
func (m *mount) signedIn(c *fiber.Ctx, dst any) (*principal, error) {
	p, err := m.a.principal(c)
	if err != nil {
		return nil, err
	}
	return p, decode(c, dst)
}

// accountName is the account name of a request that accepts `username` or
// `email`: the email when both are given.
func accountName(username, email string) string {
	if email != "" {
		return email
	}
	return username
}

// --- answers (docs/api.md, "Token response") ---

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
	IDToken      string      `json:"id_token,omitempty"`   // WithIDTokens only
}

type challengeResponse struct {
	ChallengeName string   `json:"challenge_name"`
	Session       string   `json:"session"`
	ExpiresIn     int      `json:"expires_in"`
	Available     []string `json:"available_challenges"`
}

type okResponse struct {
	OK bool `json:"ok"`
}

var ok = okResponse{OK: true}

// secondsUntil is a lifetime on the wire: whole seconds, rounded up.
func secondsUntil(t, now time.Time) int {
	return max(int(math.Ceil(t.Sub(now).Seconds())), 0)
}

// signIn answers a sign-in step: a challenge as it is, tokens in the mount's
// transport (or in the shape of a profile that shares these handlers).
func (m *mount) signIn(c *fiber.Ctx, res SignIn) error {
	if m.profile == ProfileHaltman {
		return m.haltmanSignIn(c, res)
	}
	if ch := res.Challenge; ch != nil {
		available := ch.Available
		if len(available) == 0 {
			available = []string{ch.Name}
		}
		return c.JSON(challengeResponse{ChallengeName: ch.Name, Session: ch.Session, ExpiresIn: secondsUntil(ch.ExpiresAt, m.a.now()), Available: available})
	}
	return m.tokens(c, res.Tokens, "")
}

// tokens answers a token response. The user is left out when the client's
// etag is current. In cookie mode the refresh token goes in the cookie,
// never in the body, and the body carries the family's CSRF token instead.
func (m *mount) tokens(c *fiber.Ctx, t *Tokens, clientETag string) error {
	r := tokenResponse{
		Access: t.AccessToken, AccessToken: t.AccessToken,
		Refresh: t.RefreshToken, RefreshToken: t.RefreshToken,
		TokenType: "Bearer",
		ExpiresIn: secondsUntil(t.AccessExpiresAt, m.a.now()),
		UserETag:  t.User.ETag,
		Session: sessionJSON{
			SessionFamilyID:  t.Session.ID,
			AccessExpiresAt:  wireTime(t.AccessExpiresAt),
			RefreshExpiresAt: wireTime(t.Session.ExpiresAt),
		},
	}
	if clientETag == "" || clientETag != t.User.ETag {
		r.User = t.User.Public()
	}
	if m.cookie {
		setRefreshCookie(c, t.RefreshToken, r.Session.RefreshExpiresAt)
		r.Refresh, r.RefreshToken = "", ""
		r.CSRFToken = m.a.csrfToken(t.Session.ID)
	}
	if m.idTokens {
		id, err := m.a.idToken(&t.User, m.a.now())
		if err != nil {
			return err
		}
		r.IDToken = id
	}
	return c.JSON(r)
}
