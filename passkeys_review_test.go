package fiberauth_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
)

// TestPasskeyReviewNamedOptionsOracle: BeginPasskeyLogin's decoy promises
// that a name's options do not tell whether the account exists. But the
// challenge of a name without an account is bound to no user
// (passkeys.go:577-589, 601: u stays nil, so ch.UserID is ""), so checkPasskeyLogin
// accepts any passkey for it, while a real account's challenge refuses
// every other user's (passkeys.go:682). An attacker with a passkey of their
// own asks for a name's options and answers them with it: a name without
// an account signs the attacker in (200, and the attempts are given back),
// a name with one is refused (401 credential_unknown). No account is even
// needed: an assertion that names someone else's credential id (the named
// options of any account with a passkey list them) and is signed by any
// key answers verification_failed for a name without an account, and
// credential_unknown for a name with one.
func TestPasskeyReviewNamedOptionsOracle(t *testing.T) {
	h := newHarness(t, withPasskeys)
	h.createUser("mallory@example.com")
	h.createUser("carol@example.com") // exists, no passkey
	mine := newDevice()
	h.addPasskey(h.login("mallory@example.com", goodPassword), mine, "")
	forged := *mine
	forged.cred = newDevice().cred
	forged.cred.ID = mine.cred.ID // a known credential id, a key of one's own

	for _, d := range []*device{mine, &forged} {
		probe := func(name string) response {
			opts := options(t, h.do("POST", "/auth/login/passkey/options", map[string]any{"email": name}))
			return h.do("POST", "/auth/login/passkey", map[string]any{"credential": d.assert(t, testRP, opts)})
		}
		exists, nobody := probe("carol@example.com"), probe("nobody@example.com")
		if exists.status != nobody.status || exists.str("reason") != nobody.str("reason") {
			t.Errorf("finishing a name's options tells whether the account exists: "+
				"existing name -> %d %s; unknown name -> %d %.200s", exists.status, exists.str("reason"), nobody.status, nobody.raw)
		}
	}
}

// TestPasskeyReviewNamedOptionsTransports: browsers send the transports of
// a new passkey (AuthenticatorAttestationResponse.getTransports(), which
// toJSON() includes), and the named options list them for the account's
// passkeys, while the decoy of a name without passkeys never has any: the
// options of a name tell whether it is an account with a passkey.
func TestPasskeyReviewNamedOptionsTransports(t *testing.T) {
	h := newHarness(t, withPasskeys)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	d := newDevice()
	opts := options(t, h.do("POST", "/auth/passkeys/register/options", nil, bearer(p.access)...))
	var cred map[string]any
	if err := json.Unmarshal(d.attest(t, testRP, opts), &cred); err != nil {
		t.Fatal(err)
	}
	cred["response"].(map[string]any)["transports"] = []string{"hybrid", "internal"} // as Chrome and Safari send them
	expect(t, h.do("POST", "/auth/passkeys/register", map[string]any{"credential": cred}, bearer(p.access)...), 201, "")

	named := options(t, h.do("POST", "/auth/login/passkey/options", map[string]any{"email": "ada@example.com"}))
	decoy := options(t, h.do("POST", "/auth/login/passkey/options", map[string]any{"email": "nobody@example.com"}))
	if strings.Contains(named, `"transports"`) != strings.Contains(decoy, `"transports"`) {
		t.Fatalf("the options of an account with a passkey and of a made-up name differ in shape:\n named %s\n decoy %s", named, decoy)
	}
}

// gatedStore holds every UpdateUser, while gated, until two have arrived
// (or a second has passed): so that two requests that each read the user
// first both read it before either writes.
type gatedStore struct {
	*memstore.Store
	gated   atomic.Bool
	mu      sync.Mutex
	waiting int
	both    chan struct{}
}

func (g *gatedStore) UpdateUser(ctx context.Context, u fiberauth.UserUpdate) (fiberauth.UpdateResult, error) {
	if g.gated.Load() {
		g.mu.Lock()
		g.waiting++
		if g.waiting == 2 {
			close(g.both)
		}
		g.mu.Unlock()
		select {
		case <-g.both:
		case <-time.After(time.Second):
		}
	}
	return g.Store.UpdateUser(ctx, u)
}

// TestPasskeyReviewParallelRegistrations: FinishPasskeyRegistration
// promises a challenge works "only if the user has not changed since", and
// a registration changes the user (its etag); sequentially, a second
// registration begun at the same etag is refused. But the etag is compared
// on a read (passkeys.go:392), and the write that changes it (:414) does not
// check it (modifyUser's fn returns nil), so two registrations finished at
// once both pass, and maxPasskeys (checked only when one begins) does not
// hold: a user with 19 passkeys ends with 21.
func TestPasskeyReviewParallelRegistrations(t *testing.T) {
	store := &gatedStore{Store: memstore.New(), both: make(chan struct{})}
	h := newHarnessOn(t, store, testEpoch, withPasskeys)
	u := h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	for range 19 {
		p = h.addPasskey(p, newDevice(), "")
	}
	creds := make([]json.RawMessage, 2)
	for i := range creds {
		creds[i] = newDevice().attest(t, testRP, options(t, h.do("POST", "/auth/passkeys/register/options", nil, bearer(p.access)...)))
	}
	store.gated.Store(true)
	statuses := make([]int, len(creds))
	var wg sync.WaitGroup
	for i := range creds {
		wg.Go(func() {
			statuses[i] = h.do("POST", "/auth/passkeys/register", map[string]any{"credential": creds[i]}, bearer(p.access)...).status
		})
	}
	wg.Wait()
	if got := h.passkeyCount(u.ID); got > 20 || statuses[0] == 201 && statuses[1] == 201 {
		t.Fatalf("two registrations begun at one etag, finished at once, answered %v: the user now has %d passkeys (at most 20)", statuses, got)
	}
}

