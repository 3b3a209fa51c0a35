package fiberauth

import (
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
)

// ProfileMisaka: the Misaka v3 session API (docs/profiles.md). Its
// handlers decode Misaka's bodies, call the same flows as fiberauth's own
// and answer in Misaka's shapes; errors are {"detail": "…"}.

func (m *mount) misakaRoutes() []route {
	return []route{
		{EndpointsSignIn, fiber.MethodPost, "/login", m.misakaLogin},
		{EndpointsSignIn, fiber.MethodPost, "/login/2fa", m.misakaLoginMFA},
		{EndpointsSignIn, fiber.MethodPost, "/refresh", m.misakaRefresh},
		{EndpointsSignIn, fiber.MethodPost, "/logout", m.misakaLogout},
		{EndpointsSignIn, fiber.MethodGet, "/me", m.misakaMe},
		{EndpointsPasswordChange, fiber.MethodPost, "/change-password", m.misakaChangePassword},
		{EndpointsSignup, fiber.MethodPost, "/confirm-email", m.emailConfirmDetail},
	}
}

// misakaMinPassword is the shortest password Misaka's login takes.
const misakaMinPassword = 6

type misakaLoginRequest struct {
	Username string `json:"username" limit:"254"`
	Email    string `json:"email" limit:"254"`
	Password string `json:"password" limit:"1024"`
	Sliding  bool   `json:"sliding"`
}

func (m *mount) misakaLogin(c *fiber.Ctx) error {
	var req misakaLoginRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if utf8.RuneCountInString(req.Password) < misakaMinPassword {
		return fieldErr("password", "too_short", "Ensure this field has at least 6 characters.")
	}
	res, err := m.a.Login(c.UserContext(), LoginInput{Name: accountName(req.Username, req.Email), Password: req.Password, Sliding: req.Sliding})
	if err != nil {
		return err
	}
	return m.misakaSignIn(c, res, req.Sliding)
}

type misakaMFARequest struct {
	Challenge string `json:"challenge" limit:"512"`
	Code      string `json:"code" limit:"64"`
}

func (m *mount) misakaLoginMFA(c *fiber.Ctx) error {
	var req misakaMFARequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := required("challenge", req.Challenge); err != nil {
		return err
	}
	res, err := m.a.CompleteChallenge(c.UserContext(), ChallengeInput{Challenge: ChallengeMFA, Session: req.Challenge, Code: req.Code})
	if err != nil {
		return err
	}
	return m.misakaSignIn(c, res, res.Tokens != nil && res.Tokens.Session.Sliding)
}

// misakaSignIn answers a sign-in step: a challenge, or the login answer.
func (m *mount) misakaSignIn(c *fiber.Ctx, res SignIn, sliding bool) error {
	if ch := res.Challenge; ch != nil {
		return c.JSON(fiber.Map{"challenge_name": ch.Name, "challenge": ch.Session, "expires_in": secondsUntil(ch.ExpiresAt, m.a.now())})
	}
	t := res.Tokens
	var slidingToken *string
	if sliding {
		slidingToken = &t.RefreshToken
	}
	out := fiber.Map{
		"user": m.profileUser(&t.User), "user_etag": t.User.ETag,
		"access": t.AccessToken, "access_token": t.AccessToken,
		"refresh": t.RefreshToken, "refresh_token": t.RefreshToken,
		"sliding_token": slidingToken,
	}
	if err := m.addIDToken(out, &t.User); err != nil {
		return err
	}
	return c.JSON(out)
}

// addIDToken adds an ID token of u to out, with WithIDTokens.
func (m *mount) addIDToken(out fiber.Map, u *User) error {
	if !m.idTokens {
		return nil
	}
	id, err := m.a.idToken(u, m.a.now())
	out["id_token"] = id
	return err
}

type misakaRefreshRequest struct {
	Refresh string `json:"refresh" limit:"512"`
	ETag    string `json:"etag" limit:"128"`
}

