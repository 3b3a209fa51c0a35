package fiberauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// The short path for the HS256 tokens fiberauth signs. Every token the
// middleware has not seen is verified, so this is the cost of a first
// request. golang-jwt's parser decodes the header into a map and the claims
// through encoding/json, which is most of its time; a token that fiberauth
// signed has one header, byte for byte, so that is compared instead, and the
// claims go straight to the strict decoder of claimsjson.go. What is checked
// is the parser's own work, unchanged:
//
//   - the header segment equals the one sign writes ({"alg":"HS256",
//     "typ":"at+jwt"}): the algorithm is HS256, typ is at+jwt, and there is
//     no crit and no other field. Any other header, valid or not, goes to
//     the general parser, which decides as it always did.
//   - the signature is strict base64url of 32 bytes and equals the HMAC of
//     the header and payload (hmac.Equal, constant time), computed with a
//     pooled HMAC per key;
//   - the payload is strict base64url of claims that the strict decoder
//     takes;
//   - the claims pass the checks of the parser's options (checkClaims:
//     exp required, nbf, iat, aud, iss, with the leeway, on the clock),
//     then what verifyToken requires of every token.
//
// TestShortPathAgreesWithParser and FuzzShortPath check that the short path
// and the parser agree on every token. Signing has its short path too
// (hsVerifier.sign), which writes the same bytes as golang-jwt.

// hsVerifier is the short path of one HS256 key.
type hsVerifier struct {
	header   string // base64url of the header sign writes
	issuer   string
	audience string
	clientID string
	leeway   time.Duration
	now      func() time.Time
	states   sync.Pool // *hsState
	// claimsHead and claimsTail are the parts of the claims JSON that are
	// the same in every token sign writes: up to the subject, and from
	// client_id on.
	claimsHead, claimsTail string
}

// hsState is one verification's or signing's scratch space, pooled so that
// the short path allocates only the claims or the token it returns.
type hsState struct {
	mac     hash.Hash
	sum     [sha256.Size]byte
	sig     [sha256.Size]byte
	payload []byte
}

// hsHeader is the JSON header of every HS256 token sign writes: golang-jwt
// marshals its header map, so the keys come sorted.
const hsHeader = `{"alg":"HS256","typ":"` + accessTokenType + `"}`

// hsSignatureLen is the length of an HS256 signature in base64url.
var hsSignatureLen = base64.RawURLEncoding.EncodedLen(sha256.Size)

// strictBase64 is how every segment is decoded: base64url, no padding, the
// unused bits of the last character zero (jwt.WithStrictDecoding).
var strictBase64 = base64.RawURLEncoding.Strict()

func newHSVerifier(cfg *Config) *hsVerifier {
	v := &hsVerifier{
		header:   base64.RawURLEncoding.EncodeToString([]byte(hsHeader)),
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		clientID: cfg.ClientID,
		leeway:   cfg.Leeway,
		now:      cfg.Now,
	}
	key := cfg.Secret
	key = append([]byte(nil), key...)
	v.states.New = func() any { return &hsState{mac: hmac.New(sha256.New, key)} }
	v.claimsHead = `{"iss":` + string(appendJSONString(nil, cfg.Issuer)) + `,"sub":`
	if cfg.ClientID != "" {
		v.claimsTail = `,"client_id":` + string(appendJSONString(nil, cfg.ClientID))
	}
	v.claimsTail += "}"
	return v
}

// sign is the token golang-jwt's SignedString makes of c with the HS256
// header sign sets, byte for byte (TestShortSignAgreesWithLibrary), without
// its work per token: the header is a constant, the claims JSON is written
// in the field order and escaping of encoding/json with its constant parts
// encoded once, and the HMAC is pooled. ok is false for claims with other
// iss, aud or client_id than the key's, which the caller signs through
// golang-jwt.
func (v *hsVerifier) sign(c *Claims) (token string, ok bool) {
	if c.Issuer != v.issuer || len(c.Audience) != 1 || c.Audience[0] != v.audience || c.ClientID != v.clientID {
		return "", false
	}
	st := v.states.Get().(*hsState)
	defer v.states.Put(st)
	b := append(st.payload[:0], v.claimsHead...)
	b = appendJSONString(b, c.Subject)
	b = append(b, `,"aud":[`...)
	b = appendJSONString(b, c.Audience[0])
	b = append(b, `],"iat":`...)
	b = strconv.AppendInt(b, c.IssuedAt, 10)
	if c.NotBefore != 0 {
		b = append(b, `,"nbf":`...)
		b = strconv.AppendInt(b, c.NotBefore, 10)
	}
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, c.ExpiresAt, 10)
	b = append(b, `,"jti":`...)
	b = appendJSONString(b, c.ID)
	b = append(b, `,"sid":`...)
	b = appendJSONString(b, c.SessionID)
	b = append(b, `,"etag":`...)
	b = appendJSONString(b, c.ETag)
	b = append(b, v.claimsTail...)
	st.payload = b

	enc := base64.RawURLEncoding
	out := make([]byte, 0, len(v.header)+1+enc.EncodedLen(len(b))+1+hsSignatureLen)
	out = append(out, v.header...)
	out = append(out, '.')
	out = enc.AppendEncode(out, b)
	st.mac.Reset()
	st.mac.Write(out)
	out = append(out, '.')
	out = enc.AppendEncode(out, st.mac.Sum(st.sum[:0]))
	return string(out), true
}

