package fiberauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
)

// A Verifier checks fiberauth's access tokens in a service that has no
// store: another API behind the same sign-in, given only the issuer's JWKS
// URL or its public keys.

// VerifierConfig configures a Verifier. JWKSURL or Keys is required.
type VerifierConfig struct {
	// JWKSURL is the issuer's JWK Set, as its Mount serves it
	// ("https://auth.example.com/auth/.well-known/jwks.json"). It is
	// fetched at the first token, again when a token names a kid it does
	// not hold (at most once a minute, however many such tokens come), and
	// every RefreshInterval (so that retired keys leave).
	// Optional. Default: none (Keys only).
	JWKSURL string

	// Keys are public keys to verify with, besides those of JWKSURL
	// (SigningKey.PublicKey, ParseJWKS, Auth.PublicKeys).
	// Optional. Default: none (JWKSURL only).
	Keys []PublicKey

	// Issuer is the "iss" tokens must carry.
	// Optional. Default: "fiberauth" (as Config.Issuer).
	Issuer string

	// Audience must be in the tokens' "aud".
	// Optional. Default: "fiberauth" (as Config.Audience).
	Audience string

	// ClientID is the "client_id" tokens may carry (one naming another
	// client is refused). Optional. Default: Audience.
	ClientID string

	// Leeway is the clock skew allowed on exp, nbf and iat.
	// Optional. Default: 30 seconds; at most 60 seconds.
	Leeway time.Duration

	// HTTPClient fetches JWKSURL. Optional. Default: a client of its own.
	HTTPClient *http.Client

	// FetchTimeout bounds one fetch of JWKSURL (the body is read up to
	// MaxJWKSSize). Optional. Default: 5 seconds.
	FetchTimeout time.Duration

	// RefreshInterval is how often JWKSURL is fetched again, off the
	// request path, while tokens come.
	// Optional. Default: JWKSMaxAge (5 minutes).
	RefreshInterval time.Duration

	// Now is the clock. Optional. Default: time.Now.
	Now func() time.Time

	// Logger receives failed fetches. Optional. Default: slog.Default().
	Logger *slog.Logger
}

// Verifier verifies access tokens with public keys only. It checks what
// needs no store: encoding, header (typ at+jwt, no crit, alg EdDSA or
// ES256 and the algorithm of the kid's key: HS256 and none are refused),
// signature, iss, aud, client_id, exp, nbf and iat, and the claims
// fiberauth requires, all as strictly as Auth does (docs/api.md). It
// cannot check what the issuer's store knows: a token stays good here
// until it expires even after its user's etag changed (password change,
// role removal, disabled user) or its session was revoked (logout). Keep
// Config.AccessTTL short where that matters, or call the issuer. It is
// safe for concurrent use.
type Verifier struct {
	cfg     VerifierConfig
	parser  *jwt.Parser
	client  *http.Client
	static  map[string]PublicKey
	fetched atomic.Pointer[fetchedKeys]
	gate    refreshGate
	bg      atomic.Bool // a background refresh is running
}

// fetchedKeys is one fetch of the JWKS.
type fetchedKeys struct {
	byKID map[string]PublicKey
	at    time.Time
}

// Bounds of fetching the JWKS.
const (
	// minRefetch is the least time between two fetches of the JWKS.
	minRefetch = time.Minute
	// retryEmpty is the least time between two fetches while none has
	// succeeded yet.
	retryEmpty = 5 * time.Second
)

var errNoKeysYet = errors.New("fiberauth: the JWKS could not be fetched")

// NewVerifier checks cfg and returns a Verifier. It fetches nothing yet:
// the first token does.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.JWKSURL == "" && len(cfg.Keys) == 0 {
		return nil, errors.New("fiberauth: VerifierConfig needs JWKSURL or Keys")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = ConfigDefault.Issuer
	}
	if cfg.Audience == "" {
		cfg.Audience = ConfigDefault.Audience
	}
	if cfg.ClientID == "" {
		cfg.ClientID = cfg.Audience
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = ConfigDefault.Leeway
	}
	if cfg.Leeway < 0 || cfg.Leeway > time.Minute {
		return nil, errors.New("fiberauth: VerifierConfig.Leeway must be between 0 and 60 seconds")
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 5 * time.Second
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = JWKSMaxAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	v := &Verifier{cfg: cfg, client: cfg.HTTPClient, static: map[string]PublicKey{}}
	if v.client == nil {
		v.client = &http.Client{Timeout: cfg.FetchTimeout}
	}
	for _, k := range cfg.Keys {
		if err := checkPublicKey(k); err != nil {
			return nil, err
		}
		if _, dup := v.static[k.KID]; dup {
			return nil, fmt.Errorf("fiberauth: VerifierConfig.Keys: kid %q twice", k.KID)
		}
		v.static[k.KID] = k
	}
	v.parser = jwt.NewParser(strictOptions(asymmetricAlgs, cfg.Issuer, cfg.Audience, cfg.Leeway, cfg.Now)...)
	return v, nil
}

