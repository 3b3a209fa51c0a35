package fiberauth

import (
	"context"
	"crypto"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The asymmetric keys in use: which one signs, which ones verify and until
// when, kept as an atomic snapshot so that verifying a token is a map
// lookup. The keys are the host's (Config.SigningKeys, fixed for the life
// of the Auth) or generated and kept sealed in the KeyStore (reloaded as
// they age and on a token with an unknown kid, rotated every
// Config.SigningKeyRotation, and on RotateSigningKey).
//
// A key stops signing when its successor's NotBefore comes, and verifies
// for AccessTTL + Leeway more, when every token it signed has expired; then
// it leaves the JWKS, and the store. A generated key is added a while
// before it signs (keyPublishLead), so that every instance, and every
// verifier that caches the JWKS, knows it before the first token it signs.
//
// Reloads of generated keys. One runs at a time, off the request path
// (Auth.Flush waits for it); requests that need it wait for it, bounded.
//   - As the snapshot ages: from keyReloadInterval - keyReloadAhead a
//     request starts a reload without waiting for it; once the snapshot is
//     older than keyReloadInterval (an instance idle across a rotation, or
//     reloads failing), signing, verifying an unseen token and the JWKS
//     wait for one (keyWaitTimeout at most) and use the old snapshot only
//     if it fails, logged. These start at most one reload per
//     keyRetryInterval.
//   - For a token whose kid is not in the snapshot (a key another instance
//     has just added, or a made-up kid: the kid is looked up before the
//     signature can be checked): at most one reload per unknownKIDInterval
//     in all, and per unknownKIDRetry for any one kid (kidGate). Whatever
//     tokens anyone sends, they cause at most one read of the keys per
//     unknownKIDInterval per instance, and a key added to the store is
//     found at the first token of it that comes unknownKIDInterval after
//     it was added (sooner if no such reload ran meanwhile).

const (
	// keyReloadInterval is the greatest age of the keys an instance signs
	// and verifies with: older, it reloads them before using them.
	keyReloadInterval = time.Minute
	// keyReloadAhead is how long before keyReloadInterval a request starts
	// a reload without waiting for it, so that an instance serving
	// requests does not wait for its reloads.
	keyReloadAhead = 15 * time.Second
	// keyRetryInterval is the least time between two reloads started
	// because the keys aged: a failed one is not retried sooner.
	keyRetryInterval = 5 * time.Second
	// keyReloadTimeout bounds one reload.
	keyReloadTimeout = 10 * time.Second
	// keyWaitTimeout bounds how long a request waits for a reload of keys
	// older than keyReloadInterval before it goes on with them.
	keyWaitTimeout = 3 * time.Second
	// unknownKIDInterval is the least time between two reloads for tokens
	// with a kid this process does not know, whatever the kids.
	unknownKIDInterval = time.Second
	// unknownKIDRetry is the least time between two reloads for tokens with
	// the same unknown kid.
	unknownKIDRetry = 10 * time.Second
	// JWKSMaxAge is how long a client may cache GET /.well-known/jwks.json
	// (its Cache-Control max-age).
	JWKSMaxAge = 5 * time.Minute
	// keyPublishLead is how long before it signs a new key is in the JWKS:
	// long enough for every instance to reload and every cached JWKS to
	// expire.
	keyPublishLead = JWKSMaxAge + 2*keyReloadInterval
	// minKeyRotation is the least Config.SigningKeyRotation.
	minKeyRotation = time.Hour
)

var (
	errNoKID        = errors.New("no kid header")
	errUnknownKID   = errors.New("unknown kid")
	errAlgNotKeys   = errors.New("alg is not the algorithm of the kid's key")
	errKeyRetired   = errors.New("the kid's key has retired and its tokens have expired")
	errNoSigningKey = errors.New("fiberauth: no signing key")
	errReloadSlow   = errors.New("the reload did not end in time")
)

// keyRing holds the asymmetric keys.
type keyRing struct {
	snap atomic.Pointer[keySet]
	now  func() time.Time
	ttl  time.Duration // AccessTTL + Leeway: how long a key verifies after it stops signing

	// Generated keys only (store != nil).
	store       KeyStore
	seal        cipher.AEAD
	alg         string
	rotateEvery time.Duration // negative: only RotateSigningKey rotates
	log         *slog.Logger
	spawn       func(func())  // runs work off the request path; Auth.Flush waits for it
	sem         chan struct{} // held by the reload running (capacity 1)
	kids        kidGate       // reloads for unknown kids

	flightMu sync.Mutex
	flight   *keyFlight // the reload running off the request path, if any
	nextTry  int64      // Unix nanoseconds on now: the earliest start of a reload for aged keys
}

// keySet is one snapshot of the keys.
type keySet struct {
	current *SigningKey
	// next, when set, signs from nextAt on (a generated key published
	// ahead).
	next   *SigningKey
	nextAt time.Time
	byKID  map[string]*verifyKey
	keys   []*verifyKey // newest first, as the JWKS lists them
	// loadedAt is when the keys were read (Unix nanoseconds on now).
	loadedAt int64
}

// verifyKey is one key that verifies, until a time. A key keeps its
// verifyKey from one snapshot to the next, and the verified-token cache
// keeps it with the claims it verified: when a reload learns that the key
// has retired, or finds it gone, every token it verified is refused from
// then on (expire).
type verifyKey struct {
	pub   PublicKey
	until atomic.Int64 // Unix nanoseconds on now; 0: for as long as it is listed
}

func (k *verifyKey) live(now time.Time) bool {
	u := k.until.Load()
	return u == 0 || now.UnixNano() < u
}

// expire makes k verify nothing from at on (sooner if it was to stop
// sooner).
func (k *verifyKey) expire(at int64) {
	for {
		u := k.until.Load()
		if (u != 0 && u <= at) || k.until.CompareAndSwap(u, at) {
			return
		}
	}
}

// signer is the key that signs at now.
func (s *keySet) signer(now time.Time) *SigningKey {
	if s.next != nil && !now.Before(s.nextAt) {
		return s.next
	}
	return s.current
}

// newHostRing is the ring of the host's keys: the first signs.
func newHostRing(keys []*SigningKey, ttl time.Duration, now func() time.Time) *keyRing {
	r := &keyRing{now: now, ttl: ttl}
	set := &keySet{current: keys[0], byKID: map[string]*verifyKey{}}
	for _, k := range keys {
		v := &verifyKey{pub: k.PublicKey()}
		if !k.retired.IsZero() {
			v.until.Store(k.retired.Add(ttl).UnixNano())
		}
		set.add(v)
	}
	r.snap.Store(set)
	return r
}

func (s *keySet) add(v *verifyKey) {
	s.byKID[v.pub.KID] = v
	s.keys = append(s.keys, v)
}

// keyFunc is the jwt.Keyfunc of asymmetric tokens: the header checks every
// access token gets, then the key of its kid, which must be of the token's
// algorithm (an EdDSA key verifies EdDSA tokens only, whatever the parser
// allows); whether it is still live is checked after the signature.
func (r *keyRing) keyFunc(t *jwt.Token) (any, error) {
	if err := checkHeader(t); err != nil {
		return nil, err
	}
	return r.keyOf(t)
}

// keyOf is the key of t's kid, which must be of t's algorithm.
func (r *keyRing) keyOf(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errNoKID
	}
	now := r.now()
	k := r.keys(now).byKID[kid]
	if k == nil && r.store != nil {
		k = r.reloadForKID(kid, now)
	}
	if k == nil {
		return nil, errUnknownKID
	}
	if t.Method.Alg() != k.pub.Algorithm {
		return nil, errAlgNotKeys
	}
	// A key that has retired still verifies here: tokenSigner.verify
	// refuses its tokens after the signature (errKeyRetired, "expired"), so
	// that a token nobody signed with it is "malformed" like any other
	// forgery, and tells nothing of which kids are retired keys.
	return k.pub.Key, nil
}

