package fiberauth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// Passkeys (WebAuthn): registering them, signing in with one, and using
// one as the second factor. go-webauthn parses and verifies every
// ceremony; this file decides which ceremony a response may finish and
// what it then does. A ceremony's challenge is stored like a login
// challenge (ChallengeStore: several instances share it), hashed, single
// use, bound to its purpose and, where there is one, its user, for
// challengeTTL.

// PasskeyConfig turns on passkeys: Config.Passkeys.
type PasskeyConfig struct {
	// RPID is the relying party id: the domain the passkeys belong to
	// ("example.com"). Every origin's host must be it or a subdomain of
	// it. Required.
	RPID string
	// RPName is the site's name, as the browser shows it when a passkey
	// is made ("Example"). Required.
	RPName string
	// Origins are the exact origins of the pages that use passkeys
	// ("https://example.com", "https://app.example.com"): https, or http
	// on localhost only. A response made on any other page is refused.
	// Required.
	Origins []string
}

// Passkey challenge kinds (Challenge.Kind): a ceremony's challenge
// finishes only the ceremony it was issued for.
const (
	kindPasskeyRegister = "passkey_register"
	kindPasskeyLogin    = "passkey_login"
	// kindPasskeyLoginNamed is a sign-in begun with a name: only a passkey
	// of the user it names (UserID; none for a name without an account)
	// finishes it.
	kindPasskeyLoginNamed = "passkey_login_named"
)

// ChallengeWebAuthn names the answer to a ChallengeMFA with a passkey
// instead of a code: PendingChallenge.Available lists it when the user
// has a passkey, and ChallengeInput.Challenge names it with a Credential.
const ChallengeWebAuthn = "WEB_AUTHN"

// freshSignIn is how recent a sign-in stands in for the password when
// passkeys are added or removed.
const freshSignIn = 5 * time.Minute

// maxPasskeys is how many passkeys one user may have.
const maxPasskeys = 20

// maxPasskeyName is the longest passkey name, in bytes.
const maxPasskeyName = 64

// maxCredentialID is the longest credential id WebAuthn allows, in bytes.
const maxCredentialID = 1023

// passkeyHandleSize is the size of the WebAuthn user handle.
const passkeyHandleSize = 32

// usePasskeys checks Config.Passkeys and sets passkeys up; without it
// they stay off.
func (a *Auth) usePasskeys() error {
	if a.cfg.Passkeys == nil {
		return nil
	}
	// A copy of its own, checked once: the host's may change after New.
	pc := &PasskeyConfig{RPID: a.cfg.Passkeys.RPID, RPName: a.cfg.Passkeys.RPName, Origins: slices.Clone(a.cfg.Passkeys.Origins)}
	a.cfg.Passkeys = pc
	store, ok := a.store.(PasskeyStore)
	if !ok {
		return errors.New("fiberauth: Config.Passkeys needs a Store with the PasskeyStore capability (memstore and sqlstore have it)")
	}
	if err := checkPasskeyConfig(pc); err != nil {
		return err
	}
	w, err := webauthn.New(&webauthn.Config{
		RPID:          pc.RPID,
		RPDisplayName: pc.RPName,
		RPOrigins:     append([]string(nil), pc.Origins...),
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.VerificationPreferred,
		},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: challengeTTL, TimeoutUVD: challengeTTL},
			Registration: webauthn.TimeoutConfig{Timeout: challengeTTL, TimeoutUVD: challengeTTL},
		},
	})
	if err != nil {
		return fmt.Errorf("fiberauth: Config.Passkeys: %w", err)
	}
	if a.passkeyKey, err = deriveKey(a.cfg.Secret, "passkey"); err != nil {
		return err
	}
	a.passkeys, a.webauthn = store, w
	return nil
}

// checkPasskeyConfig refuses a relying party that no browser would
// accept a passkey for.
func checkPasskeyConfig(pc *PasskeyConfig) error {
	rp := pc.RPID
	if rp == "" || rp != strings.ToLower(rp) || strings.ContainsAny(rp, ":/ ") || strings.Trim(rp, ".") != rp {
		return fmt.Errorf("fiberauth: Config.Passkeys.RPID %q must be a lowercase domain without scheme or port (\"example.com\")", rp)
	}
	if strings.TrimSpace(pc.RPName) == "" {
		return errors.New("fiberauth: Config.Passkeys.RPName is required")
	}
	if len(pc.Origins) == 0 {
		return errors.New("fiberauth: Config.Passkeys.Origins is required: the origins of the pages that use passkeys")
	}
	for _, o := range pc.Origins {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("fiberauth: Config.Passkeys.Origins: %q is not an origin (\"https://example.com\")", o)
		}
		host := u.Hostname()
		local := host == "localhost" || strings.HasSuffix(host, ".localhost")
		if u.Scheme != "https" && !(u.Scheme == "http" && local) {
			return fmt.Errorf("fiberauth: Config.Passkeys.Origins: %q must be https (http only on localhost)", o)
		}
		if host != rp && !strings.HasSuffix(host, "."+rp) {
			return fmt.Errorf("fiberauth: Config.Passkeys.Origins: the host of %q is neither the RPID %q nor a subdomain of it", o, rp)
		}
	}
	return nil
}

