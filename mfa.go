package fiberauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP as authenticator apps expect it: SHA-1, 6 digits, 30-second steps,
// one step of skew either way.
const (
	totpPeriod     = 30
	totpDigits     = 6
	totpSecretSize = 20 // bytes: 160 bits
	totpSkew       = 1
)

// challengeTTL is how long a login challenge session lives.
const challengeTTL = 5 * time.Minute

// recoveryCodeCount is how many recovery codes /2fa/enable hands out.
const recoveryCodeCount = 10

// --- sealing the TOTP secret ---

// totpAEAD seals TOTP secrets at rest; they must be readable to check codes,
// so they are encrypted rather than hashed.
func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealTOTP encrypts secret, bound to the user by the additional data.
func (a *Auth) sealTOTP(userID, secret string) ([]byte, error) {
	nonce := make([]byte, a.totp.NonceSize())
	_, _ = rand.Read(nonce)
	return a.totp.Seal(nonce, nonce, []byte(secret), []byte(userID)), nil
}

func (a *Auth) openTOTP(userID string, sealed []byte) (string, error) {
	n := a.totp.NonceSize()
	if len(sealed) < n {
		return "", fmt.Errorf("%w: sealed TOTP secret of user %s is short", ErrUnavailable, userID)
	}
	plain, err := a.totp.Open(nil, sealed[:n], sealed[n:], []byte(userID))
	if err != nil {
		return "", fmt.Errorf("%w: TOTP secret of user %s does not open (another Config.Secret?)", ErrUnavailable, userID)
	}
	return string(plain), nil
}

// totpStep returns the time step whose code equals code, within the skew
// around now.
func totpStep(secret, code string, now time.Time) (int64, bool) {
	if len(code) != totpDigits || strings.Trim(code, "0123456789") != "" {
		return 0, false
	}
	cur := now.Unix() / totpPeriod
	for step := cur - totpSkew; step <= cur+totpSkew; step++ {
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// useTOTP checks code against the user's secret and uses its step up: each
// code works once.
func (a *Auth) useTOTP(ctx context.Context, u *User, code string) (bool, error) {
	secret, err := a.openTOTP(u.ID, u.TOTPSecret)
	if err != nil {
		return false, err
	}
	step, ok := totpStep(secret, code, a.now())
	if !ok {
		return false, nil
	}
	err = a.store.UseTOTPStep(ctx, u.ID, step)
	if errors.Is(err, ErrStale) {
		return false, nil // a replay
	}
	return err == nil, storeErr("use totp step", err)
}

// --- recovery codes ---

var recoveryEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newRecoveryCodes returns codes like "abcde-fghij" (50 bits each) and their
// keyed hashes.
func (a *Auth) newRecoveryCodes(userID string) (codes []string, hashes [][]byte) {
	for range recoveryCodeCount {
		b := make([]byte, 7)
		_, _ = rand.Read(b)
		s := strings.ToLower(recoveryEncoding.EncodeToString(b))[:10]
		code := s[:5] + "-" + s[5:]
		codes = append(codes, code)
		hashes = append(hashes, a.recoveryHash(userID, code))
	}
	return codes, hashes
}

func (a *Auth) recoveryHash(userID, code string) []byte {
	norm := strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(code))
	m := hmac.New(sha256.New, a.recoveryKey)
	m.Write([]byte(userID))
	m.Write([]byte{0})
	m.Write([]byte(norm))
	return m.Sum(nil)
}

func hasHash(list [][]byte, h []byte) bool {
	return slices.ContainsFunc(list, func(x []byte) bool { return equalHash(x, h) })
}

// --- challenges ---

type challengeResponse struct {
	ChallengeName string `json:"challenge_name"`
	Session       string `json:"session"`
	ExpiresIn     int    `json:"expires_in"`
}

// signIn ends a successful first step: a challenge when the account needs
// another step, tokens otherwise. A password alone never yields tokens for an
// account with a second factor or a temporary password.
func (a *Auth) signIn(ctx context.Context, u *User, sliding bool, ci clientInfo) (any, error) {
	kind := ""
	switch {
	case u.PasswordTemporary:
		kind = ChallengeNewPassword
	case u.MFAEnabled:
		kind = ChallengeMFA
	}
	if kind != "" {
		token := randomToken()
		ch := Challenge{Hash: hashToken(token), UserID: u.ID, Kind: kind, Sliding: sliding, ExpiresAt: a.now().Add(challengeTTL)}
		if err := a.store.CreateChallenge(ctx, ch); err != nil {
			return nil, storeErr("create challenge", err)
		}
		return challengeResponse{ChallengeName: kind, Session: token, ExpiresIn: int(challengeTTL.Seconds())}, nil
	}
	resp, err := a.startSession(ctx, u, sliding, ci)
	if err != nil {
		return nil, err
	}
	a.emit(Event{Type: EventLoginSucceeded, UserID: u.ID, SessionID: resp.Session.SessionFamilyID, IP: ci.ip, UserAgent: ci.userAgent})
	return resp, nil
}

// openChallenge returns the live challenge of kind behind token.
func (a *Auth) openChallenge(ctx context.Context, token, kind string) (Challenge, error) {
	if len(token) > 512 {
		return Challenge{}, ErrInvalidGrant
	}
	ch, err := a.store.ChallengeByHash(ctx, hashToken(token), a.now())
	if errors.Is(err, ErrNotFound) {
		return Challenge{}, ErrInvalidGrant
	}
	if err != nil {
		return Challenge{}, storeErr("challenge by hash", err)
	}
	if ch.Kind != kind {
		return Challenge{}, ErrInvalidGrant
	}
	return ch, nil
}

// failChallenge counts a wrong answer (5 burn the challenge).
func (a *Auth) failChallenge(ctx context.Context, ch *Challenge) error {
	if err := a.store.FailChallenge(ctx, ch.Hash); err != nil && !errors.Is(err, ErrNotFound) {
		return storeErr("fail challenge", err)
	}
	return ErrInvalidGrant
}

// consumeChallenge uses the challenge up; only one caller gets nil.
func (a *Auth) consumeChallenge(ctx context.Context, ch *Challenge) error {
	err := a.store.ConsumeChallenge(ctx, ch.Hash, a.now())
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidGrant
	}
	return storeErr("consume challenge", err)
}