// TestPasskeyReviewTransports: the transports of a registration are the
// client's, and go-webauthn keeps any string. FinishPasskeyRegistration
// stores them unchecked (passkeys.go:406-407), and sqlstore refuses a
// transport with a comma (as its AddPasskey says) and PostgreSQL a NUL
// byte: a client's hostile registration answers 503, after the etag was
// changed. A client error must be a 4xx (or the transports dropped).
func TestPasskeyReviewTransports(t *testing.T) {
	onEveryStore(t, func(t *testing.T, store fiberauth.Store) {
		h := newHarnessOn(t, store, testEpoch, withPasskeys)
		h.createUser("ada@example.com")
		for _, transports := range [][]string{{"usb,nfc"}, {"in\x00ternal"}} {
			p := h.login("ada@example.com", goodPassword)
			opts := options(t, h.do("POST", "/auth/passkeys/register/options", nil, bearer(p.access)...))
			var cred map[string]any
			if err := json.Unmarshal(newDevice().attest(t, testRP, opts), &cred); err != nil {
				t.Fatal(err)
			}
			cred["response"].(map[string]any)["transports"] = transports
			if r := h.do("POST", "/auth/passkeys/register", map[string]any{"credential": cred}, bearer(p.access)...); r.status >= 500 {
				t.Errorf("a registration with transports %q answered %d %s", transports, r.status, r.raw)
			}
		}
	})
}

// TestPasskeyReviewSecondFactorParallel: of 200 parallel submissions of one
// second-factor assertion, one signs in, with and without a counter.
func TestPasskeyReviewSecondFactorParallel(t *testing.T) {
	for _, counter := range []uint32{0, 7} {
		h := newHarness(t, withPasskeys, func(c *fiberauth.Config) { c.MaxCodeFailures = 1000 })
		h.createUser("ada@example.com")
		p := h.login("ada@example.com", goodPassword)
		d := newDevice()
		d.cred.Counter = counter
		p = h.addPasskey(p, d, "")
		h.enrol(p)
		if counter > 0 {
			d.cred.Counter++
		}
		session := h.challenge("ada@example.com", goodPassword, fiberauth.ChallengeMFA)
		h.keep(session)
		opts := options(t, h.do("POST", "/auth/login/2fa/passkey/options", map[string]any{"session": session}))
		body := map[string]any{"session": session, "credential": d.assert(t, testRP, opts)}
		statuses := parallel(200, func() int { return h.do("POST", "/auth/login/2fa", body).status })
		if statuses[200] != 1 {
			t.Fatalf("counter %d: 200 submissions of one second-factor assertion answered %v", counter, statuses)
		}
	}
}

// TestPasskeyReviewRefusedStoresNothing: docs/api.md promises "Nothing is
// stored for a refused answer", but checkPasskeyLogin records the use
// (sign count, last_used_at: verifyAssertion, passkeys.go:695) before it
// refuses, for a user with 2FA on, an answer without user verification
// (passkeys.go:701), or a disabled user (:698).
func TestPasskeyReviewRefusedStoresNothing(t *testing.T) {
	h := newHarness(t, withPasskeys)
	u := h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	d := newDevice()
	d.cred.Counter = 5
	p = h.addPasskey(p, d, "")
	h.enrol(p)
	unverified := *d
	unverified.auth.Options.UserNotVerified = true
	unverified.cred.Counter = 6
	expectPasskeyRefused(t, h.passkeyLogin(&unverified, testRP, ""), 401, "user_verification_required")
	keys, err := h.store.(fiberauth.PasskeyStore).PasskeysOf(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if k := keys[0]; !k.LastUsedAt.IsZero() || k.SignCount != 5 {
		t.Fatalf("a refused sign-in was recorded as a use: sign count %d (was 5), last used %v", k.SignCount, k.LastUsedAt)
	}
}

// TestPasskeyReviewStepUpRecoveryCode: recovery codes are single use
// (docs/api.md), but passkeyStepUp hands a code to stepUp, which only
// checks a recovery code: /2fa/disable and /2fa/recovery-codes wipe the
// codes after it, the passkey step-up leaves the code in place. One
// recovery code then steps up any number of passkey additions and
// removals, and the user's count of codes never shows it was used.
func TestPasskeyReviewStepUpRecoveryCode(t *testing.T) {
	h := newHarness(t, withPasskeys)
	h.createUser("ada@example.com")
	p := h.login("ada@example.com", goodPassword)
	_, recovery := h.enrol(p)
	h.keep(recovery...)
	h.clock.Advance(6 * time.Minute)
	p = pairOf(t, h.refresh(p.refresh)) // no longer a fresh sign-in
	up := map[string]any{"password": goodPassword, "code": recovery[0]}
	expect(t, h.do("POST", "/auth/passkeys/register/options", up, bearer(p.access)...), 200, "")
	expect(t, h.do("POST", "/auth/passkeys/register/options", up, bearer(p.access)...), 401, "invalid_grant")
}
