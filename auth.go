// Package fiberauth is embeddable authentication for Fiber v2 apps: login,
// refresh-token rotation with reuse detection, logout that logs out, password
// change and reset, signup with email confirmation, and middleware that
// notices at once when a user or session changes.
//
// A host creates one Auth with New, mounts its handlers with Mount and
// protects its own routes with Middleware and RequireRole.
package fiberauth

import (
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/patrickmn/go-cache"
)

// Config configures an Auth. Store and Secret are required; every other
// field has the default its comment names, set in configDefault.
type Config struct {
	// Store keeps users, sessions and codes. Required.
	Store Store

	// Secret signs access tokens (HS256) and, through HKDF, derives every
	// other key. Keep it secret and the same across restarts and instances.
	// Required; at least 32 bytes.
	Secret []byte

	// Issuer is the "iss" of access tokens, checked on every request.
	// Optional. Default: "fiberauth".
	Issuer string

	// Audience is the "aud" of access tokens, checked on every request.
	// Optional. Default: "fiberauth".
	Audience string

	// AccessTTL is the access token lifetime.
	// Optional. Default: 15 minutes.
	AccessTTL time.Duration

	// RefreshIdleTTL is how long a refresh token lives; a sliding session
	// moves it forward on each refresh.
	// Optional. Default: 30 days.
	RefreshIdleTTL time.Duration

	// RefreshMaxTTL is the absolute lifetime of a session family.
	// Optional. Default: 90 days.
	RefreshMaxTTL time.Duration

	// ReuseGrace is how long a rotated refresh token still answers with the
	// pair its rotation issued, for clients that retry over a bad network.
	// After it, presenting the token revokes the family.
	// Optional. Default: 10 seconds.
	ReuseGrace time.Duration

	// Leeway is the clock skew allowed when checking exp, nbf and iat.
	// Optional. Default: 30 seconds; at most 60 seconds.
	Leeway time.Duration

	// PasswordMinLength is the least number of characters (code points) of
	// a password. Optional. Default: 8; never below 6.
	PasswordMinLength int

	// PasswordHashParams are the argon2id parameters of new hashes; a stored
	// hash below them is rehashed at the next login.
	// Optional. Default: m=19456 KiB, t=2, p=1, 16-byte salt, 32-byte key
	// (OWASP's minimum, which is also the least New accepts).
	PasswordHashParams argon2id.Params

	// HashConcurrency bounds concurrent password hash operations, so that a
	// login flood queues instead of exhausting memory.
	// Optional. Default: 2 × GOMAXPROCS.
	HashConcurrency int

	// TOTPIssuer names the app in authenticator apps (the otpauth URL's
	// issuer). Optional. Default: Issuer.
	TOTPIssuer string

	// TemporaryPasswordTTL is how long a temporary password set with
	// NewUser.TemporaryPassword works. Optional. Default: 7 days.
	TemporaryPasswordTTL time.Duration

	// MaxLoginFailuresPerAccount is how many failed logins an account name
	// (known or not) may have within ThrottleWindow before login answers
	// 429; a success resets it. Optional. Default: 10; negative: no limit.
	MaxLoginFailuresPerAccount int

	// MaxLoginFailuresPerIP is how many failed logins one client IP may have
	// within ThrottleWindow. Optional. Default: 100; negative: no limit.
	MaxLoginFailuresPerIP int

	// MaxCodeFailures is how many wrong one-time, 2FA or recovery codes an
	// account may get within ThrottleWindow. Optional. Default: 10;
	// negative: no limit.
	MaxCodeFailures int

	// ThrottleWindow is the window of the three limits above.
	// Optional. Default: 15 minutes.
	ThrottleWindow time.Duration

	// MaxCodeSends is how many reset codes /password/forgot sends one account
	// per hour; beyond it, it still answers 202 but sends nothing.
	// Optional. Default: 5; negative: no limit.
	MaxCodeSends int

	// TrustedProxies are the IPs or CIDRs of reverse proxies in front of the
	// app. The client IP (for throttling, sessions and events) is the
	// socket's peer unless that peer is one of them; only then is
	// X-Forwarded-For read. Optional. Default: none.
	TrustedProxies []string

	// AllowSignup enables POST /signup. Optional. Default: false.
	AllowSignup bool

	// RequireVerifiedEmail makes login answer 403 email_not_verified until
	// the user confirms their email. Optional. Default: false.
	RequireVerifiedEmail bool

	// SendCode delivers one-time codes (email confirmation, password reset)
	// to users. It should hand the message to a queue or mailer quickly:
	// handlers wait for it. Its errors are logged, never shown to the
	// client. Optional. Default: none; codes are then not delivered and a
	// warning is logged. Required when AllowSignup is set.
	SendCode func(ctx context.Context, m CodeMessage) error

	// CacheTTL is how long the middleware trusts what it cached of a user's
	// etag and a session's state. Changes made by this process update the
	// caches at once; changes made by another process sharing the store are
	// seen within CacheTTL. Optional. Default: 5 seconds.
	CacheTTL time.Duration

	// TokenCacheSize is how many access tokens whose signature verified the
	// middleware remembers (by the whole token), to skip parsing them again.
	// Expiry, etag and session are still checked on every request.
	// Optional. Default: 10,000; negative: no cache.
	TokenCacheSize int

	// Now is the clock. Optional. Default: time.Now.
	Now func() time.Time

	// Logger receives operational logs; no password, token, code, hash or
	// key is ever logged. Optional. Default: slog.Default().
	Logger *slog.Logger

	// OnEvent is the audit hook, called synchronously for each Event.
	// Optional. Default: none.
	OnEvent func(Event)
}