type mfaLoginRequest struct {
	Session string `json:"session" limit:"512"`
	Code    string `json:"code" limit:"64"`
}

// handleLoginMFA answers a SOFTWARE_TOKEN_MFA challenge with a TOTP code or a
// recovery code.
func (a *Auth) handleLoginMFA(c *fiber.Ctx) error {
	var req mfaLoginRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := required("session", req.Session); err != nil {
		return err
	}
	if err := required("code", req.Code); err != nil {
		return err
	}
	ctx := c.UserContext()
	ch, err := a.openChallenge(ctx, req.Session, ChallengeMFA)
	if err != nil {
		return err
	}
	u, err := a.store.UserByID(ctx, ch.UserID)
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidGrant
	}
	if err != nil {
		return storeErr("user by id", err)
	}
	if u.Disabled || !u.MFAEnabled || len(req.Code) > 64 {
		return a.failChallenge(ctx, &ch)
	}
	ci := a.client(c)
	var resp tokenResponse
	if err := a.checkedCode(ctx, u.ID, func() error {
		var err error
		resp, err = a.secondFactor(ctx, &u, &ch, req.Code, ci)
		return err
	}); err != nil {
		return err
	}
	a.emit(Event{Type: EventLoginSucceeded, UserID: u.ID, SessionID: resp.Session.SessionFamilyID, IP: ci.ip, UserAgent: ci.userAgent})
	return a.respond(c, resp)
}

