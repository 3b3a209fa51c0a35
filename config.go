package fiberauth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"time"

	"github.com/alexedwards/argon2id"
)

// Config configures an Auth. Store and Secret are required; every other
// field has the default its comment names, set in configDefault.
type Config struct {
	// Store keeps users and sessions, and whatever optional capabilities it
	// has (codes, challenges, throttling counters, TOTP steps, cleanup; see
	// Store). Required.
	Store Store

	// Secret signs access tokens (HS256, unless SigningKeys or
	// SigningAlgorithm say otherwise) and, through HKDF, derives every
	// other key. Keep it secret and the same across restarts and instances.
	// Required; at least 32 bytes.
	Secret []byte

	// Issuer is the "iss" of access tokens, checked on every request.
	// Optional. Default: "fiberauth".
	Issuer string

	// Audience is the "aud" of access tokens, checked on every request.
	// Optional. Default: "fiberauth".
	Audience string

	// ClientID is the "client_id" of access tokens (RFC 9068 §2.2).
	// Optional. Default: Audience.
	ClientID string

	// IDTokenAudience is the "aud" of ID tokens (IssueIDToken; the
	// Cognito profile's answers): the client that reads them (OpenID
	// Connect Core §2). It must differ from Audience, so that a verifier
	// of access tokens that checks the audience but not the typ cannot take
	// an ID token for one.
	// Optional. Default: Audience + "#id".
	IDTokenAudience string

	// SigningKeys are the host's own asymmetric keys for access tokens
	// (GenerateSigningKey, ParseSigningKeyPEM, ParseSigningKeyJWK): the
	// first signs, with its kid in each token's header; the others only
	// verify (rotation: put the new key first and keep the old one after
	// it, marked with Retired, until its tokens have expired). With them
	// Mount serves GET /.well-known/jwks.json and HS256 tokens are refused.
	// Optional. Default: none (HS256 with Secret, or SigningAlgorithm).
	SigningKeys []*SigningKey

	// SigningAlgorithm, AlgorithmEdDSA or AlgorithmES256, makes fiberauth
	// generate its own keys of that algorithm, sealed under a key derived
	// from Secret in the Store's KeyStore (shared by every instance on the
	// store; without a KeyStore they live in this process), rotated every
	// SigningKeyRotation and by RotateSigningKey. Not with SigningKeys.
	// Optional. Default: "" (HS256 with Secret, unless SigningKeys are set).
	SigningAlgorithm string

	// SigningKeyRotation is how often a generated key (SigningAlgorithm) is
	// replaced. The next key is published in the JWKS some minutes before
	// it signs; the old one verifies until its tokens have expired.
	// Optional. Default: 30 days; at least 1 hour; negative: only
	// RotateSigningKey rotates.
	SigningKeyRotation time.Duration

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
	// login flood queues instead of exhausting memory. Each slot holds an
	// argon2 buffer (19 MiB by default) while its hash runs; twice
	// GOMAXPROCS keeps the CPUs busy between hashes (BenchmarkHashSlots).
	// Optional. Default: 2 × GOMAXPROCS.
	HashConcurrency int

	// TOTPIssuer names the app in authenticator apps (the otpauth URL's
	// issuer). Optional. Default: Issuer.
	TOTPIssuer string

	// TemporaryPasswordTTL is how long a temporary password set with
	// NewUser.TemporaryPassword works. Optional. Default: 7 days.
	TemporaryPasswordTTL time.Duration

	// MaxLoginFailuresPerAccount is how many failed password checks an
	// account may have within ThrottleWindow before login answers 429: at
	// login (an unknown name counts as an account of its own, exactly like a
	// known one), and behind an access token (/password/change, the 2FA
	// step-up). A successful login resets it.
	// Optional. Default: 10; negative: no limit.
	MaxLoginFailuresPerAccount int

	// MaxLoginFailuresPerIP is how many failed logins one client network (an
	// IPv4 address, an IPv6 /64) may have within ThrottleWindow.
	// Optional. Default: 100; negative: no limit.
	MaxLoginFailuresPerIP int

	// MaxCodeFailures is how many wrong codes an account may get within
	// ThrottleWindow, for each purpose apart (email confirmation, password
	// reset, second factor), so that wrong codes of one flow never lock
	// another. A check with no code pending counts nothing against the
	// account. Optional. Default: 10; negative: no limit.
	MaxCodeFailures int

	// MaxCodeFailuresPerIP is how many wrong codes one client network (an
	// IPv4 address, an IPv6 /64) may send to the code endpoints that need
	// no sign-in (/password/reset, /email/confirm) within ThrottleWindow.
	// Optional. Default: 100; negative: no limit.
	MaxCodeFailuresPerIP int

	// ThrottleWindow is the window of the limits on failures above.
	// Optional. Default: 15 minutes.
	ThrottleWindow time.Duration

	// MaxCodeSends is how many codes one account (or, for signup, one
	// email address) is sent per hour; beyond it, /password/forgot and
	// /signup still answer 202 but send nothing.
	// Optional. Default: 5; negative: no limit.
	MaxCodeSends int

	// MaxResetRequestsPerIP is how many /password/forgot calls one client
	// network may make per hour. Optional. Default: 20; negative: no limit.
	MaxResetRequestsPerIP int

	// MaxSignupsPerIP is how many /signup calls one client network may make
	// per hour. Optional. Default: 10; negative: no limit.
	MaxSignupsPerIP int

	// TrustedProxies are the IPs or CIDRs of reverse proxies in front of the
	// app. The client IP (for throttling, sessions and events) is the
	// socket's peer unless that peer is one of them; only then is
	// X-Forwarded-For read. Optional. Default: none.
	TrustedProxies []string

	// AllowedOrigins are the origins ("https://app.example.com") whose pages
	// may call the handlers mounted in cookie mode (WithCookieTransport):
	// such a call with an Origin header naming another origin, or with
	// Sec-Fetch-Site: cross-site, is refused with 403 csrf_failed, so that
	// a hostile page cannot sign a visitor in or out.
	// Optional. Default: the origin whose host is the request's own Host.
	AllowedOrigins []string

	// AllowSignup enables POST /signup. Optional. Default: false.
	AllowSignup bool

	// RequireVerifiedEmail makes login answer 403 email_not_verified until
	// the user confirms their email. Optional. Default: false.
	RequireVerifiedEmail bool

	// SendCode delivers one-time codes (email confirmation, password reset)
	// and notices (PurposeAccountExists) to users. fiberauth calls it after
	// answering the request that asked for it, at most 256 calls at once (a
	// request beyond that waits for a slot), so it should still hand the
	// message to a queue or mailer quickly; Auth.Flush waits for the calls
	// in progress. Its errors are logged, never shown to the client.
	// Optional. Default: none; codes are then not delivered and a warning
	// is logged. Required when AllowSignup is set.
	SendCode func(ctx context.Context, m CodeMessage) error

	// CacheTTL is how long the middleware trusts what it cached of a user's
	// etag and a session's state, measured on Now. Changes made by this
	// process update the caches at once. Changes made by another process
	// sharing the store are seen at once when the store has Notifier
	// (memstore and sqlstore have), and within CacheTTL otherwise or while
	// the store's link to the others is down. A token issued by another
	// process is accepted at once either way: a cache that may be behind it
	// reads the store again before refusing.
	// Optional. Default: 5 seconds; negative: no cache (every request reads
	// the store).
	CacheTTL time.Duration

	// CleanupInterval is how often fiberauth deletes expired sessions,
	// codes, challenges and throttling windows: through the Store's Cleaner
	// when it has one, and in process memory for the capabilities it lacks;
	// the middleware's caches forget stale entries at the same time. It runs
	// off the request path, started by a request at most once per interval.
	// Optional. Default: 10 minutes; negative: records are never deleted
	// (the caches are still swept every 10 minutes).
	CleanupInterval time.Duration

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

	// Trace, when set, is called as each service call begins (Login,
	// Refresh, Authenticate, CreateUser, …: the Go methods the handlers
	// call) with the call's name, and the function it returns as the call
	// ends, with its error (nil on success). The ctx it returns is the
	// call's. The tracing subpackage makes each an OpenTelemetry span.
	// Optional. Default: none.
	Trace func(ctx context.Context, call string) (context.Context, func(err error))

	// OnHashWait is told, for each password hash or check, how long it
	// waited for one of the HashConcurrency slots (0 when one was free):
	// the queue a login flood builds. It is called on the request's
	// goroutine, concurrently, with the slot already taken: keep it quick
	// (a histogram's Observe). Optional. Default: none.
	OnHashWait func(wait time.Duration)

	// Passkeys turns on passkeys (WebAuthn): registering them, signing in
	// with one, and answering the second-factor challenge with one
	// (passkeys.go, docs/api.md). The Store must have PasskeyStore, and
	// New refuses a relying party without origins or with an origin
	// outside its domain. Optional. Default: off.
	Passkeys *PasskeyConfig

	// cheapHashing replaces PasswordHashParams with parameters far below
	// OWASP's, for tests that are not about the hasher (export_test.go).
	cheapHashing bool
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
	MaxCodeFailuresPerIP:       100,
	ThrottleWindow:             15 * time.Minute,
	MaxCodeSends:               5,
	MaxResetRequestsPerIP:      20,
	MaxSignupsPerIP:            10,
	TokenCacheSize:             10000,
	CleanupInterval:            10 * time.Minute,
	SigningKeyRotation:         30 * 24 * time.Hour,
}