// errPasskeysOff answers the passkey calls of an Auth without
// Config.Passkeys.
var errPasskeysOff = &FieldError{Where: "credential", Reason: "passkeys_off", Msg: "Passkeys are not enabled on this server."}

func (a *Auth) passkeysOn() error {
	if a.webauthn == nil {
		return errPasskeysOff
	}
	return nil
}

// PasskeyOptions are a ceremony's options for the browser: PublicKey is
// the JSON of PublicKeyCredentialCreationOptions (registration) or
// PublicKeyCredentialRequestOptions (sign-in), binary members in
// base64url, as PublicKeyCredential.parseCreationOptionsFromJSON and
// parseRequestOptionsFromJSON take them.
type PasskeyOptions struct {
	PublicKey json.RawMessage
	ExpiresAt time.Time
}

// passkeyUser is a user as go-webauthn sees one.
type passkeyUser struct {
	handle        []byte
	name, display string
	creds         []webauthn.Credential
}

func (u *passkeyUser) WebAuthnID() []byte                         { return u.handle }
func (u *passkeyUser) WebAuthnName() string                       { return u.name }
func (u *passkeyUser) WebAuthnDisplayName() string                { return u.display }
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// userHandle is the user's WebAuthn user handle: a keyed hash of the id,
// so that the authenticator keeps nothing about the user.
func (a *Auth) userHandle(userID string) []byte {
	m := hmac.New(sha256.New, a.passkeyKey)
	m.Write([]byte("user\x00"))
	m.Write([]byte(userID))
	return m.Sum(nil)[:passkeyHandleSize]
}

func (a *Auth) passkeyUserOf(u *User, keys []Passkey) *passkeyUser {
	pu := &passkeyUser{handle: a.userHandle(u.ID), name: u.Email, display: u.DisplayName}
	if u.Username != "" {
		pu.name = u.Username
	}
	if pu.display == "" {
		pu.display = pu.name
	}
	for i := range keys {
		pu.creds = append(pu.creds, credentialOf(&keys[i]))
	}
	return pu
}

// credentialOf is a stored passkey as go-webauthn verifies one.
func credentialOf(p *Passkey) webauthn.Credential {
	c := webauthn.Credential{
		ID:                p.ID,
		PublicKey:         p.PublicKey,
		AttestationFormat: p.AttestationType,
		Flags:             webauthn.CredentialFlags{UserPresent: true, BackupEligible: p.BackupEligible, BackupState: p.BackupState},
		Authenticator:     webauthn.Authenticator{AAGUID: p.AAGUID, SignCount: p.SignCount},
	}
	for _, t := range p.Transports {
		c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
	}
	return c
}

func descriptors(keys []Passkey) []protocol.CredentialDescriptor {
	d := make([]protocol.CredentialDescriptor, 0, len(keys))
	for i := range keys {
		c := credentialOf(&keys[i])
		d = append(d, c.Descriptor())
	}
	return d
}

// session is the go-webauthn session a stored challenge stands for: the
// options fiberauth always asks with, so nothing else needs storing.
func (a *Auth) webauthnSession(challenge string, handle []byte, register bool) webauthn.SessionData {
	s := webauthn.SessionData{
		Challenge:        challenge,
		RelyingPartyID:   a.cfg.Passkeys.RPID,
		UserID:           handle,
		UserVerification: protocol.VerificationPreferred,
	}
	if register {
		s.CredParams = webauthn.CredentialParametersDefault()
	}
	return s
}

// --- errors a ceremony's response gets ---

// passkeyRefusal is a response that does not finish its ceremony: 401
// invalid_grant with where "credential" and the reason.
func passkeyRefusal(reason, msg string) error {
	return &FieldError{Where: "credential", Reason: reason, Msg: msg, Err: ErrInvalidGrant}
}

var (
	errTooManyPasskeys  = fieldErr("credential", "too_many", fmt.Sprintf("A user may have at most %d passkeys: remove one first.", maxPasskeys))
	errPasskeyMalformed = fieldErr("credential", "malformed", "The passkey response is not a WebAuthn credential in JSON (PublicKeyCredential.toJSON()).")
	errPasskeyChallenge = passkeyRefusal("challenge_unknown", "The passkey response answers no current challenge: it expired, was used already, or was issued for something else. Start again.")
	errPasskeyUnknown   = passkeyRefusal("credential_unknown", "This passkey is not registered here.")
	errPasskeySignCount = passkeyRefusal("sign_count", "This passkey's signature counter went back: it may have been copied. It was refused.")
	errPasskeyUV        = passkeyRefusal("user_verification_required", "This account has two-factor authentication: use a passkey that checks your PIN or biometrics, or sign in with your password.")
)