// CodeMessage is a one-time code on its way to a user.
type CodeMessage struct {
	To      string // the user's email
	UserID  string
	Purpose string // PurposeEmailConfirm or PurposePasswordReset
	Code    string
	// ExpiresAt is when the code stops working.
	ExpiresAt time.Time
}

// minHashParams is OWASP's minimum for argon2id.
var minHashParams = argon2id.Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// ConfigDefault is the configuration New starts from.
var ConfigDefault = Config{
	Issuer:                     "fiberauth",
	Audience:                   "fiberauth",
	AccessTTL:                  15 * time.Minute,
	RefreshIdleTTL:             30 * 24 * time.Hour,
	RefreshMaxTTL:              90 * 24 * time.Hour,
	ReuseGrace:                 10 * time.Second,
	Leeway:                     30 * time.Second,
	PasswordMinLength:          8,
	PasswordHashParams:         minHashParams,
	CacheTTL:                   5 * time.Second,
	TemporaryPasswordTTL:       7 * 24 * time.Hour,
	MaxLoginFailuresPerAccount: 10,
	MaxLoginFailuresPerIP:      100,
	MaxCodeFailures:            10,
	ThrottleWindow:             15 * time.Minute,
	MaxCodeSends:               5,
	TokenCacheSize:             10000,
}

