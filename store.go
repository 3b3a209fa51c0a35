package fiberauth

import (
	"context"
	"time"
)

// Store keeps users, session families and one-time codes. fiberauth ships
// memstore (one process, for tests and demos) and sqlstore; a host may write
// its own and check it with storetest.Run.
//
// The contract for implementers:
//   - Every method is safe for concurrent use.
//   - Lookups of something that does not exist return an error matching
//     ErrNotFound. Other errors are for system faults only (the database cannot
//     be reached); fiberauth answers them with 503 and changes nothing else.
//   - A Store never reads a clock: every time it needs is passed in, so the
//     caller (and storetest) controls it.
//   - Records passed in and returned are values; a Store keeps no reference to
//     a caller's slices or maps and returns none of its own.
//   - Emails and usernames arrive lowercased; a Store compares them exactly.
//     An empty username is "none" and never conflicts.
type Store interface {
	// CreateUser adds u. It returns ErrConflict when u.ID, u.Email or a
	// non-empty u.Username is taken.
	CreateUser(ctx context.Context, u User) error
	// UserByID returns the user with that id, or ErrNotFound.
	UserByID(ctx context.Context, id string) (User, error)
	// UserByEmail returns the user with that email, or ErrNotFound.
	UserByEmail(ctx context.Context, email string) (User, error)
	// UserByUsername returns the user with that username, or ErrNotFound.
	UserByUsername(ctx context.Context, username string) (User, error)
	// UpdateUser changes a user and what goes with it in one all-or-nothing
	// step: it replaces the record u.User.ID (all but TOTPLastStep, which
	// only UseTOTPStep writes); when u.UseCode is set, deletes that code
	// (same user, purpose and hash, unexpired at u.At); when
	// u.RevokeSessions is set, revokes every live family of the user but
	// u.KeepSession at u.At; when u.Rotate is set, rotates that family as
	// RotateSession does; when u.CreateSession is set, adds that family as
	// CreateSession does. It returns the ids it revoked and the rotated
	// family. Nothing is written when it returns an error: ErrNotFound for an
	// unknown user; ErrStale when u.IfETag is set and the stored etag
	// differs (someone changed the user since it was read), when the code is
	// not there, or when the rotation's conditions fail; ErrConflict when
	// the new email or username belongs to another user.
	UpdateUser(ctx context.Context, u UserUpdate) (UpdateResult, error)

	// CreateSession adds a session family with its first refresh token hash.
	CreateSession(ctx context.Context, s Session) error
	// SessionByID returns the family with that id, revoked or not, until
	// DeleteExpired removes it; ErrNotFound otherwise.
	SessionByID(ctx context.Context, id string) (Session, error)
	// SessionByTokenHash returns the family that holds or ever held the
	// refresh token with that hash (current, previous or older), so that a
	// replayed old token is recognised as reuse; ErrNotFound otherwise.
	SessionByTokenHash(ctx context.Context, hash []byte) (Session, error)
	// RotateSession must be atomic: only if the family r.SessionID is live
	// (not revoked, ExpiresAt after r.At) and r.From is still its current
	// token hash (or r.From is nil), it makes r.To current, keeps r.From as
	// PrevTokenHash with RotatedAt = r.At and Replay = r.Replay, sets
	// ExpiresAt and LastUsedAt, remembers r.To for SessionByTokenHash, and
	// returns the new record. Otherwise it changes nothing and returns
	// ErrStale (ErrNotFound for an unknown family). Of any number of
	// concurrent calls with the same r.From, at most one succeeds.
	RotateSession(ctx context.Context, r Rotation) (Session, error)
	// RevokeSession marks the family revoked at at. Revoking a revoked
	// family is a no-op; an unknown one is ErrNotFound.
	RevokeSession(ctx context.Context, id string, at time.Time) error
	// RevokeUserSessions revokes every live family of the user except the
	// one with id except (none when empty) and returns the ids it revoked.
	RevokeUserSessions(ctx context.Context, userID, except string, at time.Time) ([]string, error)
	// ListSessions returns the user's live families (not revoked, ExpiresAt
	// after now), oldest first; an empty list when there are none.
	ListSessions(ctx context.Context, userID string, now time.Time) ([]Session, error)

	// PutCode stores c, replacing any code of the same user and purpose.
	PutCode(ctx context.Context, c Code) error
	// CheckCode must be atomic. When the user's code for purpose is
	// unexpired at now and its hash equals hash, it returns nil and leaves
	// the code (UpdateUser's UseCode spends it). When it exists but
	// differs, it counts the attempt, deletes the code once
	// CodeMaxAttempts attempts have failed, and returns ErrCodeMismatch.
	// With no unexpired code it returns ErrNotFound.
	CheckCode(ctx context.Context, userID, purpose string, hash []byte, now time.Time) error

	// Attempts returns the count of attempts under key in the window open
	// at now (0 when none is) and when that window ends. It backs
	// throttling, and must be shared by every instance that shares the
	// store.
	Attempts(ctx context.Context, key string, now time.Time) (int, time.Time, error)
	// AddAttempt must be atomic: when no window is open under key at now, it
	// opens one ending at now+window with a count of 1; otherwise it adds
	// 1. It returns the new count and the window's end.
	AddAttempt(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error)
	// ResetAttempts forgets the attempts under key; a no-op when there are
	// none.
	ResetAttempts(ctx context.Context, key string) error

	// UseTOTPStep must be atomic: it records step as the user's last
	// accepted TOTP step only if it is greater than the one stored, and
	// returns ErrStale otherwise (a code used twice). ErrNotFound for an
	// unknown user.
	UseTOTPStep(ctx context.Context, userID string, step int64) error

	// CreateChallenge stores a login challenge session.
	CreateChallenge(ctx context.Context, c Challenge) error
	// ChallengeByHash returns the challenge with that hash if it has not
	// expired at now; ErrNotFound otherwise.
	ChallengeByHash(ctx context.Context, hash []byte, now time.Time) (Challenge, error)
	// ConsumeChallenge must be atomic: it deletes the unexpired challenge
	// and returns nil, or returns ErrNotFound. Of concurrent calls with one
	// hash, at most one succeeds.
	ConsumeChallenge(ctx context.Context, hash []byte, now time.Time) error
	// FailChallenge counts a wrong answer and deletes the challenge once
	// CodeMaxAttempts answers have failed. ErrNotFound when it is gone.
	FailChallenge(ctx context.Context, hash []byte) error

	// DeleteExpired removes families whose ExpiresAt or AbsoluteExpiresAt
	// is at or before now (revoked ones too), and codes, challenges and
	// attempt windows expired at now.
	DeleteExpired(ctx context.Context, now time.Time) error
}

