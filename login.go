package fiberauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Signing in: the password step, and the challenges an account may need
// after it (a second factor, a new password).

// challengeTTL is how long a login challenge lives.
const challengeTTL = 5 * time.Minute

// SignIn is what a sign-in step answers: Tokens when the user is signed in,
// or Challenge when another step is needed first. Exactly one is set.
type SignIn struct {
	Tokens    *Tokens
	Challenge *PendingChallenge
}

// PendingChallenge is a step the user must take to finish signing in:
// CompleteChallenge answers it.
type PendingChallenge struct {
	Name      string // ChallengeMFA or ChallengeNewPassword
	Session   string // opaque and single use; CompleteChallenge presents it
	ExpiresAt time.Time
	// Available are the ways to answer it: Name, and ChallengeWebAuthn
	// for a ChallengeMFA of a user with a passkey (BeginPasskeyChallenge).
	Available []string
}

// LoginInput is a password login.
type LoginInput struct {
	// Name is the account's email (a name with an '@') or username, in any
	// case.
	Name     string
	Password string
	// Sliding makes the session's refresh expiry move forward on each
	// refresh (Config.RefreshIdleTTL), up to Config.RefreshMaxTTL.
	Sliding bool
}

// Login checks a name and password, under the limits on failed logins, and
// signs the user in: Tokens, or a Challenge when the account has a second
// factor or a temporary password. It fails with ErrInvalidCredentials for a
// wrong name or password (about the same time whether or not the account
// exists), ErrRateLimited (a *RateLimitError) over a limit, and
// ErrEmailNotVerified where Config.RequireVerifiedEmail wants it.
func (a *Auth) Login(ctx context.Context, in LoginInput) (_ SignIn, err error) {
	ctx, end := a.trace(ctx, "Login")
	defer func() { end(err) }()
	name, err := normalizeName(in.Name)
	if err != nil {
		return SignIn{}, err
	}
	if err := checkPresentedPassword("password", in.Password); err != nil {
		return SignIn{}, err
	}
	u, err := a.throttledCredentials(ctx, name, in.Password)
	if err != nil {
		return SignIn{}, err
	}
	if a.cfg.RequireVerifiedEmail && !u.EmailVerified {
		return SignIn{}, ErrEmailNotVerified
	}
	return a.signIn(ctx, &u, in.Sliding)
}

// throttledCredentials checks name and password under the limits on
// failed logins: one attempt is reserved per account (a known user by id,
// so that email and username share it; an unknown name by itself, counted
// exactly the same) and per client network before the password is hashed.
// A wrong password keeps both; a success resets the account's count and
// gives the network's back. A call without a client IP (a Go caller that
// set no Client) has no per-network limit, rather than one shared by every
// such caller.
func (a *Auth) throttledCredentials(ctx context.Context, name, password string) (User, error) {
	u, err := a.userByName(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return User{}, err
	}
	found := err == nil
	// The network's first: a network over its limit makes no state for
	// the names it tries.
	var limits []limit
	ip := ClientFrom(ctx).IP
	if ip != "" {
		limits = append(limits, limit{loginNetKey(ip), a.cfg.MaxLoginFailuresPerIP, a.cfg.ThrottleWindow})
	}
	acct := loginKey(&u, found, name)
	limits = append(limits, limit{acct, a.cfg.MaxLoginFailuresPerAccount, a.cfg.ThrottleWindow})
	r, err := a.reserve(ctx, limits...)
	if errors.Is(err, ErrRateLimited) {
		a.emit(ctx, Event{Type: EventLoginFailed, UserID: u.ID, Reason: "throttled"})
	}
	if err != nil {
		return User{}, err
	}
	err = a.checkCredentials(ctx, &u, found, password)
	if errors.Is(err, ErrInvalidCredentials) {
		return User{}, err // the attempts count
	}
	if err != nil {
		_ = r.release(ctx) // the work failed: nothing to count
		return User{}, err
	}
	if err := r.release(ctx, loginNetKey(ip)); err != nil {
		return User{}, err
	}
	if err := a.attempts.ResetAttempts(ctx, acct); err != nil {
		return User{}, storeErr("reset attempts", err)
	}
	return u, nil
}

