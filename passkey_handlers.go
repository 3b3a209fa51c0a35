package fiberauth

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

// The passkey endpoints (EndpointsPasskeys, with Config.Passkeys): each
// decodes its request, calls the flow in passkeys.go and encodes the
// answer. A credential id travels as base64url without padding.

func (m *mount) passkeyRoutes() []route {
	return []route{
		{EndpointsPasskeys, fiber.MethodPost, "/login/passkey/options", m.passkeyLoginOptions},
		{EndpointsPasskeys, fiber.MethodPost, "/login/passkey", m.passkeyLogin},
		{EndpointsPasskeys, fiber.MethodPost, "/login/2fa/passkey/options", m.passkeyChallengeOptions},
		{EndpointsPasskeys, fiber.MethodPost, "/passkeys/register/options", m.passkeyRegisterOptions},
		{EndpointsPasskeys, fiber.MethodPost, "/passkeys/register", m.passkeyRegister},
		{EndpointsPasskeys, fiber.MethodGet, "/passkeys", m.passkeyList},
		{EndpointsPasskeys, fiber.MethodPatch, "/passkeys/:id", m.passkeyRename},
		{EndpointsPasskeys, fiber.MethodDelete, "/passkeys/:id", m.passkeyDelete},
	}
}

// passkeyOptionsResponse is a ceremony's options: publicKey as
// navigator.credentials.create or get takes it (after
// PublicKeyCredential.parseCreationOptionsFromJSON or
// parseRequestOptionsFromJSON), and how long its challenge lives.
type passkeyOptionsResponse struct {
	PublicKey json.RawMessage `json:"publicKey"`
	ExpiresIn int             `json:"expires_in"`
}

func (m *mount) options(c *fiber.Ctx, o PasskeyOptions) error {
	return c.JSON(passkeyOptionsResponse{PublicKey: o.PublicKey, ExpiresIn: secondsUntil(o.ExpiresAt, m.a.now())})
}

// passkeyJSON is a passkey as responses show it: never its public key.
type passkeyJSON struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	CreatedAt      time.Time  `json:"created_at"`
	LastUsedAt     *time.Time `json:"last_used_at,omitempty"`
	Transports     []string   `json:"transports"`
	AAGUID         string     `json:"aaguid"`
	BackupEligible bool       `json:"backup_eligible"`
	BackedUp       bool       `json:"backed_up"`
}

func passkeyOf(p *Passkey) passkeyJSON {
	j := passkeyJSON{
		ID: base64.RawURLEncoding.EncodeToString(p.ID), Name: p.Name, CreatedAt: wireTime(p.CreatedAt),
		Transports: p.Transports, AAGUID: uuid.Nil.String(),
		BackupEligible: p.BackupEligible, BackedUp: p.BackupState,
	}
	if !p.LastUsedAt.IsZero() {
		t := wireTime(p.LastUsedAt)
		j.LastUsedAt = &t
	}
	if j.Transports == nil {
		j.Transports = []string{}
	}
	if id, err := uuid.FromBytes(p.AAGUID); err == nil {
		j.AAGUID = id.String()
	}
	return j
}

// passkeyID is the credential id of the path's :id; nil when it is none
// (which no passkey has, so the flows answer 404).
func passkeyID(c *fiber.Ctx) []byte {
	s := c.Params("id")
	if len(s) > base64.RawURLEncoding.EncodedLen(maxCredentialID) {
		return nil
	}
	id, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	return id
}

func (m *mount) passkeyLoginOptions(c *fiber.Ctx) error {
	var req nameRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	o, err := m.a.BeginPasskeyLogin(c.UserContext(), accountName(req.Username, req.Email))
	if err != nil {
		return err
	}
	return m.options(c, o)
}

type passkeyLoginRequest struct {
	Credential json.RawMessage `json:"credential"`
	Sliding    bool            `json:"sliding"`
}

func (m *mount) passkeyLogin(c *fiber.Ctx) error {
	var req passkeyLoginRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := requiredCredential(req.Credential); err != nil {
		return err
	}
	res, err := m.a.FinishPasskeyLogin(c.UserContext(), PasskeyLogin{Credential: req.Credential, Sliding: req.Sliding})
	if err != nil {
		return err
	}
	return m.signIn(c, res)
}

// requiredCredential refuses a request without its credential (absent or
// null).
func requiredCredential(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return fieldErr("credential", "missing", "The field \"credential\" is required.")
	}
	return nil
}

type sessionRequest struct {
	Session string `json:"session" limit:"512"`
}

func (m *mount) passkeyChallengeOptions(c *fiber.Ctx) error {
	var req sessionRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	o, err := m.a.BeginPasskeyChallenge(c.UserContext(), req.Session)
	if err != nil {
		return err
	}
	return m.options(c, o)
}

func (m *mount) passkeyRegisterOptions(c *fiber.Ctx) error {
	var req stepUpRequest
	p, err := m.signedIn(c, &req)
	if err != nil {
		return err
	}
	o, err := m.a.BeginPasskeyRegistration(c.UserContext(), *p.claims, req.stepUp())
	if err != nil {
		return err
	}
	return m.options(c, o)
}

type passkeyRegisterRequest struct {
	Credential json.RawMessage `json:"credential"`
	Name       string          `json:"name" limit:"256"`
}

func (m *mount) passkeyRegister(c *fiber.Ctx) error {
	var req passkeyRegisterRequest
	p, err := m.signedIn(c, &req)
	if err != nil {
		return err
	}
	if err := requiredCredential(req.Credential); err != nil {
		return err
	}
	key, err := m.a.FinishPasskeyRegistration(c.UserContext(), *p.claims, PasskeyRegistration{Credential: req.Credential, Name: req.Name})
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(fiber.Map{"passkey": passkeyOf(&key)})
}

func (m *mount) passkeyList(c *fiber.Ctx) error {
	p, err := m.a.principal(c)
	if err != nil {
		return err
	}
	keys, err := m.a.Passkeys(c.UserContext(), *p.claims)
	if err != nil {
		return err
	}
	items := make([]passkeyJSON, 0, len(keys))
	for i := range keys {
		items = append(items, passkeyOf(&keys[i]))
	}
	return c.JSON(fiber.Map{"passkeys": items})
}

type passkeyRenameRequest struct {
	Name string `json:"name" limit:"256"`
}

func (m *mount) passkeyRename(c *fiber.Ctx) error {
	var req passkeyRenameRequest
	p, err := m.signedIn(c, &req)
	if err != nil {
		return err
	}
	if err := required("name", req.Name); err != nil {
		return err
	}
	id := passkeyID(c)
	if id == nil {
		return ErrNotFound
	}
	key, err := m.a.RenamePasskey(c.UserContext(), *p.claims, id, req.Name)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"passkey": passkeyOf(&key)})
}

func (m *mount) passkeyDelete(c *fiber.Ctx) error {
	var req stepUpRequest
	p, err := m.signedIn(c, &req)
	if err != nil {
		return err
	}
	id := passkeyID(c)
	if id == nil {
		return ErrNotFound
	}
	if err := m.a.DeletePasskey(c.UserContext(), *p.claims, id, req.stepUp()); err != nil {
		return err
	}
	return c.JSON(ok)
}
