package fiberauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Asymmetric signing keys: the key type, loading one (PKCS#8 PEM, JWK) or
// making one, and its public half as a JWK (RFC 7517). keyring.go keeps
// the keys in use and rotates them; jwks.go serves the public ones.

// The asymmetric algorithms an access token may be signed with (RFC 7518,
// RFC 8037). HS256 with Config.Secret is the default and needs no key.
const (
	// AlgorithmEdDSA is Ed25519 (RFC 8037).
	AlgorithmEdDSA = "EdDSA"
	// AlgorithmES256 is ECDSA on P-256 with SHA-256.
	AlgorithmES256 = "ES256"
)

// SigningKey is a private key that signs access tokens, with its key id
// ("kid", sent in each token's header) and algorithm. Make one with
// GenerateSigningKey, ParseSigningKeyPEM or ParseSigningKeyJWK and give it
// to Config.SigningKeys.
//
// The private key never leaves it: fmt (every verb), slog and
// encoding/json show only its kid and algorithm.
type SigningKey struct {
	kid string
	alg string
	// priv is behind a pointer so that even a reflective print of a struct
	// holding a SigningKey shows an address, not the key.
	priv    *privateKey
	retired time.Time // zero while it signs or may sign
}

// privateKey is the secret half: ed25519.PrivateKey or *ecdsa.PrivateKey.
type privateKey struct {
	signer crypto.Signer
}

// Errors of loading keys.
var (
	errUnknownAlgorithm = errors.New("fiberauth: unknown signing algorithm (want EdDSA or ES256)")
	errKeyType          = errors.New("fiberauth: the key is neither Ed25519 nor ECDSA P-256")
)

// GenerateSigningKey makes a new key for alg (AlgorithmEdDSA or
// AlgorithmES256) from crypto/rand. Its kid is its JWK thumbprint (RFC
// 7638).
func GenerateSigningKey(alg string) (*SigningKey, error) {
	var signer crypto.Signer
	switch alg {
	case AlgorithmEdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("fiberauth: generating an Ed25519 key: %w", err)
		}
		signer = priv
	case AlgorithmES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("fiberauth: generating a P-256 key: %w", err)
		}
		signer = priv
	default:
		return nil, errUnknownAlgorithm
	}
	return newSigningKey(signer, "")
}

// newSigningKey wraps signer; kid "" is its thumbprint.
func newSigningKey(signer crypto.Signer, kid string) (*SigningKey, error) {
	k := &SigningKey{priv: &privateKey{signer: signer}}
	switch p := signer.(type) {
	case ed25519.PrivateKey:
		if len(p) != ed25519.PrivateKeySize {
			return nil, errKeyType
		}
		k.alg = AlgorithmEdDSA
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return nil, errKeyType
		}
		k.alg = AlgorithmES256
	default:
		return nil, errKeyType
	}
	if kid == "" {
		kid = k.PublicKey().thumbprint()
	}
	k.kid = kid
	return k, nil
}

// ParseSigningKeyPEM reads a private key from PEM: the first "PRIVATE KEY"
// block (PKCS#8, as `openssl genpkey -algorithm ed25519` or `openssl
// genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` write it), Ed25519
// or ECDSA P-256. kid is the key id tokens will carry; "" uses the key's
// JWK thumbprint (RFC 7638), which is the same wherever the key is loaded.
func ParseSigningKeyPEM(data []byte, kid string) (*SigningKey, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("fiberauth: no PEM block \"PRIVATE KEY\" (PKCS#8) found")
		}
		switch block.Type {
		case "PRIVATE KEY":
		case "EC PRIVATE KEY":
			return nil, errors.New("fiberauth: an \"EC PRIVATE KEY\" (SEC 1) PEM block: convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`")
		default:
			continue
		}
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("fiberauth: the PRIVATE KEY block is not a PKCS#8 private key")
		}
		var signer crypto.Signer
		switch p := key.(type) {
		case ed25519.PrivateKey:
			signer = p
		case *ecdsa.PrivateKey:
			signer = p
		default:
			return nil, errKeyType
		}
		return newSigningKey(signer, kid)
	}
}