func (m *mount) misakaRefresh(c *fiber.Ctx) error {
	var req misakaRefreshRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	t, err := m.a.Refresh(c.UserContext(), RefreshInput{RefreshToken: req.Refresh})
	if err != nil {
		return err
	}
	out := m.misakaPair(&t, req.ETag)
	if err := m.addIDToken(out, &t.User); err != nil {
		return err
	}
	return c.JSON(out)
}

// misakaPair is Misaka's refresh answer: the user only when the client's
// etag is not current.
func (m *mount) misakaPair(t *Tokens, clientETag string) fiber.Map {
	out := fiber.Map{"access": t.AccessToken, "refresh": t.RefreshToken, "user_etag": t.User.ETag}
	if clientETag == "" || clientETag != t.User.ETag {
		out["user"] = m.profileUser(&t.User)
	}
	return out
}

type misakaLogoutRequest struct {
	Refresh string `json:"refresh" limit:"512"`
}

// misakaLogout ends the family of the Bearer token, or else of the body's
// refresh token.
func (m *mount) misakaLogout(c *fiber.Ctx) error {
	var req misakaLogoutRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	in := LogoutInput{Refresh: RefreshInput{RefreshToken: req.Refresh}}
	if hasBearer(c) {
		p, err := m.a.principal(c)
		if err != nil {
			return err
		}
		in = LogoutInput{Caller: p.claims}
	}
	if err := m.a.Logout(c.UserContext(), in); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"detail": "Signed out."})
}

func (m *mount) misakaMe(c *fiber.Ctx) error {
	p, err := m.a.principal(c)
	if err != nil {
		return err
	}
	u, s, err := m.a.Me(c.UserContext(), *p.claims)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"user": m.profileUser(&u), "user_etag": u.ETag, "session_family_id": s.ID})
}

type misakaPasswordRequest struct {
	OldPassword string `json:"old_password" limit:"1024"`
	NewPassword string `json:"new_password" limit:"1024"`
}

// misakaChangePassword changes the caller's password; the other sessions
// end, and this one goes on with the new pair of the answer.
func (m *mount) misakaChangePassword(c *fiber.Ctx) error {
	var req misakaPasswordRequest
	p, err := m.signedIn(c, &req)
	if err != nil {
		return err
	}
	t, err := m.a.ChangePassword(c.UserContext(), *p.claims, PasswordChangeInput{PreviousPassword: req.OldPassword, ProposedPassword: req.NewPassword})
	if err != nil {
		return err
	}
	out := m.misakaPair(&t, "")
	if err := m.addIDToken(out, &t.User); err != nil {
		return err
	}
	return c.JSON(out)
}

// emailConfirmDetail confirms an email and answers {"detail": …}.
func (m *mount) emailConfirmDetail(c *fiber.Ctx) error {
	if err := m.confirmEmail(c); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"detail": "Email confirmed."})
}

// profileUser is the user object of the profiles: id, email, username,
// display_name, and what the mount's user shape adds (by default each
// attribute, as a string). The shape gets a copy without secrets, and
// cannot replace those four fields, in any case of their names.
func (m *mount) profileUser(u *User) map[string]any {
	fields := map[string]any{}
	if m.userShape != nil {
		c := *u
		c.PasswordHash, c.TOTPSecret, c.RecoveryCodes = "", nil, nil
		c.Roles, c.Attributes = slices.Clone(u.Roles), maps.Clone(u.Attributes)
		m.userShape(&c, fields)
	} else {
		for k, v := range u.Attributes {
			fields[k] = v
		}
	}
	for k := range fields {
		switch strings.ToLower(k) {
		case "id", "email", "username", "display_name":
			delete(fields, k)
		}
	}
	fields["id"], fields["email"], fields["username"], fields["display_name"] = u.ID, u.Email, u.Username, u.DisplayName
	return fields
}
