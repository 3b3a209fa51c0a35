package fiberauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// The handlers Mount registers: each decodes its request, calls the Go
// method of its flow and encodes the answer. Request fields carry their
// wire names and byte limits (checkStrings).

type loginRequest struct {
	Username string `json:"username" limit:"254"`
	Email    string `json:"email" limit:"254"`
	Password string `json:"password" limit:"1024"`
	Sliding  bool   `json:"sliding"`
}

func (m *mount) login(c *fiber.Ctx) error {
	var req loginRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	res, err := m.a.Login(c.UserContext(), LoginInput{Name: accountName(req.Username, req.Email), Password: req.Password, Sliding: req.Sliding})
	if err != nil {
		return err
	}
	return m.signIn(c, res)
}

type mfaLoginRequest struct {
	Session string `json:"session" limit:"512"`
	Code    string `json:"code" limit:"64"`
	// Credential answers with a passkey instead (ChallengeWebAuthn).
	Credential json.RawMessage `json:"credential"`
}

func (m *mount) loginMFA(c *fiber.Ctx) error {
	var req mfaLoginRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	in := ChallengeInput{Challenge: ChallengeMFA, Session: req.Session, Code: req.Code}
	if len(req.Credential) > 0 && string(req.Credential) != "null" {
		if req.Code != "" {
			return fieldErr("credential", "conflict", "Send a code or a credential, not both.")
		}
		in.Challenge, in.Code, in.Credential = ChallengeWebAuthn, "", req.Credential
	}
	res, err := m.a.CompleteChallenge(c.UserContext(), in)
	if err != nil {
		return err
	}
	return m.signIn(c, res)
}

type newPasswordRequest struct {
	Session     string `json:"session" limit:"512"`
	Username    string `json:"username" limit:"254"`
	Email       string `json:"email" limit:"254"`
	NewPassword string `json:"new_password" limit:"1024"`
}

func (m *mount) loginNewPassword(c *fiber.Ctx) error {
	var req newPasswordRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	res, err := m.a.CompleteChallenge(c.UserContext(), ChallengeInput{
		Challenge: ChallengeNewPassword, Session: req.Session,
		Name: accountName(req.Username, req.Email), NewPassword: req.NewPassword,
	})
	if err != nil {
		return err
	}
	return m.signIn(c, res)
}

type refreshRequest struct {
	Refresh      string `json:"refresh" limit:"512"`
	RefreshToken string `json:"refresh_token" limit:"512"`
	ETag         string `json:"etag" limit:"128"`
}

func (m *mount) refresh(c *fiber.Ctx) error {
	var req refreshRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	in, err := m.refreshInput(c, &req)
	if err != nil {
		return err
	}
	t, err := m.a.Refresh(c.UserContext(), in)
	if err != nil {
		if m.cookie && !errors.Is(err, ErrCSRF) && !errors.Is(err, ErrUnavailable) {
			clearRefreshCookie(c) // the cookie's token is dead
		}
		return err
	}
	return m.tokens(c, &t, req.ETag)
}

// tokenRequest is the body of /logout and /revoke: a refresh token, by
// either name (not read in cookie mode, where the cookie's is).
type tokenRequest struct {
	Refresh      string `json:"refresh" limit:"512"`
	RefreshToken string `json:"refresh_token" limit:"512"`
}

func (r *tokenRequest) refreshRequest() *refreshRequest {
	return &refreshRequest{Refresh: r.Refresh, RefreshToken: r.RefreshToken}
}

// logout ends the family of the Bearer token, or else of the refresh token
// (the body's, or the cookie's with its CSRF token). The body is read, and
// checked, either way. In cookie mode the cookie is expired once the
// family has ended, or when its token is dead (invalid_grant), not before:
// a logout refused for its access token leaves it to try again.
func (m *mount) logout(c *fiber.Ctx) error {
	var req tokenRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if hasBearer(c) {
		p, err := m.a.principal(c)
		if err != nil {
			return err
		}
		return m.loggedOut(c, m.a.Logout(c.UserContext(), LogoutInput{Caller: p.claims}))
	}
	in, err := m.refreshInput(c, req.refreshRequest())
	if err == nil {
		err = m.a.Logout(c.UserContext(), LogoutInput{Refresh: in})
	}
	if m.cookie && errors.Is(err, ErrInvalidGrant) {
		clearRefreshCookie(c) // its token is dead
	}
	return m.loggedOut(c, err)
}

