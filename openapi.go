package fiberauth

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// The OpenAPI 3.1 document of Mount's endpoints: docs/openapi.json is the
// whole of it, kept in the repository and checked against the requests and
// responses of every handler test; Mount serves the part it mounted.

//go:embed docs/openapi.json
var openAPIDocument []byte

// openAPIPath is where Mount serves the document.
const openAPIPath = "/openapi.json"

// mountedRoute is a route Mount registered, as Fiber spells its path.
type mountedRoute struct{ method, path string }

// mountOpenAPI serves, on r, the document of the routes mounted (and of
// itself) in cookie mode or not, with r's prefix as its server. The
// document is built once.
func (a *Auth) mountOpenAPI(r fiber.Router, cookie bool, mounted []mountedRoute) {
	prefix := "/"
	if g, ok := r.(*fiber.Group); ok && g.Prefix != "" {
		prefix = g.Prefix
	}
	doc, err := openAPIFor(prefix, cookie, append(mounted, mountedRoute{fiber.MethodGet, openAPIPath}))
	if err != nil {
		// The embedded document is fixed at build time and tested; this
		// cannot happen short of a broken build.
		a.log.Error("fiberauth: GET /openapi.json is not mounted", "err", err)
		return
	}
	r.Get(openAPIPath, func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
		return c.Send(doc)
	})
}

// openAPIFor is the document of one transport (cookie mode or not) with
// only the operations of routes (all of them when routes is nil), served
// from prefix.
func openAPIFor(prefix string, cookie bool, routes []mountedRoute) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		return nil, fmt.Errorf("fiberauth: the OpenAPI document: %w", err)
	}
	if err := forTransport(doc, cookie); err != nil {
		return nil, err
	}
	if routes != nil {
		all, _ := doc["paths"].(map[string]any)
		paths := map[string]any{}
		for _, rt := range routes {
			p := openAPIPathOf(rt.path)
			item, _ := all[p].(map[string]any)
			method := strings.ToLower(rt.method)
			op, found := item[method]
			if !found {
				return nil, fmt.Errorf("fiberauth: the OpenAPI document has no %s %s", rt.method, p)
			}
			kept, _ := paths[p].(map[string]any)
			if kept == nil {
				kept = map[string]any{}
				if params, ok := item["parameters"]; ok {
					kept["parameters"] = params
				}
				paths[p] = kept
			}
			kept[method] = op
		}
		doc["paths"] = paths
	}
	doc["servers"] = []any{map[string]any{"url": prefix}}
	return json.Marshal(doc)
}

// forTransport narrows the token response to one transport: in cookie mode
// it has csrf_token and no refresh token (that is in the cookie), and
// otherwise the refresh token, by both names, and no csrf_token.
func forTransport(doc map[string]any, cookie bool) error {
	components, _ := doc["components"].(map[string]any)
	schemas, _ := components["schemas"].(map[string]any)
	tokens, _ := schemas["TokenResponse"].(map[string]any)
	props, _ := tokens["properties"].(map[string]any)
	required, _ := tokens["required"].([]any)
	if props == nil {
		return fmt.Errorf("fiberauth: the OpenAPI document has no TokenResponse")
	}
	if cookie {
		delete(props, "refresh")
		delete(props, "refresh_token")
		required = append(required, "csrf_token")
	} else {
		delete(props, "csrf_token")
		required = append(required, "refresh", "refresh_token")
	}
	tokens["required"] = required
	return nil
}

// openAPIPathOf spells a Fiber route path as OpenAPI does: /sessions/:id is
// /sessions/{id}.
func openAPIPathOf(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if name, ok := strings.CutPrefix(p, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return strings.Join(parts, "/")
}