// checkCredentials verifies password for u (found false: no account has
// the name) with one password hash whatever the outcome, so neither the
// answer nor its time tells whether the account exists.
func (a *Auth) checkCredentials(ctx context.Context, u *User, found bool, password string) error {
	match, weak, err := a.hasher.verify(ctx, password, u.PasswordHash)
	if err != nil {
		return err
	}
	reason := ""
	switch {
	case !found:
		reason = "unknown_user"
	case !match:
		reason = "wrong_password"
	case u.Disabled:
		reason = "disabled"
	case u.PasswordTemporary && !a.now().Before(u.PasswordExpiresAt):
		reason = "temporary_password_expired"
	}
	if reason != "" {
		a.emit(ctx, Event{Type: EventLoginFailed, UserID: u.ID, Reason: reason})
		return ErrInvalidCredentials
	}
	if weak {
		a.rehash(ctx, u.ID, password)
	}
	return nil
}

// signIn ends a successful first step: a challenge when the account needs
// another step, tokens otherwise. A password alone never yields tokens for
// an account with a second factor or a temporary password.
func (a *Auth) signIn(ctx context.Context, u *User, sliding bool) (SignIn, error) {
	return a.signInWith(ctx, u, sliding, false)
}

// signInWith is signIn after a first step that was two factors already
// (twoFactors: a passkey that verified the user), which needs no second.
func (a *Auth) signInWith(ctx context.Context, u *User, sliding, twoFactors bool) (SignIn, error) {
	kind := ""
	switch {
	case u.PasswordTemporary:
		kind = ChallengeNewPassword
	case u.MFAEnabled && !twoFactors:
		kind = ChallengeMFA
	}
	if kind != "" {
		token := randomToken()
		ch := Challenge{Hash: hashToken(token), UserID: u.ID, Kind: kind, Sliding: sliding, ETag: u.ETag, ExpiresAt: a.now().Add(challengeTTL)}
		if err := a.challenges.CreateChallenge(ctx, ch); err != nil {
			return SignIn{}, storeErr("create challenge", err)
		}
		a.maybeSweep()
		a.emit(ctx, Event{Type: EventChallenge, UserID: u.ID, Reason: kind})
		pending := &PendingChallenge{Name: kind, Session: token, ExpiresAt: ch.ExpiresAt, Available: []string{kind}}
		if kind == ChallengeMFA && a.passkeys != nil {
			keys, err := a.passkeys.PasskeysOf(ctx, u.ID)
			if err != nil {
				return SignIn{}, storeErr("passkeys of", err)
			}
			if len(keys) > 0 {
				pending.Available = append(pending.Available, ChallengeWebAuthn)
			}
		}
		return SignIn{Challenge: pending}, nil
	}
	t, err := a.startSession(ctx, u, sliding)
	if err != nil {
		return SignIn{}, err
	}
	return a.signedIn(ctx, t), nil
}

// signedIn records a sign-in that answers tokens.
func (a *Auth) signedIn(ctx context.Context, t Tokens) SignIn {
	a.emit(ctx, Event{Type: EventLoginSucceeded, UserID: t.User.ID, SessionID: t.Session.ID})
	return SignIn{Tokens: &t}
}

// ChallengeInput answers a PendingChallenge.
type ChallengeInput struct {
	// Challenge is the challenge being answered, as Login named it:
	// ChallengeMFA or ChallengeNewPassword, or ChallengeWebAuthn to answer
	// a ChallengeMFA with a passkey. A session of another kind fails.
	Challenge string
	// Session is PendingChallenge.Session.
	Session string
	// Code answers ChallengeMFA: a TOTP code or a recovery code.
	Code string
	// Credential answers ChallengeMFA as ChallengeWebAuthn: the browser's
	// answer to BeginPasskeyChallenge's options, the
	// PublicKeyCredential's JSON.
	Credential []byte
	// Name and NewPassword answer ChallengeNewPassword: the account's email
	// or username, and the password that replaces the temporary one.
	Name        string
	NewPassword string
}