func configDefault(cfg Config) (Config, error) {
	d := ConfigDefault
	if cfg.Store == nil {
		return cfg, errors.New("fiberauth: Config.Store is required")
	}
	if len(cfg.Secret) < 32 {
		return cfg, errors.New("fiberauth: Config.Secret must be at least 32 bytes")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = d.Issuer
	}
	if cfg.Audience == "" {
		cfg.Audience = d.Audience
	}
	if cfg.TOTPIssuer == "" {
		cfg.TOTPIssuer = cfg.Issuer
	}
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&cfg.AccessTTL, d.AccessTTL}, {&cfg.RefreshIdleTTL, d.RefreshIdleTTL}, {&cfg.RefreshMaxTTL, d.RefreshMaxTTL},
		{&cfg.ReuseGrace, d.ReuseGrace}, {&cfg.Leeway, d.Leeway}, {&cfg.CacheTTL, d.CacheTTL},
		{&cfg.TemporaryPasswordTTL, d.TemporaryPasswordTTL}, {&cfg.ThrottleWindow, d.ThrottleWindow},
	} {
		if *f.v < 0 {
			return cfg, errors.New("fiberauth: durations in Config must not be negative")
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if cfg.Leeway > time.Minute {
		return cfg, errors.New("fiberauth: Config.Leeway must be at most 60 seconds")
	}
	if cfg.RefreshIdleTTL > cfg.RefreshMaxTTL {
		return cfg, errors.New("fiberauth: Config.RefreshIdleTTL must not exceed RefreshMaxTTL")
	}
	for _, f := range []struct{ v, def *int }{
		{&cfg.MaxLoginFailuresPerAccount, &d.MaxLoginFailuresPerAccount}, {&cfg.MaxLoginFailuresPerIP, &d.MaxLoginFailuresPerIP},
		{&cfg.MaxCodeFailures, &d.MaxCodeFailures}, {&cfg.MaxCodeSends, &d.MaxCodeSends},
		{&cfg.TokenCacheSize, &d.TokenCacheSize},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	if cfg.PasswordMinLength == 0 {
		cfg.PasswordMinLength = d.PasswordMinLength
	}
	if cfg.PasswordMinLength < 6 {
		return cfg, errors.New("fiberauth: Config.PasswordMinLength must be at least 6")
	}
	if cfg.PasswordHashParams == (argon2id.Params{}) {
		cfg.PasswordHashParams = d.PasswordHashParams
	}
	if p := cfg.PasswordHashParams; p.Memory < minHashParams.Memory || p.Iterations < minHashParams.Iterations ||
		p.Parallelism < 1 || p.SaltLength < minHashParams.SaltLength || p.KeyLength < minHashParams.KeyLength {
		return cfg, errors.New("fiberauth: Config.PasswordHashParams are below OWASP's minimum (m=19456 KiB, t=2, p=1)")
	}
	if cfg.HashConcurrency == 0 {
		cfg.HashConcurrency = 2 * runtime.GOMAXPROCS(0)
	}
	if cfg.HashConcurrency < 0 {
		return cfg, errors.New("fiberauth: Config.HashConcurrency must not be negative")
	}
	if cfg.AllowSignup && cfg.SendCode == nil {
		return cfg, errors.New("fiberauth: Config.SendCode is required when AllowSignup is set")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}

// Auth is one configured authentication service. It is safe for concurrent
// use; create one per app and mount it as often as needed.
type Auth struct {
	cfg    Config
	store  Store
	log    *slog.Logger
	now    func() time.Time
	tokens tokenSigner

	codeKey     []byte      // HMAC key of one-time code hashes
	recoveryKey []byte      // HMAC key of recovery code hashes
	csrfKey     []byte      // HMAC key of cookie-mode CSRF tokens
	replayKey   []byte      // salt of the keys that seal grace-window replays
	totp        cipher.AEAD // seals TOTP secrets at rest

	hasher  *passwordHasher
	proxies []netip.Prefix // Config.TrustedProxies

	// verified caches tokens already verified; see tokencache.go.
	verified *tokenCache
	// users caches userState by user id; sessions caches sessionState by
	// family id. See middleware.go.
	users    *cache.Cache
	sessions *cache.Cache
}

// New checks cfg, fills in defaults and returns a ready Auth. Its work is done
// once here, not per request.
func New(cfg Config) (*Auth, error) {
	cfg, err := configDefault(cfg)
	if err != nil {
		return nil, err
	}
	a := &Auth{
		cfg:   cfg,
		store: cfg.Store,
		log:   cfg.Logger,
		now:   cfg.Now,
	}
	if a.codeKey, err = deriveKey(cfg.Secret, "code-hash"); err != nil {
		return nil, err
	}
	if a.replayKey, err = deriveKey(cfg.Secret, "refresh-replay"); err != nil {
		return nil, err
	}
	if a.recoveryKey, err = deriveKey(cfg.Secret, "recovery-code"); err != nil {
		return nil, err
	}
	if a.csrfKey, err = deriveKey(cfg.Secret, "csrf"); err != nil {
		return nil, err
	}
	totpKey, err := deriveKey(cfg.Secret, "totp-secret")
	if err != nil {
		return nil, err
	}
	if a.totp, err = newAEAD(totpKey); err != nil {
		return nil, err
	}
	a.tokens = newTokenSigner(cfg)
	if a.proxies, err = parseTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	if a.hasher, err = newPasswordHasher(cfg.PasswordHashParams, cfg.HashConcurrency); err != nil {
		return nil, err
	}
	cleanup := max(cfg.CacheTTL*2, time.Minute)
	a.verified = newTokenCache(cfg.TokenCacheSize)
	a.users = cache.New(cfg.CacheTTL, cleanup)
	a.sessions = cache.New(cfg.CacheTTL, cleanup)
	if cfg.SendCode == nil {
		a.log.Warn("fiberauth: Config.SendCode is not set; password reset codes will not be delivered")
	}
	return a, nil
}

// deriveKey derives a 32-byte key for one purpose from the secret, so that no
// key but the JWT signature key is the secret itself.
func deriveKey(secret []byte, label string) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, secret, nil, "fiberauth v1 "+label, 32)
	if err != nil {
		return nil, fmt.Errorf("fiberauth: deriving %s key: %w", label, err)
	}
	return k, nil
}

// EventType names an audit event.
type EventType string

// Audit events passed to Config.OnEvent.
const (
	EventLoginSucceeded         EventType = "login_succeeded"
	EventLoginFailed            EventType = "login_failed"
	EventSignup                 EventType = "signup"
	EventEmailConfirmed         EventType = "email_confirmed"
	EventRefresh                EventType = "refresh"
	EventRefreshReused          EventType = "refresh_reused"
	EventLogout                 EventType = "logout"
	EventLogoutAll              EventType = "logout_all"
	EventSessionRevoked         EventType = "session_revoked"
	EventPasswordChanged        EventType = "password_changed"
	EventPasswordResetRequested EventType = "password_reset_requested"
	EventPasswordReset          EventType = "password_reset"
	EventUserCreated            EventType = "user_created"
	EventUserDisabled           EventType = "user_disabled"
	EventRolesChanged           EventType = "roles_changed"
	EventMFAEnabled             EventType = "mfa_enabled"
	EventMFADisabled            EventType = "mfa_disabled"
	EventRecoveryCodeUsed       EventType = "recovery_code_used"
)

// Event is one audit record. It carries ids and request metadata only, never
// a password, token or code.
type Event struct {
	Type      EventType
	Time      time.Time
	UserID    string // empty when unknown (a failed login for no account)
	SessionID string
	IP        string
	UserAgent string
	Reason    string // for failures: e.g. "unknown_user", "wrong_password"
}

func (a *Auth) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = a.now()
	}
	a.log.Info("fiberauth: "+string(e.Type), "user_id", e.UserID, "session_id", e.SessionID, "ip", e.IP, "reason", e.Reason)
	if a.cfg.OnEvent != nil {
		a.cfg.OnEvent(e)
	}
}

// storeErr keeps ErrNotFound and friends matchable and marks everything else
// as unavailable, for the one mapping in errors.go.
func storeErr(op string, err error) error {
	if err == nil {
		return nil
	}
	for _, known := range []error{ErrNotFound, ErrConflict, ErrStale, ErrCodeMismatch} {
		if errors.Is(err, known) {
			return err
		}
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}
