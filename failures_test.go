package fiberauth_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/alexedwards/argon2id"

	"github.com/fiberauth/fiberauth"
)

// downStore fails every read and write while down is set, as a store whose
// database is unreachable does.
type downStore struct {
	fiberauth.Store
	down atomic.Bool
}

var errDown = errors.New("dial tcp 127.0.0.1:5432: connection refused")

func (s *downStore) err() error {
	if s.down.Load() {
		return errDown
	}
	return nil
}

func (s *downStore) UserByID(ctx context.Context, id string) (fiberauth.User, error) {
	if err := s.err(); err != nil {
		return fiberauth.User{}, err
	}
	return s.Store.UserByID(ctx, id)
}

func (s *downStore) UserByEmail(ctx context.Context, email string) (fiberauth.User, error) {
	if err := s.err(); err != nil {
		return fiberauth.User{}, err
	}
	return s.Store.UserByEmail(ctx, email)
}

func (s *downStore) SessionByID(ctx context.Context, id string) (fiberauth.Session, error) {
	if err := s.err(); err != nil {
		return fiberauth.Session{}, err
	}
	return s.Store.SessionByID(ctx, id)
}

func TestStoreDownAnswers503(t *testing.T) {
	t.Parallel()
	ds := &downStore{}
	h := newHarness(t, func(c *fiberauth.Config) {
		ds.Store = c.Store
		c.Store = ds
		c.CacheTTL = -1 // every request reaches the store
	})
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)

	ds.down.Store(true)
	for _, r := range []response{
		h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword}),
		h.do("POST", "/auth/refresh", map[string]any{"refresh": p.refresh}),
		h.do("GET", "/api/profile", nil, bearer(p.access)...),
		h.do("GET", "/auth/me", nil, bearer(p.access)...),
	} {
		expect(t, r, 503, "unavailable")
		if strings.Contains(r.raw, "5432") {
			t.Fatalf("a store error reached the client: %s", r.raw)
		}
	}
	// A reset request answers before it looks the account up, so its
	// answer cannot tell; the lookup's failure is logged.
	expect(t, h.do("POST", "/auth/password/forgot", map[string]any{"email": "ada@example.com"}), 202, "")
	h.flush()
	if !strings.Contains(h.logs.String(), "password reset failed after the answer") {
		t.Fatal("a reset request that failed after its answer was not logged")
	}
	ds.down.Store(false)
	if h.profileStatus(p.access) != 200 {
		t.Fatal("the token does not work after the store is back")
	}
	pairOf(t, h.refresh(p.refresh))
}

// A hash made with weaker parameters is upgraded at login, without changing
// the etag (the password is the same).
func TestRehashAtLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fiberauth.RealHashing)
	u := h.createUser("ada@example.com")
	weak, err := argon2id.CreateHash(goodPassword, &argon2id.Params{Memory: 8192, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	u.PasswordHash = weak
	if _, err := h.store.UpdateUser(context.Background(), fiberauth.UserUpdate{User: u, IfETag: u.ETag}); err != nil {
		t.Fatal(err)
	}
	h.login("ada@example.com", goodPassword)
	after, _ := h.store.UserByID(context.Background(), u.ID)
	p, _, _, err := argon2id.DecodeHash(after.PasswordHash)
	if err != nil || p.Memory != 19456 || p.Iterations != 2 {
		t.Fatalf("hash after login: %+v %v", p, err)
	}
	if after.ETag != u.ETag {
		t.Fatal("a rehash changed the etag")
	}
	h.login("ada@example.com", goodPassword)
}