// ParseSigningKeyJWK reads a private key from a JWK (RFC 7517): kty OKP
// with crv Ed25519, or kty EC with crv P-256, with its private part "d".
// The key id is its "kid", or its thumbprint when it has none; its "alg",
// when present, must be the key's.
func ParseSigningKeyJWK(data []byte) (*SigningKey, error) {
	var j jwkInput
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, errors.New("fiberauth: the JWK is not a JSON object")
	}
	if j.D == "" {
		return nil, errors.New("fiberauth: the JWK has no private part \"d\"")
	}
	pub, err := j.publicKey()
	if err != nil {
		return nil, err
	}
	d, err := decodeJWKField("d", j.D)
	if err != nil {
		return nil, err
	}
	var signer crypto.Signer
	switch want := pub.Key.(type) {
	case ed25519.PublicKey:
		if len(d) != ed25519.SeedSize {
			return nil, errors.New("fiberauth: the JWK's \"d\" is not an Ed25519 seed")
		}
		priv := ed25519.NewKeyFromSeed(d)
		if !want.Equal(priv.Public()) {
			return nil, errors.New("fiberauth: the JWK's \"x\" is not the public key of its \"d\"")
		}
		signer = priv
	case *ecdsa.PublicKey:
		priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
		if err != nil {
			return nil, errors.New("fiberauth: the JWK's \"d\" is not a P-256 private key")
		}
		if !want.Equal(priv.Public()) {
			return nil, errors.New("fiberauth: the JWK's \"x\" and \"y\" are not the public key of its \"d\"")
		}
		signer = priv
	}
	return newSigningKey(signer, j.Kid)
}

// KID is the key id tokens signed with the key carry in their header.
func (k *SigningKey) KID() string { return k.kid }

// Algorithm is AlgorithmEdDSA or AlgorithmES256.
func (k *SigningKey) Algorithm() string { return k.alg }

// PublicKey is the key's public half, as verifiers need it.
func (k *SigningKey) PublicKey() PublicKey {
	return PublicKey{KID: k.kid, Algorithm: k.alg, Key: k.priv.signer.Public()}
}

// Retired returns a copy of k that stopped signing at at: listed after
// the key that signs now in Config.SigningKeys, it verifies the tokens it
// signed until at + Config.AccessTTL + Config.Leeway, when they have all
// expired, and then leaves the JWKS and verifies nothing. A key listed
// after the first without Retired verifies for as long as it is listed.
func (k *SigningKey) Retired(at time.Time) *SigningKey {
	c := *k
	c.retired = at
	return &c
}

// String shows the key id and algorithm, never the private key.
func (k *SigningKey) String() string {
	if k == nil {
		return "fiberauth.SigningKey(nil)"
	}
	return fmt.Sprintf("fiberauth.SigningKey{kid: %q, alg: %s, private: redacted}", k.kid, k.alg)
}

// GoString is String, for %#v.
func (k *SigningKey) GoString() string { return k.String() }

