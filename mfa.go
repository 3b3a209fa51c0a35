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

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// The second factor: TOTP (enrolment, each code used once) and recovery
// codes.

// TOTP as authenticator apps expect it: SHA-1, 6 digits, 30-second steps,
// one step of skew either way.
const (
	totpPeriod     = 30
	totpDigits     = 6
	totpSecretSize = 20 // bytes: 160 bits
	totpSkew       = 1
)

// recoveryCodeCount is how many recovery codes EnableTOTP hands out.
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
func (a *Auth) sealTOTP(userID, secret string) []byte {
	nonce := make([]byte, a.totp.NonceSize())
	_, _ = rand.Read(nonce)
	return a.totp.Seal(nonce, nonce, []byte(secret), []byte(userID))
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
// code works once (errTOTPReplay for a right code of a used step).
func (a *Auth) useTOTP(ctx context.Context, u *User, code string) (bool, error) {
	secret, err := a.openTOTP(u.ID, u.TOTPSecret)
	if err != nil {
		return false, err
	}
	step, ok := totpStep(secret, code, a.now())
	if !ok {
		return false, nil
	}
	err = a.totpSteps.UseTOTPStep(ctx, u.ID, step)
	if errors.Is(err, ErrStepUsed) {
		return false, errTOTPReplay
	}
	return err == nil, storeErr("use totp step", err)
}

// errTOTPReplay is a right code of a time step already used: a replay, or
// the loser of two submissions of one code at once. Unlike a wrong code it
// is no guess, so it does not count against a challenge (which the winner
// is about to spend); it counts under the limit on wrong codes all the
// same.
var errTOTPReplay = fmt.Errorf("%w: TOTP step already used", ErrInvalidGrant)

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

// StepUp is what a signed-in user shows again before changing their second
// factor, so that a stolen access token alone cannot: the current password
// (checked under the account's limit on failed password checks) and, where
// the change asks for it and 2FA is on, a current TOTP or recovery code
// (under the limit on wrong second-factor codes).
type StepUp struct {
	Password string
	Code     string
}

// stepUp checks up for the caller's user (the code too when withCode) and
// returns the user.
func (a *Auth) stepUp(ctx context.Context, caller Claims, up StepUp, withCode bool) (User, error) {
	if err := checkCaller(caller); err != nil {
		return User{}, err
	}
	if err := checkPresentedPassword("password", up.Password); err != nil {
		return User{}, err
	}
	u, err := a.verifyPassword(ctx, caller.Subject, up.Password)
	if err != nil || !withCode || !u.MFAEnabled {
		return u, err
	}
	// Asked for only now: without 2FA on there is no code to give.
	if err := required("code", up.Code); err != nil {
		return User{}, err
	}
	return u, a.checkedCode(ctx, u.ID, purposeMFA, func() error {
		if len(up.Code) == totpDigits {
			ok, err := a.useTOTP(ctx, &u, up.Code)
			if err == nil && !ok {
				err = ErrInvalidGrant
			}
			return err
		}
		if len(up.Code) > maxCodeLength || !hasHash(u.RecoveryCodes, a.recoveryHash(u.ID, up.Code)) {
			return ErrInvalidGrant
		}
		return nil
	})
}

// TOTPSetup is a new TOTP secret, for the user's authenticator app.
type TOTPSetup struct {
	Secret string // base32, as apps take it typed in
	URL    string // otpauth:// URL, as apps take it from a QR code
}

// SetupTOTP makes a new TOTP secret for the caller's user once the current
// password checks out (up.Password), to be confirmed by EnableTOTP. It does
// not switch 2FA on; while 2FA is on it fails with ErrMFAEnabled.
func (a *Auth) SetupTOTP(ctx context.Context, caller Claims, up StepUp) (_ TOTPSetup, err error) {
	ctx, end := a.trace(ctx, "SetupTOTP")
	defer func() { end(err) }()
	u, err := a.stepUp(ctx, caller, up, false)
	if err != nil {
		return TOTPSetup{}, err
	}
	if u.MFAEnabled {
		return TOTPSetup{}, ErrMFAEnabled
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: a.cfg.TOTPIssuer, AccountName: u.Email, Period: totpPeriod, SecretSize: totpSecretSize,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Rand: rand.Reader,
	})
	if err != nil {
		return TOTPSetup{}, fmt.Errorf("%w: generating TOTP secret: %w", ErrUnavailable, err)
	}
	sealed := a.sealTOTP(u.ID, key.Secret())
	if _, err := a.modifyUser(ctx, u.ID, userChange{sameETag: true}, func(u *User) error {
		if u.MFAEnabled {
			return ErrMFAEnabled
		}
		u.TOTPSecret = sealed
		return nil
	}); err != nil {
		return TOTPSetup{}, err
	}
	return TOTPSetup{Secret: key.Secret(), URL: key.URL()}, nil
}