// verifiedBy is the key that has just verified t (keyFunc), to keep with
// its claims: nil if it has gone since.
func (r *keyRing) verifiedBy(t *jwt.Token) *verifyKey {
	kid, _ := t.Header["kid"].(string)
	return r.snap.Load().byKID[kid]
}

// signing is the key that signs at now, and its method.
func (r *keyRing) signing(now time.Time) (*SigningKey, jwt.SigningMethod) {
	k := r.keys(now).signer(now)
	if k.alg == AlgorithmES256 {
		return k, jwt.SigningMethodES256
	}
	return k, jwt.SigningMethodEdDSA
}

// live is the keys that verify at now, newest first.
func (r *keyRing) live(now time.Time) []PublicKey {
	var out []PublicKey
	for _, k := range r.keys(now).keys {
		if k.live(now) {
			out = append(out, k.pub)
		}
	}
	return out
}

// keys is the snapshot to use at now. As it ages it is reloaded off the
// request path; once older than keyReloadInterval, reloaded first (the
// wait bounded by keyWaitTimeout), and used as it is only if that fails.
func (r *keyRing) keys(now time.Time) *keySet {
	set := r.snap.Load()
	if r.store == nil {
		return set
	}
	switch age := now.UnixNano() - set.loadedAt; {
	case age >= int64(keyReloadInterval):
		f, _ := r.startReload(now, true)
		if f == nil {
			return set // a reload failed less than keyRetryInterval ago
		}
		if err := f.wait(keyWaitTimeout); err != nil {
			r.log.Warn("fiberauth: the signing keys could not be reloaded; using those read before",
				"read_at", time.Unix(0, set.loadedAt).UTC(), "err", err)
		}
		return r.snap.Load()
	case age >= int64(keyReloadInterval-keyReloadAhead):
		r.startReload(now, true)
	}
	return set
}