// verifyRefusal says why go-webauthn refused a response: the origin or
// the relying party when they are wrong, else that it does not verify.
func (a *Auth) verifyRefusal(origin string, rpIDHash []byte, register bool) error {
	known := false
	for _, o := range a.cfg.Passkeys.Origins {
		known = known || strings.EqualFold(strings.TrimSuffix(o, "/"), origin)
	}
	want := sha256.Sum256([]byte(a.cfg.Passkeys.RPID))
	var err error
	switch {
	case !known:
		err = passkeyRefusal("origin_mismatch", "The passkey response was made on a page of another origin.")
	case rpIDHash != nil && !bytes.Equal(rpIDHash, want[:]):
		err = passkeyRefusal("rp_id_mismatch", "The passkey belongs to another site (relying party id).")
	default:
		err = passkeyRefusal("verification_failed", "The passkey response does not verify.")
	}
	if register {
		err.(*FieldError).Err = ErrInvalidRequest // 400: nothing to sign in to
	}
	return err
}

// --- registration ---

// passkeyStepUp is what adding or removing a passkey asks of a signed-in
// caller: a sign-in within freshSignIn, or else the password and, with
// 2FA on, a current code (as StepUp). It returns the user.
func (a *Auth) passkeyStepUp(ctx context.Context, caller Claims, up StepUp) (User, error) {
	if err := checkCaller(caller); err != nil {
		return User{}, err
	}
	if up.Password != "" || up.Code != "" {
		u, err := a.stepUp(ctx, caller, up, true)
		if err != nil || !u.MFAEnabled || len(up.Code) == totpDigits {
			return u, err
		}
		return a.spendRecoveryCode(ctx, &u, up.Code)
	}
	s, err := a.readSession(ctx, caller.SessionID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return User{}, storeErr("session by id", err)
	}
	if err != nil || s.UserID != caller.Subject || !s.Live(a.now()) {
		return User{}, fmt.Errorf("%w: %w", ErrInvalidToken, errTokenRevoked)
	}
	if a.now().Sub(s.CreatedAt) > freshSignIn {
		return User{}, fieldErr("password", "step_up_required",
			"Enter your password (and a current code, with two-factor authentication on), or sign in again: this needs a sign-in within the last 5 minutes.")
	}
	return a.callerUser(ctx, caller.Subject)
}

// spendRecoveryCode spends the recovery code a step-up was shown, which
// works once like any other; the etag stays (the ceremony it allows is
// bound to it).
func (a *Auth) spendRecoveryCode(ctx context.Context, u *User, code string) (User, error) {
	h := a.recoveryHash(u.ID, code)
	nu, err := a.modifyUser(ctx, u.ID, userChange{sameETag: true}, func(u *User) error { return removeRecoveryCode(u, h) })
	if err != nil {
		return User{}, err
	}
	a.emit(ctx, Event{Type: EventRecoveryCodeUsed, UserID: u.ID})
	return nu, nil
}

// BeginPasskeyRegistration starts adding a passkey for the caller's user,
// once the step-up checks out (a sign-in within the last 5 minutes, or up:
// the password, and a current code with 2FA on): the options for
// navigator.credentials.create, whose answer FinishPasskeyRegistration
// takes within 5 minutes. The user's passkeys are excluded, so an
// authenticator does not register twice. At most MaxLoginFailuresPerAccount
// registrations may be begun per ThrottleWindow without finishing.
func (a *Auth) BeginPasskeyRegistration(ctx context.Context, caller Claims, up StepUp) (_ PasskeyOptions, err error) {
	ctx, end := a.trace(ctx, "BeginPasskeyRegistration")
	defer func() { end(err) }()
	if err := a.passkeysOn(); err != nil {
		return PasskeyOptions{}, err
	}
	u, err := a.passkeyStepUp(ctx, caller, up)
	if err != nil {
		return PasskeyOptions{}, err
	}
	keys, err := a.passkeys.PasskeysOf(ctx, u.ID)
	if err != nil {
		return PasskeyOptions{}, storeErr("passkeys of", err)
	}
	if len(keys) >= maxPasskeys {
		return PasskeyOptions{}, errTooManyPasskeys
	}
	if _, err := a.reserve(ctx, limit{passkeyUserKey(u.ID), a.cfg.MaxLoginFailuresPerAccount, a.cfg.ThrottleWindow}); err != nil {
		return PasskeyOptions{}, err
	}
	creation, session, err := a.webauthn.BeginRegistration(a.passkeyUserOf(&u, nil), webauthn.WithExclusions(descriptors(keys)))
	if err != nil {
		return PasskeyOptions{}, fmt.Errorf("%w: passkey registration options: %w", ErrUnavailable, err)
	}
	return a.storeCeremony(ctx, session.Challenge, &u, kindPasskeyRegister, creation.Response)
}

