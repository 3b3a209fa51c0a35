package fiberauth

import (
	"encoding/json"
	"strconv"

	"github.com/gofiber/fiber/v2"
)

// jwksPath is where Mount serves the public keys (RFC 8615, RFC 7517),
// relative to the group it mounts on.
const jwksPath = "/.well-known/jwks.json"

// jwksDocument is a JWK Set: public members only (publicJWK).
type jwksDocument struct {
	Keys []publicJWK `json:"keys"`
}

// serveJWKS answers GET /.well-known/jwks.json: the public keys that verify
// now, newest first, cacheable for JWKSMaxAge. A new generated key is in it
// well before it signs, and a retired one until its tokens have expired.
func (a *Auth) serveJWKS(c *fiber.Ctx) error {
	doc := jwksDocument{Keys: []publicJWK{}}
	for _, k := range a.tokens.ring.live(a.now()) {
		doc.Keys = append(doc.Keys, k.jwk())
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return a.writeError(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age="+strconv.Itoa(int(JWKSMaxAge.Seconds())))
	c.Set(fiber.HeaderContentType, "application/jwk-set+json")
	return c.Send(body)
}