// Format writes String for every verb, so that no verb of fmt (%x, %d, %+v
// and the others) prints the private key.
func (k *SigningKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue shows the key id and algorithm in structured logs.
func (k *SigningKey) LogValue() slog.Value {
	if k == nil {
		return slog.StringValue("nil")
	}
	return slog.GroupValue(slog.String("kid", k.kid), slog.String("alg", k.alg))
}

// MarshalJSON writes the key's public JWK, never its private part.
func (k *SigningKey) MarshalJSON() ([]byte, error) { return json.Marshal(k.PublicKey().jwk()) }

// marshalPrivate is the key in PKCS#8 DER, for sealing in a KeyStore.
func (k *SigningKey) marshalPrivate() ([]byte, error) {
	return x509.MarshalPKCS8PrivateKey(k.priv.signer)
}

// PublicKey is a public key that verifies access tokens: its key id, its
// algorithm (AlgorithmEdDSA or AlgorithmES256) and the key itself
// (ed25519.PublicKey or *ecdsa.PublicKey on P-256). ParseJWKS reads them
// from a JWK Set; SigningKey.PublicKey gives a signing key's.
type PublicKey struct {
	KID       string
	Algorithm string
	Key       crypto.PublicKey
}

// publicJWK is a public key on the wire: only these members, so that no
// private member ("d", "p", …) can ever be written.
type publicJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// jwkInput is a JWK as read: public members, and "d" for a private key.
type jwkInput struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// jwk is the public key as a JWK (RFC 7517, RFC 8037): EC coordinates are
// 32 bytes each, base64url without padding (RFC 7518 §6.2.1).
func (p PublicKey) jwk() publicJWK {
	j := publicJWK{Kid: p.KID, Alg: p.Algorithm, Use: "sig"}
	switch k := p.Key.(type) {
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64(k)
	case *ecdsa.PublicKey:
		raw, _ := k.Bytes() // 0x04 || X || Y; a P-256 key from this package always encodes
		if len(raw) == 65 {
			j.Kty, j.Crv, j.X, j.Y = "EC", "P-256", b64(raw[1:33]), b64(raw[33:])
		}
	}
	return j
}

// thumbprint is the JWK thumbprint (RFC 7638): SHA-256 over the required
// members in lexicographic order, base64url.
func (p PublicKey) thumbprint() string {
	j := p.jwk()
	var canon string
	if j.Kty == "EC" {
		canon = fmt.Sprintf(`{"crv":%q,"kty":%q,"x":%q,"y":%q}`, j.Crv, j.Kty, j.X, j.Y)
	} else {
		canon = fmt.Sprintf(`{"crv":%q,"kty":%q,"x":%q}`, j.Crv, j.Kty, j.X)
	}
	sum := sha256.Sum256([]byte(canon))
	return b64(sum[:])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeJWKField decodes a base64url member strictly: no padding, one
// spelling.
func decodeJWKField(name, v string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("fiberauth: the JWK's %q is not base64url", name)
	}
	return b, nil
}

// publicKey is the public key a JWK describes, checked: a supported kty
// and crv, coordinates of the right length and on the curve, "alg" (when
// present) the key's, "use" (when present) "sig".
func (j *jwkInput) publicKey() (PublicKey, error) {
	p := PublicKey{KID: j.Kid}
	switch {
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		x, err := decodeJWKField("x", j.X)
		if err != nil {
			return p, err
		}
		if len(x) != ed25519.PublicKeySize {
			return p, errors.New("fiberauth: the JWK's \"x\" is not an Ed25519 public key")
		}
		p.Key, p.Algorithm = ed25519.PublicKey(x), AlgorithmEdDSA
	case j.Kty == "EC" && j.Crv == "P-256":
		x, err := decodeJWKField("x", j.X)
		if err != nil {
			return p, err
		}
		y, err := decodeJWKField("y", j.Y)
		if err != nil {
			return p, err
		}
		if len(x) != 32 || len(y) != 32 {
			return p, errors.New("fiberauth: the JWK's \"x\" and \"y\" must be 32 bytes each")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return p, errors.New("fiberauth: the JWK's point is not on P-256")
		}
		p.Key, p.Algorithm = pub, AlgorithmES256
	default:
		return p, fmt.Errorf("fiberauth: unsupported JWK (kty %q, crv %q): want OKP Ed25519 or EC P-256", j.Kty, j.Crv)
	}
	if j.Alg != "" && j.Alg != p.Algorithm {
		return p, fmt.Errorf("fiberauth: the JWK's alg %q is not its key's (%s)", j.Alg, p.Algorithm)
	}
	if j.Use != "" && j.Use != "sig" {
		return p, fmt.Errorf("fiberauth: the JWK's use %q is not \"sig\"", j.Use)
	}
	return p, nil
}

// Bounds of a JWK Set that ParseJWKS reads.
const (
	// MaxJWKSSize is the largest JWK Set document ParseJWKS and the
	// Verifier read, in bytes.
	MaxJWKSSize = 64 << 10
	maxJWKSKeys = 100
)

// ParseJWKS reads the public keys of a JWK Set (RFC 7517 §5), as
// `GET /.well-known/jwks.json` serves it. Keys of a type fiberauth does not
// sign with (RSA, other curves) are skipped, as RFC 7517 §5 asks; a key it
// could use that is malformed, has no kid, or a kid given twice is an
// error, as is a set with no usable key. Private members are never read.
func ParseJWKS(data []byte) ([]PublicKey, error) {
	if len(data) > MaxJWKSSize {
		return nil, fmt.Errorf("fiberauth: JWK Set over %d bytes", MaxJWKSSize)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil || set.Keys == nil {
		return nil, errors.New("fiberauth: not a JWK Set (a JSON object with a \"keys\" array)")
	}
	if len(set.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("fiberauth: JWK Set of more than %d keys", maxJWKSKeys)
	}
	var out []PublicKey
	seen := map[string]bool{}
	for i, raw := range set.Keys {
		var j jwkInput
		if err := json.Unmarshal(raw, &j); err != nil {
			return nil, fmt.Errorf("fiberauth: JWK Set key %d is not a JSON object", i)
		}
		if !(j.Kty == "OKP" && j.Crv == "Ed25519") && !(j.Kty == "EC" && j.Crv == "P-256") {
			continue
		}
		p, err := j.publicKey()
		if err != nil {
			return nil, fmt.Errorf("JWK Set key %d: %w", i, err)
		}
		if p.KID == "" {
			return nil, fmt.Errorf("fiberauth: JWK Set key %d has no kid", i)
		}
		if seen[p.KID] {
			return nil, fmt.Errorf("fiberauth: JWK Set has kid %q twice", p.KID)
		}
		seen[p.KID] = true
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, errors.New("fiberauth: the JWK Set has no Ed25519 or P-256 key")
	}
	return out, nil
}

// checkPublicKey checks a key a host configured for a Verifier.
func checkPublicKey(p PublicKey) error {
	if p.KID == "" {
		return errors.New("fiberauth: a public key needs a kid")
	}
	switch k := p.Key.(type) {
	case ed25519.PublicKey:
		if p.Algorithm == AlgorithmEdDSA && len(k) == ed25519.PublicKeySize {
			return nil
		}
	case *ecdsa.PublicKey:
		if p.Algorithm == AlgorithmES256 && k.Curve == elliptic.P256() {
			return nil
		}
	}
	return fmt.Errorf("fiberauth: public key %q: want an Ed25519 key with EdDSA or a P-256 key with ES256", p.KID)
}