// storeCeremony stores the challenge of a ceremony begun for u (nil: any
// user) and answers its options.
func (a *Auth) storeCeremony(ctx context.Context, challenge string, u *User, kind string, options any) (PasskeyOptions, error) {
	raw, err := json.Marshal(options)
	if err != nil {
		return PasskeyOptions{}, fmt.Errorf("%w: encoding passkey options: %w", ErrUnavailable, err)
	}
	ch := Challenge{Hash: hashToken(challenge), Kind: kind, ExpiresAt: a.now().Add(challengeTTL)}
	if u != nil {
		ch.UserID, ch.ETag = u.ID, u.ETag
	}
	if err := a.challenges.CreateChallenge(ctx, ch); err != nil {
		return PasskeyOptions{}, storeErr("create challenge", err)
	}
	a.maybeSweep()
	return PasskeyOptions{PublicKey: raw, ExpiresAt: ch.ExpiresAt}, nil
}

// PasskeyRegistration finishes adding a passkey.
type PasskeyRegistration struct {
	// Credential is the browser's answer to the options: the
	// PublicKeyCredential's JSON (toJSON()).
	Credential []byte
	// Name is what the user calls it (at most 64 bytes); empty: "Passkey".
	Name string
}

// FinishPasskeyRegistration verifies the browser's answer to the options
// BeginPasskeyRegistration gave the same user and stores the passkey. The
// challenge works once, for 5 minutes, and only if the user has not
// changed since (password, 2FA, …). The user's etag changes, so every
// access token of theirs is stale until refreshed, and EventPasskeyAdded
// is sent. A response that does not verify fails with 400 (where
// "credential", reason origin_mismatch, rp_id_mismatch or
// verification_failed), an unknown or spent challenge with 401
// invalid_grant; nothing is stored then.
func (a *Auth) FinishPasskeyRegistration(ctx context.Context, caller Claims, in PasskeyRegistration) (_ Passkey, err error) {
	ctx, end := a.trace(ctx, "FinishPasskeyRegistration")
	defer func() { end(err) }()
	if err := a.passkeysOn(); err != nil {
		return Passkey{}, err
	}
	if err := checkCaller(caller); err != nil {
		return Passkey{}, err
	}
	name, err := passkeyName(in.Name)
	if err != nil {
		return Passkey{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(in.Credential)
	if err != nil {
		return Passkey{}, errPasskeyMalformed
	}
	ch, err := a.openCeremony(ctx, parsed.Response.CollectedClientData.Challenge, caller.Subject, kindPasskeyRegister)
	if err != nil {
		return Passkey{}, err
	}
	u, err := a.callerUser(ctx, caller.Subject)
	if err != nil {
		return Passkey{}, err
	}
	if u.ETag != ch.ETag {
		return Passkey{}, errPasskeyChallenge // the user changed since: begin again
	}
	keys, err := a.passkeys.PasskeysOf(ctx, u.ID)
	if err != nil {
		return Passkey{}, storeErr("passkeys of", err)
	}
	if len(keys) >= maxPasskeys {
		return Passkey{}, errTooManyPasskeys
	}
	handle := a.userHandle(u.ID)
	cred, err := a.webauthn.CreateCredential(a.passkeyUserOf(&u, nil), a.webauthnSession(ch.token, handle, true), parsed)
	if err != nil {
		return Passkey{}, a.verifyRefusal(parsed.Response.CollectedClientData.Origin, parsed.Response.AttestationObject.AuthData.RPIDHash, true)
	}
	now := a.now()
	p := Passkey{
		ID: cred.ID, UserID: u.ID, PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount,
		AAGUID: cred.Authenticator.AAGUID, BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState,
		AttestationType: cred.AttestationFormat, Name: name, CreatedAt: now,
	}
	p.Transports = knownTransports(cred.Transport)
	if len(p.ID) == 0 || len(p.ID) > maxCredentialID {
		return Passkey{}, a.verifyRefusal(parsed.Response.CollectedClientData.Origin, nil, true)
	}
	// The etag first, and only from the etag the ceremony began at: of
	// registrations finished at once one goes on (so the limit holds), and
	// a failure after it leaves a needless etag change, never a passkey
	// added without one.
	if _, err := a.modifyUser(ctx, u.ID, userChange{ifETag: ch.ETag}, func(*User) error { return nil }); err != nil {
		if errors.Is(err, ErrInvalidGrant) {
			return Passkey{}, errPasskeyChallenge
		}
		return Passkey{}, err
	}
	switch err := a.passkeys.AddPasskey(ctx, p); {
	case errors.Is(err, ErrConflict):
		return Passkey{}, fieldErr("credential", "already_registered", "This passkey is registered already.")
	case errors.Is(err, ErrNotFound):
		return Passkey{}, fmt.Errorf("%w: %w: user gone", ErrInvalidToken, errTokenRevoked)
	case err != nil:
		return Passkey{}, storeErr("add passkey", err)
	}
	a.releaseCeremony(ctx, passkeyUserKey(u.ID), &ch)
	a.emit(ctx, Event{Type: EventPasskeyAdded, UserID: u.ID, SessionID: caller.SessionID})
	return p, nil
}

// ceremony is a stored challenge of a passkey ceremony and its token (the
// WebAuthn challenge, base64url).
type ceremony struct {
	Challenge
	token string
}

// openCeremony spends the live challenge behind token, of one of kinds,
// issued for userID ("" for any user). Of concurrent responses to one
// challenge, one goes on.
func (a *Auth) openCeremony(ctx context.Context, token, userID string, kinds ...string) (ceremony, error) {
	ch, err := a.openChallenge(ctx, token, kinds...)
	if errors.Is(err, ErrInvalidGrant) {
		return ceremony{}, errPasskeyChallenge
	}
	if err != nil {
		return ceremony{}, err
	}
	if ch.UserID != "" && userID != "" && ch.UserID != userID {
		return ceremony{}, errPasskeyChallenge // someone else's: left alone
	}
	if err := a.consumeChallenge(ctx, &ch); err != nil {
		if errors.Is(err, ErrInvalidGrant) {
			return ceremony{}, errPasskeyChallenge
		}
		return ceremony{}, err
	}
	return ceremony{Challenge: ch, token: token}, nil
}

// releaseCeremony gives back the attempt that beginning a ceremony took
// under key, now that it has finished. A failure is only logged.
func (a *Auth) releaseCeremony(ctx context.Context, key string, ch *ceremony) {
	if err := a.attempts.ReleaseAttempt(ctx, key, ch.ExpiresAt.Add(-challengeTTL)); err != nil {
		a.log.Warn("fiberauth: giving back a passkey ceremony's attempt failed", "err", err)
	}
}

// knownTransports are the transports of ts that WebAuthn defines, each
// once: what a client says is only a hint for browsers, and anything else
// is dropped.
func knownTransports(ts []protocol.AuthenticatorTransport) []string {
	var out []string
	for _, t := range ts {
		switch t {
		case protocol.USB, protocol.NFC, protocol.BLE, protocol.SmartCard, protocol.Hybrid, protocol.Internal:
			if !slices.Contains(out, string(t)) {
				out = append(out, string(t))
			}
		}
	}
	return out
}

func passkeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "Passkey", nil
	}
	if len(name) > maxPasskeyName || !validText(name) {
		return "", fieldErr("name", "invalid", fmt.Sprintf("A passkey name is at most %d bytes of text.", maxPasskeyName))
	}
	return name, nil
}

