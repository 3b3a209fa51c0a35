package fiberauth

import (
	"context"
	"errors"
	"time"
)

// Self-service accounts: signup, and the email confirmation it asks for.

// SignupInput is a new account a visitor asks for.
type SignupInput struct {
	Email       string
	Username    string // optional
	Password    string
	DisplayName string // optional; at most 256 bytes
}

// maxDisplayNameLength bounds a display name (bytes).
const maxDisplayNameLength = 256

// Signup asks for a new account, and answers the same for a new email and
// a taken one, so that it tells nobody which addresses have accounts. Once
// it has answered (off the request path, so that neither the answer nor its
// time differs), a new email gets an account with an unconfirmed address
// and a confirmation code through Config.SendCode, and a taken one a notice
// to its owner (PurposeAccountExists, no code). It fails with
// ErrSignupDisabled unless Config.AllowSignup is set, a *FieldError for an
// invalid field, ErrUsernameTaken for a taken username (usernames are
// public), and ErrRateLimited over Config.MaxSignupsPerIP an hour for the
// client's network. Past Config.MaxCodeSends an hour for one address it
// sends nothing, and answers the same.
func (a *Auth) Signup(ctx context.Context, in SignupInput) (err error) {
	ctx, end := a.trace(ctx, "Signup")
	defer func() { end(err) }()
	if !a.cfg.AllowSignup {
		return ErrSignupDisabled
	}
	nu, err := a.checkNewUser(NewUser{Email: in.Email, Username: in.Username, Password: in.Password, DisplayName: in.DisplayName})
	if err != nil {
		return err
	}
	if ip := ClientFrom(ctx).IP; ip != "" {
		if _, err := a.reserve(ctx, limit{signupNetKey(ip), a.cfg.MaxSignupsPerIP, time.Hour}); err != nil {
			return err
		}
	}
	if nu.Username != "" {
		_, err := a.store.UserByUsername(ctx, nu.Username)
		if err == nil {
			return ErrUsernameTaken
		}
		if !errors.Is(err, ErrNotFound) {
			return storeErr("user by username", err)
		}
	}
	a.later(ctx, "signup", func(ctx context.Context) error { return a.signup(ctx, nu) })
	return nil
}

// signup is the part of Signup whose work depends on whether the email is
// taken.
func (a *Auth) signup(ctx context.Context, nu NewUser) error {
	if send, err := a.mayResend(ctx, sendEmailKey(nu.Email)); err != nil || !send {
		return err
	}
	owner, err := a.store.UserByEmail(ctx, nu.Email)
	if err == nil {
		return a.noticeTaken(ctx, &owner)
	}
	if !errors.Is(err, ErrNotFound) {
		return storeErr("user by email", err)
	}
	u, err := a.newUser(ctx, nu)
	if err != nil {
		return err
	}
	// The code first: if storing the user then fails, a stray code expires
	// unseen, and the address is not left taken without a code.
	m, err := a.putCode(ctx, &u, PurposeEmailConfirm)
	if err != nil {
		return err
	}
	if err := a.storeNewUser(ctx, &u); errors.Is(err, ErrConflict) {
		// Taken meanwhile, by its email or its username.
		if owner, err := a.store.UserByEmail(ctx, nu.Email); err == nil {
			return a.noticeTaken(ctx, &owner)
		}
		return nil
	} else if err != nil {
		return err
	}
	a.deliver(ctx, m)
	a.emit(ctx, Event{Type: EventSignup, UserID: u.ID})
	return nil
}

// noticeTaken tells the owner of an address that someone tried to sign up
// with it.
func (a *Auth) noticeTaken(ctx context.Context, owner *User) error {
	a.deliver(ctx, CodeMessage{To: owner.Email, UserID: owner.ID, Purpose: PurposeAccountExists})
	a.emit(ctx, Event{Type: EventSignup, UserID: owner.ID, Reason: "email_taken"})
	return nil
}

// ConfirmEmailInput confirms an email address with the code Signup sent.
type ConfirmEmailInput struct {
	Email string
	Code  string
}

// ConfirmEmail marks the email verified with the code Signup sent, under
// the limit on wrong codes; the etag changes. A wrong, spent or expired
// code, or an unknown email, fails with ErrInvalidGrant.
func (a *Auth) ConfirmEmail(ctx context.Context, in ConfirmEmailInput) (err error) {
	ctx, end := a.trace(ctx, "ConfirmEmail")
	defer func() { end(err) }()
	email, err := normalizeEmail("email", in.Email)
	if err != nil {
		return err
	}
	if err := required("code", in.Code); err != nil {
		return err
	}
	u, code, err := a.codeFor(ctx, PurposeEmailConfirm, in.Code, func() (User, error) {
		u, err := a.store.UserByEmail(ctx, email)
		return u, storeErr("user by email", err)
	})
	if err != nil {
		return err
	}
	if _, err := a.modifyUser(ctx, u.ID, userChange{useCode: code}, func(u *User) error {
		u.EmailVerified = true
		return nil
	}); err != nil {
		return err
	}
	a.emit(ctx, Event{Type: EventEmailConfirmed, UserID: u.ID})
	return nil
}
