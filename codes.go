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

// CodeMessage is a one-time code (or a notice) on its way to a user.
type CodeMessage struct {
	To      string // the user's email
	UserID  string
	Purpose string // PurposeEmailConfirm, PurposePasswordReset, or the notice PurposeAccountExists
	Code    string // empty for a notice
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

// codeFor checks code for purpose, sent to an endpoint anyone may call,
// under the limits on wrong codes: the client network's, reserved before
// the account is looked up (lookup: ErrNotFound when there is none), and
// the account's for that purpose. It returns the account and the code, to
// be spent with the change it allows (userChange.useCode) so that a failed
// change leaves it usable. An unknown account, no pending code and a wrong
// code all answer ErrInvalidGrant; only the last counts against the
// account, and none creates state for a name no account has.
func (a *Auth) codeFor(ctx context.Context, purpose, code string, lookup func() (User, error)) (User, *Code, error) {
	var (
		r   *reservation
		err error
	)
	if ip := ClientFrom(ctx).IP; ip != "" {
		if r, err = a.reserve(ctx, limit{codeNetKey(ip), a.cfg.MaxCodeFailuresPerIP, a.cfg.ThrottleWindow}); err != nil {
			return User{}, nil, err
		}
	}
	u, err := lookup()
	if errors.Is(err, ErrNotFound) {
		return User{}, nil, ErrInvalidGrant // the network's attempt counts
	}
	if err != nil {
		_ = r.release(ctx)
		return User{}, nil, err
	}
	var c *Code
	err = a.checkedCode(ctx, u.ID, purpose, func() error {
		if len(code) > maxCodeLength {
			return ErrInvalidGrant
		}
		h := a.codeHash(u.ID, purpose, code)
		switch err := a.codes.CheckCode(ctx, u.ID, purpose, h, a.now()); {
		case errors.Is(err, ErrNotFound):
			return errNoCode
		case errors.Is(err, ErrCodeMismatch):
			return ErrInvalidGrant
		case err != nil:
			return storeErr("check code", err)
		}
		c = &Code{UserID: u.ID, Purpose: purpose, Hash: h}
		return nil
	})
	switch {
	case err == nil:
		err = r.release(ctx)
	case !errors.Is(err, ErrInvalidGrant):
		_ = r.release(ctx) // only a wrong code counts against the network
	}
	return u, c, err
}

func subtleEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
