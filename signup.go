package fiberauth

import (
	"context"
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

// Signup creates an account with an unconfirmed email and sends it a
// confirmation code through Config.SendCode. It fails with
// ErrSignupDisabled unless Config.AllowSignup is set, a *FieldError for an
// invalid field, and ErrConflict when the email or username is taken.
func (a *Auth) Signup(ctx context.Context, in SignupInput) (User, error) {
	if !a.cfg.AllowSignup {
		return User{}, ErrSignupDisabled
	}
	u, err := a.newUser(ctx, NewUser{Email: in.Email, Username: in.Username, Password: in.Password, DisplayName: in.DisplayName})
	if err != nil {
		return User{}, err
	}
	// The code first: if storing the user then fails, a stray code expires
	// unseen, and the address is not left taken without a code.
	m, err := a.putCode(ctx, &u, PurposeEmailConfirm)
	if err != nil {
		return User{}, err
	}
	if err := a.storeNewUser(ctx, &u); err != nil {
		return User{}, err
	}
	a.deliver(ctx, m)
	a.emit(ctx, Event{Type: EventSignup, UserID: u.ID})
	return u, nil
}

// ConfirmEmailInput confirms an email address with the code Signup sent.
type ConfirmEmailInput struct {
	Email string
	Code  string
}

// ConfirmEmail marks the email verified with the code Signup sent, under
// the limit on wrong codes; the etag changes. A wrong, spent or expired
// code, or an unknown email, fails with ErrInvalidGrant.
func (a *Auth) ConfirmEmail(ctx context.Context, in ConfirmEmailInput) error {
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
