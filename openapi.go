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
// itself), with r's prefix as its server. The document is built once.
func (a *Auth) mountOpenAPI(r fiber.Router, mounted []mountedRoute) {
	prefix := "/"
	if g, ok := r.(*fiber.Group); ok && g.Prefix != "" {
		prefix = g.Prefix
	}
	doc, err := openAPIFor(prefix, append(mounted, mountedRoute{fiber.MethodGet, openAPIPath}))
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

// openAPIFor is the document with only the operations of routes, served
// from prefix.
func openAPIFor(prefix string, routes []mountedRoute) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		return nil, fmt.Errorf("fiberauth: the OpenAPI document: %w", err)
	}
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
	doc["servers"] = []any{map[string]any{"url": prefix}}
	return json.Marshal(doc)
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
