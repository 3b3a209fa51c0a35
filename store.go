package fiberauth

import (
	"context"
	"time"
)

// Store keeps users and their session families: the core that every store
// implements. fiberauth ships memstore (one process, for tests and demos)
// and sqlstore (SQLite and PostgreSQL); a host may write its own and check
// it with storetest.Run.
//
// Beyond the core, a store may offer optional capabilities, each a small
// interface that fiberauth finds by type assertion (as io/fs finds
// fs.ReadFileFS): CodeStore (one-time codes), ChallengeStore (login
// challenges), AttemptStore (throttling counters), TOTPStore (TOTP replay
// protection), KeyStore (generated signing keys), Cleaner (deletion of
// expired records) and Notifier (news of changes made by other instances).
// For each one a store lacks, New keeps that state in process memory
// instead (Notifier: nothing, and other instances' changes are seen within
// Config.CacheTTL) and logs once what that means (for example: not shared
// across instances).
//
// The contract for implementers:
//   - Every method is safe for concurrent use.
//   - A lookup of something that does not exist returns an error matching
//     ErrNotFound. The other sentinels (ErrConflict, ErrETagMismatch,
//     ErrNotCurrent, ErrCodeMismatch, ErrCodeSpent, ErrStepUsed) are
//     returned exactly where a method's comment names them. Any other error
//     is a system fault (the database cannot be reached); fiberauth answers
//     it with 503 and changes nothing else. A store that bounds how many
//     calls may wait for the database may refuse one beyond the bound with
//     an error matching ErrBusy (503 unavailable, with Retry-After).
//   - A method that returns an error has written nothing (but for the failed
//     attempt CheckCode counts when it returns ErrCodeMismatch).
//   - A Store never reads a clock: every time it needs is passed in, so the
//     caller (and storetest) controls it.
//   - Records passed in and returned are values: a Store keeps no reference
//     to a caller's slices or maps and returns none of its own.
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
	// UserByUsername returns the user with that username, or ErrNotFound
	// (always for "").
	UserByUsername(ctx context.Context, username string) (User, error)
	// UpdateUser must be atomic: it applies u, all of it or nothing. Only
	// while the stored etag of user u.User.ID equals u.IfETag, it replaces
	// that user's record with u.User; then, when u.RevokeSessions is set,
	// revokes at u.At every family of the user live at u.At except
	// u.KeepSession (and returns their ids in UpdateResult.Revoked); then,
	// when u.Rotate is set, rotates that family as RotateSession(*u.Rotate)
	// does (and returns the new record in UpdateResult.Session); then, when
	// u.CreateSession is set, adds that family as CreateSession does (so a
	// family the revocation ended cannot be rotated, and a new one is not
	// revoked). The families u names are the user's: fiberauth sees to
	// that.
	//
	// Errors: ErrNotFound for an unknown user; ErrETagMismatch when the
	// stored etag is not u.IfETag (someone changed the user since it was
	// read; of concurrent updates read at one etag, at most one succeeds);
	// ErrConflict when the new email or username belongs to another user,
	// or u.CreateSession's id is taken; ErrNotCurrent when u.Rotate's family
	// is unknown, not live at u.Rotate.At, or its current token is not
	// u.Rotate.From.
	UpdateUser(ctx context.Context, u UserUpdate) (UpdateResult, error)

	// CreateSession adds a session family with its first refresh token
	// hash; ErrConflict when s.ID is taken.
	CreateSession(ctx context.Context, s Session) error
	// SessionByID returns the family with that id, revoked or expired or
	// not, until DeleteExpired removes it; ErrNotFound otherwise.
	SessionByID(ctx context.Context, id string) (Session, error)
	// RotateSession must be atomic: only if the family r.SessionID is live
	// at r.At (not revoked, before ExpiresAt and AbsoluteExpiresAt) and
	// r.From is its current token hash (a nil or empty r.From is never
	// current), it makes r.To current with Generation = r.Generation, keeps
	// r.From as PrevTokenHash with RotatedAt = r.At and Replay = r.Replay,
	// sets ExpiresAt = r.ExpiresAt and LastUsedAt = r.At, and returns the
	// new record. Otherwise it returns ErrNotCurrent (ErrNotFound for an
	// unknown family). Of any number of concurrent calls with the same
	// r.From, at most one succeeds. A family keeps its current and previous
	// token hashes only: older tokens carry their generation, so their
	// reuse is known without a history (fiberauth, not the store, reads it).
	RotateSession(ctx context.Context, r Rotation) (Session, error)
	// RevokeSession marks the family revoked at at. Revoking a revoked
	// family is a no-op that keeps the first time; an unknown one is
	// ErrNotFound.
	RevokeSession(ctx context.Context, id string, at time.Time) error
	// RevokeUserSessions revokes at at every family of the user that is live
	// at at, except the one with id except (none when empty), and returns
	// the ids it revoked (empty when none).
	RevokeUserSessions(ctx context.Context, userID, except string, at time.Time) ([]string, error)
	// ListSessions returns the user's families live at now, oldest first
	// (by CreatedAt, then ID); an empty, non-nil list when there are none.
	ListSessions(ctx context.Context, userID string, now time.Time) ([]Session, error)
}

