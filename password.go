package fiberauth

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/fiberauth/fiberauth/internal/commonpw"
)

// Passwords: the rules a new password must meet, changing it while signed
// in, and resetting it with a code sent by email.

// maxPasswordBytes bounds what argon2 is asked to hash.
const maxPasswordBytes = 1024

// checkPassword applies the password rules (docs/api.md, "Passwords and
// codes") to a new password sent in field.
func (a *Auth) checkPassword(field, password string) error {
	switch {
	case password == "":
		return fieldErr(field, "missing", "A password is required.")
	case len(password) > maxPasswordBytes:
		return passwordTooLong(field)
	case !utf8.ValidString(password):
		return fieldErr(field, "invalid_utf8", "The password must be valid UTF-8.")
	case utf8.RuneCountInString(password) < a.cfg.PasswordMinLength:
		return fieldErr(field, "too_short", fmt.Sprintf("The password must be at least %d characters.", a.cfg.PasswordMinLength))
	case commonpw.Contains(password):
		return fieldErr(field, "too_common", "This password is too common; choose another.")
	}
	return nil
}

// checkPresentedPassword checks a password sent to be verified (login, step
// up): present, and not longer than the hasher takes.
func checkPresentedPassword(field, password string) error {
	if err := required(field, password); err != nil {
		return err
	}
	if len(password) > maxPasswordBytes {
		return passwordTooLong(field)
	}
	return nil
}

func passwordTooLong(field string) error {
	return fieldErr(field, "too_long", fmt.Sprintf("The password must be at most %d bytes.", maxPasswordBytes))
}

// verifyPassword checks a signed-in user's password before a change that
// needs it, under the account's limit on failed password checks (the login
// limit), so that a stolen access token cannot guess it:
// ErrInvalidCredentials when wrong, ErrRateLimited over the limit.
func (a *Auth) verifyPassword(ctx context.Context, userID, password string) (User, error) {
	u, err := a.callerUser(ctx, userID)
	if err != nil {
		return User{}, err
	}
	r, err := a.reserve(ctx, limit{loginUserKey(u.ID), a.cfg.MaxLoginFailuresPerAccount, a.cfg.ThrottleWindow})
	if err != nil {
		return User{}, err
	}
	match, _, err := a.hasher.verify(ctx, password, u.PasswordHash)
	if err != nil {
		_ = r.release(ctx)
		return User{}, err
	}
	if !match {
		return User{}, ErrInvalidCredentials // the attempt counts
	}
	return u, r.release(ctx)
}

// rehash upgrades a stored hash made with weaker parameters. The password is
// unchanged, so the etag stays and no token dies. A failure is only logged:
// the next login tries again.
func (a *Auth) rehash(ctx context.Context, userID, password string) {
	hash, err := a.hasher.hash(ctx, password)
	if err == nil {
		_, err = a.modifyUser(ctx, userID, userChange{sameETag: true}, func(u *User) error {
			u.PasswordHash = hash
			return nil
		})
	}
	if err != nil {
		a.log.Warn("fiberauth: rehash at login failed", "user_id", userID, "err", err)
	}
}

// PasswordChangeInput is a signed-in user's password change.
type PasswordChangeInput struct {
	PreviousPassword string
	ProposedPassword string
	// KeepRefresh keeps the caller's refresh token (the non-rotating policy
	// of RefreshInput.Keep): the answer has a new access token, with the
	// new etag, and no refresh token.
	KeepRefresh bool
}