// Verify checks token and returns its claims. It fails with
// ErrInvalidToken, or ErrUnavailable when no key could be fetched yet.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	c, err := v.verify(ctx, token)
	if err != nil {
		return Claims{}, err
	}
	return *c, nil
}

func (v *Verifier) verify(ctx context.Context, raw string) (*Claims, error) {
	noKeys := false
	keyFunc := func(t *jwt.Token) (any, error) {
		if err := checkHeader(t); err != nil {
			return nil, err
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errNoKID
		}
		k, ok := v.key(ctx, kid)
		if !ok {
			noKeys = len(v.static) == 0 && v.fetched.Load() == nil
			return nil, errUnknownKID
		}
		if t.Method.Alg() != k.Algorithm {
			return nil, errAlgNotKeys
		}
		return k.Key, nil
	}
	_, c, err := verifyToken(v.parser, keyFunc, v.cfg.ClientID, raw)
	if err != nil && noKeys {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, errNoKeysYet)
	}
	return c, err
}

// key is the key of kid: configured, fetched, or fetched now.
func (v *Verifier) key(ctx context.Context, kid string) (PublicKey, bool) {
	if k, ok := v.static[kid]; ok {
		return k, true
	}
	if v.cfg.JWKSURL == "" {
		return PublicKey{}, false
	}
	now := v.cfg.Now()
	f := v.fetched.Load()
	if f != nil {
		if k, ok := f.byKID[kid]; ok {
			if !now.Before(f.at.Add(v.cfg.RefreshInterval)) && v.bg.CompareAndSwap(false, true) {
				go func() {
					defer v.bg.Store(false)
					v.gate.do(context.Background(), now, minRefetch, v.refresh)
				}()
			}
			return k, true
		}
	}
	if !v.gate.do(ctx, now, minRefetch, v.refresh) {
		return PublicKey{}, false
	}
	k, ok := v.fetched.Load().lookup(kid)
	return k, ok
}

func (f *fetchedKeys) lookup(kid string) (PublicKey, bool) {
	if f == nil {
		return PublicKey{}, false
	}
	k, ok := f.byKID[kid]
	return k, ok
}

// refresh fetches the JWKS and keeps it; on failure the keys held stay,
// and, while none is held, the next try may come sooner.
func (v *Verifier) refresh() {
	start := v.cfg.Now()
	keys, err := v.fetch()
	if err != nil {
		v.cfg.Logger.Warn("fiberauth: fetching the JWKS failed; the keys held stay", "url", v.cfg.JWKSURL, "err", err)
		if v.fetched.Load() == nil {
			v.gate.allowAt(start.Add(retryEmpty))
		}
		return
	}
	f := &fetchedKeys{byKID: make(map[string]PublicKey, len(keys)), at: start}
	for _, k := range keys {
		f.byKID[k.KID] = k
	}
	v.fetched.Store(f)
}

// fetch reads the JWKS: status 200, at most MaxJWKSSize bytes, within
// FetchTimeout.
func (v *Verifier) fetch() ([]PublicKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), v.cfg.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fiberauth: JWKS answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return nil, err
	}
	return ParseJWKS(body)
}

// Middleware protects routes with Verify: a request without a valid
// access token gets the same 401 invalid_token JSON and WWW-Authenticate
// header as Auth.Middleware answers (503 unavailable while no key could be
// fetched). Handlers read the caller with ClaimsFrom, UserIDFrom,
// SessionIDFrom and ClaimsFromContext; HasRole is always false here, as
// roles are not in the token.
func (v *Verifier) Middleware() fiber.Handler {
	return func(c *fiber.Ctx) error {
		raw, err := bearerToken(c.Get(fiber.HeaderAuthorization))
		var claims *Claims
		if err == nil {
			claims, err = v.verify(c.UserContext(), raw)
		}
		if err != nil {
			return writeErrorTo(c, v.cfg.Logger, err)
		}
		p := &principal{Context: c.UserContext(), claims: claims}
		c.Locals(principalKey{}, p)
		c.SetUserContext(p)
		return c.Next()
	}
}
