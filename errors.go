package fiberauth

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Errors the Go API and the handlers return. Each maps to one row of the
// error table in docs/api.md; match them with errors.Is.
var (
	ErrInvalidRequest     = errors.New("fiberauth: invalid request")
	ErrInvalidCredentials = errors.New("fiberauth: invalid credentials")
	ErrInvalidToken       = errors.New("fiberauth: invalid token")
	ErrInvalidGrant       = errors.New("fiberauth: invalid grant")
	ErrRefreshTokenReused = errors.New("fiberauth: refresh token reused")
	ErrCSRF               = errors.New("fiberauth: csrf check failed")
	ErrEmailNotVerified   = errors.New("fiberauth: email not verified")
	ErrForbidden          = errors.New("fiberauth: forbidden")
	ErrPayloadTooLarge    = errors.New("fiberauth: payload too large")
	ErrUnsupportedMedia   = errors.New("fiberauth: unsupported media type")
	ErrRateLimited        = errors.New("fiberauth: rate limited")
	ErrSignupDisabled     = errors.New("fiberauth: signup disabled")
	ErrUsernameTaken      = errors.New("fiberauth: username taken")
	ErrMFAEnabled         = errors.New("fiberauth: two-factor authentication already enabled")
	ErrUnavailable        = errors.New("fiberauth: store unavailable")
)

// Errors a Store returns, each only where the Store contract names it. Any
// other error from a Store is a system fault and answers 503.
var (
	// ErrNotFound: no record matches.
	ErrNotFound = errors.New("fiberauth: not found")
	// ErrConflict: the id, email or username is taken by another record.
	ErrConflict = errors.New("fiberauth: conflict")
	// ErrETagMismatch: a UserUpdate's IfETag is not the stored etag: the
	// user changed since it was read.
	ErrETagMismatch = errors.New("fiberauth: user changed since it was read")
	// ErrNotCurrent: a rotation's family is not live, or its current
	// refresh token is not the one being replaced (another rotation won).
	ErrNotCurrent = errors.New("fiberauth: refresh token is not current")
	// ErrCodeMismatch: a one-time code exists but the one given is wrong.
	ErrCodeMismatch = errors.New("fiberauth: code mismatch")
	// ErrCodeSpent: the code a change would spend is no longer there
	// (spent, burnt, expired or replaced).
	ErrCodeSpent = errors.New("fiberauth: code spent")
	// ErrStepUsed: a TOTP time step at or before the last accepted one.
	ErrStepUsed = errors.New("fiberauth: TOTP step already used")
)

// FieldError is a validation failure of one request field or header. It
// answers with "where" and "reason"; by default it wraps ErrInvalidRequest
// (400).
type FieldError struct {
	Where  string // the wire name of the field or header, or "body"
	Reason string // a short snake_case reason, e.g. "too_short"
	Msg    string // human text
	Err    error  // the sentinel it answers as; nil: ErrInvalidRequest
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("fiberauth: invalid %s: %s", e.Where, e.Reason)
}

func (e *FieldError) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return ErrInvalidRequest
}

func fieldErr(where, reason, msg string) error {
	return &FieldError{Where: where, Reason: reason, Msg: msg}
}

// RateLimitError is a throttled call: 429 rate_limited with Retry-After.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("fiberauth: rate limited; retry after %s", e.RetryAfter)
}

func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// retryAfterSeconds is the Retry-After value of err, at least 1.
func retryAfterSeconds(err error) (int, bool) {
	var rl *RateLimitError
	if !errors.As(err, &rl) {
		return 0, false
	}
	return max(1, int(math.Ceil(rl.RetryAfter.Seconds()))), true
}

