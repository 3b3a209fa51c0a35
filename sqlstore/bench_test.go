package sqlstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/valyala/fasthttp"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
	"github.com/fiberauth/fiberauth/sqlstore/postgres"
	"github.com/fiberauth/fiberauth/sqlstore/sqlite"
)

// benchStores are the stores the benchmarks compare; PostgreSQL only where
// FIBERAUTH_TEST_POSTGRES_DSN is set.
func benchStores() []struct {
	name string
	open func(t testing.TB) fiberauth.Store
} {
	return []struct {
		name string
		open func(t testing.TB) fiberauth.Store
	}{
		{"memory", func(testing.TB) fiberauth.Store { return memstore.New() }},
		{"sqlite", func(t testing.TB) fiberauth.Store { return open(t, sqlite.Dialect, sqliteDSN(t)) }},
		{"postgres", func(t testing.TB) fiberauth.Store { return open(t, postgres.Dialect, postgresDSN(t)) }},
	}
}

// serve runs one request through the app's handler, without a network.
func serve(h fasthttp.RequestHandler, method, path string, body []byte) (int, []byte) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.SetContentType("application/json")
	ctx.Request.SetBody(body)
	h(&ctx)
	return ctx.Response.StatusCode(), ctx.Response.Body()
}

// BenchmarkRefresh is one refresh-token rotation through POST /auth/refresh,
// a chain of refreshes of one session.
func BenchmarkRefresh(b *testing.B) {
	for _, st := range benchStores() {
		b.Run(st.name, func(b *testing.B) {
			store := st.open(b)
			in := newBenchInstance(b, store)
			_, refresh := in.benchLogin(b)
			h := in.app.Handler()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				body, _ := json.Marshal(map[string]string{"refresh_token": refresh})
				status, out := serve(h, "POST", "/auth/refresh", body)
				if status != 200 {
					b.Fatalf("refresh: %d %s", status, out)
				}
				var r struct {
					Refresh string `json:"refresh_token"`
				}
				_ = json.Unmarshal(out, &r)
				refresh = r.Refresh
			}
		})
	}
}

// BenchmarkLogin is POST /auth/login with the default argon2id parameters;
// BenchmarkPasswordVerify is the argon2 part alone, to subtract.
func BenchmarkLogin(b *testing.B) {
	for _, st := range benchStores() {
		b.Run(st.name, func(b *testing.B) {
			store := st.open(b)
			in := newBenchInstance(b, store)
			h := in.app.Handler()
			body, _ := json.Marshal(map[string]string{"email": "ada@example.com", "password": password})
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if status, out := serve(h, "POST", "/auth/login", body); status != 200 {
					b.Fatalf("login: %d %s", status, out)
				}
			}
		})
	}
}

func BenchmarkPasswordVerify(b *testing.B) {
	hash, err := argon2id.CreateHash(password, &argon2id.Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := argon2id.ComparePasswordAndHash(password, hash); !ok {
			b.Fatal("no match")
		}
	}
}

type benchInstance struct{ instance }

func newBenchInstance(b *testing.B, store fiberauth.Store) benchInstance {
	b.Helper()
	in := newInstance(b, store, 5*time.Second, nil)
	if _, err := in.auth.CreateUser(context.Background(), fiberauth.NewUser{Email: "ada@example.com", Password: password, Verified: true}); err != nil {
		b.Fatal(err)
	}
	return benchInstance{in}
}

func (in benchInstance) benchLogin(b *testing.B) (access, refresh string) {
	body, _ := json.Marshal(map[string]string{"email": "ada@example.com", "password": password})
	status, out := serve(in.app.Handler(), "POST", "/auth/login", body)
	if status != 200 {
		b.Fatalf("login: %d %s", status, out)
	}
	var r struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	_ = json.Unmarshal(out, &r)
	return r.Access, r.Refresh
}