// CompleteChallenge answers the challenge a sign-in step returned. A wrong
// answer fails with ErrInvalidGrant and counts against the challenge
// (CodeMaxAttempts burn it) and, for codes, against the account's limit on
// wrong codes. Answering ChallengeNewPassword may lead to ChallengeMFA.
func (a *Auth) CompleteChallenge(ctx context.Context, in ChallengeInput) (_ SignIn, err error) {
	ctx, end := a.trace(ctx, "CompleteChallenge")
	defer func() { end(err) }()
	if err := required("session", in.Session); err != nil {
		return SignIn{}, err
	}
	switch in.Challenge {
	case ChallengeMFA:
		return a.answerMFA(ctx, in)
	case ChallengeWebAuthn:
		return a.answerWebAuthn(ctx, in)
	case ChallengeNewPassword:
		return a.answerNewPassword(ctx, in)
	}
	return SignIn{}, fieldErr("challenge_name", "unknown", fmt.Sprintf("Unknown challenge %q.", in.Challenge))
}

// answerMFA answers a SOFTWARE_TOKEN_MFA challenge with a TOTP code or a
// recovery code.
func (a *Auth) answerMFA(ctx context.Context, in ChallengeInput) (SignIn, error) {
	if err := required("code", in.Code); err != nil {
		return SignIn{}, err
	}
	ch, u, err := a.openMFA(ctx, in.Session)
	if err != nil {
		return SignIn{}, err
	}
	if len(in.Code) > maxCodeLength {
		return SignIn{}, a.failChallenge(ctx, &ch)
	}
	// The code first, under the limit on wrong second-factor codes; then
	// the challenge is spent and the session starts.
	var recovery []byte // the recovery code's hash, when it is one
	if err := a.checkedCode(ctx, u.ID, purposeMFA, func() error {
		if len(in.Code) == totpDigits {
			ok, err := a.useTOTP(ctx, &u, in.Code)
			if err == nil && !ok {
				err = a.failChallenge(ctx, &ch)
			}
			return err
		}
		recovery = a.recoveryHash(u.ID, in.Code)
		if !hasHash(u.RecoveryCodes, recovery) {
			return a.failChallenge(ctx, &ch)
		}
		return nil
	}); err != nil {
		return SignIn{}, err
	}
	if err := a.consumeChallenge(ctx, &ch); err != nil {
		return SignIn{}, err
	}
	var t Tokens
	if recovery == nil {
		t, err = a.startSession(ctx, &u, ch.Sliding)
	} else {
		t, err = a.signInWithRecoveryCode(ctx, &u, recovery, ch.Sliding)
	}
	if err != nil {
		return SignIn{}, err
	}
	return a.signedIn(ctx, t), nil
}

// openMFA returns the live ChallengeMFA behind session and its user, who
// must not have changed since (else the challenge ends) and must still
// have 2FA on (else the answer counts as wrong).
func (a *Auth) openMFA(ctx context.Context, session string) (Challenge, User, error) {
	ch, err := a.openChallenge(ctx, session, ChallengeMFA)
	if err != nil {
		return ch, User{}, err
	}
	u, err := a.readUser(ctx, a.store.UserByID, ch.UserID)
	if errors.Is(err, ErrNotFound) {
		return ch, User{}, ErrInvalidGrant
	}
	if err != nil {
		return ch, User{}, storeErr("user by id", err)
	}
	if u.ETag != ch.ETag {
		return ch, User{}, a.endChallenge(ctx, &ch)
	}
	if u.Disabled || !u.MFAEnabled {
		return ch, User{}, a.failChallenge(ctx, &ch)
	}
	return ch, u, nil
}

// signInWithRecoveryCode spends the recovery code with hash h and starts a
// session, in the same store call (which also changes the etag), so that a
// failure leaves the code unspent.
func (a *Auth) signInWithRecoveryCode(ctx context.Context, u *User, h []byte, sliding bool) (Tokens, error) {
	var (
		sess Session
		pair issuedPair
	)
	now := a.now()
	nu, err := a.modifyUser(ctx, u.ID, userChange{create: &sess}, func(u *User) error {
		if err := removeRecoveryCode(u, h); err != nil {
			return err
		}
		var err error
		sess, pair, err = a.newSession(ctx, u, sliding, now)
		return err
	})
	if err != nil {
		return Tokens{}, err
	}
	a.emit(ctx, Event{Type: EventRecoveryCodeUsed, UserID: nu.ID})
	return pair.tokens(&nu, &sess), nil
}

// removeRecoveryCode takes the recovery code with hash h off u's list:
// ErrInvalidGrant when it is not there (spent by a concurrent request).
func removeRecoveryCode(u *User, h []byte) error {
	i := slices.IndexFunc(u.RecoveryCodes, func(x []byte) bool { return equalHash(x, h) })
	if i < 0 {
		return ErrInvalidGrant
	}
	u.RecoveryCodes = slices.Delete(u.RecoveryCodes, i, i+1)
	return nil
}