// storeErr keeps the Store's sentinels matchable and marks every other error
// as unavailable, for the one mapping below.
func storeErr(op string, err error) error {
	if err == nil {
		return nil
	}
	for _, known := range []error{ErrNotFound, ErrConflict, ErrETagMismatch, ErrNotCurrent, ErrCodeMismatch, ErrCodeSpent, ErrStepUsed} {
		if errors.Is(err, known) {
			return err
		}
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

// errorBody is the wire shape of every error (docs/api.md, "Errors").
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Code    int    `json:"code"`
	Where   string `json:"where,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// errorRows maps each sentinel to its status, wire code and message. The
// first match wins.
var errorRows = []struct {
	err    error
	status int
	code   string
	msg    string
}{
	{ErrInvalidRequest, http.StatusBadRequest, "invalid_request", "The request is malformed."},
	{ErrInvalidCredentials, http.StatusUnauthorized, "invalid_credentials", "Wrong username, email or password."},
	{ErrInvalidToken, http.StatusUnauthorized, "invalid_token", "The access token is missing, invalid or expired."},
	{ErrRefreshTokenReused, http.StatusUnauthorized, "refresh_token_reused", "This refresh token was already used; the session has been ended."},
	{ErrInvalidGrant, http.StatusUnauthorized, "invalid_grant", "The token, session or code is invalid or has expired."},
	{ErrCSRF, http.StatusForbidden, "csrf_failed", "The CSRF token is missing or wrong."},
	{ErrEmailNotVerified, http.StatusForbidden, "email_not_verified", "Confirm your email address before signing in."},
	{ErrForbidden, http.StatusForbidden, "forbidden", "You are not allowed to do this."},
	{ErrSignupDisabled, http.StatusForbidden, "forbidden", "Signup is disabled."},
	{ErrNotFound, http.StatusNotFound, "not_found", "No such resource."},
	{ErrConflict, http.StatusConflict, "conflict", "That email or username is already taken."},
	{ErrUsernameTaken, http.StatusConflict, "username_taken", "That username is taken."},
	{ErrMFAEnabled, http.StatusConflict, "conflict", "Two-factor authentication is already enabled; disable it first."},
	{ErrPayloadTooLarge, http.StatusRequestEntityTooLarge, "payload_too_large", "The request body is too large."},
	{ErrUnsupportedMedia, http.StatusUnsupportedMediaType, "unsupported_media_type", "The request body must be JSON (Content-Type: application/json)."},
	{ErrRateLimited, http.StatusTooManyRequests, "rate_limited", "Too many attempts; try again later."},
}

// errorResponse turns any error into the wire shape. Errors that are not one
// of ours (store faults, bugs) become 503 unavailable: a request never gets a
// 2xx or another 5xx for them (fail closed).
func errorResponse(err error) (int, errorBody) {
	for _, r := range errorRows {
		if errors.Is(err, r.err) {
			b := errorBody{Error: r.code, Message: r.msg, Code: r.status}
			var fe *FieldError
			if errors.As(err, &fe) {
				b.Message, b.Where, b.Reason = fe.Msg, fe.Where, fe.Reason
			}
			return r.status, b
		}
	}
	return http.StatusServiceUnavailable, errorBody{Error: "unavailable", Message: "The service is temporarily unavailable.", Code: http.StatusServiceUnavailable}
}

// WriteError answers err in fiberauth's error shape (docs/api.md), for host
// routes that want their errors to look like fiberauth's: a *FieldError is a
// 400 with where and reason, a sentinel of this package its own status, and
// anything else 503 unavailable.
func (a *Auth) WriteError(c *fiber.Ctx, err error) error { return a.writeError(c, err) }

// writeError sends err as JSON. It is the one place errors meet the wire.
func (a *Auth) writeError(c *fiber.Ctx, err error) error {
	status, body := errorResponse(err)
	if status == http.StatusServiceUnavailable {
		// Store errors carry no secrets: they are built from ids and driver
		// messages, never from request values.
		a.log.Error("fiberauth: request failed", "path", c.Path(), "err", err)
	}
	if s, ok := retryAfterSeconds(err); ok {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(s))
	}
	if status == http.StatusUnauthorized && errors.Is(err, ErrInvalidToken) {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer error="invalid_token"`)
	}
	return c.Status(status).JSON(body)
}
