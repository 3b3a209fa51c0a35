package fiberauth

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// NewUser describes an account a host creates with CreateUser.
type NewUser struct {
	Email       string // required
	Username    string // optional
	DisplayName string
	Password    string // required; the password rules apply
	Roles       []string
	Attributes  map[string]string
	// Verified marks the email as confirmed already.
	Verified bool
	// TemporaryPassword makes Password a temporary one: login answers the
	// NEW_PASSWORD_REQUIRED challenge until the user sets their own, and it
	// stops working after Config.TemporaryPasswordTTL.
	TemporaryPassword bool
}

// CreateUser adds an account. It returns a *FieldError for an invalid email,
// username or password and ErrConflict when the email or username is taken.
func (a *Auth) CreateUser(ctx context.Context, nu NewUser) (_ User, err error) {
	ctx, end := a.trace(ctx, "CreateUser")
	defer func() { end(err) }()
	u, err := a.newUser(ctx, nu)
	if err != nil {
		return User{}, err
	}
	return u, a.storeNewUser(ctx, &u)
}

// newUser checks nu and builds its record, without storing it.
func (a *Auth) newUser(ctx context.Context, nu NewUser) (User, error) {
	nu, err := a.checkNewUser(nu)
	if err != nil {
		return User{}, err
	}
	hash, err := a.hasher.hash(ctx, nu.Password)
	if err != nil {
		return User{}, err
	}
	now := a.now()
	u := User{
		ID:            randomID(),
		Email:         nu.Email,
		Username:      nu.Username,
		DisplayName:   nu.DisplayName,
		PasswordHash:  hash,
		EmailVerified: nu.Verified,
		Roles:         slices.Clone(nu.Roles),
		Attributes:    maps.Clone(nu.Attributes),
		ETag:          randomID(),
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	if nu.TemporaryPassword {
		u.PasswordTemporary = true
		u.PasswordExpiresAt = now.Add(a.cfg.TemporaryPasswordTTL)
	}
	return u, nil
}

// checkNewUser checks nu's fields and returns them normalized.
func (a *Auth) checkNewUser(nu NewUser) (NewUser, error) {
	var err error
	if nu.Email, err = normalizeEmail("email", nu.Email); err != nil {
		return NewUser{}, err
	}
	if nu.Username, err = normalizeUsername("username", nu.Username); err != nil {
		return NewUser{}, err
	}
	if len(nu.DisplayName) > maxDisplayNameLength || !validText(nu.DisplayName) {
		return NewUser{}, fieldErr("display_name", "invalid", "The display name must be UTF-8 text of at most 256 bytes.")
	}
	if err := a.checkPassword("password", nu.Password); err != nil {
		return NewUser{}, err
	}
	return nu, nil
}

func (a *Auth) storeNewUser(ctx context.Context, u *User) error {
	if err := a.store.CreateUser(ctx, *u); err != nil {
		return storeErr("create user", err)
	}
	a.cacheUser(u)
	a.emit(ctx, Event{Type: EventUserCreated, UserID: u.ID})
	return nil
}

// UserByID returns the user with that id, or ErrNotFound.
func (a *Auth) UserByID(ctx context.Context, id string) (_ User, err error) {
	ctx, end := a.trace(ctx, "UserByID")
	defer func() { end(err) }()
	return a.userByID(ctx, id)
}

// userByID is UserByID for the other calls (one traced call each).
func (a *Auth) userByID(ctx context.Context, id string) (User, error) {
	u, err := a.readUser(ctx, a.store.UserByID, id)
	return u, storeErr("user by id", err)
}

// callerUser is the user of a signed-in caller. One the store no longer
// has (deleted after the token was let in, within CacheTTL) ends the
// caller's access as the middleware would: 401 invalid_token, revoked.
func (a *Auth) callerUser(ctx context.Context, id string) (User, error) {
	u, err := a.userByID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return User{}, fmt.Errorf("%w: %w: user gone", ErrInvalidToken, errTokenRevoked)
	}
	return u, err
}

// UserByEmail returns the user with that email (any case), or ErrNotFound.
func (a *Auth) UserByEmail(ctx context.Context, email string) (_ User, err error) {
	ctx, end := a.trace(ctx, "UserByEmail")
	defer func() { end(err) }()
	u, err := a.store.UserByEmail(ctx, foldName(email))
	return u, storeErr("user by email", err)
}

