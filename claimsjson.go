package fiberauth

import (
	"encoding/json"
	"strconv"
)

// UnmarshalJSON decodes the claims. Claims in the shape fiberauth issues (a
// flat object of the known keys, plain strings, integer times) take a short
// path; anything else (escapes, other keys, other types, odd spacing) goes
// to encoding/json, so the result is always what encoding/json would give.
// FuzzClaimsJSON checks that the two agree.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var fast Claims
	if decodeClaimsFast(b, &fast) {
		*c = fast
		return nil
	}
	type plain Claims // the same fields, without this method
	return json.Unmarshal(b, (*plain)(c))
}

// claimsScanner reads the one shape decodeClaimsFast accepts.
type claimsScanner struct {
	b []byte
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

// str reads a string of printable ASCII without escapes.
func (s *claimsScanner) str() (string, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return string(s.b[start:j]), true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", false
		}
	}
	return "", false
}

// int reads -?(0|[1-9][0-9]*) that fits an int64.
func (s *claimsScanner) int() (int64, bool) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || (s.b[digits] == '0' && s.i-digits > 1) {
		return 0, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return v, err == nil
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
// reports whether it did.
func decodeClaimsFast(b []byte, c *Claims) bool {
	s := claimsScanner{b: b}
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		s.ws()
		return s.i == len(b)
	}
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') {
			return false
		}
		switch key {
		case "iss":
			c.Issuer, ok = s.str()
		case "sub":
			c.Subject, ok = s.str()
		case "jti":
			c.ID, ok = s.str()
		case "sid":
			c.SessionID, ok = s.str()
		case "etag":
			c.ETag, ok = s.str()
		case "iat":
			c.IssuedAt, ok = s.int()
		case "nbf":
			c.NotBefore, ok = s.int()
		case "exp":
			c.ExpiresAt, ok = s.int()
		case "aud":
			c.Audience, ok = s.audience()
		default:
			return false
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