// --- the user's passkeys ---

// Passkeys lists the caller's user's passkeys, oldest first.
func (a *Auth) Passkeys(ctx context.Context, caller Claims) (_ []Passkey, err error) {
	ctx, end := a.trace(ctx, "Passkeys")
	defer func() { end(err) }()
	if err := a.passkeysOn(); err != nil {
		return nil, err
	}
	if err := checkCaller(caller); err != nil {
		return nil, err
	}
	keys, err := a.passkeys.PasskeysOf(ctx, caller.Subject)
	return keys, storeErr("passkeys of", err)
}

// RenamePasskey renames one of the caller's user's passkeys and returns
// it: ErrNotFound for an id that is not one of theirs.
func (a *Auth) RenamePasskey(ctx context.Context, caller Claims, id []byte, name string) (_ Passkey, err error) {
	ctx, end := a.trace(ctx, "RenamePasskey")
	defer func() { end(err) }()
	if err := a.passkeysOn(); err != nil {
		return Passkey{}, err
	}
	if err := checkCaller(caller); err != nil {
		return Passkey{}, err
	}
	if name, err = passkeyName(name); err != nil {
		return Passkey{}, err
	}
	if err := a.passkeys.RenamePasskey(ctx, caller.Subject, id, name); err != nil {
		return Passkey{}, storeErr("rename passkey", err)
	}
	p, err := a.passkeys.PasskeyByID(ctx, id)
	if err == nil && p.UserID != caller.Subject {
		err = ErrNotFound // deleted and registered again by another user meanwhile
	}
	return p, storeErr("passkey by id", err)
}

