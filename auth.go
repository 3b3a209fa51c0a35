// Package fiberauth is embeddable authentication for Fiber v2 apps: login,
// refresh-token rotation with reuse detection, logout that logs out, password
// change and reset, signup with email confirmation, TOTP second factor, and
// middleware that notices at once when a user or session changes.
//
// A host creates one Auth with New, mounts its handlers with Mount and
// protects its own routes with Middleware and RequireRole. Every flow the
// handlers serve is also a Go method on Auth (Login, CompleteChallenge,
// Refresh, Logout, ChangePassword, …) that takes a context and an input
// struct and returns records, for hosts that sign users in without HTTP.
// docs/architecture.md shows how a request flows through the files.
package fiberauth

import (
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/go-webauthn/webauthn/webauthn"
)

// Auth is one configured authentication service. It is safe for concurrent
// use; create one per app and mount it as often as needed.
type Auth struct {
	cfg    Config
	store  Store
	log    *slog.Logger
	now    func() time.Time
	tokens tokenSigner

	// The optional capabilities: the Store's own, or process memory's
	// (capabilities.go).
	codes      CodeStore
	challenges ChallengeStore
	attempts   AttemptStore
	totpSteps  TOTPStore
	keyStore   KeyStore // only with Config.SigningAlgorithm
	cleaners   []Cleaner
	// sessionUsers is the Store's SessionUserReader; nil without one (a
	// refresh then reads the family and its user apart).
	sessionUsers SessionUserReader
	// userRotator is the Store's UserRotator; nil without one (Refresh
	// then always reads before it writes).
	userRotator UserRotator
	nextSweep   atomic.Int64 // when cleanup is next due, Unix nanoseconds on Now
	// unsubscribe ends the Notifier subscription (Close); nil without one.
	unsubscribe func()
	closeOnce   sync.Once

	// pending is the work running after its answer (later, maybeSweep);
	// laterSlots bounds how much of it runs at once.
	pending    sync.WaitGroup
	laterSlots chan struct{}

	codeKey     []byte      // HMAC key of one-time code hashes
	recoveryKey []byte      // HMAC key of recovery code hashes
	csrfKey     []byte      // HMAC key of cookie-mode CSRF tokens
	refreshKey  []byte      // HMAC key of refresh tokens' tags
	refreshMACs sync.Pool   // hash.Hash: HMACs under refreshKey, reused (refreshTag)
	replayKey   []byte      // salt of the keys that seal grace-window replays
	totp        cipher.AEAD // seals TOTP secrets at rest

	// Passkeys (passkeys.go), with Config.Passkeys only: nil otherwise.
	passkeys   PasskeyStore
	webauthn   *webauthn.WebAuthn
	passkeyKey []byte // HMAC key of user handles and derived challenges

	hasher  *passwordHasher
	proxies []netip.Prefix // Config.TrustedProxies

	// verified caches tokens already verified (tokencache.go); users and
	// sessions cache what the middleware checks of each (authenticate.go).
	verified *tokenCache
	users    stateCache[userState]    // by user id
	sessions stateCache[sessionState] // by family id
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
	for _, k := range []struct {
		dst   *[]byte
		label string
	}{
		{&a.codeKey, "code-hash"}, {&a.replayKey, "refresh-replay"},
		{&a.recoveryKey, "recovery-code"}, {&a.csrfKey, "csrf"}, {&a.refreshKey, "refresh-token"},
	} {
		if *k.dst, err = deriveKey(cfg.Secret, k.label); err != nil {
			return nil, err
		}
	}
	a.refreshMACs.New = func() any { return hmac.New(sha256.New, a.refreshKey) }
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
	if a.hasher, err = newPasswordHasher(cfg.PasswordHashParams, cfg.HashConcurrency, cfg.OnHashWait); err != nil {
		return nil, err
	}
	a.verified = newTokenCache(cfg.TokenCacheSize)
	a.users = newStateCache[userState](cfg.CacheTTL)
	a.sessions = newStateCache[sessionState](cfg.CacheTTL)
	a.laterSlots = make(chan struct{}, maxLater)
	if err := a.useCapabilities(); err != nil {
		return nil, err
	}
	if err := a.useSigningKeys(); err != nil {
		return nil, err
	}
	if err := a.usePasskeys(); err != nil {
		return nil, err
	}
	if cfg.SendCode == nil {
		a.log.Warn("fiberauth: Config.SendCode is not set: Mount leaves out POST /password/forgot, /password/reset, /signup and /email/confirm, which send codes")
	}
	return a, nil
}

// maxLater bounds the work running after its answer at once; beyond it a
// request waits for a slot, whatever it would do later.
const maxLater = 256

// later runs fn off the request path, once the answer is on its way: the
// work whose cost would tell whether an account exists (a signup's account
// or notice, a reset code). Its errors are logged; Flush waits for it.
func (a *Auth) later(ctx context.Context, what string, fn func(ctx context.Context) error) {
	a.laterSlots <- struct{}{}
	a.pending.Add(1)
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer func() { <-a.laterSlots; a.pending.Done() }()
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := fn(ctx); err != nil {
			a.log.Error("fiberauth: "+what+" failed after the answer", "err", err)
		}
	}()
}