// reloadForKID reloads the keys for a token whose kid is not in the
// snapshot, if kidGate lets it, and returns the kid's key if the reload
// found it.
func (r *keyRing) reloadForKID(kid string, now time.Time) *verifyKey {
	if !r.kids.allow(kid, now.UnixNano()) {
		return nil
	}
	f, started := r.startReload(now, false)
	_ = f.wait(keyWaitTimeout) // a failure is logged by the reload
	if k := r.snap.Load().byKID[kid]; k != nil || started {
		return k
	}
	// The reload this joined began before the token came, perhaps before
	// its key was stored: one that begins after it.
	f, _ = r.startReload(now, false)
	_ = f.wait(keyWaitTimeout)
	return r.snap.Load().byKID[kid]
}

// keyFlight is one reload running off the request path, which any number
// of requests may wait for.
type keyFlight struct {
	done chan struct{}
	err  error // set before done is closed
}

// wait waits for the reload to end, at most timeout, and returns its error.
func (f *keyFlight) wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-f.done:
		return f.err
	case <-t.C:
		return errReloadSlow
	}
}

// startReload returns the reload running, or starts one off the request
// path; started says it did. With aged set (the keys aged, rather than a
// kid is unknown), it starts none if one started less than
// keyRetryInterval before now, and returns nil.
func (r *keyRing) startReload(now time.Time, aged bool) (f *keyFlight, started bool) {
	r.flightMu.Lock()
	defer r.flightMu.Unlock()
	if r.flight != nil {
		return r.flight, false
	}
	if aged {
		if now.UnixNano() < r.nextTry {
			return nil, false
		}
		r.nextTry = now.Add(keyRetryInterval).UnixNano()
	}
	f = &keyFlight{done: make(chan struct{})}
	r.flight = f
	r.spawn(func() {
		ctx, cancel := context.WithTimeout(context.Background(), keyReloadTimeout)
		err := r.reload(ctx, false)
		cancel()
		if err != nil {
			r.log.Warn("fiberauth: reloading signing keys failed; the keys in use stay", "err", err)
		}
		f.err = err
		r.flightMu.Lock()
		r.flight = nil
		r.flightMu.Unlock()
		close(f.done)
	})
	return f, true
}

// reload reads the stored keys, adds one when it is time (or rotate is
// set), deletes those whose tokens have all expired, and makes the result
// the snapshot.
func (r *keyRing) reload(ctx context.Context, rotate bool) error {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for another reload of the signing keys: %w", ErrUnavailable, ctx.Err())
	}
	defer func() { <-r.sem }()
	for range 3 { // another instance may add a key between our read and our add
		list, err := r.store.SigningKeys(ctx)
		if err != nil {
			return storeErr("signing keys", err)
		}
		now := r.now()
		opened := r.open(list)
		notBefore, due := r.rotationDue(list, opened, now, rotate)
		if !due {
			r.deleteExpired(ctx, list, now)
			set, err := r.build(list, opened, now)
			if err != nil {
				return err
			}
			r.replace(set, now)
			return nil
		}
		var gen int64 = 1
		if n := len(list); n > 0 {
			gen = list[n-1].Generation + 1
		}
		rec, err := r.newStoredKey(gen, now, notBefore)
		if err != nil {
			return err
		}
		switch err := r.store.AddSigningKey(ctx, rec); {
		case errors.Is(err, ErrConflict):
			rotate = false // another instance added one: use it
		case err != nil:
			return storeErr("add signing key", err)
		default:
			rotate = false
			r.log.Info("fiberauth: new signing key", "kid", rec.ID, "alg", rec.Algorithm, "signs_from", rec.NotBefore)
		}
	}
	return fmt.Errorf("%w: signing keys kept changing while being read", ErrUnavailable)
}