// DeletePasskey removes one of the caller's user's passkeys once the
// step-up checks out (as BeginPasskeyRegistration's): ErrNotFound for an
// id that is not one of theirs. The etag changes and EventPasskeyRemoved
// is sent.
func (a *Auth) DeletePasskey(ctx context.Context, caller Claims, id []byte, up StepUp) (err error) {
	ctx, end := a.trace(ctx, "DeletePasskey")
	defer func() { end(err) }()
	if err := a.passkeysOn(); err != nil {
		return err
	}
	u, err := a.passkeyStepUp(ctx, caller, up)
	if err != nil {
		return err
	}
	p, err := a.passkeys.PasskeyByID(ctx, id)
	if err == nil && p.UserID != u.ID {
		err = ErrNotFound
	}
	if err != nil {
		return storeErr("passkey by id", err)
	}
	// The etag first, as when adding one: a failure after it leaves a
	// needless etag change, never a half-done removal.
	if _, err := a.modifyUser(ctx, u.ID, userChange{}, func(*User) error { return nil }); err != nil {
		return err
	}
	if err := a.passkeys.DeletePasskey(ctx, u.ID, id); err != nil {
		return storeErr("delete passkey", err)
	}
	a.emit(ctx, Event{Type: EventPasskeyRemoved, UserID: u.ID, SessionID: caller.SessionID})
	return nil
}

// --- signing in ---

// BeginPasskeyLogin starts a sign-in with a passkey: the options for
// navigator.credentials.get, whose answer FinishPasskeyLogin takes within 5
// minutes. Without name the browser offers the passkeys it has for the
// site (discoverable credentials). With name (an email or username) the
// options list that account's passkeys (without transports), and only
// they finish it; a name without an account, or an account without
// passkeys, gets one or two made-up ones that stay the same for the name,
// so the answer does not tell whether the account exists. Each call
// counts under a limit of its own per client network
// (MaxLoginFailuresPerIP per ThrottleWindow) until a sign-in with it
// succeeds.
func (a *Auth) BeginPasskeyLogin(ctx context.Context, name string) (_ PasskeyOptions, err error) {
	ctx, end := a.trace(ctx, "BeginPasskeyLogin")
	defer func() { end(err) }()
	if err := a.passkeysOn(); err != nil {
		return PasskeyOptions{}, err
	}
	var (
		u     *User
		allow []protocol.CredentialDescriptor
		kind  = kindPasskeyLogin
	)
	if name != "" {
		if name, err = normalizeName(name); err != nil {
			return PasskeyOptions{}, err
		}
		kind = kindPasskeyLoginNamed
		found, err := a.userByName(ctx, name)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return PasskeyOptions{}, err
		}
		var keys []Passkey
		if err == nil {
			if keys, err = a.passkeys.PasskeysOf(ctx, found.ID); err != nil {
				return PasskeyOptions{}, storeErr("passkeys of", err)
			}
			u = &found
		}
		// Without transports (a made-up credential has none to show), and
		// made up when there is none.
		allow = descriptors(keys)
		for i := range allow {
			allow[i].Transport = nil
		}
		if len(allow) == 0 {
			allow = a.decoyCredentials(name)
		}
	}
	if ip := ClientFrom(ctx).IP; ip != "" {
		if _, err := a.reserve(ctx, limit{passkeyNetKey(ip), a.cfg.MaxLoginFailuresPerIP, a.cfg.ThrottleWindow}); err != nil {
			return PasskeyOptions{}, err
		}
	}
	assertion, session, err := a.webauthn.BeginDiscoverableLogin(webauthn.WithAllowedCredentials(allow))
	if err != nil {
		return PasskeyOptions{}, fmt.Errorf("%w: passkey login options: %w", ErrUnavailable, err)
	}
	return a.storeCeremony(ctx, session.Challenge, u, kind, assertion.Response)
}

// decoyCredentials are the credentials the options list for a name with
// no passkeys: one or two (as most users have), the same ones for the
// name every time.
func (a *Auth) decoyCredentials(name string) []protocol.CredentialDescriptor {
	m := hmac.New(sha256.New, a.passkeyKey)
	m.Write([]byte("decoy\x00"))
	m.Write([]byte(name))
	sum := m.Sum(nil)
	d := []protocol.CredentialDescriptor{{Type: protocol.PublicKeyCredentialType, CredentialID: sum}}
	if sum[0]&1 == 1 {
		m.Write([]byte{1})
		d = append(d, protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: m.Sum(nil)})
	}
	return d
}

// PasskeyLogin finishes a sign-in with a passkey.
type PasskeyLogin struct {
	// Credential is the browser's answer to BeginPasskeyLogin's options:
	// the PublicKeyCredential's JSON (toJSON()).
	Credential []byte
	// Sliding is as LoginInput's.
	Sliding bool
}