// Flush waits until the work fiberauth runs after answering has finished
// (signup accounts and notices, reset codes, cleanup), or ctx ends. Call it
// when shutting down, once the server takes no more requests, so that no
// code on its way is lost.
func (a *Auth) Flush(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		a.pending.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops listening to the store's change notices (Notifier). Call it
// when the Auth is no longer used, after Flush; its handlers and middleware
// keep working, and see other instances' changes within CacheTTL. Closing
// twice is a no-op.
func (a *Auth) Close() error {
	a.closeOnce.Do(func() {
		if a.unsubscribe != nil {
			a.unsubscribe()
		}
	})
	return nil
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

// Client is where a request comes from: kept with the sessions it starts
// and in the events it causes.
type Client struct {
	IP        string
	UserAgent string
}

type clientKey struct{}

// Bounds of what a Client keeps (bytes).
const (
	maxClientIPLength  = 64
	maxUserAgentLength = 512
)

// WithClient returns ctx carrying c, for the Go API: the flows record it on
// the sessions they start and in the events they emit, and limit failed
// logins per c.IP (a call without an IP has no per-IP limit). The handlers
// Mount registers set it from the request (clientip.go). Both fields are
// kept as text: at most 64 and 512 bytes of UTF-8, control characters
// dropped.
func WithClient(ctx context.Context, c Client) context.Context {
	c.IP, c.UserAgent = clientText(c.IP, maxClientIPLength), clientText(c.UserAgent, maxUserAgentLength)
	return context.WithValue(ctx, clientKey{}, c)
}

// clientText is s as a Client keeps it: a copy (s may point into a buffer
// Fiber reuses), valid UTF-8 without control characters, at most max bytes.
func clientText(s string, max int) string {
	if len(s) > max {
		s = s[:max] // a rune cut in two is dropped below
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	return strings.Clone(s)
}

// ClientFrom returns the Client that ctx carries; the zero Client when none.
func ClientFrom(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}

// EventType names an audit event.
type EventType string

// Audit events passed to Config.OnEvent.
const (
	EventLoginSucceeded           EventType = "login_succeeded"
	EventLoginFailed              EventType = "login_failed"
	EventSignup                   EventType = "signup"
	EventEmailConfirmed           EventType = "email_confirmed"
	EventRefresh                  EventType = "refresh"
	EventRefreshReused            EventType = "refresh_reused"
	EventLogout                   EventType = "logout"
	EventLogoutAll                EventType = "logout_all"
	EventSessionRevoked           EventType = "session_revoked"
	EventPasswordChanged          EventType = "password_changed"
	EventPasswordResetRequested   EventType = "password_reset_requested"
	EventPasswordReset            EventType = "password_reset"
	EventUserCreated              EventType = "user_created"
	EventUserDisabled             EventType = "user_disabled"
	EventRolesChanged             EventType = "roles_changed"
	EventMFAEnabled               EventType = "mfa_enabled"
	EventMFADisabled              EventType = "mfa_disabled"
	EventRecoveryCodeUsed         EventType = "recovery_code_used"
	EventRecoveryCodesRegenerated EventType = "recovery_codes_regenerated"
	// EventThrottled: a request went over a limit (429, or a code not
	// sent); Reason names the limit: login_account, login_ip, code,
	// code_ip, code_sends, reset_ip, signup_ip, passkey_ip (passkey
	// sign-ins begun) or passkey_account (passkey registrations begun).
	EventThrottled EventType = "throttled"
	// EventPasskeyAdded and EventPasskeyRemoved: a user's passkeys
	// changed.
	EventPasskeyAdded   EventType = "passkey_added"
	EventPasskeyRemoved EventType = "passkey_removed"
	// EventPasskeyRefused: a passkey's signature counter went back
	// (Reason "sign_count"): a cloned authenticator or a replayed
	// answer. The sign-in is refused.
	EventPasskeyRefused EventType = "passkey_refused"
	// EventChallenge: a login's first step answered a challenge instead of
	// tokens; Reason is its name (ChallengeMFA, ChallengeNewPassword). A
	// challenge answered right is then EventLoginSucceeded, a wrong code
	// EventLoginFailed with Reason "wrong_code".
	EventChallenge EventType = "challenge"
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

// trace begins the service call named call (Config.Trace): the call's
// context, and what to call with its error as it ends.
func (a *Auth) trace(ctx context.Context, call string) (context.Context, func(error)) {
	if a.cfg.Trace == nil {
		return ctx, endNothing
	}
	return a.cfg.Trace(ctx, call)
}

func endNothing(error) {}

// emit records e with the client ctx carries, in the log and through
// Config.OnEvent.
func (a *Auth) emit(ctx context.Context, e Event) {
	if e.Time.IsZero() {
		e.Time = a.now()
	}
	cl := ClientFrom(ctx)
	e.IP, e.UserAgent = cl.IP, cl.UserAgent
	// Asked first (as Info asks), so that a log that drops Info costs no
	// boxing of the attributes: every refresh emits.
	if a.log.Enabled(context.Background(), slog.LevelInfo) {
		a.log.Info("fiberauth: "+string(e.Type), "user_id", e.UserID, "session_id", e.SessionID, "ip", e.IP, "reason", e.Reason)
	}
	if a.cfg.OnEvent != nil {
		a.cfg.OnEvent(e)
	}
}