// rotationDue says whether a new key must be added, and from when it signs.
func (r *keyRing) rotationDue(list []StoredSigningKey, opened map[string]*SigningKey, now time.Time, rotate bool) (time.Time, bool) {
	if len(list) == 0 || rotate {
		return now, true
	}
	newest := list[len(list)-1]
	switch {
	case opened[newest.ID] == nil:
		// Sealed under another secret, or unreadable: nothing here can sign
		// with it.
		return now, true
	case newest.Algorithm != r.alg:
		return now.Add(keyPublishLead), true
	case r.rotateEvery > 0 && !now.Before(newest.NotBefore.Add(r.rotateEvery-keyPublishLead)):
		return later(now.Add(keyPublishLead), newest.NotBefore.Add(r.rotateEvery)), true
	}
	return time.Time{}, false
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// retirements is, for each key of list, when it stops signing: the
// earliest NotBefore of the keys after it (zero for the newest).
func retirements(list []StoredSigningKey) []time.Time {
	out := make([]time.Time, len(list))
	var next time.Time
	for i := len(list) - 1; i >= 0; i-- {
		out[i] = next
		if nb := list[i].NotBefore; next.IsZero() || nb.Before(next) {
			next = nb
		}
	}
	return out
}

// build makes the snapshot of list at now.
func (r *keyRing) build(list []StoredSigningKey, opened map[string]*SigningKey, now time.Time) (*keySet, error) {
	set := &keySet{byKID: map[string]*verifyKey{}, loadedAt: now.UnixNano()}
	retired := retirements(list)
	for i := len(list) - 1; i >= 0; i-- {
		rec := list[i]
		k := opened[rec.ID]
		if k == nil {
			continue
		}
		v := &verifyKey{pub: k.PublicKey()}
		if !retired[i].IsZero() {
			v.until.Store(retired[i].Add(r.ttl).UnixNano())
		}
		if !v.live(now) {
			continue // deleted by now, or soon
		}
		set.add(v)
		switch {
		case set.current != nil:
		case !rec.NotBefore.After(now):
			set.current = k
		case set.next == nil:
			set.next, set.nextAt = k, rec.NotBefore
		}
	}
	if set.current == nil {
		if set.next == nil {
			return nil, errNoSigningKey
		}
		set.current = set.next // only a key published ahead: it signs now
	}
	return set, nil
}

// replace makes set the snapshot. A key in the snapshot before keeps its
// verifyKey, with set's until; one that is not in set any more (its tokens
// have expired, it was deleted, it no longer opens) verifies nothing from
// now on, tokens cached as verified by it included.
func (r *keyRing) replace(set *keySet, now time.Time) {
	if old := r.snap.Load(); old != nil {
		for i, v := range set.keys {
			o := old.byKID[v.pub.KID]
			if o == nil || !samePublicKey(o.pub, v.pub) {
				continue
			}
			o.until.Store(v.until.Load())
			set.keys[i], set.byKID[v.pub.KID] = o, o
		}
		for kid, o := range old.byKID {
			if set.byKID[kid] != o {
				o.expire(now.UnixNano())
			}
		}
	}
	r.snap.Store(set)
}

// samePublicKey reports whether a and b are one key.
func samePublicKey(a, b PublicKey) bool {
	k, ok := a.Key.(interface{ Equal(crypto.PublicKey) bool })
	return ok && a.KID == b.KID && a.Algorithm == b.Algorithm && k.Equal(b.Key)
}

// deleteExpired deletes the keys whose tokens have all expired at now; a
// failure is left for the next reload.
func (r *keyRing) deleteExpired(ctx context.Context, list []StoredSigningKey, now time.Time) {
	for i, at := range retirements(list) {
		if !at.IsZero() && !now.Before(at.Add(r.ttl)) {
			if err := r.store.DeleteSigningKey(ctx, list[i].ID); err != nil {
				r.log.Warn("fiberauth: deleting an expired signing key failed", "kid", list[i].ID, "err", err)
			}
		}
	}
}

// open unseals the stored keys; one that does not open is logged and left
// out.
func (r *keyRing) open(list []StoredSigningKey) map[string]*SigningKey {
	out := make(map[string]*SigningKey, len(list))
	for _, rec := range list {
		k, err := r.unseal(rec)
		if err != nil {
			r.log.Warn("fiberauth: a stored signing key does not open and is not used", "kid", rec.ID, "err", err)
			continue
		}
		out[rec.ID] = k
	}
	return out
}

// keyAD binds a sealed key to its id and algorithm.
func keyAD(id, alg string) []byte { return []byte("fiberauth signing key\x00" + id + "\x00" + alg) }

// newStoredKey generates a key and seals it.
func (r *keyRing) newStoredKey(gen int64, now, notBefore time.Time) (StoredSigningKey, error) {
	k, err := GenerateSigningKey(r.alg)
	if err != nil {
		return StoredSigningKey{}, err
	}
	der, err := k.marshalPrivate()
	if err != nil {
		return StoredSigningKey{}, fmt.Errorf("fiberauth: encoding a signing key: %w", err)
	}
	nonce := make([]byte, r.seal.NonceSize())
	_, _ = rand.Read(nonce)
	return StoredSigningKey{
		ID: k.kid, Generation: gen, Algorithm: k.alg,
		Sealed:    r.seal.Seal(nonce, nonce, der, keyAD(k.kid, k.alg)),
		CreatedAt: now, NotBefore: notBefore,
	}, nil
}

// unseal opens a stored key and checks it is what the record says.
func (r *keyRing) unseal(rec StoredSigningKey) (*SigningKey, error) {
	n := r.seal.NonceSize()
	if len(rec.Sealed) < n {
		return nil, errors.New("sealed key is short")
	}
	der, err := r.seal.Open(nil, rec.Sealed[:n], rec.Sealed[n:], keyAD(rec.ID, rec.Algorithm))
	if err != nil {
		return nil, errors.New("sealed under another Config.Secret, or altered")
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("not a PKCS#8 private key")
	}
	var k *SigningKey
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		k, err = newSigningKey(p, rec.ID)
	case *ecdsa.PrivateKey:
		k, err = newSigningKey(p, rec.ID)
	default:
		err = errKeyType
	}
	if err == nil && k.alg != rec.Algorithm {
		err = errors.New("the key is not of its recorded algorithm")
	}
	return k, err
}