// ChangePassword sets the caller's user's new password once the previous
// one checks out (ErrInvalidCredentials otherwise). In one store call it
// revokes every other family of the user, changes the etag (so every access
// token issued before dies) and rotates the caller's family, whose new pair
// it answers. The caller's previous refresh token gets no replay: within
// Config.ReuseGrace it is ErrInvalidGrant (a refresh that was in flight
// ends nothing), later it is reuse.
func (a *Auth) ChangePassword(ctx context.Context, caller Claims, in PasswordChangeInput) (_ Tokens, err error) {
	ctx, end := a.trace(ctx, "ChangePassword")
	defer func() { end(err) }()
	if err := checkPresentedPassword("previous_password", in.PreviousPassword); err != nil {
		return Tokens{}, err
	}
	if err := a.checkPassword("proposed_password", in.ProposedPassword); err != nil {
		return Tokens{}, err
	}
	s, err := a.callerSession(ctx, caller)
	if err != nil {
		return Tokens{}, err
	}
	u, err := a.verifyPassword(ctx, caller.Subject, in.PreviousPassword)
	if err != nil {
		return Tokens{}, err
	}
	hash, err := a.hasher.hash(ctx, in.ProposedPassword)
	if err != nil {
		return Tokens{}, err
	}
	now := a.now()
	if in.KeepRefresh {
		u, err = a.modifyUser(ctx, u.ID, userChange{revoke: true, keep: s.ID}, func(u *User) error {
			u.PasswordHash = hash
			return nil
		})
		if err != nil {
			return Tokens{}, err
		}
		a.emit(ctx, Event{Type: EventPasswordChanged, UserID: u.ID, SessionID: s.ID})
		return a.accessFor(&u, &s, now)
	}
	var (
		rot  Rotation
		pair issuedPair
		res  UpdateResult
	)
	u, err = a.modifyUser(ctx, u.ID, userChange{revoke: true, keep: s.ID, rotate: &rot, result: &res}, func(u *User) error {
		u.PasswordHash = hash
		// The family as it is now: a refresh since the last read moved it
		// on, and the rotation must follow from its current token and
		// generation, not go back to older ones.
		cur, err := a.readSession(ctx, s.ID)
		if err != nil {
			return storeErr("session by id", err)
		}
		rot, pair, err = a.newRotation(u, &cur, "", now)
		return err
	})
	if errors.Is(err, ErrNotCurrent) || errors.Is(err, ErrNotFound) {
		return Tokens{}, fmt.Errorf("%w: %w", ErrInvalidToken, errTokenRevoked) // the session ended meanwhile
	}
	if err != nil {
		return Tokens{}, err
	}
	a.emit(ctx, Event{Type: EventPasswordChanged, UserID: u.ID, SessionID: s.ID})
	return pair.tokens(&u, &res.Session), nil
}

// StartPasswordReset sends a reset code to the account named (an email or
// username) through Config.SendCode, at most Config.MaxCodeSends an hour.
// It answers nil whether or not the account exists, before it looks (off
// the request path, so that the answer's time tells nothing either), and
// sends nothing for an unknown or disabled account. Over
// Config.MaxResetRequestsPerIP calls an hour from the client's network it
// fails with ErrRateLimited.
func (a *Auth) StartPasswordReset(ctx context.Context, name string) (err error) {
	ctx, end := a.trace(ctx, "StartPasswordReset")
	defer func() { end(err) }()
	name, err = normalizeName(name)
	if err != nil {
		return err
	}
	if ip := ClientFrom(ctx).IP; ip != "" {
		if _, err := a.reserve(ctx, limit{resetNetKey(ip), a.cfg.MaxResetRequestsPerIP, time.Hour}); err != nil {
			return err
		}
	}
	a.later(ctx, "password reset", func(ctx context.Context) error {
		u, err := a.userByName(ctx, name)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil
		case err != nil:
			return err
		case u.Disabled:
			return nil
		}
		send, err := a.mayResend(ctx, sendKey(u.ID))
		if err != nil {
			return err
		}
		if !send {
			a.log.Info("fiberauth: reset code not sent: too many this hour", "user_id", u.ID)
			return nil
		}
		if err := a.sendCode(ctx, &u, PurposePasswordReset); err != nil {
			return err
		}
		a.emit(ctx, Event{Type: EventPasswordResetRequested, UserID: u.ID})
		return nil
	})
	return nil
}

// PasswordResetInput sets a new password with a reset code.
type PasswordResetInput struct {
	Name        string // the account's email or username
	Code        string // the code StartPasswordReset sent
	NewPassword string
}

// ResetPassword sets a new password with a reset code, under the limit on
// wrong codes. It also marks the email verified (the code proved the
// mailbox), revokes every family and changes the etag. A wrong, spent or
// expired code, or an unknown account, fails with ErrInvalidGrant.
func (a *Auth) ResetPassword(ctx context.Context, in PasswordResetInput) (err error) {
	ctx, end := a.trace(ctx, "ResetPassword")
	defer func() { end(err) }()
	name, err := normalizeName(in.Name)
	if err != nil {
		return err
	}
	if err := required("confirmation_code", in.Code); err != nil {
		return err
	}
	// Checked before the code, so a weak password does not cost a try.
	if err := a.checkPassword("password", in.NewPassword); err != nil {
		return err
	}
	u, code, err := a.codeFor(ctx, PurposePasswordReset, in.Code, func() (User, error) { return a.userByName(ctx, name) })
	if err != nil {
		return err
	}
	hash, err := a.hasher.hash(ctx, in.NewPassword)
	if err != nil {
		return err
	}
	if _, err := a.modifyUser(ctx, u.ID, userChange{revoke: true, useCode: code}, func(u *User) error {
		u.PasswordHash = hash
		u.PasswordTemporary = false
		u.PasswordExpiresAt = time.Time{}
		u.EmailVerified = true
		return nil
	}); err != nil {
		return err
	}
	a.emit(ctx, Event{Type: EventPasswordReset, UserID: u.ID})
	return nil
}