// FinishPasskeyLogin verifies the browser's answer to BeginPasskeyLogin's
// options and signs the passkey's user in, as Login does after the
// password: the same sessions, events and answers (a NEW_PASSWORD_REQUIRED
// challenge for a temporary password). A passkey that checked the user's
// PIN or biometrics (user verification) is two factors, so a user with
// 2FA on gets tokens; without user verification such a user is refused
// (401, reason user_verification_required). A response that does not
// verify fails with 401 invalid_grant, where "credential" and the reason
// (challenge_unknown, credential_unknown, origin_mismatch, rp_id_mismatch,
// verification_failed, sign_count: a counter that went back, sent as
// EventPasskeyRefused); each failure counts under the client network's
// limit on failed logins.
func (a *Auth) FinishPasskeyLogin(ctx context.Context, in PasskeyLogin) (_ SignIn, err error) {
	ctx, end := a.trace(ctx, "FinishPasskeyLogin")
	defer func() { end(err) }()
	if err := a.passkeysOn(); err != nil {
		return SignIn{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(in.Credential)
	if err != nil {
		return SignIn{}, errPasskeyMalformed
	}
	ip := ClientFrom(ctx).IP
	var limits []limit
	if ip != "" {
		limits = append(limits, limit{loginNetKey(ip), a.cfg.MaxLoginFailuresPerIP, a.cfg.ThrottleWindow})
	}
	r, err := a.reserve(ctx, limits...)
	if err != nil {
		return SignIn{}, err
	}
	u, ch, err := a.checkPasskeyLogin(ctx, parsed)
	if errors.Is(err, ErrInvalidGrant) {
		a.emit(ctx, Event{Type: EventLoginFailed, UserID: u.ID, Reason: "passkey_" + refusalReason(err)})
		return SignIn{}, err // the attempt counts
	}
	if err != nil {
		_ = r.release(ctx)
		return SignIn{}, err
	}
	if err := r.release(ctx); err != nil {
		return SignIn{}, err
	}
	if ip != "" {
		a.releaseCeremony(ctx, passkeyNetKey(ip), &ch)
	}
	if a.cfg.RequireVerifiedEmail && !u.EmailVerified {
		return SignIn{}, ErrEmailNotVerified
	}
	return a.signInWith(ctx, &u, in.Sliding, true)
}

// checkPasskeyLogin spends the challenge parsed answers and verifies it:
// the passkey's user (as far as known when it fails) and the challenge.
func (a *Auth) checkPasskeyLogin(ctx context.Context, parsed *protocol.ParsedCredentialAssertionData) (User, ceremony, error) {
	ch, err := a.openCeremony(ctx, parsed.Response.CollectedClientData.Challenge, "", kindPasskeyLogin, kindPasskeyLoginNamed)
	if err != nil {
		return User{}, ch, err
	}
	p, err := a.passkeys.PasskeyByID(ctx, parsed.RawID)
	if errors.Is(err, ErrNotFound) || err == nil && ch.Kind == kindPasskeyLoginNamed && p.UserID != ch.UserID {
		return User{}, ch, errPasskeyUnknown // a named sign-in takes the name's passkeys only
	}
	if err != nil {
		return User{}, ch, storeErr("passkey by id", err)
	}
	u, err := a.userByID(ctx, p.UserID)
	if errors.Is(err, ErrNotFound) {
		return User{}, ch, errPasskeyUnknown
	}
	if err != nil {
		return User{}, ch, err
	}
	err = a.verifyAssertion(ctx, &u, &p, ch.token, parsed, func() error {
		if u.Disabled {
			return passkeyRefusal("disabled", "This account is disabled.")
		}
		if u.MFAEnabled && !parsed.Response.AuthenticatorData.Flags.HasUserVerified() {
			return errPasskeyUV
		}
		return nil
	})
	return u, ch, err
}

// verifyAssertion verifies parsed, an answer to challenge, as made by the
// user's passkey p, then asks accept (nil: always) whether it is enough,
// and only then records the use (its sign count).
func (a *Auth) verifyAssertion(ctx context.Context, u *User, p *Passkey, challenge string, parsed *protocol.ParsedCredentialAssertionData, accept func() error) error {
	cred, err := a.webauthn.ValidateLogin(a.passkeyUserOf(u, []Passkey{*p}), a.webauthnSession(challenge, a.userHandle(u.ID), false), parsed)
	if err != nil {
		return a.verifyRefusal(parsed.Response.CollectedClientData.Origin, parsed.Response.AuthenticatorData.RPIDHash, false)
	}
	if accept != nil {
		if err := accept(); err != nil {
			return err
		}
	}
	count := parsed.Response.AuthenticatorData.Counter
	if cred.Authenticator.CloneWarning {
		a.emit(ctx, Event{Type: EventPasskeyRefused, UserID: u.ID, Reason: "sign_count"})
		return errPasskeySignCount
	}
	switch err := a.passkeys.UsePasskey(ctx, p.ID, count, a.now()); {
	case errors.Is(err, ErrNotCurrent):
		a.emit(ctx, Event{Type: EventPasskeyRefused, UserID: u.ID, Reason: "sign_count"})
		return errPasskeySignCount
	case errors.Is(err, ErrNotFound):
		return errPasskeyUnknown // removed meanwhile
	case err != nil:
		return storeErr("use passkey", err)
	}
	return nil
}

// refusalReason is the reason of a passkey refusal, for events.
func refusalReason(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Reason
	}
	return "refused"
}

// --- the second factor ---

// mfaChallenge is the WebAuthn challenge of the ChallengeMFA with hash h:
// derived from it, so that answering with a passkey stores nothing more,
// and spent with it.
func (a *Auth) mfaChallenge(h []byte) []byte {
	m := hmac.New(sha256.New, a.passkeyKey)
	m.Write([]byte("mfa\x00"))
	m.Write(h)
	return m.Sum(nil)
}

// BeginPasskeyChallenge gives the options for answering a ChallengeMFA
// (session is its PendingChallenge.Session) with one of the user's
// passkeys instead of a code: CompleteChallenge takes the answer as
// ChallengeWebAuthn. A user without passkeys gets 400 (reason
// no_passkeys); an unknown or spent session, 401 invalid_grant.
func (a *Auth) BeginPasskeyChallenge(ctx context.Context, session string) (_ PasskeyOptions, err error) {
	ctx, end := a.trace(ctx, "BeginPasskeyChallenge")
	defer func() { end(err) }()
	if err := a.passkeysOn(); err != nil {
		return PasskeyOptions{}, err
	}
	if err := required("session", session); err != nil {
		return PasskeyOptions{}, err
	}
	ch, _, err := a.openMFA(ctx, session)
	if err != nil {
		return PasskeyOptions{}, err
	}
	keys, err := a.passkeys.PasskeysOf(ctx, ch.UserID)
	if err != nil {
		return PasskeyOptions{}, storeErr("passkeys of", err)
	}
	if len(keys) == 0 {
		return PasskeyOptions{}, fieldErr("session", "no_passkeys", "This account has no passkey: answer with a code.")
	}
	assertion, _, err := a.webauthn.BeginLogin(a.passkeyUserOf(&User{ID: ch.UserID}, keys), webauthn.WithChallenge(a.mfaChallenge(ch.Hash)))
	if err != nil {
		return PasskeyOptions{}, fmt.Errorf("%w: passkey challenge options: %w", ErrUnavailable, err)
	}
	raw, err := json.Marshal(assertion.Response)
	if err != nil {
		return PasskeyOptions{}, fmt.Errorf("%w: encoding passkey options: %w", ErrUnavailable, err)
	}
	return PasskeyOptions{PublicKey: raw, ExpiresAt: ch.ExpiresAt}, nil
}

// answerWebAuthn answers a ChallengeMFA with a passkey: under the limit on
// wrong second-factor codes, a response that does not verify counts
// against the challenge as a wrong code does.
func (a *Auth) answerWebAuthn(ctx context.Context, in ChallengeInput) (SignIn, error) {
	if len(in.Credential) == 0 {
		return SignIn{}, fieldErr("credential", "required", "The field \"credential\" is required.")
	}
	if err := a.passkeysOn(); err != nil {
		return SignIn{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(in.Credential)
	if err != nil {
		return SignIn{}, errPasskeyMalformed
	}
	ch, u, err := a.openMFA(ctx, in.Session)
	if err != nil {
		return SignIn{}, err
	}
	want := base64.RawURLEncoding.EncodeToString(a.mfaChallenge(ch.Hash))
	if err := a.checkedCode(ctx, u.ID, purposeMFA, func() error {
		if parsed.Response.CollectedClientData.Challenge != want {
			return a.failedWith(ctx, &ch, errPasskeyChallenge)
		}
		p, err := a.passkeys.PasskeyByID(ctx, parsed.RawID)
		if errors.Is(err, ErrNotFound) || err == nil && p.UserID != u.ID {
			return a.failedWith(ctx, &ch, errPasskeyUnknown)
		}
		if err != nil {
			return storeErr("passkey by id", err)
		}
		// The challenge is spent before the use is recorded, so that of
		// one answer sent twice the second is refused as spent, not as a
		// counter gone back.
		spend := func() error { return a.consumeChallenge(ctx, &ch) }
		if err := a.verifyAssertion(ctx, &u, &p, want, parsed, spend); err != nil {
			if errors.Is(err, ErrInvalidGrant) {
				return a.failedWith(ctx, &ch, err)
			}
			return err
		}
		return nil
	}); err != nil {
		return SignIn{}, err
	}
	t, err := a.startSession(ctx, &u, ch.Sliding)
	if err != nil {
		return SignIn{}, err
	}
	return a.signedIn(ctx, t), nil
}

// failedWith counts a wrong answer against ch (failChallenge) and answers
// err, which says why.
func (a *Auth) failedWith(ctx context.Context, ch *Challenge, err error) error {
	if ferr := a.failChallenge(ctx, ch); !errors.Is(ferr, ErrInvalidGrant) {
		return ferr
	}
	return err
}
