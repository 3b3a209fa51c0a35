package fiberauth_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	vw "github.com/descope/virtualwebauthn"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
)

// The relying party of the passkey tests, and a page of it.
var (
	testRP       = vw.RelyingParty{ID: "example.com", Name: "Example", Origin: "https://example.com"}
	withPasskeys = func(c *fiberauth.Config) {
		c.Passkeys = &fiberauth.PasskeyConfig{RPID: testRP.ID, RPName: testRP.Name, Origins: []string{testRP.Origin, "https://app.example.com"}}
	}
)

// device is an authenticator with the passkeys it made.
type device struct {
	auth vw.Authenticator
	cred vw.Credential
	id   string // the credential id, base64url
}

func newDevice() *device {
	return &device{auth: vw.NewAuthenticator(), cred: newCredential()}
}

// newCredential is a P-256 passkey. virtualwebauthn writes a public key's
// coordinates without their leading zero bytes, which go-webauthn rightly
// refuses (one key in 64): it gets only keys whose coordinates are 32
// bytes long.
func newCredential() vw.Credential {
	for {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		if len(k.X.Bytes()) != 32 || len(k.Y.Bytes()) != 32 {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			panic(err)
		}
		return vw.NewCredentialWithImportedKey(vw.KeyTypeEC2, der)
	}
}

// options is the publicKey of an options answer, as JSON.
func options(t testing.TB, r response) string {
	t.Helper()
	expect(t, r, 200, "")
	if r.body["expires_in"] != float64(300) {
		t.Fatalf("options expire in %v, want 300: %s", r.body["expires_in"], r.raw)
	}
	j, err := json.Marshal(r.body["publicKey"])
	if err != nil {
		t.Fatal(err)
	}
	return string(j)
}

// attest is d's answer to registration options, made on rp.
func (d *device) attest(t testing.TB, rp vw.RelyingParty, opts string) json.RawMessage {
	t.Helper()
	o, err := vw.ParseAttestationOptions(opts)
	if err != nil {
		t.Fatalf("registration options %s: %v", opts, err)
	}
	d.auth.Options.UserHandle = []byte(o.UserID)
	d.id = base64.RawURLEncoding.EncodeToString(d.cred.ID)
	return json.RawMessage(vw.CreateAttestationResponse(rp, d.auth, d.cred, *o))
}

// assert is d's answer to sign-in options, made on rp.
func (d *device) assert(t testing.TB, rp vw.RelyingParty, opts string) json.RawMessage {
	t.Helper()
	o, err := vw.ParseAssertionOptions(opts)
	if err != nil {
		t.Fatalf("sign-in options %s: %v", opts, err)
	}
	return json.RawMessage(vw.CreateAssertionResponse(rp, d.auth, d.cred, *o))
}

// addPasskey registers d for the signed-in p (a fresh sign-in: no
// password) and returns the new access token (the etag changed).
func (h *harness) addPasskey(p pair, d *device, name string) pair {
	h.t.Helper()
	opts := options(h.t, h.do("POST", "/auth/passkeys/register/options", nil, bearer(p.access)...))
	r := h.do("POST", "/auth/passkeys/register", map[string]any{"credential": d.attest(h.t, testRP, opts), "name": name}, bearer(p.access)...)
	expect(h.t, r, 201, "")
	if got := r.obj("passkey")["id"]; got != d.id {
		h.t.Fatalf("registered passkey id %v, want %s", got, d.id)
	}
	return pairOf(h.t, h.refresh(p.refresh))
}

// passkeyLogin signs in with d, on rp, by discoverable options (name "") or
// by name.
func (h *harness) passkeyLogin(d *device, rp vw.RelyingParty, name string) response {
	h.t.Helper()
	var body any
	if name != "" {
		body = map[string]any{"email": name}
	}
	opts := options(h.t, h.do("POST", "/auth/login/passkey/options", body))
	return h.do("POST", "/auth/login/passkey", map[string]any{"credential": d.assert(h.t, rp, opts)})
}

// expectPasskeyRefused fails unless r refuses a passkey response for reason.
func expectPasskeyRefused(t testing.TB, r response, status int, reason string) {
	t.Helper()
	code := "invalid_grant"
	if status == 400 {
		code = "invalid_request"
	}
	expect(t, r, status, code)
	if r.str("where") != "credential" || r.str("reason") != reason {
		t.Fatalf("where/reason = %q/%q, want credential/%s; body %s", r.str("where"), r.str("reason"), reason, r.raw)
	}
}

