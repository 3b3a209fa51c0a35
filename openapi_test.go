package fiberauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gofiber/fiber/v2"

	"github.com/fiberauth/fiberauth"
)

// openAPIFile is the OpenAPI document of Mount's endpoints.
const openAPIFile = "docs/openapi.json"

var openAPI struct {
	once         sync.Once
	body, cookie routers.Router
	err          error
}

// openAPIRouter finds the operations of the document a Mount at path's
// prefix serves, as the harness mounts them (newHarnessOn): /web/auth in
// cookie mode, /auth (and any other) without.
func openAPIRouter(t testing.TB, path string) routers.Router {
	t.Helper()
	openAPI.once.Do(func() {
		// What the handlers read as JSON besides application/json and
		// +json types (the document's application/* says so).
		openapi3filter.RegisterBodyDecoder("application/x-amz-json-1.1", openapi3filter.JSONBodyDecoder)
		openAPI.body, openAPI.err = loadOpenAPIRouter("/auth", false)
		if openAPI.err == nil {
			openAPI.cookie, openAPI.err = loadOpenAPIRouter("/web/auth", true)
		}
	})
	if openAPI.err != nil {
		t.Fatalf("%s: %v", openAPIFile, openAPI.err)
	}
	if strings.HasPrefix(path, "/web/auth/") {
		return openAPI.cookie
	}
	return openAPI.body
}

func loadOpenAPIRouter(prefix string, cookie bool) (routers.Router, error) {
	raw, err := fiberauth.OpenAPIFor(prefix, cookie)
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, err
	}
	return gorillamux.NewRouter(doc)
}

// openAPIOptions check everything but the credentials themselves, which
// the tests get wrong on purpose; every status must be documented.
var openAPIOptions = &openapi3filter.Options{
	AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
	IncludeResponseStatus: true,
}

// checkOpenAPI checks an exchange with a route fiberauth mounted against
// docs/openapi.json: the response always, and the request too, in that a
// request the document says is invalid must have been refused with a 4xx
// (the document may not promise what the handlers refuse to do, nor refuse
// what they do). Requests that reach no route of the document, or a route
// the app has not mounted (the host's own, Fiber's 404s), are not checked.
func checkOpenAPI(t testing.TB, mounted func(method, path string) bool, req *http.Request, status int, header http.Header, raw []byte) {
	t.Helper()
	route, params, err := openAPIRouter(t, req.URL.Path).FindRoute(req)
	if err != nil {
		return // not an operation of the document
	}
	if !mounted(req.Method, req.URL.Path) {
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: openAPIOptions}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && (status < 400 || status > 499) {
		t.Errorf("%s %s: the OpenAPI document refuses this request, but it was answered %d: %v", req.Method, req.URL.Path, status, err)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: openAPIOptions}
	out.SetBodyBytes(raw)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s %s answered %d, which the OpenAPI document does not allow: %v\nbody: %s", req.Method, req.URL.Path, status, err, raw)
		return
	}
	// The validator checks the headers the document declares, and ignores
	// the others: fiberauth's own must all be declared.
	if ref := route.Operation.Responses.Status(status); ref != nil && ref.Value != nil {
		for _, name := range []string{"Cache-Control", "Pragma", "Set-Cookie", "WWW-Authenticate", "Retry-After"} {
			if header.Get(name) == "" {
				continue
			}
			declared := false
			for k := range ref.Value.Headers {
				declared = declared || strings.EqualFold(k, name)
			}
			if !declared {
				t.Errorf("%s %s answered %d with %s, which the OpenAPI document does not declare for it", req.Method, req.URL.Path, status, name)
			}
		}
	}
}

// openAPIRequest is the request h.do sent, again, for the validator.
func openAPIRequest(method, path string, body []byte, header http.Header) *http.Request {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header = header.Clone()
	return req
}

