package fiberauth

import (
	"github.com/gofiber/fiber/v2"
)

// ProfileCognito: the Cognito-style v1 API (docs/profiles.md). Sign-ins
// answer an ID token too; the refresh token does not rotate (the
// non-rotating policy, RefreshInput.Keep); errors are {"message",
// "status"}. Usernames are matched as fiberauth matches every name
// (lowercased, after NFKC), and one with an @ is an email.

func (m *mount) cognitoRoutes() []route {
	return []route{
		{EndpointsSignIn, fiber.MethodPost, "/login", m.cognitoLogin},
		{EndpointsSignIn, fiber.MethodPost, "/new-password-required", m.cognitoNewPassword},
		{EndpointsSignIn, fiber.MethodPost, "/token-refresh", m.cognitoRefresh},
		{EndpointsSignIn, fiber.MethodPost, "/token-revoke", m.cognitoRevoke},
		{EndpointsPasswordChange, fiber.MethodPost, "/change-password", m.cognitoChangePassword},
		{EndpointsPasswordReset, fiber.MethodPost, "/forgot-password", m.cognitoForgot},
		{EndpointsPasswordReset, fiber.MethodPost, "/forgot-password-confirm", m.cognitoForgotConfirm},
	}
}

type cognitoLoginRequest struct {
	Username string `json:"username" limit:"254"`
	Password string `json:"password" limit:"1024"`
}

func (m *mount) cognitoLogin(c *fiber.Ctx) error {
	var req cognitoLoginRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	res, err := m.a.Login(c.UserContext(), LoginInput{Name: req.Username, Password: req.Password})
	if err != nil {
		return err
	}
	return m.cognitoSignIn(c, res)
}

type cognitoNewPasswordRequest struct {
	Session     string `json:"session" limit:"512"`
	Username    string `json:"username" limit:"254"`
	NewPassword string `json:"new_password" limit:"1024"`
}

func (m *mount) cognitoNewPassword(c *fiber.Ctx) error {
	var req cognitoNewPasswordRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	res, err := m.a.CompleteChallenge(c.UserContext(), ChallengeInput{
		Challenge: ChallengeNewPassword, Session: req.Session, Name: req.Username, NewPassword: req.NewPassword,
	})
	if err != nil {
		return err
	}
	return m.cognitoSignIn(c, res)
}

// cognitoSignIn answers {challenge_name, session, id_token, access_token,
// refresh_token, expires_in}: the challenge's fields null when there is
// none, the tokens null when there is one.
func (m *mount) cognitoSignIn(c *fiber.Ctx, res SignIn) error {
	now := m.a.now()
	if ch := res.Challenge; ch != nil {
		return c.JSON(fiber.Map{"challenge_name": ch.Name, "session": ch.Session, "expires_in": secondsUntil(ch.ExpiresAt, now),
			"id_token": nil, "access_token": nil, "refresh_token": nil})
	}
	t := res.Tokens
	id, err := m.a.idToken(&t.User, now)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"challenge_name": nil, "session": nil, "expires_in": secondsUntil(t.AccessExpiresAt, now),
		"id_token": id, "access_token": t.AccessToken, "refresh_token": t.RefreshToken})
}

type cognitoRefreshRequest struct {
	Username     string `json:"username" limit:"254"`
	RefreshToken string `json:"refresh_token" limit:"512"`
}

// cognitoRefresh answers a new access token and ID token for a refresh
// token that stays as it is; the username must name the token's user.
func (m *mount) cognitoRefresh(c *fiber.Ctx) error {
	var req cognitoRefreshRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := required("username", req.Username); err != nil {
		return err
	}
	t, err := m.a.Refresh(c.UserContext(), RefreshInput{RefreshToken: req.RefreshToken, Keep: true})
	if err != nil {
		return err
	}
	if name := foldName(req.Username); name == "" || name != t.User.Username && name != t.User.Email {
		return ErrInvalidGrant // nothing was written: the token stays as it was
	}
	now := m.a.now()
	id, err := m.a.idToken(&t.User, now)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"id_token": id, "access_token": t.AccessToken, "expires_in": secondsUntil(t.AccessExpiresAt, now)})
}

type cognitoTokenRequest struct {
	RefreshToken string `json:"refresh_token" limit:"512"`
}

// cognitoRevoke ends the refresh token's family; an unknown token answers
// the same (RFC 7009).
func (m *mount) cognitoRevoke(c *fiber.Ctx) error {
	var req cognitoTokenRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := m.a.RevokeRefreshToken(c.UserContext(), RefreshInput{RefreshToken: req.RefreshToken}); err != nil {
		return err
	}
	return c.JSON(fiber.Map{})
}

type cognitoPasswordRequest struct {
	AccessToken      string `json:"access_token" limit:"8192"`
	PreviousPassword string `json:"previous_password" limit:"1024"`
	ProposedPassword string `json:"proposed_password" limit:"1024"`
}

// cognitoChangePassword takes the access token in the body. The caller's
// refresh token stays (the other sessions end); the access tokens issued
// before carry the old etag, so the client refreshes.
func (m *mount) cognitoChangePassword(c *fiber.Ctx) error {
	var req cognitoPasswordRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := required("access_token", req.AccessToken); err != nil {
		return err
	}
	p, err := m.a.authenticate(c.UserContext(), req.AccessToken)
	if err != nil {
		return err
	}
	if _, err := m.a.ChangePassword(c.UserContext(), *p.claims, PasswordChangeInput{
		PreviousPassword: req.PreviousPassword, ProposedPassword: req.ProposedPassword, KeepRefresh: true,
	}); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"message": "Password changed."})
}

type cognitoNameRequest struct {
	Username string `json:"username" limit:"254"`
}

func (m *mount) cognitoForgot(c *fiber.Ctx) error {
	var req cognitoNameRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := m.a.StartPasswordReset(c.UserContext(), req.Username); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"message": "If the account exists, a confirmation code is on its way."})
}

type cognitoResetRequest struct {
	Username         string `json:"username" limit:"254"`
	Password         string `json:"password" limit:"1024"`
	ConfirmationCode string `json:"confirmation_code" limit:"64"`
}

func (m *mount) cognitoForgotConfirm(c *fiber.Ctx) error {
	var req cognitoResetRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := m.a.ResetPassword(c.UserContext(), PasswordResetInput{Name: req.Username, Code: req.ConfirmationCode, NewPassword: req.Password}); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"message": "Password reset."})
}
