package fiberauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// accessTokenType is the JWT "typ" header of access tokens (RFC 9068). It
// is what fiberauth writes; verification also takes its long form,
// "application/at+jwt", in any case (accessTokenTyp).
const accessTokenType = "at+jwt"

// maxTokenLength bounds the Authorization header the middleware will parse.
const maxTokenLength = 8 << 10

// Claims are the claims of an access token. Times are Unix seconds, decoded
// straight into integers (a NumericDate with a fraction is rounded down):
// the middleware parses every token it has not seen, and this is most of
// that work. Decoding is strict (claimsjson.go): a key that differs only in
// case from one of the claims below, a claim given twice, or a claim of the
// wrong type (null included) is refused.
type Claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"` // the user id
	Audience  Audience `json:"aud"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf,omitempty"`
	ExpiresAt int64    `json:"exp"`
	ID        string   `json:"jti"`
	// SessionID is the session family ("sid").
	SessionID string `json:"sid"`
	// ETag is the user's etag when the token was issued.
	ETag string `json:"etag"`
	// ClientID is the "client_id" claim (RFC 9068 §2.2): Config.ClientID in
	// every token fiberauth signs. "" means the token has none (tokens
	// signed before fiberauth wrote it); a client_id that is present must
	// be a non-empty string.
	ClientID string `json:"client_id,omitempty"`
}

// Expiry is when the token expires.
func (c *Claims) Expiry() time.Time { return time.Unix(c.ExpiresAt, 0) }

func numericDate(sec int64) (*jwt.NumericDate, error) {
	if sec == 0 {
		return nil, nil
	}
	return jwt.NewNumericDate(time.Unix(sec, 0)), nil
}

// GetExpirationTime implements jwt.Claims.
func (c *Claims) GetExpirationTime() (*jwt.NumericDate, error) { return numericDate(c.ExpiresAt) }

// GetIssuedAt implements jwt.Claims.
func (c *Claims) GetIssuedAt() (*jwt.NumericDate, error) { return numericDate(c.IssuedAt) }

// GetNotBefore implements jwt.Claims.
func (c *Claims) GetNotBefore() (*jwt.NumericDate, error) { return numericDate(c.NotBefore) }

// GetIssuer implements jwt.Claims.
func (c *Claims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c *Claims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c *Claims) GetAudience() (jwt.ClaimStrings, error) { return jwt.ClaimStrings(c.Audience), nil }

// Audience is the "aud" claim: one string or an array of them (RFC 7519),
// always written as an array.
type Audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	// The usual case, one plain string in an array, without a second JSON
	// pass: every token the middleware has not seen gets here.
	if n := len(b); n >= 4 && b[0] == '[' && b[1] == '"' && b[n-2] == '"' && b[n-1] == ']' && plainJSONString(b[2:n-2]) {
		*a = Audience{string(b[2 : n-2])}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Audience{s}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// tokenSigner signs and verifies access tokens. Its parser is built once with
// the algorithm pinned and every registered-claim check switched on.
type tokenSigner struct {
	key      []byte
	issuer   string
	audience Audience
	clientID string
	ttl      time.Duration
	// maxLife is the most exp may be after iat, in seconds: AccessTTL +
	// Leeway, rounded up. fiberauth signs no longer-lived token.
	maxLife int64
	parser  *jwt.Parser
	// idParser verifies ID tokens: as parser, with their audience.
	idParser   *jwt.Parser
	idAudience string
	keyFunc    jwt.Keyfunc
	// ring, when set, holds the asymmetric keys that sign and verify
	// instead of key (keyring.go).
	ring *keyRing
	// hs is the short path of HS256 tokens (fasttoken.go); nil with ring.
	hs *hsVerifier
}

func newTokenSigner(cfg Config) tokenSigner {
	s := tokenSigner{
		key:      cfg.Secret,
		issuer:   cfg.Issuer,
		audience: Audience{cfg.Audience},
		clientID: cfg.ClientID,
		ttl:      cfg.AccessTTL,
		maxLife:  int64((cfg.AccessTTL + cfg.Leeway + time.Second - 1) / time.Second),
	}
	opts := strictOptions([]string{jwt.SigningMethodHS256.Alg()}, cfg.Issuer, cfg.Audience, cfg.Leeway, cfg.Now)
	s.parser = jwt.NewParser(opts...)
	s.idAudience = cfg.IDTokenAudience
	s.idParser = jwt.NewParser(strictOptions([]string{jwt.SigningMethodHS256.Alg()}, cfg.Issuer, cfg.IDTokenAudience, cfg.Leeway, cfg.Now)...)
	s.hs = newHSVerifier(&cfg)
	var key any = s.key // boxed once, not on every parse
	s.keyFunc = func(t *jwt.Token) (any, error) {
		if err := checkHeader(t); err != nil {
			return nil, err
		}
		return key, nil
	}
	return s
}

// useKeys makes s sign with the ring's keys, and verify with them only:
// EdDSA and ES256, each token with the key of its kid.
func (s *tokenSigner) useKeys(r *keyRing, cfg Config) {
	s.ring = r
	s.hs = nil
	s.parser = jwt.NewParser(strictOptions(asymmetricAlgs, cfg.Issuer, cfg.Audience, cfg.Leeway, cfg.Now)...)
	s.idParser = jwt.NewParser(strictOptions(asymmetricAlgs, cfg.Issuer, cfg.IDTokenAudience, cfg.Leeway, cfg.Now)...)
	s.keyFunc = r.keyFunc
}

// asymmetricAlgs are the algorithms of asymmetric keys. A token with any
// other alg (HS256, none) is refused before its key is looked up.
var asymmetricAlgs = []string{AlgorithmEdDSA, AlgorithmES256}

// strictOptions are the options of a parser with the algorithms pinned to
// algs and every registered-claim check switched on.
func strictOptions(algs []string, issuer, audience string, leeway time.Duration, now func() time.Time) []jwt.ParserOption {
	return []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), // checked when present; verify requires it
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		// base64url without padding, and the unused bits of the last
		// character zero: one token, one spelling (RFC 7515 §2).
		jwt.WithStrictDecoding(),
	}
}