func TestOpenAPIDocumentValid(t *testing.T) {
	t.Parallel()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("the document is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	openAPIRouter(t, "/auth/login") // and each transport's copy
}

// Mount serves the document of what it mounted, and of nothing else, with
// its group's prefix as the server; each operation as the repository's
// document has it, and the token response as its transport sends it.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	full := map[string]any{}
	raw, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &full); err != nil {
		t.Fatal(err)
	}
	fullPaths := full["paths"].(map[string]any)
	fullSchemas := full["components"].(map[string]any)["schemas"].(map[string]any)

	h := newHarness(t)
	// Through the harness, so that the answer is checked against the
	// document too.
	if r := h.do("GET", "/auth/openapi.json", nil); r.status != 200 || r.body["openapi"] != "3.1.0" {
		t.Fatalf("GET /auth/openapi.json: %d", r.status)
	}
	keyed := newHarness(t, withGenerated("EdDSA"))
	app := fiber.New()
	h.auth.Mount(app.Group("/all"))
	h.auth.Mount(app.Group("/some"), fiberauth.WithEndpoints(fiberauth.EndpointsSignIn|fiberauth.EndpointsOpenAPI))
	h.auth.Mount(app.Group("/none"), fiberauth.WithEndpoints(fiberauth.EndpointsSignIn))
	h.auth.Mount(app.Group("/cookie"), fiberauth.WithCookieTransport())
	keyed.auth.Mount(app.Group("/keyed"), fiberauth.WithEndpoints(fiberauth.EndpointsSessions|fiberauth.EndpointsOpenAPI))

	for _, prefix := range []string{"/all", "/some", "/keyed", "/cookie"} {
		res, err := app.Test(httptest.NewRequest("GET", prefix+"/openapi.json", nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("GET %s/openapi.json: %d %s", prefix, res.StatusCode, res.Header.Get("Content-Type"))
		}
		doc, err := openapi3.NewLoader().LoadFromData(body)
		if err != nil {
			t.Fatalf("%s: the served document does not load: %v", prefix, err)
		}
		if err := doc.Validate(context.Background()); err != nil {
			t.Fatalf("%s: the served document is not valid: %v", prefix, err)
		}
		if len(doc.Servers) != 1 || doc.Servers[0].URL != prefix {
			t.Fatalf("%s: servers %v", prefix, doc.Servers)
		}
		var served map[string]any
		if err := json.Unmarshal(body, &served); err != nil {
			t.Fatal(err)
		}
		var ops []string
		for path, item := range served["paths"].(map[string]any) {
			for method, op := range item.(map[string]any) {
				if method == "parameters" {
					continue
				}
				ops = append(ops, strings.ToUpper(method)+" "+path)
				if want := fullPaths[path].(map[string]any)[method]; !reflect.DeepEqual(op, want) {
					t.Errorf("%s: %s %s differs from %s", prefix, method, path, openAPIFile)
				}
			}
		}
		slices.Sort(ops)
		// The schemas are the file's, but for the token response, which
		// says what its transport sends.
		schemas := served["components"].(map[string]any)["schemas"].(map[string]any)
		for name, schema := range schemas {
			if name != "TokenResponse" && !reflect.DeepEqual(schema, fullSchemas[name]) {
				t.Errorf("%s: schema %s differs from %s", prefix, name, openAPIFile)
			}
		}
		tokens := schemas["TokenResponse"].(map[string]any)
		props, required := tokens["properties"].(map[string]any), fmt.Sprint(tokens["required"])
		_, hasRefresh := props["refresh_token"]
		_, hasCSRF := props["csrf_token"]
		if cookie := prefix == "/cookie"; hasRefresh == cookie || hasCSRF != cookie ||
			strings.Contains(required, "refresh_token") == cookie || strings.Contains(required, "csrf_token") != cookie {
			t.Errorf("%s: token response %v, required %s", prefix, slices.Sorted(maps.Keys(props)), required)
		}
		var routes []string
		for _, r := range mounted(app, prefix) {
			m, p, _ := strings.Cut(r, " ")
			routes = append(routes, m+" "+regexp.MustCompile(`:(\w+)`).ReplaceAllString(p, "{$1}"))
		}
		slices.Sort(routes)
		if !slices.Equal(ops, routes) {
			t.Errorf("%s: the document has\n%v\nthe app mounted\n%v", prefix, ops, routes)
		}
	}
	if res, err := app.Test(httptest.NewRequest("GET", "/none/openapi.json", nil), -1); err != nil || res.StatusCode != 404 {
		t.Fatalf("without EndpointsOpenAPI: %v %v", res.StatusCode, err)
	}
}
