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

// codeDigits is the length of one-time codes.
const codeDigits = 6

// codeTTL is how long a code of each purpose lives (CONTRACT §3).
var codeTTL = map[string]time.Duration{
	PurposeEmailConfirm:  24 * time.Hour,
	PurposePasswordReset: 10 * time.Minute,
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
// hands it to Config.SendCode. A failing sender is logged, not returned: the
// answer must not depend on the mailer.
func (a *Auth) sendCode(ctx context.Context, u *User, purpose string) error {
	code, err := newCode()
	if err != nil {
		return err
	}
	exp := a.now().Add(codeTTL[purpose])
	if err := a.store.PutCode(ctx, Code{UserID: u.ID, Purpose: purpose, Hash: a.codeHash(u.ID, purpose, code), ExpiresAt: exp}); err != nil {
		return storeErr("put code", err)
	}
	if a.cfg.SendCode == nil {
		a.log.Warn("fiberauth: no Config.SendCode; code not delivered", "user_id", u.ID, "purpose", purpose)
		return nil
	}
	if err := a.cfg.SendCode(ctx, CodeMessage{To: u.Email, UserID: u.ID, Purpose: purpose, Code: code, ExpiresAt: exp}); err != nil {
		a.log.Error("fiberauth: SendCode failed", "user_id", u.ID, "purpose", purpose, "err", err)
	}
	return nil
}

// consumeCode checks code once: a right code is used up, a wrong one counts
// towards burning it. Both a wrong and a missing code are invalid_grant.
func (a *Auth) consumeCode(ctx context.Context, userID, purpose, code string) error {
	if len(code) > 64 {
		return ErrInvalidGrant
	}
	err := a.store.ConsumeCode(ctx, userID, purpose, a.codeHash(userID, purpose, code), a.now())
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrCodeMismatch) {
		return ErrInvalidGrant
	}
	return storeErr("consume code", err)
}

func subtleEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