// SetRoles replaces the user's roles. The etag changes, so access tokens
// issued before stop working and clients refresh to pick up the new roles.
func (a *Auth) SetRoles(ctx context.Context, userID string, roles []string) (err error) {
	ctx, end := a.trace(ctx, "SetRoles")
	defer func() { end(err) }()
	_, err = a.modifyUser(ctx, userID, userChange{}, func(u *User) error {
		u.Roles = slices.Clone(roles)
		return nil
	})
	if err == nil {
		a.emit(ctx, Event{Type: EventRolesChanged, UserID: userID})
	}
	return err
}

// DisableUser disables the account: its etag changes, every session family is
// revoked, and login answers invalid_credentials from then on.
func (a *Auth) DisableUser(ctx context.Context, userID string) (err error) {
	ctx, end := a.trace(ctx, "DisableUser")
	defer func() { end(err) }()
	_, err = a.modifyUser(ctx, userID, userChange{revoke: true}, func(u *User) error {
		u.Disabled = true
		return nil
	})
	if err == nil {
		a.emit(ctx, Event{Type: EventUserDisabled, UserID: userID})
	}
	return err
}

// EnableUser lets a disabled account sign in again.
func (a *Auth) EnableUser(ctx context.Context, userID string) (err error) {
	ctx, end := a.trace(ctx, "EnableUser")
	defer func() { end(err) }()
	_, err = a.modifyUser(ctx, userID, userChange{}, func(u *User) error {
		u.Disabled = false
		return nil
	})
	return err
}

// MarkEmailVerified marks the user's email confirmed, as POST /email/confirm
// does; the etag changes.
func (a *Auth) MarkEmailVerified(ctx context.Context, userID string) (err error) {
	ctx, end := a.trace(ctx, "MarkEmailVerified")
	defer func() { end(err) }()
	_, err = a.modifyUser(ctx, userID, userChange{}, func(u *User) error {
		u.EmailVerified = true
		return nil
	})
	return err
}

// RevokeAllSessions ends every session family of the user; their access
// tokens stop working at once in this process and in others whose store has
// Notifier (within CacheTTL in others otherwise).
func (a *Auth) RevokeAllSessions(ctx context.Context, userID string) (err error) {
	ctx, end := a.trace(ctx, "RevokeAllSessions")
	defer func() { end(err) }()
	return a.revokeAllSessions(ctx, userID)
}

// revokeAllSessions is RevokeAllSessions for the other calls.
func (a *Auth) revokeAllSessions(ctx context.Context, userID string) error {
	ids, err := a.store.RevokeUserSessions(ctx, userID, "", a.now())
	if err != nil {
		return storeErr("revoke user sessions", err)
	}
	a.forgetSessions(ids...)
	return nil
}

// userChange says what else a user change does besides the record, all in
// the same all-or-nothing store call.
type userChange struct {
	revoke bool   // revoke the user's session families...
	keep   string // ...except this one
	// sameETag keeps the etag: for changes that do not matter for
	// authorization (a rehash at new parameters, a TOTP secret not yet
	// enabled).
	sameETag bool
	useCode  *Code     // spend this one-time code
	rotate   *Rotation // rotate this family (fn fills it in)
	create   *Session  // start this family (fn fills it in)
	// result, when set, receives what the store did besides the record.
	result *UpdateResult
	// ifETag, when set, is the etag the change was decided on: if the user
	// has another (changed since, or by a concurrent change), the change
	// is not made and modifyUser answers ErrInvalidGrant.
	ifETag string
}

// maxUpdateTries bounds the read-modify-write retries when another request
// changes the same user concurrently.
const maxUpdateTries = 3

