package tracing_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fiberauth/fiberauth"
	"github.com/fiberauth/fiberauth/memstore"
	"github.com/fiberauth/fiberauth/tracing"
)

// Each service call is a span, a child of the caller's, named after the
// call; a failed one says fiberauth's error code and nothing else; no
// span carries a password, token or email.
func TestSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	var outer []string
	cfg := fiberauth.Config{
		Store: memstore.New(), Secret: []byte("a tracing test secret of 32 bytes+"), Logger: slog.New(slog.DiscardHandler),
		Trace: func(ctx context.Context, call string) (context.Context, func(error)) {
			outer = append(outer, call)
			return ctx, func(error) {}
		},
	}
	tracing.Instrument(&cfg, tp)
	a, err := fiberauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	const pw = "correct horse battery"
	if _, err := a.CreateUser(ctx, fiberauth.NewUser{Email: "ada@example.com", Password: pw, Verified: true}); err != nil {
		t.Fatal(err)
	}
	in, err := a.Login(ctx, fiberauth.LoginInput{Name: "ada@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Login(ctx, fiberauth.LoginInput{Name: "ada@example.com", Password: "wrong password!"}); !errors.Is(err, fiberauth.ErrInvalidCredentials) {
		t.Fatal(err)
	}
	claims, err := a.Authenticate(ctx, in.Tokens.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Refresh(ctx, fiberauth.RefreshInput{RefreshToken: in.Tokens.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Me(ctx, claims); err != nil { // one call: no span of the user lookup inside
		t.Fatal(err)
	}
	parent.End()

	var names []string
	for _, s := range rec.Ended() {
		if s.Name() == "request" {
			continue
		}
		names = append(names, s.Name())
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("%s: not a child of the caller's span", s.Name())
		}
		for _, kv := range s.Attributes() {
			v := kv.Value.Emit()
			for _, secret := range []string{pw, "wrong password!", "ada@example.com", in.Tokens.AccessToken, in.Tokens.RefreshToken} {
				if strings.Contains(v, secret) {
					t.Errorf("%s: attribute %s carries %q", s.Name(), kv.Key, secret)
				}
			}
		}
		failed := s.Status().Code == codes.Error
		if want := s.Name() == "fiberauth.Login" && len(s.Attributes()) > 0; failed != want {
			t.Errorf("%s: status %v, attributes %v", s.Name(), s.Status(), s.Attributes())
		}
		if failed && (s.Status().Description != "invalid_credentials" || s.Attributes()[0].Value.AsString() != "invalid_credentials") {
			t.Errorf("failed login: status %v, attributes %v", s.Status(), s.Attributes())
		}
	}
	want := []string{"fiberauth.CreateUser", "fiberauth.Login", "fiberauth.Login", "fiberauth.Authenticate", "fiberauth.Refresh", "fiberauth.Me"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("spans %v, want %v", names, want)
	}
	if strings.Join(outer, " ") != "CreateUser Login Login Authenticate Refresh Me" {
		t.Fatalf("the Config's own Trace saw %v", outer)
	}
}

// ErrorCode names fiberauth's errors as the JSON answers do, and nil as
// nothing.
func TestErrorCode(t *testing.T) {
	for err, want := range map[error]string{nil: "", fiberauth.ErrInvalidCredentials: "invalid_credentials", fiberauth.ErrRateLimited: "rate_limited", errors.New("driver: connection refused"): "unavailable"} {
		if got := fiberauth.ErrorCode(err); got != want {
			t.Errorf("ErrorCode(%v) = %q, want %q", err, got, want)
		}
	}
}
