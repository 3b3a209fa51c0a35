package fiberauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// Decoding the claims of an access token, strictly:
//
//   - Keys are matched exactly. A key that differs only in case (Unicode
//     simple folding, as strings.EqualFold) from a claim Claims reads
//     ("SUB", "Exp", "ſub") is refused: encoding/json would have matched it
//     case-insensitively and let it override the real claim.
//   - A claim Claims reads may appear once. encoding/json keeps the last of
//     duplicate keys (RFC 7519 §4 allows that or refusing); we refuse, so
//     that no other parser of the same token (a proxy, a JWT library that
//     keeps the first) can see another value than ours. Keys we do not
//     read are ignored, repeated or not.
//   - Each claim has its type: strings for iss, sub, jti, sid, etag and a
//     non-empty one for client_id; a string or an array of strings for aud;
//     a JSON number for exp, nbf and iat. null is refused for all of them.
//   - NumericDates may have a fraction or an exponent (RFC 7519 §2) and are
//     rounded down to whole seconds, exactly (no float rounding); one that
//     does not fit an int64 is refused.
//
// Claims in the shape fiberauth issues (a flat object of those keys, plain
// strings, numbers) take a short path, decodeClaimsFast; anything else goes
// to decodeClaimsSlow, which walks the object with encoding/json. The short
// path takes only what the slow one decodes the same way: FuzzClaimsJSON
// checks both against encoding/json.

// claimNames are the claims Claims reads, in the order of the claim*
// constants.
var claimNames = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "etag", "client_id"}

const (
	claimIss = iota
	claimSub
	claimAud
	claimExp
	claimNbf
	claimIat
	claimJti
	claimSid
	claimETag
	claimClientID
)

// claimIndex is the index in claimNames of key, matched exactly, or -1.
func claimIndex(key string) int {
	switch key {
	case "iss":
		return claimIss
	case "sub":
		return claimSub
	case "aud":
		return claimAud
	case "exp":
		return claimExp
	case "nbf":
		return claimNbf
	case "iat":
		return claimIat
	case "jti":
		return claimJti
	case "sid":
		return claimSid
	case "etag":
		return claimETag
	case "client_id":
		return claimClientID
	}
	return -1
}

// caseVariantOfClaim reports whether key is not a claim Claims reads but
// equals one under case folding.
func caseVariantOfClaim(key string) (string, bool) {
	for _, name := range claimNames {
		if key != name && strings.EqualFold(key, name) {
			return name, true
		}
	}
	return "", false
}

// UnmarshalJSON decodes the claims strictly (see above). The claims are
// replaced as a whole, never merged with what c held.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var fast Claims // on the stack: the short path keeps no pointer to it
	if decodeClaimsFast(b, &fast) {
		*c = fast
		return nil
	}
	slow := new(Claims)
	if err := decodeClaimsSlow(b, slow); err != nil {
		return err
	}
	*c = *slow
	return nil
}

var errClaimsNotObject = errors.New("claims: not a JSON object")