// EnableTOTP switches 2FA on once the current password checks out
// (up.Password) and code shows the user's app has the secret SetupTOTP
// made (under the limit on wrong codes). It answers the recovery codes,
// which exist nowhere else: show them once. The etag changes and every
// other session of the user ends, so that whoever held one must pass the
// second factor from now on.
func (a *Auth) EnableTOTP(ctx context.Context, caller Claims, code string, up StepUp) (_ []string, err error) {
	ctx, end := a.trace(ctx, "EnableTOTP")
	defer func() { end(err) }()
	if err := required("code", code); err != nil {
		return nil, err
	}
	u, err := a.stepUp(ctx, caller, up, false)
	if err != nil {
		return nil, err
	}
	if u.MFAEnabled {
		return nil, ErrMFAEnabled
	}
	if len(u.TOTPSecret) == 0 {
		return nil, fieldErr("code", "setup_required", "Call /2fa/setup first.")
	}
	if err := a.checkedCode(ctx, u.ID, purposeMFA, func() error {
		ok, err := a.useTOTP(ctx, &u, code)
		if err == nil && !ok {
			err = ErrInvalidGrant
		}
		return err
	}); err != nil {
		return nil, err
	}
	codes, hashes := a.newRecoveryCodes(u.ID)
	secret := u.TOTPSecret
	if _, err := a.modifyUser(ctx, u.ID, userChange{revoke: true, keep: caller.SessionID}, func(u *User) error {
		if u.MFAEnabled || !equalHash(u.TOTPSecret, secret) {
			return ErrInvalidGrant // another setup or enable got there first
		}
		u.MFAEnabled = true
		u.RecoveryCodes = hashes
		return nil
	}); err != nil {
		return nil, err
	}
	a.emit(ctx, Event{Type: EventMFAEnabled, UserID: u.ID, SessionID: caller.SessionID})
	return codes, nil
}

// DisableTOTP switches 2FA off once the current password and a current
// TOTP or recovery code check out (ErrInvalidCredentials for a wrong
// password, ErrInvalidGrant for a wrong code); the etag changes. Without
// 2FA on, the password alone forgets a secret SetupTOTP made.
func (a *Auth) DisableTOTP(ctx context.Context, caller Claims, up StepUp) (err error) {
	ctx, end := a.trace(ctx, "DisableTOTP")
	defer func() { end(err) }()
	if _, err := a.stepUp(ctx, caller, up, true); err != nil {
		return err
	}
	if _, err := a.modifyUser(ctx, caller.Subject, userChange{}, func(u *User) error {
		u.MFAEnabled = false
		u.TOTPSecret = nil
		u.RecoveryCodes = nil
		return nil
	}); err != nil {
		return err
	}
	a.emit(ctx, Event{Type: EventMFADisabled, UserID: caller.Subject, SessionID: caller.SessionID})
	return nil
}

// RegenerateRecoveryCodes replaces the user's recovery codes with new ones,
// once the current password and a current TOTP or recovery code check out,
// and answers them (show them once); the old ones stop working and the
// etag changes. Without 2FA on it fails with ErrInvalidRequest.
func (a *Auth) RegenerateRecoveryCodes(ctx context.Context, caller Claims, up StepUp) (_ []string, err error) {
	ctx, end := a.trace(ctx, "RegenerateRecoveryCodes")
	defer func() { end(err) }()
	u, err := a.stepUp(ctx, caller, up, true)
	if err != nil {
		return nil, err
	}
	if !u.MFAEnabled {
		return nil, fieldErr("code", "mfa_disabled", "Two-factor authentication is not on.")
	}
	codes, hashes := a.newRecoveryCodes(u.ID)
	if _, err := a.modifyUser(ctx, u.ID, userChange{}, func(u *User) error {
		if !u.MFAEnabled {
			return fieldErr("code", "mfa_disabled", "Two-factor authentication is not on.")
		}
		u.RecoveryCodes = hashes
		return nil
	}); err != nil {
		return nil, err
	}
	a.emit(ctx, Event{Type: EventRecoveryCodesRegenerated, UserID: u.ID, SessionID: caller.SessionID})
	return codes, nil
}