// secondFactor checks code (TOTP or recovery) for the challenge, spends
// both and starts the session; ErrInvalidGrant when the code is wrong. A
// recovery code is spent in the same store call that starts the session
// (and changes the etag), so a failure leaves it unspent.
func (a *Auth) secondFactor(ctx context.Context, u *User, ch *Challenge, code string, ci clientInfo) (tokenResponse, error) {
	if len(code) == totpDigits {
		ok, err := a.useTOTP(ctx, u, code)
		if err != nil {
			return tokenResponse{}, err
		}
		if !ok {
			return tokenResponse{}, a.failChallenge(ctx, ch)
		}
		if err := a.consumeChallenge(ctx, ch); err != nil {
			return tokenResponse{}, err
		}
		return a.startSession(ctx, u, ch.Sliding, ci)
	}
	h := a.recoveryHash(u.ID, code)
	if !hasHash(u.RecoveryCodes, h) {
		return tokenResponse{}, a.failChallenge(ctx, ch)
	}
	if err := a.consumeChallenge(ctx, ch); err != nil {
		return tokenResponse{}, err
	}
	var (
		sess Session
		pair issuedPair
	)
	now := a.now()
	nu, err := a.modifyUser(ctx, u.ID, userChange{create: &sess}, func(u *User) error {
		i := slices.IndexFunc(u.RecoveryCodes, func(x []byte) bool { return equalHash(x, h) })
		if i < 0 {
			return ErrInvalidGrant // spent by a concurrent request
		}
		u.RecoveryCodes = slices.Delete(u.RecoveryCodes, i, i+1)
		var err error
		sess, pair, err = a.newSession(u, ch.Sliding, ci, now)
		return err
	})
	if err != nil {
		return tokenResponse{}, err
	}
	*u = nu
	a.emit(Event{Type: EventRecoveryCodeUsed, UserID: u.ID, IP: ci.ip, UserAgent: ci.userAgent})
	return a.tokenResponse(u, &sess, pair, "", now), nil
}

type newPasswordRequest struct {
	Session     string `json:"session" limit:"512"`
	Username    string `json:"username" limit:"254"`
	Email       string `json:"email" limit:"254"`
	NewPassword string `json:"new_password" limit:"1024"`
}

// handleLoginNewPassword answers a NEW_PASSWORD_REQUIRED challenge: the user
// replaces the temporary password the host gave them.
func (a *Auth) handleLoginNewPassword(c *fiber.Ctx) error {
	var req newPasswordRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := required("session", req.Session); err != nil {
		return err
	}
	name, err := nameField(req.Username, req.Email)
	if err != nil {
		return err
	}
	if err := a.checkPassword("new_password", req.NewPassword); err != nil {
		return err
	}
	ctx := c.UserContext()
	ch, err := a.openChallenge(ctx, req.Session, ChallengeNewPassword)
	if err != nil {
		return err
	}
	u, err := a.userByName(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil || u.ID != ch.UserID || u.Disabled {
		return a.failChallenge(ctx, &ch)
	}
	if err := a.consumeChallenge(ctx, &ch); err != nil {
		return err
	}
	hash, err := a.hasher.hash(ctx, req.NewPassword)
	if err != nil {
		return err
	}
	// Without 2FA the session starts in the same store call that sets the
	// password, so a failure leaves the temporary password in place.
	ci := a.client(c)
	ch2 := userChange{}
	var (
		sess Session
		pair issuedPair
	)
	if !u.MFAEnabled {
		ch2.create = &sess
	}
	now := a.now()
	u, err = a.modifyUser(ctx, u.ID, ch2, func(u *User) error {
		u.PasswordHash = hash
		u.PasswordTemporary = false
		u.PasswordExpiresAt = time.Time{}
		if ch2.create == nil {
			return nil
		}
		var err error
		sess, pair, err = a.newSession(u, ch.Sliding, ci, now)
		return err
	})
	if err != nil {
		return err
	}
	a.emit(Event{Type: EventPasswordChanged, UserID: u.ID, IP: ci.ip, UserAgent: ci.userAgent})
	if ch2.create == nil {
		resp, err := a.signIn(ctx, &u, ch.Sliding, ci) // the MFA challenge
		if err != nil {
			return err
		}
		return a.respond(c, resp)
	}
	a.emit(Event{Type: EventLoginSucceeded, UserID: u.ID, SessionID: sess.ID, IP: ci.ip, UserAgent: ci.userAgent})
	return a.respond(c, a.tokenResponse(&u, &sess, pair, "", now))
}

// --- enrolment ---

type mfaSetupResponse struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
}