// loggedOut answers a logout that ended with err.
func (m *mount) loggedOut(c *fiber.Ctx, err error) error {
	if err != nil {
		return err
	}
	if m.cookie {
		clearRefreshCookie(c)
	}
	return c.JSON(ok)
}

// hasBearer reports whether the request carries an Authorization header
// of the Bearer scheme (another scheme is no access token of ours).
func hasBearer(c *fiber.Ctx) bool {
	scheme, _, _ := strings.Cut(c.Get(fiber.HeaderAuthorization), " ")
	return strings.EqualFold(scheme, "Bearer")
}

func (m *mount) logoutAll(c *fiber.Ctx) error {
	p, err := m.a.principal(c)
	if err != nil {
		return err
	}
	if err := m.a.LogoutAll(c.UserContext(), *p.claims); err != nil {
		return err
	}
	return c.JSON(ok)
}

// revoke answers 200 whether or not the token was known (RFC 7009), so it
// tells nothing.
func (m *mount) revoke(c *fiber.Ctx) error {
	var req tokenRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	in, err := m.refreshInput(c, req.refreshRequest())
	if errors.Is(err, ErrInvalidGrant) {
		return c.JSON(ok) // cookie mode without a cookie
	}
	if err != nil {
		return err
	}
	if err := m.a.RevokeRefreshToken(c.UserContext(), in); err != nil {
		return err
	}
	if m.cookie {
		clearRefreshCookie(c)
	}
	return c.JSON(ok)
}

type meResponse struct {
	User     *PublicUser `json:"user"`
	UserETag string      `json:"user_etag"`
	Session  sessionJSON `json:"session"`
}

func (m *mount) me(c *fiber.Ctx) error {
	p, err := m.a.principal(c)
	if err != nil {
		return err
	}
	u, s, err := m.a.Me(c.UserContext(), *p.claims)
	if err != nil {
		return err
	}
	return c.JSON(meResponse{
		User:     u.Public(),
		UserETag: u.ETag,
		Session: sessionJSON{
			SessionFamilyID:  s.ID,
			AccessExpiresAt:  wireTime(p.claims.Expiry()),
			RefreshExpiresAt: wireTime(s.ExpiresAt),
		},
	})
}

type sessionListItem struct {
	SessionFamilyID string    `json:"session_family_id"`
	CreatedAt       time.Time `json:"created_at"`
	LastUsedAt      time.Time `json:"last_used_at"`
	UserAgent       string    `json:"user_agent"`
	IP              string    `json:"ip"`
	Current         bool      `json:"current"`
}

func (m *mount) sessions(c *fiber.Ctx) error {
	p, err := m.a.principal(c)
	if err != nil {
		return err
	}
	list, err := m.a.Sessions(c.UserContext(), *p.claims)
	if err != nil {
		return err
	}
	items := make([]sessionListItem, 0, len(list))
	for _, s := range list {
		items = append(items, sessionListItem{
			SessionFamilyID: s.ID, CreatedAt: wireTime(s.CreatedAt), LastUsedAt: wireTime(s.LastUsedAt),
			UserAgent: s.UserAgent, IP: s.IP, Current: s.ID == p.claims.SessionID,
		})
	}
	return c.JSON(fiber.Map{"sessions": items})
}

func (m *mount) endSession(c *fiber.Ctx) error {
	p, err := m.a.principal(c)
	if err != nil {
		return err
	}
	if err := m.a.EndSession(c.UserContext(), *p.claims, c.Params("id")); err != nil {
		return err
	}
	return c.JSON(ok)
}

type passwordChangeRequest struct {
	PreviousPassword string `json:"previous_password" limit:"1024"`
	ProposedPassword string `json:"proposed_password" limit:"1024"`
}

func (m *mount) passwordChange(c *fiber.Ctx) error {
	var req passwordChangeRequest
	p, err := m.signedIn(c, &req)
	if err != nil {
		return err
	}
	t, err := m.a.ChangePassword(c.UserContext(), *p.claims, PasswordChangeInput{PreviousPassword: req.PreviousPassword, ProposedPassword: req.ProposedPassword})
	if err != nil {
		return err
	}
	return m.tokens(c, &t, "")
}

type nameRequest struct {
	Username string `json:"username" limit:"254"`
	Email    string `json:"email" limit:"254"`
}