// CodeStore is the optional capability of keeping one-time codes (email
// confirmation, password reset) in the store, so that a code sent by one
// instance works on another and survives a restart.
type CodeStore interface {
	// PutCode stores c with no failed attempts, replacing any code of the
	// same user and purpose.
	PutCode(ctx context.Context, c Code) error
	// CheckCode must be atomic. When the user's code for purpose is
	// unexpired at now and its hash equals hash, it returns nil and leaves
	// the code in place (UseCode spends it). When it exists but differs, it
	// counts a failed attempt, deletes the code once CodeMaxAttempts
	// attempts have failed, and returns ErrCodeMismatch: of any number of
	// concurrent wrong checks of one code, at most CodeMaxAttempts return
	// ErrCodeMismatch, the others ErrNotFound. With no unexpired code it
	// returns ErrNotFound.
	CheckCode(ctx context.Context, userID, purpose string, hash []byte, now time.Time) error
	// UseCode must be atomic: it is UpdateUser(u) and, in the same
	// all-or-nothing step, the deletion of the code of c.UserID and
	// c.Purpose, which must have hash c.Hash and be unexpired at u.At.
	// When that code is not there (spent, burnt, expired or replaced) it
	// returns ErrCodeSpent and writes nothing; otherwise it fails as
	// UpdateUser does. Of concurrent calls for one code, at most one
	// succeeds.
	UseCode(ctx context.Context, c Code, u UserUpdate) (UpdateResult, error)
}

// ChallengeStore is the optional capability of keeping login challenges
// (the second step of a login) in the store, so that the step can be
// answered on any instance.
type ChallengeStore interface {
	// CreateChallenge stores c (with c.Attempts as given).
	CreateChallenge(ctx context.Context, c Challenge) error
	// ChallengeByHash returns the challenge with that hash if it is
	// unexpired at now; ErrNotFound otherwise.
	ChallengeByHash(ctx context.Context, hash []byte, now time.Time) (Challenge, error)
	// ConsumeChallenge must be atomic: it deletes the challenge if it is
	// unexpired at now and returns nil, or returns ErrNotFound. Of
	// concurrent calls with one hash, at most one succeeds.
	ConsumeChallenge(ctx context.Context, hash []byte, now time.Time) error
	// FailChallenge must be atomic: it counts a wrong answer and deletes
	// the challenge once CodeMaxAttempts answers have failed (expired or
	// not: fiberauth calls it only for a challenge it has just read).
	// ErrNotFound when it is gone: of concurrent calls on one challenge, at
	// most CodeMaxAttempts return nil.
	FailChallenge(ctx context.Context, hash []byte) error
}

