package fiberauth

import (
	"context"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The asymmetric keys in use: which one signs, which ones verify and until
// when, kept as an atomic snapshot so that verifying a token is a map
// lookup. The keys are the host's (Config.SigningKeys, fixed for the life
// of the Auth) or generated and kept sealed in the KeyStore (reloaded every
// minute and on a token with an unknown kid, rotated every
// Config.SigningKeyRotation, and on RotateSigningKey).
//
// A key stops signing when its successor's NotBefore comes, and verifies
// for AccessTTL + Leeway more, when every token it signed has expired; then
// it leaves the JWKS, and the store. A generated key is added a while
// before it signs (keyPublishLead), so that every instance, and every
// verifier that caches the JWKS, knows it before the first token it signs.

const (
	// keyReloadInterval is how often the stored keys are read again.
	keyReloadInterval = time.Minute
	// unknownKIDInterval is the least time between two reloads for tokens
	// with a kid this process does not know (one made up is refused
	// without reading the store again).
	unknownKIDInterval = 10 * time.Second
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
	spawn       func(func()) // runs work off the request path; Auth.Flush waits for it
	mu          sync.Mutex   // one reload at a time
	nextReload  atomic.Int64 // Unix nanoseconds on now
	unknown     refreshGate  // reloads for unknown kids
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
}

// verifyKey is one key that verifies, until a time.
type verifyKey struct {
	pub   PublicKey
	until int64 // Unix nanoseconds on now; 0: for as long as it is listed
}

func (k *verifyKey) live(now time.Time) bool { return k.until == 0 || now.UnixNano() < k.until }

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
			v.until = k.retired.Add(ttl).UnixNano()
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
// access token gets, then the key of its kid, which must be live and of
// the token's algorithm (an EdDSA key verifies EdDSA tokens only, whatever
// the parser allows).
func (r *keyRing) keyFunc(t *jwt.Token) (any, error) {
	if err := checkHeader(t); err != nil {
		return nil, err
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errNoKID
	}
	now := r.now()
	r.maybeReload(now)
	k := r.snap.Load().byKID[kid]
	if k == nil && r.store != nil && r.unknown.do(context.Background(), now, unknownKIDInterval, r.reloadQuietly) {
		k = r.snap.Load().byKID[kid]
	}
	if k == nil {
		return nil, errUnknownKID
	}
	if t.Method.Alg() != k.pub.Algorithm {
		return nil, errAlgNotKeys
	}
	if !k.live(now) {
		return nil, errKeyRetired
	}
	return k.pub.Key, nil
}

// signing is the key that signs at now, and its method.
func (r *keyRing) signing(now time.Time) (*SigningKey, jwt.SigningMethod) {
	r.maybeReload(now)
	k := r.snap.Load().signer(now)
	if k.alg == AlgorithmES256 {
		return k, jwt.SigningMethodES256
	}
	return k, jwt.SigningMethodEdDSA
}

// live is the keys that verify at now, newest first.
func (r *keyRing) live(now time.Time) []PublicKey {
	r.maybeReload(now)
	var out []PublicKey
	for _, k := range r.snap.Load().keys {
		if k.live(now) {
			out = append(out, k.pub)
		}
	}
	return out
}

// maybeReload starts a reload of stored keys off the request path when
// one is due.
func (r *keyRing) maybeReload(now time.Time) {
	if r.store == nil {
		return
	}
	due := r.nextReload.Load()
	if now.UnixNano() < due || !r.nextReload.CompareAndSwap(due, now.Add(keyReloadInterval).UnixNano()) {
		return
	}
	r.spawn(r.reloadQuietly)
}

// reloadQuietly reloads, logging a failure: the keys in use stay.
func (r *keyRing) reloadQuietly() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.reload(ctx, false); err != nil {
		r.log.Warn("fiberauth: reloading signing keys failed; the keys in use stay", "err", err)
	}
}

// reload reads the stored keys, adds one when it is time (or rotate is
// set), deletes those whose tokens have all expired, and makes the result
// the snapshot.
func (r *keyRing) reload(ctx context.Context, rotate bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
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
			r.snap.Store(set)
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
	set := &keySet{byKID: map[string]*verifyKey{}}
	retired := retirements(list)
	for i := len(list) - 1; i >= 0; i-- {
		rec := list[i]
		k := opened[rec.ID]
		if k == nil {
			continue
		}
		v := &verifyKey{pub: k.PublicKey()}
		if !retired[i].IsZero() {
			v.until = retired[i].Add(r.ttl).UnixNano()
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

// refreshGate lets one refresh (a reload, a fetch) run at a time, and at
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