// handleMFASetup makes a new TOTP secret for the caller, to be confirmed by
// /2fa/enable. It does not switch 2FA on.
func (a *Auth) handleMFASetup(c *fiber.Ctx) error {
	p, err := a.principal(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	u, err := a.UserByID(ctx, p.claims.Subject)
	if err != nil {
		return err
	}
	if u.MFAEnabled {
		return ErrMFAEnabled
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: a.cfg.TOTPIssuer, AccountName: u.Email, Period: totpPeriod, SecretSize: totpSecretSize,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Rand: rand.Reader,
	})
	if err != nil {
		return fmt.Errorf("%w: generating TOTP secret: %w", ErrUnavailable, err)
	}
	sealed, err := a.sealTOTP(u.ID, key.Secret())
	if err != nil {
		return err
	}
	if _, err := a.modifyUser(ctx, u.ID, userChange{sameETag: true}, func(u *User) error {
		if u.MFAEnabled {
			return ErrMFAEnabled
		}
		u.TOTPSecret = sealed
		return nil
	}); err != nil {
		return err
	}
	return c.JSON(mfaSetupResponse{Secret: key.Secret(), OTPAuthURL: key.URL()})
}

type codeRequest struct {
	Code string `json:"code" limit:"64"`
}

// handleMFAEnable switches 2FA on once the caller proves their app has the
// secret, and answers the recovery codes, shown this once.
func (a *Auth) handleMFAEnable(c *fiber.Ctx) error {
	var req codeRequest
	p, err := a.signedIn(c, &req)
	if err != nil {
		return err
	}
	if err := required("code", req.Code); err != nil {
		return err
	}
	ctx := c.UserContext()
	u, err := a.UserByID(ctx, p.claims.Subject)
	if err != nil {
		return err
	}
	if u.MFAEnabled {
		return ErrMFAEnabled
	}
	if len(u.TOTPSecret) == 0 {
		return fieldErr("code", "setup_required", "Call /2fa/setup first.")
	}
	if err := a.checkedCode(ctx, u.ID, func() error {
		ok, err := a.useTOTP(ctx, &u, req.Code)
		if err == nil && !ok {
			err = ErrInvalidGrant
		}
		return err
	}); err != nil {
		return err
	}
	codes, hashes := a.newRecoveryCodes(u.ID)
	secret := u.TOTPSecret
	if _, err := a.modifyUser(ctx, u.ID, userChange{}, func(u *User) error {
		if u.MFAEnabled || !equalHash(u.TOTPSecret, secret) {
			return ErrInvalidGrant // another setup or enable got there first
		}
		u.MFAEnabled = true
		u.RecoveryCodes = hashes
		return nil
	}); err != nil {
		return err
	}
	ci := a.client(c)
	a.emit(Event{Type: EventMFAEnabled, UserID: u.ID, SessionID: p.claims.SessionID, IP: ci.ip, UserAgent: ci.userAgent})
	return c.JSON(fiber.Map{"recovery_codes": codes})
}

type passwordRequest struct {
	Password string `json:"password" limit:"1024"`
}

// handleMFADisable switches 2FA off; it needs the password.
func (a *Auth) handleMFADisable(c *fiber.Ctx) error {
	var req passwordRequest
	p, err := a.signedIn(c, &req)
	if err != nil {
		return err
	}
	if err := required("password", req.Password); err != nil {
		return err
	}
	ctx := c.UserContext()
	if _, err := a.verifyPassword(ctx, p.claims.Subject, req.Password); err != nil {
		return err
	}
	if _, err := a.modifyUser(ctx, p.claims.Subject, userChange{}, func(u *User) error {
		u.MFAEnabled = false
		u.TOTPSecret = nil
		u.RecoveryCodes = nil
		return nil
	}); err != nil {
		return err
	}
	ci := a.client(c)
	a.emit(Event{Type: EventMFADisabled, UserID: p.claims.Subject, SessionID: p.claims.SessionID, IP: ci.ip, UserAgent: ci.userAgent})
	return c.JSON(ok)
}

// verifyPassword checks a signed-in user's password (for changes that need
// it): ErrInvalidCredentials when wrong.
func (a *Auth) verifyPassword(ctx context.Context, userID, password string) (User, error) {
	u, err := a.UserByID(ctx, userID)
	if err != nil {
		return User{}, err
	}
	if len(password) > maxPasswordBytes {
		return User{}, ErrInvalidCredentials
	}
	match, _, err := a.hasher.verify(ctx, password, u.PasswordHash)
	if err != nil {
		return User{}, err
	}
	if !match {
		return User{}, ErrInvalidCredentials
	}
	return u, nil
}