// answerNewPassword answers a NEW_PASSWORD_REQUIRED challenge: the user
// replaces the temporary password the host gave them.
func (a *Auth) answerNewPassword(ctx context.Context, in ChallengeInput) (SignIn, error) {
	name, err := normalizeName(in.Name)
	if err != nil {
		return SignIn{}, err
	}
	if err := a.checkPassword("new_password", in.NewPassword); err != nil {
		return SignIn{}, err
	}
	ch, err := a.openChallenge(ctx, in.Session, ChallengeNewPassword)
	if err != nil {
		return SignIn{}, err
	}
	u, err := a.userByName(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return SignIn{}, err
	}
	if err != nil || u.ID != ch.UserID || u.Disabled {
		return SignIn{}, a.failChallenge(ctx, &ch)
	}
	if u.ETag != ch.ETag {
		return SignIn{}, a.endChallenge(ctx, &ch)
	}
	if err := a.consumeChallenge(ctx, &ch); err != nil {
		return SignIn{}, err
	}
	hash, err := a.hasher.hash(ctx, in.NewPassword)
	if err != nil {
		return SignIn{}, err
	}
	// Without 2FA the session starts in the same store call that sets the
	// password, so a failure leaves the temporary password in place.
	var (
		change userChange
		sess   Session
		pair   issuedPair
	)
	if !u.MFAEnabled {
		change.create = &sess
	}
	now := a.now()
	u, err = a.modifyUser(ctx, u.ID, change, func(u *User) error {
		u.PasswordHash = hash
		u.PasswordTemporary = false
		u.PasswordExpiresAt = time.Time{}
		if change.create == nil {
			return nil
		}
		var err error
		sess, pair, err = a.newSession(ctx, u, ch.Sliding, now)
		return err
	})
	if err != nil {
		return SignIn{}, err
	}
	a.emit(ctx, Event{Type: EventPasswordChanged, UserID: u.ID})
	if change.create == nil {
		return a.signIn(ctx, &u, ch.Sliding) // the MFA challenge
	}
	return a.signedIn(ctx, pair.tokens(&u, &sess)), nil
}

// openChallenge returns the live challenge behind token, of one of kinds.
func (a *Auth) openChallenge(ctx context.Context, token string, kinds ...string) (Challenge, error) {
	if len(token) > maxRefreshTokenLength {
		return Challenge{}, ErrInvalidGrant
	}
	ch, err := a.challenges.ChallengeByHash(ctx, hashToken(token), a.now())
	if errors.Is(err, ErrNotFound) {
		return Challenge{}, ErrInvalidGrant
	}
	if err != nil {
		return Challenge{}, storeErr("challenge by hash", err)
	}
	if !slices.Contains(kinds, ch.Kind) {
		return Challenge{}, ErrInvalidGrant
	}
	return ch, nil
}

// failChallenge counts a wrong answer (CodeMaxAttempts burn the challenge)
// and answers ErrInvalidGrant.
func (a *Auth) failChallenge(ctx context.Context, ch *Challenge) error {
	if err := a.challenges.FailChallenge(ctx, ch.Hash); err != nil && !errors.Is(err, ErrNotFound) {
		return storeErr("fail challenge", err)
	}
	a.emit(ctx, Event{Type: EventLoginFailed, UserID: ch.UserID, Reason: "wrong_code"})
	return ErrInvalidGrant
}

// endChallenge ends a challenge issued for a user who has changed since
// (a password set or reset, 2FA switched, disabled): whatever the answer,
// it is refused, and the challenge is gone.
func (a *Auth) endChallenge(ctx context.Context, ch *Challenge) error {
	if err := a.consumeChallenge(ctx, ch); err != nil && !errors.Is(err, ErrInvalidGrant) {
		return err
	}
	return ErrInvalidGrant
}

// consumeChallenge uses the challenge up; of concurrent callers, only one
// gets nil.
func (a *Auth) consumeChallenge(ctx context.Context, ch *Challenge) error {
	err := a.challenges.ConsumeChallenge(ctx, ch.Hash, a.now())
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidGrant
	}
	return storeErr("consume challenge", err)
}