func (m *mount) passwordForgot(c *fiber.Ctx) error {
	var req nameRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := m.a.StartPasswordReset(c.UserContext(), accountName(req.Username, req.Email)); err != nil {
		return err
	}
	return c.Status(http.StatusAccepted).JSON(ok)
}

type passwordResetRequest struct {
	Username         string `json:"username" limit:"254"`
	Email            string `json:"email" limit:"254"`
	ConfirmationCode string `json:"confirmation_code" limit:"64"`
	Password         string `json:"password" limit:"1024"`
}

func (m *mount) passwordReset(c *fiber.Ctx) error {
	var req passwordResetRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := m.a.ResetPassword(c.UserContext(), PasswordResetInput{
		Name: accountName(req.Username, req.Email), Code: req.ConfirmationCode, NewPassword: req.Password,
	}); err != nil {
		return err
	}
	return c.JSON(ok)
}

type signupRequest struct {
	Email       string `json:"email" limit:"254"`
	Username    string `json:"username" limit:"254"`
	Password    string `json:"password" limit:"1024"`
	DisplayName string `json:"display_name" limit:"256"`
}

// signup answers 202 for a new email and a taken one alike.
func (m *mount) signup(c *fiber.Ctx) error {
	if !m.a.cfg.AllowSignup {
		return ErrSignupDisabled // without reading the body
	}
	var req signupRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := m.a.Signup(c.UserContext(), SignupInput{Email: req.Email, Username: req.Username, Password: req.Password, DisplayName: req.DisplayName}); err != nil {
		return err
	}
	return c.Status(http.StatusAccepted).JSON(ok)
}

type confirmRequest struct {
	Email string `json:"email" limit:"254"`
	Code  string `json:"code" limit:"64"`
}

func (m *mount) emailConfirm(c *fiber.Ctx) error {
	if err := m.confirmEmail(c); err != nil {
		return err
	}
	return c.JSON(ok)
}

// confirmEmail decodes {email, code} and confirms the email, for every
// profile's endpoint.
func (m *mount) confirmEmail(c *fiber.Ctx) error {
	var req confirmRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	return m.a.ConfirmEmail(c.UserContext(), ConfirmEmailInput{Email: req.Email, Code: req.Code})
}

type mfaSetupResponse struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
}

// stepUpRequest is the step-up a second-factor change asks for, and for
// /2fa/enable the code of the new authenticator.
type stepUpRequest struct {
	Password string `json:"password" limit:"1024"`
	Code     string `json:"code" limit:"64"`
}

func (r *stepUpRequest) stepUp() StepUp { return StepUp{Password: r.Password, Code: r.Code} }

// setupRequest is the body of /2fa/setup: the step-up password alone.
type setupRequest struct {
	Password string `json:"password" limit:"1024"`
}

func (m *mount) mfaSetup(c *fiber.Ctx) error {
	var req setupRequest
	p, err := m.signedIn(c, &req)
	if err != nil {
		return err
	}
	s, err := m.a.SetupTOTP(c.UserContext(), *p.claims, StepUp{Password: req.Password})
	if err != nil {
		return err
	}
	return c.JSON(mfaSetupResponse{Secret: s.Secret, OTPAuthURL: s.URL})
}

type recoveryCodesResponse struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

func (m *mount) mfaEnable(c *fiber.Ctx) error {
	var req stepUpRequest
	p, err := m.signedIn(c, &req)
	if err != nil {
		return err
	}
	codes, err := m.a.EnableTOTP(c.UserContext(), *p.claims, req.Code, StepUp{Password: req.Password})
	if err != nil {
		return err
	}
	return c.JSON(recoveryCodesResponse{RecoveryCodes: codes})
}

func (m *mount) mfaDisable(c *fiber.Ctx) error {
	var req stepUpRequest
	p, err := m.signedIn(c, &req)
	if err != nil {
		return err
	}
	if err := m.a.DisableTOTP(c.UserContext(), *p.claims, req.stepUp()); err != nil {
		return err
	}
	return c.JSON(ok)
}

func (m *mount) recoveryCodes(c *fiber.Ctx) error {
	var req stepUpRequest
	p, err := m.signedIn(c, &req)
	if err != nil {
		return err
	}
	codes, err := m.a.RegenerateRecoveryCodes(c.UserContext(), *p.claims, req.stepUp())
	if err != nil {
		return err
	}
	return c.JSON(recoveryCodesResponse{RecoveryCodes: codes})
}
