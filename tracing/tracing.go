// Package tracing makes each fiberauth service call an OpenTelemetry span:
//
//	cfg := fiberauth.Config{Store: store, Secret: secret}
//	tracing.Instrument(&cfg, otel.GetTracerProvider()) // before fiberauth.New(cfg)
//
// A call (Login, Refresh, Authenticate, CreateUser, …, the Go methods the
// handlers call) is a span named "fiberauth.<call>", a child of the span
// its context carries. A call that fails has the Error status and the
// attribute fiberauth.error with fiberauth's error code (invalid_token,
// rate_limited, …). No span carries a token, code, password, email or the
// error's text.
package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/fiberauth/fiberauth"
)

// ScopeName is the instrumentation scope of the spans.
const ScopeName = "github.com/fiberauth/fiberauth"

// Instrument sets cfg.Trace to make a span of each service call with a
// tracer of tp, inside the Trace cfg already has, if any.
func Instrument(cfg *fiberauth.Config, tp trace.TracerProvider) {
	tracer := tp.Tracer(ScopeName)
	outer := cfg.Trace
	cfg.Trace = func(ctx context.Context, call string) (context.Context, func(error)) {
		endOuter := func(error) {}
		if outer != nil {
			ctx, endOuter = outer(ctx, call)
		}
		ctx, span := tracer.Start(ctx, "fiberauth."+call, trace.WithSpanKind(trace.SpanKindInternal))
		return ctx, func(err error) {
			if err != nil {
				code := fiberauth.ErrorCode(err)
				span.SetAttributes(attribute.String("fiberauth.error", code))
				span.SetStatus(codes.Error, code)
			}
			span.End()
			endOuter(err)
		}
	}
}