// checkHeader checks what every access token's header must be, whatever
// its key: typ at+jwt, and no crit.
func checkHeader(t *jwt.Token) error {
	if typ, _ := t.Header["typ"].(string); !accessTokenTyp(typ) {
		return errWrongTyp
	}
	// We implement no JWS extension, so any "crit" (even an empty or
	// malformed one) must be refused (RFC 7515 §4.1.11).
	if _, ok := t.Header["crit"]; ok {
		return errCrit
	}
	return nil
}

// accessTokenTyp reports whether typ names an access token: "at+jwt" or
// "application/at+jwt", in any case (RFC 9068 §4; media type names are
// case-insensitive, RFC 2045 §5.1).
func accessTokenTyp(typ string) bool {
	if typ == accessTokenType {
		return true
	}
	const prefix = "application/"
	if len(typ) > len(prefix) && asciiEqualFold(typ[:len(prefix)], prefix) {
		typ = typ[len(prefix):]
	}
	return asciiEqualFold(typ, accessTokenType)
}

// asciiEqualFold is strings.EqualFold for ASCII only: no Unicode folding
// (the Kelvin sign is not a K).
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// sign issues an access token for the user's session family at now.
func (s *tokenSigner) sign(userID, sessionID, etag string, now time.Time) (string, *Claims, error) {
	claims := &Claims{
		Issuer:    s.issuer,
		Subject:   userID,
		Audience:  s.audience,
		IssuedAt:  now.Unix(),
		ExpiresAt: now.Add(s.ttl).Unix(),
		ID:        randomID(),
		SessionID: sessionID,
		ETag:      etag,
		ClientID:  s.clientID,
	}
	if s.ring == nil && s.hs != nil {
		if signed, ok := s.hs.sign(claims); ok {
			return signed, claims, nil
		}
	}
	signed, err := s.signJWT(claims, accessTokenType, now)
	if err != nil {
		return "", nil, fmt.Errorf("%w: signing access token: %w", ErrUnavailable, err)
	}
	return signed, claims, nil
}

// signJWT signs claims with the key that signs at now (the secret, HS256,
// or the ring's key, with its kid), with typ in the header.
func (s *tokenSigner) signJWT(claims jwt.Claims, typ string, now time.Time) (string, error) {
	var (
		t      *jwt.Token
		signer any = s.key
	)
	if s.ring != nil {
		k, method := s.ring.signing(now)
		t = jwt.NewWithClaims(method, claims)
		t.Header["kid"] = k.kid
		signer = k.priv.signer
	} else {
		t = jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	}
	t.Header["typ"] = typ
	return t.SignedString(signer)
}