func (h *harness) passkeyCount(userID string) int {
	h.t.Helper()
	keys, err := h.store.(fiberauth.PasskeyStore).PasskeysOf(context.Background(), userID)
	if err != nil {
		h.t.Fatal(err)
	}
	return len(keys)
}

func TestPasskeyRegisterSignInRenameDelete(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch, withPasskeys)
		u := h.createUser("ada@example.com")
		p := h.login("ada@example.com", goodPassword)
		d := newDevice()

		p2 := h.addPasskey(p, d, "Laptop")
		if !h.sawEvent(fiberauth.EventPasskeyAdded) {
			t.Fatal("no passkey_added event")
		}
		// Adding one changed the etag: the access token from before is stale.
		if p2.etag == p.etag {
			t.Fatal("the etag did not change")
		}
		expectRefused(t, h.do("GET", "/api/profile", nil, bearer(p.access)...), "stale")

		list := h.do("GET", "/auth/passkeys", nil, bearer(p2.access)...)
		expect(t, list, 200, "")
		keys := list.body["passkeys"].([]any)
		if len(keys) != 1 {
			t.Fatalf("passkeys: %s", list.raw)
		}
		k := keys[0].(map[string]any)
		if k["id"] != d.id || k["name"] != "Laptop" || k["last_used_at"] != nil || strings.Contains(list.raw, "public") {
			t.Fatalf("passkey listed as %s", list.raw)
		}

		// Signing in with it, without a name: the browser picks the passkey.
		r := h.passkeyLogin(d, testRP, "")
		s := pairOf(t, r)
		if r.obj("user")["id"] != u.ID || h.profileStatus(s.access) != 200 {
			t.Fatalf("passkey sign-in answered %s", r.raw)
		}
		// With a name, the options list that account's passkeys.
		opts := options(t, h.do("POST", "/auth/login/passkey/options", map[string]any{"email": "ADA@example.com"}))
		if !strings.Contains(opts, d.id) {
			t.Fatalf("named options %s do not list the passkey %s", opts, d.id)
		}
		pairOf(t, h.do("POST", "/auth/login/passkey", map[string]any{"credential": d.assert(t, testRP, opts)}))

		// Renaming needs no step-up and leaves the etag alone.
		r = h.do("PATCH", "/auth/passkeys/"+d.id, map[string]any{"name": "Work laptop"}, bearer(p2.access)...)
		expect(t, r, 200, "")
		if r.obj("passkey")["name"] != "Work laptop" || r.obj("passkey")["last_used_at"] == nil {
			t.Fatalf("rename answered %s", r.raw)
		}
		expect(t, h.do("GET", "/api/profile", nil, bearer(p2.access)...), 200, "")

		// Removing one needs a fresh sign-in or the password.
		h.clock.Advance(6 * time.Minute)
		p3 := pairOf(t, h.refresh(p2.refresh)) // refreshing is no sign-in
		expectField(t, h.do("DELETE", "/auth/passkeys/"+d.id, nil, bearer(p3.access)...), "password")
		expect(t, h.do("DELETE", "/auth/passkeys/"+d.id, map[string]any{"password": "wrong password"}, bearer(p3.access)...), 401, "invalid_credentials")
		expect(t, h.do("DELETE", "/auth/passkeys/"+d.id, map[string]any{"password": goodPassword}, bearer(p3.access)...), 200, "")
		if !h.sawEvent(fiberauth.EventPasskeyRemoved) || h.passkeyCount(u.ID) != 0 {
			t.Fatal("the passkey was not removed, or no passkey_removed event")
		}
		expectRefused(t, h.do("GET", "/api/profile", nil, bearer(p3.access)...), "stale")
		expectPasskeyRefused(t, h.passkeyLogin(d, testRP, ""), 401, "credential_unknown")
	})
}