// refreshGate (the Verifier's JWKS fetches) lets one refresh run at a time, and at
// most one per interval: a caller that comes while one runs waits for it
// and shares its result; one that comes within the interval of the last
// start is told no at once. So any number of tokens with made-up kids cost
// one refresh per interval.
type refreshGate struct {
	mu      sync.Mutex
	running chan struct{} // closed when the refresh in flight ends
	next    time.Time     // the earliest start of the next refresh
}

// do runs fn unless a refresh started less than interval before now; if
// one is running, it waits for it (or ctx). It reports whether a refresh
// ran meanwhile, so that the caller should look again.
func (g *refreshGate) do(ctx context.Context, now time.Time, interval time.Duration, fn func()) bool {
	g.mu.Lock()
	if ch := g.running; ch != nil {
		g.mu.Unlock()
		select {
		case <-ch:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if now.Before(g.next) {
		g.mu.Unlock()
		return false
	}
	g.next = now.Add(interval)
	ch := make(chan struct{})
	g.running = ch
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.running = nil
		g.mu.Unlock()
		close(ch)
	}()
	fn()
	return true
}

// allowAt lets the next refresh start at t at the earliest (sooner than
// the interval, after a failure while nothing is loaded).
func (g *refreshGate) allowAt(t time.Time) {
	g.mu.Lock()
	if t.Before(g.next) {
		g.next = t
	}
	g.mu.Unlock()
}

// kidGate bounds the reloads that tokens with unknown kids cause: at most
// one per unknownKIDInterval in all, and one per unknownKIDRetry for any
// one kid. A kid is remembered (as a hash: nothing an attacker sends is
// kept) only when it causes a reload, so at most unknownKIDRetry /
// unknownKIDInterval kids are remembered at once. Made-up kids cannot keep
// a real one from its reload longer than unknownKIDInterval: each is
// remembered on its own, and any reload that begins after a key is stored
// finds it.
type kidGate struct {
	mu    sync.Mutex
	seed  maphash.Seed
	next  int64            // Unix nanoseconds on now: the earliest next reload
	tried map[uint64]int64 // a kid's hash → the earliest next reload for it
}

// allow reports whether a token with kid, unknown at now, may reload the
// keys, and counts the reload if so.
func (g *kidGate) allow(kid string, now int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.tried == nil {
		g.seed = maphash.MakeSeed()
		g.tried = map[uint64]int64{}
	}
	h := maphash.String(g.seed, kid)
	if now < g.next || now < g.tried[h] {
		return false
	}
	if len(g.tried) >= maxTriedKIDs {
		for k, at := range g.tried {
			if at <= now {
				delete(g.tried, k)
			}
		}
		if len(g.tried) >= maxTriedKIDs { // only if the clock went back
			clear(g.tried)
		}
	}
	g.next = now + int64(unknownKIDInterval)
	g.tried[h] = now + int64(unknownKIDRetry)
	return true
}

// maxTriedKIDs bounds kidGate's memory, past the unknownKIDRetry /
// unknownKIDInterval kids it can hold at once.
const maxTriedKIDs = 32