// AttemptStore is the optional capability of keeping throttling counters
// in the store, so that every instance sharing it counts together. Keys are
// short strings fiberauth makes (an account or a network and what is
// limited); a counter lives in a fixed window.
type AttemptStore interface {
	// ReserveAttempt must be atomic: when the window open under key at now
	// holds fewer than limit attempts (limit ≥ 1), it counts one more,
	// opening a window that ends at now+window when none is open, and
	// returns true; otherwise it counts nothing and returns false. Either
	// way it returns when the window ends. Of any number of concurrent calls
	// in one window, at most limit are granted: fiberauth reserves an
	// attempt before the work it limits, so that parallel requests cannot
	// pass a limit.
	ReserveAttempt(ctx context.Context, key string, limit int, now time.Time, window time.Duration) (granted bool, ends time.Time, err error)
	// ReleaseAttempt must be atomic: it takes back one attempt counted under
	// key in the window open at now (a reservation whose work turned out
	// not to count); a no-op when there is none.
	ReleaseAttempt(ctx context.Context, key string, now time.Time) error
	// ResetAttempts forgets the count under key; a no-op when there is
	// none.
	ResetAttempts(ctx context.Context, key string) error
}

// TOTPStore is the optional capability of recording, per user, the last
// TOTP time step accepted, so that a code is accepted once across every
// instance.
type TOTPStore interface {
	// UseTOTPStep must be atomic: it records step as the user's last
	// accepted step only if it is greater than the one recorded (0 for a
	// user who has none), and returns ErrStepUsed otherwise. Of concurrent
	// calls with one step, at most one succeeds. UpdateUser never changes
	// the recorded step. ErrNotFound for an unknown user.
	UseTOTPStep(ctx context.Context, userID string, step int64) error
}