// verify checks the signature, algorithm, typ, crit, iss, aud, exp, nbf, iat
// and client_id of raw, and that it expires at most AccessTTL + Leeway
// after its iat, and returns its claims and, with asymmetric keys, the key
// that verified it (nil with HS256: the secret never stops verifying).
// The etag and session checks are the middleware's.
func (s *tokenSigner) verify(raw string) (*Claims, *verifyKey, error) {
	if err := checkTokenShape(raw); err != nil {
		return nil, nil, err
	}
	if s.hs != nil {
		if c, handled, err := s.hs.verify(raw); handled {
			if err != nil {
				return nil, nil, err
			}
			return s.checkLife(c)
		}
	}
	t, c, err := verifyToken(s.parser, s.keyFunc, s.clientID, raw)
	if err != nil {
		return nil, nil, err
	}
	if s.ring == nil {
		return s.checkLife(c)
	}
	if _, _, err := s.checkLife(c); err != nil {
		return nil, nil, err
	}
	k := s.ring.verifiedBy(t)
	if k == nil || !k.live(s.ring.now()) {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidToken, errKeyRetired)
	}
	return c, k, nil
}

// checkLife refuses a token that expires more than AccessTTL + Leeway after
// its iat: fiberauth signs none.
func (s *tokenSigner) checkLife(c *Claims) (*Claims, *verifyKey, error) {
	// iat is at most now + Leeway (the parser), so this cannot overflow.
	if c.ExpiresAt > c.IssuedAt+s.maxLife {
		return nil, nil, fmt.Errorf("%w: exp is more than AccessTTL + Leeway after iat", ErrInvalidToken)
	}
	return c, nil, nil
}

// verifyToken is what every verifier of access tokens checks (tokenSigner
// and Verifier): the encoding, the header and signature through parser and
// keyFunc, then the claims fiberauth requires. It returns the parsed token
// too.
func verifyToken(parser *jwt.Parser, keyFunc jwt.Keyfunc, clientID, raw string) (*jwt.Token, *Claims, error) {
	if err := checkTokenShape(raw); err != nil {
		return nil, nil, err
	}
	claims := new(Claims)
	t, err := parser.ParseWithClaims(raw, claims, keyFunc)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if err := checkRequiredClaims(claims, clientID); err != nil {
		return nil, nil, err
	}
	return t, claims, nil
}

// checkTokenShape refuses what no decoder should see: a token over
// maxTokenLength, and line breaks, which strict base64 still skips
// (encoding/base64), so that no other spelling of a token verifies.
func checkTokenShape(raw string) error {
	if len(raw) > maxTokenLength {
		return fmt.Errorf("%w: token too long", ErrInvalidToken)
	}
	if strings.IndexByte(raw, '\n') >= 0 || strings.IndexByte(raw, '\r') >= 0 {
		return fmt.Errorf("%w: line break in token", ErrInvalidToken)
	}
	return nil
}

// checkRequiredClaims checks what fiberauth requires of every access token
// beyond the registered claims the parser checks.
func checkRequiredClaims(claims *Claims, clientID string) error {
	if claims.Subject == "" || claims.SessionID == "" || claims.ETag == "" || claims.ID == "" {
		return fmt.Errorf("%w: missing sub, sid, etag or jti", ErrInvalidToken)
	}
	// jwt.WithIssuedAt checks iat only when it is there; 0 decodes the
	// same as no iat.
	if claims.IssuedAt == 0 {
		return fmt.Errorf("%w: missing iat", ErrInvalidToken)
	}
	// Tokens signed before fiberauth wrote client_id have none; one that
	// names another client is not ours to accept.
	if claims.ClientID != "" && claims.ClientID != clientID {
		return fmt.Errorf("%w: wrong client_id", ErrInvalidToken)
	}
	return nil
}

// plainJSONString reports whether b is the inside of a JSON string that needs
// no unescaping: printable ASCII without quotes or backslashes.
func plainJSONString(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

var (
	errWrongTyp = errors.New("typ is not " + accessTokenType)
	errCrit     = errors.New("crit header: no extension is understood")
)

// randomToken returns 256 bits from crypto/rand, base64url without padding.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomID returns 128 bits from crypto/rand as base64url: ids of users,
// session families, tokens and etags.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is how refresh tokens and challenge sessions are stored.
func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// equalHash compares hashes of secrets in constant time all the same.
func equalHash(a, b []byte) bool {
	return len(a) > 0 && len(a) == len(b) && subtleEqual(a, b)
}