func configDefault(cfg Config) (Config, error) {
	d := ConfigDefault
	if cfg.Store == nil {
		return cfg, errors.New("fiberauth: Config.Store is required")
	}
	if len(cfg.Secret) < 32 {
		return cfg, errors.New("fiberauth: Config.Secret must be at least 32 bytes")
	}
	// A copy of its own: a host that wipes its slice after New must not
	// leave the signer and the verifiers with different keys.
	cfg.Secret = bytes.Clone(cfg.Secret)
	if cfg.Issuer == "" {
		cfg.Issuer = d.Issuer
	}
	if cfg.Audience == "" {
		cfg.Audience = d.Audience
	}
	if cfg.IDTokenAudience == "" {
		cfg.IDTokenAudience = cfg.Audience + "#id"
	}
	if cfg.IDTokenAudience == cfg.Audience {
		return cfg, errors.New("fiberauth: Config.IDTokenAudience must differ from Config.Audience, or an ID token would pass for an access token wherever typ is not checked")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = cfg.Audience
	}
	if cfg.TOTPIssuer == "" {
		cfg.TOTPIssuer = cfg.Issuer
	}
	// CacheTTL and CleanupInterval may be negative (off); they only get
	// their default when zero.
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&cfg.CacheTTL, d.CacheTTL}, {&cfg.CleanupInterval, d.CleanupInterval}} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&cfg.AccessTTL, d.AccessTTL}, {&cfg.RefreshIdleTTL, d.RefreshIdleTTL}, {&cfg.RefreshMaxTTL, d.RefreshMaxTTL},
		{&cfg.ReuseGrace, d.ReuseGrace}, {&cfg.Leeway, d.Leeway},
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
	if err := checkSigningConfig(&cfg); err != nil {
		return cfg, err
	}
	if cfg.RefreshIdleTTL > cfg.RefreshMaxTTL {
		return cfg, errors.New("fiberauth: Config.RefreshIdleTTL must not exceed RefreshMaxTTL")
	}
	for _, f := range []struct{ v, def *int }{
		{&cfg.MaxLoginFailuresPerAccount, &d.MaxLoginFailuresPerAccount}, {&cfg.MaxLoginFailuresPerIP, &d.MaxLoginFailuresPerIP},
		{&cfg.MaxCodeFailures, &d.MaxCodeFailures}, {&cfg.MaxCodeFailuresPerIP, &d.MaxCodeFailuresPerIP},
		{&cfg.MaxCodeSends, &d.MaxCodeSends}, {&cfg.MaxResetRequestsPerIP, &d.MaxResetRequestsPerIP},
		{&cfg.MaxSignupsPerIP, &d.MaxSignupsPerIP},
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
	if cfg.cheapHashing {
		cfg.PasswordHashParams = cheapHashParams
	} else if p := cfg.PasswordHashParams; p.Memory < minHashParams.Memory || p.Iterations < minHashParams.Iterations ||
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