// Passkey is a user's WebAuthn credential (a passkey), as registration
// left it and sign-ins keep it: what verifying an assertion needs, and
// what the user sees of it.
type Passkey struct {
	// ID is the credential id the authenticator chose (raw bytes, at most
	// 1023): unique across every user.
	ID     []byte
	UserID string
	// PublicKey is the credential's public key, as the authenticator
	// registered it (COSE).
	PublicKey []byte
	// SignCount is the authenticator's signature counter at the last use;
	// 0 for authenticators that keep none.
	SignCount uint32
	// Transports are how the client may reach the authenticator ("usb",
	// "internal", "hybrid", …), as registration said.
	Transports []string
	// AAGUID names the authenticator's model (16 bytes; zeros for none).
	AAGUID []byte
	// BackupEligible and BackupState are the authenticator's flags: a
	// synced passkey is both.
	BackupEligible, BackupState bool
	// AttestationType is the attestation's format ("none", "packed", …).
	AttestationType string
	// Name is what the user calls it.
	Name       string
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// PasskeyStore is the optional capability of keeping users' passkeys.
type PasskeyStore interface {
	// AddPasskey stores p. ErrConflict if a passkey with p.ID exists (of
	// any user), ErrNotFound if p.UserID names no user; nothing is
	// written then.
	AddPasskey(ctx context.Context, p Passkey) error
	// PasskeyByID returns the passkey with that credential id, or
	// ErrNotFound.
	PasskeyByID(ctx context.Context, id []byte) (Passkey, error)
	// PasskeysOf returns the user's passkeys, oldest first: an empty list
	// for a user with none (and for an unknown user).
	PasskeysOf(ctx context.Context, userID string) ([]Passkey, error)
	// UsePasskey must be atomic: it records count as the passkey's sign
	// count, and at as its LastUsedAt, only if count is greater than the
	// count recorded, or both are 0 (an authenticator that keeps no
	// counter); ErrNotCurrent otherwise, a counter that went back (a
	// cloned authenticator, or a replayed assertion), and nothing is
	// written. Of concurrent calls with one count, at most one succeeds
	// unless the count is 0. ErrNotFound for an unknown passkey.
	UsePasskey(ctx context.Context, id []byte, count uint32, at time.Time) error
	// RenamePasskey sets the name of the user's passkey id: ErrNotFound if
	// the user has no passkey with that id (another user's included).
	RenamePasskey(ctx context.Context, userID string, id []byte, name string) error
	// DeletePasskey removes the user's passkey id: ErrNotFound if the user
	// has none with that id (another user's included).
	DeletePasskey(ctx context.Context, userID string, id []byte) error
}

// KeyStore is the optional capability of keeping the asymmetric signing
// keys fiberauth generates (Config.SigningAlgorithm), sealed, so that every
// instance sharing the store signs with the same keys and verifies the
// others' tokens. Keys form one line of generations: the greatest is the
// newest; fiberauth decides from their times which one signs and when an
// old one is deleted.
type KeyStore interface {
	// AddSigningKey must be atomic: it stores k only if k.Generation is one
	// more than the greatest generation stored (1 when none is) and k.ID is
	// not taken; otherwise it returns ErrConflict and writes nothing. Of
	// concurrent calls with one generation, at most one succeeds, so that
	// instances rotating at once add one key.
	AddSigningKey(ctx context.Context, k StoredSigningKey) error
	// SigningKeys returns every stored key, by generation, oldest first; an
	// empty, non-nil list when there are none.
	SigningKeys(ctx context.Context) ([]StoredSigningKey, error)
	// DeleteSigningKey removes the key with that id; a no-op when there is
	// none.
	DeleteSigningKey(ctx context.Context, id string) error
}

// StoredSigningKey is a generated signing key as a KeyStore keeps it.
type StoredSigningKey struct {
	// ID is the key id ("kid") of the tokens it signs.
	ID string
	// Generation orders the keys: one more than the key before it.
	Generation int64
	// Algorithm is AlgorithmEdDSA or AlgorithmES256.
	Algorithm string
	// Sealed is the PKCS#8 private key sealed with AES-GCM under a key
	// derived from Config.Secret. It never leaves the package in a response
	// or a log.
	Sealed    []byte `json:"-"`
	CreatedAt time.Time
	// NotBefore is when it starts signing; the key before it stops then.
	NotBefore time.Time
}

// SessionUserReader is the optional capability of reading a session family
// and its user in one step: a refresh needs both, and a database answers
// them in one statement (one round trip) instead of two. Without it,
// Refresh reads them one after the other with SessionByID and UserByID.
type SessionUserReader interface {
	// SessionWithUser returns the family with that id, as SessionByID
	// does, and the user it belongs to, as UserByID does, read together;
	// ErrNotFound when the family is unknown or its user is.
	SessionWithUser(ctx context.Context, id string) (Session, User, error)
}

// UserRotator is the optional capability of rotating a family on
// condition of its user, in one step: Refresh uses it when this instance
// has the family and its user cached (Config.CacheTTL), to sign the new
// access token with the cached etag and write the rotation without reading
// first, one statement instead of two. When the condition fails (the cache
// was behind), Refresh reads and decides as it does without the
// capability.
type UserRotator interface {
	// RotateSessionIfUser must be atomic: it is RotateSession(r) (the
	// same conditions, the same change, ErrNotFound for an unknown
	// family), done only if the family's user is userID, that user's ETag
	// is etag and it is not Disabled; it returns the new record and the
	// user. Otherwise ErrNotCurrent, and nothing is written.
	RotateSessionIfUser(ctx context.Context, r Rotation, userID, etag string) (Session, User, error)
}

// Cleaner is the optional capability of deleting expired records, which
// fiberauth calls every Config.CleanupInterval, off the request path.
type Cleaner interface {
	// DeleteExpired removes session families whose ExpiresAt or
	// AbsoluteExpiresAt is at or before now (revoked ones too), and, of the
	// optional capabilities the store has, the codes, challenges and
	// attempt windows expired at now.
	DeleteExpired(ctx context.Context, now time.Time) error
}

// Notifier is the optional capability of telling every Auth that shares
// the store, in this process or another, about the changes any of them
// made: then a logout, a password change, DisableUser or SetRoles on one
// instance is refused by the others at once, instead of within
// Config.CacheTTL.
//
// The store announces, as part of the change where it can (a notice of a
// change that did not happen is harmless: it costs a store read):
//   - every UpdateUser and UseCode that succeeded, as a Change naming the
//     user, its new etag and the families it revoked;
//   - every RevokeSession that revoked a family, and every
//     RevokeUserSessions that revoked any, as a Change naming them.
type Notifier interface {
	// Subscribe calls fn with every Change committed through the store, by
	// any process, from when it returns until cancel is called; once
	// cancel has returned, fn is not called again. fn may be called from
	// several goroutines at once, and must return quickly without calling
	// the store. When changes may have been missed (the store lost its link
	// to the others and got it back), it calls fn with Change{Lost: true}
	// once the link is back. An error means nothing was subscribed.
	Subscribe(fn func(Change)) (cancel func(), err error)
}

// Change is what a Notifier announces.
type Change struct {
	// UserID is the user whose record changed, with ETag its new etag;
	// empty when the change was only of session families.
	UserID string
	ETag   string
	// Sessions are the ids of the families revoked.
	Sessions []string
	// Lost says that changes may have been missed: everything cached from
	// the store must be read again.
	Lost bool
}

// CodeMaxAttempts is how many wrong tries burn a one-time code or a login
// challenge.
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
	// from Config.Secret; set by SetupTOTP, in use once MFAEnabled.
	TOTPSecret []byte `json:"-"`
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

// UserUpdate is one all-or-nothing change of a user and the session
// families it affects; see Store.UpdateUser.
type UserUpdate struct {
	// User is the new record; it replaces the stored one with its ID.
	User User
	// IfETag is the etag the record was read with: the update applies only
	// while the stored etag still equals it.
	IfETag string
	// At is when the change happens (revocations, rotation).
	At time.Time
	// RevokeSessions revokes every live family of the user except
	// KeepSession.
	RevokeSessions bool
	KeepSession    string
	// Rotate, when set, rotates a family with the change.
	Rotate *Rotation
	// CreateSession, when set, starts a family with the change.
	CreateSession *Session
}

// UpdateResult is what Store.UpdateUser did besides replacing the record.
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
	// Generation counts the family's rotations: the current refresh token
	// carries it, so that an older one is known for reuse.
	Generation int64
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
	SessionID  string
	From       []byte // the hash of the token being replaced: the current one
	To         []byte // the hash of the new token
	Generation int64  // the new token's generation
	At         time.Time
	ExpiresAt  time.Time // the new token's expiry
	Replay     []byte    // the issued pair, sealed for grace-window replays
}

// Challenge is a login challenge: the second step of a login, bound to one
// user and one kind, stored only as a hash of its token.
type Challenge struct {
	Hash    []byte `json:"-"`
	UserID  string
	Kind    string // ChallengeMFA or ChallengeNewPassword
	Sliding bool   // carried from the login request
	// ETag is the user's etag when the challenge was issued: any change of
	// the user since ends it.
	ETag      string
	ExpiresAt time.Time
	Attempts  int // wrong answers so far
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
	Attempts  int // wrong tries so far
}

// Code purposes. The example's dev outbox shows them as they are.
const (
	PurposeEmailConfirm  = "email_confirm"
	PurposePasswordReset = "password_reset"
	// PurposeAccountExists is a notice, not a code: someone signed up with
	// the address of an existing account (CodeMessage.Code is empty).
	PurposeAccountExists = "account_exists"
)