// decodeClaimsSlow decodes any JSON into c, or says why it refuses it.
func decodeClaimsSlow(b []byte, c *Claims) error {
	if !json.Valid(b) {
		return errors.New("claims: invalid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil {
		return err
	} else if tok != json.Delim('{') {
		return errClaimsNotObject
	}
	var seen uint16
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return errClaimsNotObject
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		k := claimIndex(key)
		if k < 0 {
			if name, ok := caseVariantOfClaim(key); ok {
				return fmt.Errorf("claims: key %q is %q in another case", key, name)
			}
			continue
		}
		if seen&(1<<k) != 0 {
			return fmt.Errorf("claims: %q given twice", key)
		}
		seen |= 1 << k
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] == 'n' {
			return fmt.Errorf("claims: %q is null", key)
		}
		switch k {
		case claimIss:
			err = json.Unmarshal(raw, &c.Issuer)
		case claimSub:
			err = json.Unmarshal(raw, &c.Subject)
		case claimJti:
			err = json.Unmarshal(raw, &c.ID)
		case claimSid:
			err = json.Unmarshal(raw, &c.SessionID)
		case claimETag:
			err = json.Unmarshal(raw, &c.ETag)
		case claimClientID:
			if err = json.Unmarshal(raw, &c.ClientID); err == nil && c.ClientID == "" {
				err = errors.New("empty")
			}
		case claimAud:
			err = c.Audience.UnmarshalJSON(raw)
		case claimExp, claimNbf, claimIat:
			v, ok := parseNumericDate(raw)
			if !ok {
				err = errors.New("not a NumericDate that fits an int64")
			}
			*c.timeField(k) = v
		}
		if err != nil {
			return fmt.Errorf("claims: %q: %w", key, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("claims: data after the object")
	}
	return nil
}

func (c *Claims) timeField(k int) *int64 {
	switch k {
	case claimExp:
		return &c.ExpiresAt
	case claimNbf:
		return &c.NotBefore
	default:
		return &c.IssuedAt
	}
}

// parseNumericDate parses b, which must be exactly a JSON number (RFC 8259
// §6), and returns it rounded down to an integer, exactly: 1.5 is 1, -1.5 is
// -2, 1.9e9 is 1900000000. ok is false for anything else, and for a value
// outside int64.
func parseNumericDate(b []byte) (v int64, ok bool) {
	i, n := 0, len(b)
	neg := i < n && b[i] == '-'
	if neg {
		i++
	}
	intStart := i
	for i < n && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	intDigits := b[intStart:i]
	if len(intDigits) == 0 || (intDigits[0] == '0' && len(intDigits) > 1) {
		return 0, false
	}
	var frac []byte
	if i < n && b[i] == '.' {
		i++
		start := i
		for i < n && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == start {
			return 0, false
		}
		frac = b[start:i]
	}
	exp := 0
	if i < n && (b[i] == 'e' || b[i] == 'E') {
		i++
		expNeg := false
		if i < n && (b[i] == '+' || b[i] == '-') {
			expNeg = b[i] == '-'
			i++
		}
		start := i
		for i < n && '0' <= b[i] && b[i] <= '9' {
			if exp < 1<<20 { // beyond this, only the sign of exp matters
				exp = exp*10 + int(b[i]-'0')
			}
			i++
		}
		if i == start {
			return 0, false
		}
		if expNeg {
			exp = -exp
		}
	}
	if i != n {
		return 0, false
	}
	if len(frac) == 0 && exp == 0 { // an integer: the usual case
		return parseIntDigits(intDigits, neg, false)
	}
	// The digits are intDigits then frac, with the decimal point after
	// point of them (it may lie outside: zeros fill in).
	total := len(intDigits) + len(frac)
	digit := func(k int) byte {
		if k < len(intDigits) {
			return intDigits[k]
		}
		return frac[k-len(intDigits)]
	}
	point := len(intDigits) + exp
	var whole []byte
	var buf [20]byte
	fraction := false // a non-zero digit after the point
	for k := max(point, 0); k < total; k++ {
		if digit(k) != '0' {
			fraction = true
			break
		}
	}
	// The integer part: digits [0, point), then point-total zeros.
	for k := 0; k < point; k++ {
		d := byte('0')
		if k < total {
			d = digit(k)
		}
		if len(whole) == 0 && d == '0' {
			if k >= total {
				break // nothing but zeros: the integer part is 0
			}
			continue // a leading zero
		}
		if len(whole) == len(buf) {
			return 0, false // 20 significant digits: beyond int64
		}
		whole = append(buf[:len(whole)], d)
	}
	if len(whole) == 0 {
		whole = append(buf[:0], '0')
	}
	return parseIntDigits(whole, neg, fraction)
}

// parseIntDigits is the int64 of the decimal digits d (at least one, not
// checked for leading zeros), negated if neg, minus one if neg and
// fraction (rounding down a value with a fraction).
func parseIntDigits(d []byte, neg, fraction bool) (int64, bool) {
	if len(d) > 20 {
		return 0, false
	}
	var u uint64
	for _, c := range d {
		if u > (math.MaxUint64-9)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if !neg {
		if u > math.MaxInt64 {
			return 0, false
		}
		return int64(u), true
	}
	if fraction {
		u++ // -1.5 rounds down to -2
	}
	switch {
	case u > 1<<63:
		return 0, false
	case u == 1<<63:
		return math.MinInt64, true
	}
	return -int64(u), true
}

// claimsScanner reads the one shape decodeClaimsFast accepts.
type claimsScanner struct {
	b []byte
	s string // b as a string, made once: the claims' strings are parts of it
	i int
}

func (s *claimsScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *claimsScanner) byte(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// rawStr reads a string of printable ASCII without escapes and returns its
// inside, pointing into the input.
func (s *claimsScanner) rawStr() ([]byte, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// str is rawStr as a string: a part of s.s, so no copy of its own.
func (s *claimsScanner) str() (string, bool) {
	b, ok := s.rawStr()
	if !ok {
		return "", false
	}
	end := s.i - 1 // the closing quote
	return s.s[end-len(b) : end], true
}

// numericDate reads a JSON number and rounds it down (parseNumericDate).
func (s *claimsScanner) numericDate() (int64, bool) {
	s.ws()
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case '0' <= c && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			s.i++
			continue
		}
		break
	}
	return parseNumericDate(s.b[start:s.i])
}

// audience reads a plain string or a non-empty array of them.
func (s *claimsScanner) audience() (Audience, bool) {
	if v, ok := s.str(); ok {
		return Audience{v}, true
	}
	if !s.byte('[') {
		return nil, false
	}
	var out Audience
	for {
		v, ok := s.str()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		if s.byte(']') {
			return out, true
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}

// decodeClaimsFast decodes b into c if b has the shape fiberauth issues, and
// reports whether it did. It says no to anything it is unsure of (another
// key, a repeated one, an escape, null, an empty client_id); the slow path
// then decides.
func decodeClaimsFast(b []byte, c *Claims) bool {
	// One copy of the claims for all their strings, rather than one per
	// string: a cached token keeps the whole copy (a few hundred bytes)
	// alive, which the token itself, as the cache's key, already is.
	s := claimsScanner{b: b, s: string(b)}
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		s.ws()
		return s.i == len(b)
	}
	var seen uint16
	for {
		key, ok := s.rawStr()
		if !ok || !s.byte(':') {
			return false
		}
		k := claimIndex(string(key)) // no copy: only compared
		if k < 0 || seen&(1<<k) != 0 {
			return false
		}
		seen |= 1 << k
		switch k {
		case claimIss:
			c.Issuer, ok = s.str()
		case claimSub:
			c.Subject, ok = s.str()
		case claimJti:
			c.ID, ok = s.str()
		case claimSid:
			c.SessionID, ok = s.str()
		case claimETag:
			c.ETag, ok = s.str()
		case claimClientID:
			c.ClientID, ok = s.str()
			ok = ok && c.ClientID != ""
		case claimIat:
			c.IssuedAt, ok = s.numericDate()
		case claimNbf:
			c.NotBefore, ok = s.numericDate()
		case claimExp:
			c.ExpiresAt, ok = s.numericDate()
		case claimAud:
			c.Audience, ok = s.audience()
		}
		if !ok {
			return false
		}
		if s.byte('}') {
			s.ws()
			return s.i == len(b)
		}
		if !s.byte(',') {
			return false
		}
	}
}
