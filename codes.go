package fiberauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// One-time codes (email confirmation, password reset): made, sent, checked
// under the limit on wrong codes, and spent with the change they allow.

// codeDigits is the length of one-time codes.
const codeDigits = 6

// maxCodeLength bounds the codes (one-time, TOTP, recovery) a request may
// send.
const maxCodeLength = 64

// codeTTL is how long a code of each purpose lives.
var codeTTL = map[string]time.Duration{
	PurposeEmailConfirm:  24 * time.Hour,
	PurposePasswordReset: 10 * time.Minute,
}

// CodeMessage is a one-time code on its way to a user.
type CodeMessage struct {
	To      string // the user's email
	UserID  string
	Purpose string // PurposeEmailConfirm or PurposePasswordReset
	Code    string
	// ExpiresAt is when the code stops working.
	ExpiresAt time.Time
}

// newCode returns codeDigits decimal digits from crypto/rand.
func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("%w: generating code: %w", ErrUnavailable, err)
	}
	return fmt.Sprintf("%0*d", codeDigits, n.Int64()), nil
}

// codeHash binds a code to one account and one purpose under a key derived
// from the secret, so a copy of the store cannot test guesses offline.
func (a *Auth) codeHash(userID, purpose, code string) []byte {
	m := hmac.New(sha256.New, a.codeKey)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(userID))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// sendCode makes a new code for u and purpose (replacing an older one) and
// hands it to Config.SendCode.
func (a *Auth) sendCode(ctx context.Context, u *User, purpose string) error {
	m, err := a.putCode(ctx, u, purpose)
	if err != nil {
		return err
	}
	a.deliver(ctx, m)
	return nil
}

// putCode stores a new code for u and purpose and returns the message that
// delivers it.
func (a *Auth) putCode(ctx context.Context, u *User, purpose string) (CodeMessage, error) {
	code, err := newCode()
	if err != nil {
		return CodeMessage{}, err
	}
	exp := a.now().Add(codeTTL[purpose])
	if err := a.codes.PutCode(ctx, Code{UserID: u.ID, Purpose: purpose, Hash: a.codeHash(u.ID, purpose, code), ExpiresAt: exp}); err != nil {
		return CodeMessage{}, storeErr("put code", err)
	}
	a.maybeSweep()
	return CodeMessage{To: u.Email, UserID: u.ID, Purpose: purpose, Code: code, ExpiresAt: exp}, nil
}

// deliver hands m to Config.SendCode. A failing sender is logged (without
// the code), never shown to the client: the answer must not depend on the
// mailer.
func (a *Auth) deliver(ctx context.Context, m CodeMessage) {
	if a.cfg.SendCode == nil {
		a.log.Warn("fiberauth: no Config.SendCode; code not delivered", "user_id", m.UserID, "purpose", m.Purpose)
		return
	}
	if err := a.cfg.SendCode(ctx, m); err != nil {
		a.log.Error("fiberauth: SendCode failed", "user_id", m.UserID, "purpose", m.Purpose, "err", err)
	}
}

// codeFor checks code for the account named name (u, when found) under the
// limit on failed code checks, and returns it to be spent with the change it
// allows (userChange.useCode), so that a failed change leaves it usable. An
// unknown account is counted and answered like a wrong code: ErrInvalidGrant.
func (a *Auth) codeFor(ctx context.Context, u *User, found bool, name, purpose, code string) (*Code, error) {
	account := "name:" + name
	if found {
		account = u.ID
	}
	var c *Code
	err := a.checkedCode(ctx, account, func() error {
		if !found || len(code) > maxCodeLength {
			return ErrInvalidGrant
		}
		h := a.codeHash(u.ID, purpose, code)
		err := a.codes.CheckCode(ctx, u.ID, purpose, h, a.now())
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrCodeMismatch) {
			return ErrInvalidGrant
		}
		if err != nil {
			return storeErr("check code", err)
		}
		c = &Code{UserID: u.ID, Purpose: purpose, Hash: h}
		return nil
	})
	return c, err
}

func subtleEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