// modifyUser reads the user, applies fn and writes it back only if nobody
// changed it meanwhile (compare-and-swap on the etag), retrying a few times
// (also when the family it rotates moved on: fn reads it again).
// fn sees the new etag already. Every user change goes through here, so the
// etag and caches stay right. A code that a concurrent request spent first
// answers ErrInvalidGrant, as a wrong code would.
func (a *Auth) modifyUser(ctx context.Context, id string, ch userChange, fn func(*User) error) (User, error) {
	for try := 1; ; try++ {
		u, err := a.readUser(ctx, a.store.UserByID, id)
		if err != nil {
			return User{}, storeErr("user by id", err)
		}
		old := u.ETag
		if ch.ifETag != "" && old != ch.ifETag {
			return User{}, ErrInvalidGrant
		}
		if !ch.sameETag {
			u.ETag = randomID()
		}
		if err := fn(&u); err != nil {
			return User{}, err
		}
		now := a.now()
		u.UpdatedAt = now
		up := UserUpdate{
			User: u, IfETag: old, At: now, RevokeSessions: ch.revoke, KeepSession: ch.keep,
			Rotate: ch.rotate, CreateSession: ch.create,
		}
		var res UpdateResult
		gen, at := a.sessionWrite()
		if ch.useCode != nil {
			res, err = a.codes.UseCode(ctx, *ch.useCode, up)
		} else {
			res, err = a.store.UpdateUser(ctx, up)
		}
		switch {
		case errors.Is(err, ErrETagMismatch) && try < maxUpdateTries:
			continue
		case errors.Is(err, ErrNotCurrent) && ch.rotate != nil && try < maxUpdateTries:
			continue // the family rotated meanwhile; fn reads it again
		case errors.Is(err, ErrCodeSpent):
			return User{}, ErrInvalidGrant
		case err != nil:
			return User{}, storeErr("update user", err)
		}
		a.cacheUser(&u)
		a.forgetSessions(res.Revoked...)
		if ch.rotate != nil {
			a.cacheSession(&res.Session, gen, at)
		}
		if ch.create != nil {
			a.cacheSession(ch.create, gen, at)
		}
		if ch.result != nil {
			*ch.result = res
		}
		return u, nil
	}
}

// Field limits (bytes).
const (
	maxEmailLength    = 254
	maxUsernameLength = 64
)

// foldName is an account name (email or username) as it is stored and
// matched: trimmed, in Unicode normal form NFKC, then lowercased, so that
// look-alike spellings (fullwidth letters, decomposed accents, ligatures)
// are one name, not a second account that looks like the first. Invalid
// UTF-8 is left as it is, for the checks to refuse.
func foldName(s string) string {
	s = strings.TrimSpace(s)
	if utf8.ValidString(s) {
		s = norm.NFKC.String(s)
	}
	return strings.ToLower(strings.TrimSpace(s))
}

// normalizeEmail folds and checks an email sent in field.
func normalizeEmail(field, s string) (string, error) {
	s = foldName(s)
	switch {
	case s == "":
		return "", fieldErr(field, "missing", "An email address is required.")
	case len(s) > maxEmailLength:
		return "", fieldErr(field, "too_long", "The email address is too long.")
	case !utf8.ValidString(s) || strings.IndexFunc(s, notPrintable) >= 0:
		return "", fieldErr(field, "invalid", "The email address has characters that are not allowed.")
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at == len(s)-1 || strings.Count(s, "@") != 1 {
		return "", fieldErr(field, "invalid", "That is not an email address.")
	}
	return s, nil
}

// normalizeUsername folds and checks a username; "" stays "" (none).
func normalizeUsername(field, s string) (string, error) {
	s = foldName(s)
	switch {
	case s == "":
		return "", nil
	case len(s) > maxUsernameLength:
		return "", fieldErr(field, "too_long", "The username is too long.")
	case !utf8.ValidString(s) || strings.IndexFunc(s, notPrintable) >= 0:
		return "", fieldErr(field, "invalid", "The username has characters that are not allowed.")
	case strings.Contains(s, "@"):
		// Login tells emails from usernames by the '@'.
		return "", fieldErr(field, "invalid", "A username must not contain '@'.")
	}
	return s, nil
}

func notPrintable(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }

// validText reports whether s is valid UTF-8 without control characters
// (NUL above all, which no database column takes).
func validText(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// normalizeName folds and checks an account name (an email or a
// username) sent in the username or email field.
func normalizeName(name string) (string, error) {
	name = foldName(name)
	where := "username"
	if strings.Contains(name, "@") {
		where = "email"
	}
	switch {
	case name == "":
		return "", fieldErr("username", "missing", "A username or email is required.")
	case len(name) > maxEmailLength:
		return "", fieldErr(where, "too_long", "The username or email is too long.")
	case !validText(name):
		return "", fieldErr(where, "invalid", "The username or email has characters that are not allowed.")
	}
	return name, nil
}

// required is the error of a required field sent empty.
func required(where, v string) error {
	if v == "" {
		return fieldErr(where, "missing", fmt.Sprintf("The field %q is required.", where))
	}
	return nil
}

// userByName finds a user by email (when the name has an '@') or username.
func (a *Auth) userByName(ctx context.Context, name string) (User, error) {
	var (
		u   User
		err error
	)
	if strings.Contains(name, "@") {
		u, err = a.readUser(ctx, a.store.UserByEmail, name)
	} else {
		u, err = a.readUser(ctx, a.store.UserByUsername, name)
	}
	return u, storeErr("user by name", err)
}