// appendJSONString appends s as encoding/json writes a string: printable
// ASCII that needs no escape as it is, anything else through json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// verify verifies raw if its header is the one sign writes (handled), and
// otherwise leaves it to the parser. raw has passed checkTokenShape.
func (v *hsVerifier) verify(raw string) (c *Claims, handled bool, err error) {
	h := len(v.header)
	if len(raw) <= h || raw[h] != '.' || raw[:h] != v.header {
		return nil, false, nil
	}
	dot := strings.LastIndexByte(raw, '.')
	if dot == h {
		return nil, false, nil // malformed: the parser says how
	}
	signed, sig := raw[:dot], raw[dot+1:]
	payload := signed[h+1:]
	if strings.IndexByte(payload, '.') >= 0 || len(sig) != hsSignatureLen {
		return nil, false, nil
	}
	st := v.states.Get().(*hsState)
	defer v.states.Put(st)
	if n, err := strictBase64.Decode(st.sig[:], stringBytes(sig)); err != nil || n != sha256.Size {
		return nil, true, fmt.Errorf("%w: %w: signature is not strict base64url", ErrInvalidToken, jwt.ErrTokenMalformed)
	}
	st.mac.Reset()
	st.mac.Write(stringBytes(signed))
	if !hmac.Equal(st.mac.Sum(st.sum[:0]), st.sig[:]) {
		return nil, true, fmt.Errorf("%w: %w", ErrInvalidToken, jwt.ErrTokenSignatureInvalid)
	}
	// The signature is ours: from here on the token is one fiberauth signed
	// (or one signed with its secret), and the checks are of its claims.
	n := strictBase64.DecodedLen(len(payload))
	if cap(st.payload) < n {
		st.payload = make([]byte, n)
	}
	n, err = strictBase64.Decode(st.payload[:n], stringBytes(payload))
	if err != nil {
		return nil, true, fmt.Errorf("%w: %w: claims are not strict base64url", ErrInvalidToken, jwt.ErrTokenMalformed)
	}
	c = new(Claims)
	if b := st.payload[:n]; !decodeClaimsFast(b, c) {
		*c = Claims{}
		if err := decodeClaimsSlow(b, c); err != nil {
			return nil, true, fmt.Errorf("%w: %w: %w", ErrInvalidToken, jwt.ErrTokenMalformed, err)
		}
	}
	if err := v.checkClaims(c); err != nil {
		return nil, true, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if err := checkRequiredClaims(c, v.clientID); err != nil {
		return nil, true, err
	}
	return c, true, nil
}

// checkClaims is what jwt.Validator checks with strictOptions, in its order,
// without its allocations (a NumericDate per time): a time is the whole
// second it names, exp must be after now - leeway, nbf and iat at most
// now + leeway, aud must hold the audience and iss be the issuer.
func (v *hsVerifier) checkClaims(c *Claims) error {
	now := v.now()
	switch {
	case c.ExpiresAt == 0:
		return fmt.Errorf("%w: exp claim is required", jwt.ErrTokenRequiredClaimMissing)
	case !now.Before(time.Unix(c.ExpiresAt, 0).Add(v.leeway)):
		return jwt.ErrTokenExpired
	case c.NotBefore != 0 && now.Before(time.Unix(c.NotBefore, 0).Add(-v.leeway)):
		return jwt.ErrTokenNotValidYet
	case c.IssuedAt != 0 && now.Before(time.Unix(c.IssuedAt, 0).Add(-v.leeway)):
		return jwt.ErrTokenUsedBeforeIssued
	case len(c.Audience) == 0 || len(c.Audience) == 1 && c.Audience[0] == "":
		return fmt.Errorf("%w: aud claim is required", jwt.ErrTokenRequiredClaimMissing)
	case !slices.Contains(c.Audience, v.audience):
		return jwt.ErrTokenInvalidAudience
	case c.Issuer == "":
		return fmt.Errorf("%w: iss claim is required", jwt.ErrTokenRequiredClaimMissing)
	case c.Issuer != v.issuer:
		return jwt.ErrTokenInvalidIssuer
	}
	return nil
}

// stringBytes is s's bytes, without a copy, for functions that only read
// them (decoding, hashing) and keep no reference.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