func TestPasskeyCookieMode(t *testing.T) {
	h := newHarness(t, withPasskeys)
	h.createUser("ada@example.com")
	d := newDevice()
	h.addPasskey(h.login("ada@example.com", goodPassword), d, "")
	opts := options(t, h.do("POST", "/web/auth/login/passkey/options", nil, "Origin", "https://example.com"))
	r := h.do("POST", "/web/auth/login/passkey", map[string]any{"credential": d.assert(t, testRP, opts)}, "Origin", "https://example.com")
	expect(t, r, 200, "")
	if r.str("refresh_token") != "" || r.str("csrf_token") == "" || !strings.Contains(r.header.Get("Set-Cookie"), "__Host-refresh=") {
		t.Fatalf("cookie-mode passkey sign-in answered %s %v", r.raw, r.header)
	}
	// A hostile page cannot sign a visitor in with it.
	expect(t, h.do("POST", "/web/auth/login/passkey/options", nil, "Origin", "https://evil.example"), 403, "csrf_failed")
}

// TestPasskeyHostileResponses: every response that must not sign anyone in
// or store anything gets a clear 4xx, and nothing is stored.
func TestPasskeyHostileResponses(t *testing.T) {
	h := newHarness(t, withPasskeys)
	ada := h.createUser("ada@example.com")
	bob := h.createUser("bob@example.com")
	adaKey, bobKey := newDevice(), newDevice()
	h.addPasskey(h.login("ada@example.com", goodPassword), adaKey, "")
	h.addPasskey(h.login("bob@example.com", goodPassword), bobKey, "")

	t.Run("replayed assertion", func(t *testing.T) {
		opts := options(t, h.do("POST", "/auth/login/passkey/options", nil))
		cred := adaKey.assert(t, testRP, opts)
		pairOf(t, h.do("POST", "/auth/login/passkey", map[string]any{"credential": cred}))
		expectPasskeyRefused(t, h.do("POST", "/auth/login/passkey", map[string]any{"credential": cred}), 401, "challenge_unknown")
	})
	t.Run("expired challenge", func(t *testing.T) {
		opts := options(t, h.do("POST", "/auth/login/passkey/options", nil))
		h.clock.Advance(5*time.Minute + time.Second)
		expectPasskeyRefused(t, h.do("POST", "/auth/login/passkey", map[string]any{"credential": adaKey.assert(t, testRP, opts)}), 401, "challenge_unknown")
	})
	t.Run("wrong origin", func(t *testing.T) {
		evil := testRP
		evil.Origin = "https://example.com.evil.test"
		expectPasskeyRefused(t, h.passkeyLogin(adaKey, evil, ""), 401, "origin_mismatch")
	})
	t.Run("wrong relying party", func(t *testing.T) {
		other := testRP
		other.ID = "evil.test"
		expectPasskeyRefused(t, h.passkeyLogin(adaKey, other, ""), 401, "rp_id_mismatch")
	})
	t.Run("another origin of the site", func(t *testing.T) {
		app := testRP
		app.Origin = "https://app.example.com"
		pairOf(t, h.passkeyLogin(adaKey, app, ""))
	})
	t.Run("made-up challenge", func(t *testing.T) {
		opts := `{"challenge":"` + base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")) + `","rpId":"example.com"}`
		expectPasskeyRefused(t, h.do("POST", "/auth/login/passkey", map[string]any{"credential": adaKey.assert(t, testRP, opts)}), 401, "challenge_unknown")
	})
	t.Run("registration challenge used to sign in", func(t *testing.T) {
		p := h.login("ada@example.com", goodPassword)
		opts := options(t, h.do("POST", "/auth/passkeys/register/options", nil, bearer(p.access)...))
		expectPasskeyRefused(t, h.do("POST", "/auth/login/passkey", map[string]any{"credential": adaKey.assert(t, testRP, opts)}), 401, "challenge_unknown")
	})
	t.Run("another user's passkey for a named sign-in", func(t *testing.T) {
		opts := options(t, h.do("POST", "/auth/login/passkey/options", map[string]any{"email": "ada@example.com"}))
		expectPasskeyRefused(t, h.do("POST", "/auth/login/passkey", map[string]any{"credential": bobKey.assert(t, testRP, opts)}), 401, "credential_unknown")
	})
	t.Run("a user handle that is not the passkey's", func(t *testing.T) {
		forged := *bobKey
		forged.auth.Options.UserHandle = adaKey.auth.Options.UserHandle
		expectPasskeyRefused(t, h.passkeyLogin(&forged, testRP, ""), 401, "verification_failed")
	})
	t.Run("a key that is not the passkey's", func(t *testing.T) {
		forged := *adaKey
		forged.cred = newCredential()
		forged.cred.ID = adaKey.cred.ID
		expectPasskeyRefused(t, h.passkeyLogin(&forged, testRP, ""), 401, "verification_failed")
	})
	t.Run("sign count gone back", func(t *testing.T) {
		counted := newDevice()
		counted.cred.Counter = 10
		h.addPasskey(h.login("ada@example.com", goodPassword), counted, "")
		counted.cred.Counter = 11
		pairOf(t, h.passkeyLogin(counted, testRP, ""))
		clone := *counted
		clone.cred.Counter = 11
		expectPasskeyRefused(t, h.passkeyLogin(&clone, testRP, ""), 401, "sign_count")
		if !h.sawEvent(fiberauth.EventPasskeyRefused) {
			t.Fatal("no passkey_refused event")
		}
	})
	t.Run("malformed", func(t *testing.T) {
		for _, body := range []string{
			`{"credential": "not an object"}`, `{"credential": {}}`, `{"credential": []}`, `{"credential": 7}`,
			`{"credential": {"id": "x", "rawId": "x", "type": "public-key", "response": {"clientDataJSON": "%%%", "authenticatorData": "", "signature": ""}}}`,
			`{"credential": {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {"clientDataJSON": "e30", "authenticatorData": "AAAA", "signature": "AAAA"}}}`,
		} {
			expectPasskeyRefused(t, h.do("POST", "/auth/login/passkey", body), 400, "malformed")
		}
		expectField(t, h.do("POST", "/auth/login/passkey", `{"credential": null}`), "credential")
		expectField(t, h.do("POST", "/auth/login/passkey", `{}`), "credential")
		p := h.login("ada@example.com", goodPassword)
		expectField(t, h.do("POST", "/auth/passkeys/register", `{"credential": "x"}`, bearer(p.access)...), "credential")
		expect(t, h.do("POST", "/auth/login/passkey", `{"credential": {"a": 1}, "credential": {"a": 2}}`), 400, "invalid_request")
		expect(t, h.do("POST", "/auth/login/passkey", "credential=1", "Content-Type", "text/plain"), 415, "unsupported_media_type")
		expect(t, h.do("POST", "/auth/login/passkey", `{"credential": {"id": "`+strings.Repeat("A", 17<<10)+`"}}`), 413, "payload_too_large")
	})

	t.Run("registration: someone else's challenge", func(t *testing.T) {
		pa, pb := h.login("ada@example.com", goodPassword), h.login("bob@example.com", goodPassword)
		opts := options(t, h.do("POST", "/auth/passkeys/register/options", nil, bearer(pa.access)...))
		stolen := newDevice()
		r := h.do("POST", "/auth/passkeys/register", map[string]any{"credential": stolen.attest(t, testRP, opts)}, bearer(pb.access)...)
		expectPasskeyRefused(t, r, 401, "challenge_unknown")
		if h.passkeyCount(bob.ID) != 1 {
			t.Fatal("bob got ada's passkey")
		}
	})
	t.Run("registration: replayed, wrong origin, expired", func(t *testing.T) {
		p := h.login("ada@example.com", goodPassword)
		before := h.passkeyCount(ada.ID)
		opts := options(t, h.do("POST", "/auth/passkeys/register/options", nil, bearer(p.access)...))
		evil := testRP
		evil.Origin = "https://evil.test"
		expectPasskeyRefused(t, h.do("POST", "/auth/passkeys/register", map[string]any{"credential": newDevice().attest(t, evil, opts)}, bearer(p.access)...), 400, "origin_mismatch")

		opts = options(t, h.do("POST", "/auth/passkeys/register/options", nil, bearer(p.access)...))
		h.clock.Advance(5*time.Minute + time.Second)
		expectPasskeyRefused(t, h.do("POST", "/auth/passkeys/register", map[string]any{"credential": newDevice().attest(t, testRP, opts)}, bearer(p.access)...), 401, "challenge_unknown")

		p = h.login("ada@example.com", goodPassword)
		opts = options(t, h.do("POST", "/auth/passkeys/register/options", nil, bearer(p.access)...))
		cred := newDevice().attest(t, testRP, opts)
		expect(t, h.do("POST", "/auth/passkeys/register", map[string]any{"credential": cred}, bearer(p.access)...), 201, "")
		p = pairOf(t, h.refresh(p.refresh))
		expectPasskeyRefused(t, h.do("POST", "/auth/passkeys/register", map[string]any{"credential": cred}, bearer(p.access)...), 401, "challenge_unknown")
		if got := h.passkeyCount(ada.ID); got != before+1 {
			t.Fatalf("ada has %d passkeys, want %d", got, before+1)
		}
	})
	t.Run("registration: the same authenticator twice", func(t *testing.T) {
		p := h.login("ada@example.com", goodPassword)
		opts := options(t, h.do("POST", "/auth/passkeys/register/options", nil, bearer(p.access)...))
		if !strings.Contains(opts, adaKey.id) {
			t.Fatalf("registration options %s do not exclude the passkey %s", opts, adaKey.id)
		}
		r := h.do("POST", "/auth/passkeys/register", map[string]any{"credential": adaKey.attest(t, testRP, opts)}, bearer(p.access)...)
		expect(t, r, 400, "invalid_request")
		if r.str("reason") != "already_registered" {
			t.Fatalf("registering a passkey twice answered %s", r.raw)
		}
	})
	t.Run("registration: no step-up", func(t *testing.T) {
		p := h.login("ada@example.com", goodPassword)
		h.clock.Advance(5*time.Minute + time.Second)
		p = pairOf(t, h.refresh(p.refresh))
		expectField(t, h.do("POST", "/auth/passkeys/register/options", nil, bearer(p.access)...), "password")
		expect(t, h.do("POST", "/auth/passkeys/register/options", map[string]any{"password": "wrong password"}, bearer(p.access)...), 401, "invalid_credentials")
		expect(t, h.do("POST", "/auth/passkeys/register/options", map[string]any{"password": goodPassword}, bearer(p.access)...), 200, "")
		expect(t, h.do("POST", "/auth/passkeys/register/options", nil), 401, "invalid_token")
	})
	t.Run("someone else's passkey by id", func(t *testing.T) {
		p := h.login("ada@example.com", goodPassword)
		expect(t, h.do("PATCH", "/auth/passkeys/"+bobKey.id, map[string]any{"name": "mine"}, bearer(p.access)...), 404, "not_found")
		expect(t, h.do("DELETE", "/auth/passkeys/"+bobKey.id, nil, bearer(p.access)...), 404, "not_found")
		expect(t, h.do("DELETE", "/auth/passkeys/not-base64!", nil, bearer(p.access)...), 404, "not_found")
		expectField(t, h.do("PATCH", "/auth/passkeys/"+adaKey.id, map[string]any{"name": strings.Repeat("n", 65)}, bearer(p.access)...), "name")
		expectField(t, h.do("PATCH", "/auth/passkeys/"+adaKey.id, map[string]any{"name": "a\u0007b"}, bearer(p.access)...), "name")
		if h.passkeyCount(bob.ID) != 1 {
			t.Fatal("bob's passkey is gone")
		}
	})
	t.Run("named options tell nothing", func(t *testing.T) {
		nobody := options(t, h.do("POST", "/auth/login/passkey/options", map[string]any{"email": "nobody@example.com"}))
		again := options(t, h.do("POST", "/auth/login/passkey/options", map[string]any{"email": "nobody@example.com"}))
		h.createUser("carol@example.com") // no passkey
		carol := options(t, h.do("POST", "/auth/login/passkey/options", map[string]any{"email": "carol@example.com"}))
		for _, o := range []string{nobody, again, carol} {
			if n := strings.Count(o, `"type":"public-key"`); n < 1 || n > 2 || strings.Contains(o, "transports") {
				t.Fatalf("options %s list %d credentials, want one or two made-up credentials without transports", o, n)
			}
		}
		id := func(o string) string { return o[strings.Index(o, `"allowCredentials"`):][:80] }
		if id(nobody) != id(again) || id(nobody) == id(carol) {
			t.Fatalf("made-up credentials: %s / %s / %s", id(nobody), id(again), id(carol))
		}
	})
}

// TestPasskeySecondFactor: a user with 2FA on answers the second-factor
// challenge with a passkey; a passkey sign-in that verified the user is
// two factors, one that did not is refused.
func TestPasskeySecondFactor(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch, withPasskeys)
		h.createUser("ada@example.com")
		p := h.login("ada@example.com", goodPassword)
		secret, _ := h.enrol(p)
		// Enabling 2FA changed the etag; refresh, then add a passkey with
		// the password and a code (the sign-in is no longer fresh).
		h.clock.Advance(6 * time.Minute)
		p = pairOf(t, h.refresh(p.refresh))
		expectField(t, h.do("POST", "/auth/passkeys/register/options", map[string]any{"password": goodPassword}, bearer(p.access)...), "code")
		d := newDevice()
		opts := options(t, h.do("POST", "/auth/passkeys/register/options", map[string]any{"password": goodPassword, "code": h.totpCode(secret)}, bearer(p.access)...))
		expect(t, h.do("POST", "/auth/passkeys/register", map[string]any{"credential": d.attest(t, testRP, opts)}, bearer(p.access)...), 201, "")

		r := h.do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": goodPassword})
		expect(t, r, 200, "")
		if got, _ := json.Marshal(r.body["available_challenges"]); string(got) != `["SOFTWARE_TOKEN_MFA","WEB_AUTHN"]` || r.str("challenge_name") != "SOFTWARE_TOKEN_MFA" {
			t.Fatalf("login answered %s", r.raw)
		}
		session := r.str("session")
		h.keep(session)
		expect(t, h.do("POST", "/auth/login/2fa/passkey/options", map[string]any{"session": "not a session"}), 401, "invalid_grant")
		opts = options(t, h.do("POST", "/auth/login/2fa/passkey/options", map[string]any{"session": session}))
		if !strings.Contains(opts, d.id) {
			t.Fatalf("second-factor options %s do not list the passkey", opts)
		}
		cred := d.assert(t, testRP, opts)
		expectField(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "code": "123456", "credential": cred}), "credential")
		// A sign-in challenge's answer is no second factor.
		signInOpts := options(t, h.do("POST", "/auth/login/passkey/options", nil))
		expectPasskeyRefused(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "credential": d.assert(t, testRP, signInOpts)}), 401, "challenge_unknown")
		s := pairOf(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "credential": cred}))
		if h.profileStatus(s.access) != 200 {
			t.Fatal("the second factor's tokens do not work")
		}
		expect(t, h.do("POST", "/auth/login/2fa", map[string]any{"session": session, "credential": cred}), 401, "invalid_grant")

		// Signing in with the passkey alone: it verified the user, so no code.
		pairOf(t, h.passkeyLogin(d, testRP, ""))
		unverified := *d
		unverified.auth.Options.UserNotVerified = true
		expectPasskeyRefused(t, h.passkeyLogin(&unverified, testRP, ""), 401, "user_verification_required")

		// A user without passkeys is offered codes only.
		h.createUser("bob@example.com")
		pb := h.login("bob@example.com", goodPassword)
		h.enrol(pb)
		r = h.do("POST", "/auth/login", map[string]any{"email": "bob@example.com", "password": goodPassword})
		if got, _ := json.Marshal(r.body["available_challenges"]); string(got) != `["SOFTWARE_TOKEN_MFA"]` {
			t.Fatalf("login answered %s", r.raw)
		}
		h.keep(r.str("session"))
		expectField(t, h.do("POST", "/auth/login/2fa/passkey/options", map[string]any{"session": r.str("session")}), "session")
	})
}

// TestPasskeyParallel: of 200 parallel submissions of one assertion, one
// signs in; of 200 parallel sign-ins begun from one network, no more than
// the limit get options.
func TestPasskeyParallel(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch, withPasskeys, func(c *fiberauth.Config) { c.MaxLoginFailuresPerIP = 50 })
		h.createUser("ada@example.com")
		d := newDevice()
		h.addPasskey(h.login("ada@example.com", goodPassword), d, "")
		opts := options(t, h.do("POST", "/auth/login/passkey/options", nil))
		body := map[string]any{"credential": d.assert(t, testRP, opts)}
		statuses := parallel(200, func() int { return h.do("POST", "/auth/login/passkey", body).status })
		// The others are refused (401), or throttled (429) once the
		// refusals fill the network's limit on failed logins.
		if statuses[200] != 1 || statuses[401]+statuses[429] != 199 {
			t.Fatalf("200 submissions of one assertion answered %v, want one 200", statuses)
		}
		h.clock.Advance(16 * time.Minute) // a new window
		statuses = parallel(200, func() int { return h.do("POST", "/auth/login/passkey/options", nil).status })
		if statuses[200] != 50 || statuses[429] != 150 {
			t.Fatalf("200 option calls answered %v with a limit of 50", statuses)
		}
	})
}

// parallel runs fn n times at once and counts its answers.
func parallel(n int, fn func() int) map[int]int {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		got = map[int]int{}
	)
	for range n {
		wg.Go(func() {
			s := fn()
			mu.Lock()
			got[s]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return got
}

func TestPasskeyConfig(t *testing.T) {
	base := fiberauth.Config{Store: memstore.New(), Secret: testSecret, Logger: quiet}
	for name, pc := range map[string]fiberauth.PasskeyConfig{
		"no origins":       {RPID: "example.com", RPName: "Example"},
		"empty origin":     {RPID: "example.com", RPName: "Example", Origins: []string{""}},
		"other domain":     {RPID: "example.com", RPName: "Example", Origins: []string{"https://example.org"}},
		"suffix only":      {RPID: "example.com", RPName: "Example", Origins: []string{"https://badexample.com"}},
		"plain http":       {RPID: "example.com", RPName: "Example", Origins: []string{"http://example.com"}},
		"a path":           {RPID: "example.com", RPName: "Example", Origins: []string{"https://example.com/app"}},
		"no rp id":         {RPName: "Example", Origins: []string{"https://example.com"}},
		"rp id with https": {RPID: "https://example.com", RPName: "Example", Origins: []string{"https://example.com"}},
		"no name":          {RPID: "example.com", Origins: []string{"https://example.com"}},
	} {
		cfg := base
		cfg.Passkeys = &pc
		if _, err := fiberauth.New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, pc)
		}
	}
	cfg := base
	cfg.Passkeys = &fiberauth.PasskeyConfig{RPID: "localhost", RPName: "Dev", Origins: []string{"http://localhost:3000"}}
	if _, err := fiberauth.New(cfg); err != nil {
		t.Errorf("localhost over http: %v", err)
	}
	cfg.Store = struct{ fiberauth.Store }{memstore.New()} // no PasskeyStore
	if _, err := fiberauth.New(cfg); err == nil || !strings.Contains(err.Error(), "PasskeyStore") {
		t.Errorf("a store without PasskeyStore: %v", err)
	}

	// Without Config.Passkeys nothing of them is mounted.
	h := newHarness(t)
	if h.mounted("POST", "/auth/login/passkey") || h.mounted("GET", "/auth/passkeys") {
		t.Fatal("passkey endpoints mounted without Config.Passkeys")
	}
	_, err := h.auth.BeginPasskeyLogin(context.Background(), "")
	if err == nil {
		t.Fatal("BeginPasskeyLogin worked without Config.Passkeys")
	}
}

// FuzzPasskeyResponses sends made-up answers (seeded with real ones) to
// every endpoint that takes a passkey's answer: none may panic or answer
// anything but a JSON error, a 2xx aside.
func FuzzPasskeyResponses(f *testing.F) {
	h := newHarness(f, withPasskeys)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	d := newDevice()
	attestation := d.attest(f, testRP, options(f, h.do("POST", "/auth/passkeys/register/options", nil, bearer(p.access)...)))
	assertion := d.assert(f, testRP, options(f, h.do("POST", "/auth/login/passkey/options", nil)))
	paths := []string{"/auth/login/passkey", "/auth/passkeys/register", "/auth/login/2fa"}
	for i := range paths {
		f.Add(uint8(i), []byte(attestation))
		f.Add(uint8(i), []byte(assertion))
		f.Add(uint8(i), []byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`))
	}
	f.Fuzz(func(t *testing.T, endpoint uint8, credential []byte) {
		path := paths[int(endpoint)%len(paths)]
		body := append(append([]byte(`{"session":"x","credential":`), credential...), '}')
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+p.access)
		status, out := h.send(t, req)
		if status >= 500 || status >= 400 && !strings.Contains(out, `"error"`) {
			t.Fatalf("%s answered %d: %s", path, status, out)
		}
	})
}