// CodeMaxAttempts is how many wrong tries burn a one-time code.
const CodeMaxAttempts = 5

// User is an account. Emails and usernames are stored lowercased.
type User struct {
	ID          string
	Email       string
	Username    string // empty when the user has none
	DisplayName string
	// PasswordHash is an argon2id PHC string. It never leaves the package
	// in a response or a log.
	PasswordHash  string `json:"-"`
	EmailVerified bool
	MFAEnabled    bool
	Roles         []string
	Attributes    map[string]string
	Disabled      bool
	// PasswordTemporary marks a password the host set with
	// NewUser.TemporaryPassword: login answers NEW_PASSWORD_REQUIRED until
	// the user sets their own, and it stops working at PasswordExpiresAt.
	PasswordTemporary bool
	PasswordExpiresAt time.Time
	// TOTPSecret is the TOTP secret sealed with AES-GCM under a key derived
	// from Config.Secret; set by /2fa/setup, in use once MFAEnabled.
	TOTPSecret []byte `json:"-"`
	// TOTPLastStep is the last TOTP time step accepted, so that a code works
	// once.
	TOTPLastStep int64
	// RecoveryCodes are keyed hashes of the unused recovery codes.
	RecoveryCodes [][]byte `json:"-"`
	// ETag changes whenever anything that matters for authorization does;
	// access tokens carry the etag they were issued with.
	ETag      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// HasRole reports whether the user has role.
func (u *User) HasRole(role string) bool {
	for _, r := range u.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// UserUpdate is one all-or-nothing change of a user; see Store.UpdateUser.
type UserUpdate struct {
	User           User
	IfETag         string
	UseCode        *Code // spend this code (UserID, Purpose, Hash) with the change
	RevokeSessions bool
	KeepSession    string
	Rotate         *Rotation // rotate this family with the change
	CreateSession  *Session  // start this family with the change
	At             time.Time
}

// UpdateResult is what Store.UpdateUser did besides the record.
type UpdateResult struct {
	Revoked []string // ids of the families it revoked
	Session Session  // the rotated family, when UserUpdate.Rotate was set
}

// Session is a session family: the chain of refresh tokens one login starts.
type Session struct {
	ID     string
	UserID string
	// TokenHash is the SHA-256 of the current refresh token.
	TokenHash []byte `json:"-"`
	// PrevTokenHash is the token TokenHash replaced at RotatedAt; presented
	// again within the grace window it gets the same answer (Replay).
	PrevTokenHash []byte `json:"-"`
	RotatedAt     time.Time
	// Replay is the pair the last rotation issued, sealed under a key that
	// only the previous token opens.
	Replay            []byte `json:"-"`
	Sliding           bool
	CreatedAt         time.Time
	LastUsedAt        time.Time
	ExpiresAt         time.Time // when the current refresh token expires
	AbsoluteExpiresAt time.Time // when the family ends, whatever happens
	RevokedAt         time.Time // zero while not revoked
	UserAgent         string
	IP                string
}

// Live reports whether the family can still be used at now.
func (s *Session) Live(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt) && now.Before(s.AbsoluteExpiresAt)
}

// Rotation is one refresh-token rotation; see Store.RotateSession.
type Rotation struct {
	SessionID string
	From      []byte
	To        []byte
	At        time.Time
	ExpiresAt time.Time
	Replay    []byte
}

// Challenge is a login challenge session: the second step of a login, bound
// to one user and one kind, stored only as a hash of its token.
type Challenge struct {
	Hash      []byte `json:"-"`
	UserID    string
	Kind      string // ChallengeMFA or ChallengeNewPassword
	Sliding   bool   // carried from the login request
	ExpiresAt time.Time
	Attempts  int
}

// Challenge kinds, as the login answer names them.
const (
	ChallengeMFA         = "SOFTWARE_TOKEN_MFA"
	ChallengeNewPassword = "NEW_PASSWORD_REQUIRED"
)

// Code is a one-time code, stored only as a keyed hash.
type Code struct {
	UserID    string
	Purpose   string
	Hash      []byte `json:"-"`
	ExpiresAt time.Time
	Attempts  int
}

// Code purposes. The example's dev outbox shows them as they are.
const (
	PurposeEmailConfirm  = "email_confirm"
	PurposePasswordReset = "password_reset"
)
