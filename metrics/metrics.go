// Package metrics turns fiberauth's events into Prometheus metrics:
//
//	m, err := metrics.New(prometheus.DefaultRegisterer)
//	cfg := fiberauth.Config{Store: store, Secret: secret}
//	m.Instrument(&cfg) // before fiberauth.New(cfg)
//
// and serve the registry (promhttp) where the host serves its metrics.
// Every label takes a value from a fixed set: no user id, address, token,
// code or password ever becomes a label.
//
//	fiberauth_logins_total{outcome, reason}     sign-in steps: succeeded (tokens issued), failed (reason:
//	                                            unknown_user, wrong_password, wrong_code, disabled, …)
//	                                            or challenged (a first step that asked for a second;
//	                                            reason: the challenge), which then also counts as
//	                                            succeeded or failed
//	fiberauth_refreshes_total                   refresh tokens rotated
//	fiberauth_refresh_reuse_total               refresh tokens reused: families revoked
//	fiberauth_throttled_total{limit}            requests over a limit, by limit (429s, and the codes
//	                                            not sent past code_sends, answered 202)
//	fiberauth_challenges_total{challenge}       login challenges issued, by name
//	fiberauth_events_total{type}                every event, by type
//	fiberauth_hash_queue_wait_seconds           how long password hashes waited for a slot
package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fiberauth/fiberauth"
)

// Metrics are fiberauth's Prometheus metrics, fed by Config.OnEvent and
// Config.OnHashWait (Instrument).
type Metrics struct {
	logins     *prometheus.CounterVec
	refreshes  prometheus.Counter
	reuse      prometheus.Counter
	throttled  *prometheus.CounterVec
	challenges *prometheus.CounterVec
	events     *prometheus.CounterVec
	hashWait   prometheus.Histogram
}

// New makes the metrics and registers them with reg (a registry of their
// own, or prometheus.DefaultRegisterer). It fails if reg already has them:
// one Metrics serves every Auth of a process.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fiberauth_logins_total",
			Help: "Sign-in steps, by outcome (succeeded: tokens issued; failed, with why; challenged: a first step that asked for a second, with its name, which then also counts as succeeded or failed).",
		}, []string{"outcome", "reason"}),
		refreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fiberauth_refreshes_total",
			Help: "Refresh tokens rotated.",
		}),
		reuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fiberauth_refresh_reuse_total",
			Help: "Refresh tokens presented again after their grace window: the family was revoked.",
		}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fiberauth_throttled_total",
			Help: "Requests over a limit, by limit (429s, and codes not sent past code_sends).",
		}, []string{"limit"}),
		challenges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fiberauth_challenges_total",
			Help: "Login challenges issued, by name.",
		}, []string{"challenge"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fiberauth_events_total",
			Help: "fiberauth's audit events, by type.",
		}, []string{"type"}),
		hashWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fiberauth_hash_queue_wait_seconds",
			Help: "How long a password hash or check waited for one of the hash slots (Config.HashConcurrency).",
			// From no wait to the seconds a login flood queues for.
			Buckets: []float64{0.0005, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}),
	}
	for _, c := range []prometheus.Collector{m.logins, m.refreshes, m.reuse, m.throttled, m.challenges, m.events, m.hashWait} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("fiberauth/metrics: registering"), err)
		}
	}
	return m, nil
}

// Instrument sets cfg's OnEvent and OnHashWait to feed m, after calling
// the hooks cfg already has. Call it before fiberauth.New(cfg).
func (m *Metrics) Instrument(cfg *fiberauth.Config) {
	onEvent, onWait := cfg.OnEvent, cfg.OnHashWait
	cfg.OnEvent = func(e fiberauth.Event) {
		if onEvent != nil {
			onEvent(e)
		}
		m.OnEvent(e)
	}
	cfg.OnHashWait = func(d time.Duration) {
		if onWait != nil {
			onWait(d)
		}
		m.ObserveHashWait(d)
	}
}

// OnEvent counts e: a Config.OnEvent.
func (m *Metrics) OnEvent(e fiberauth.Event) {
	m.events.WithLabelValues(string(e.Type)).Inc()
	switch e.Type {
	case fiberauth.EventLoginSucceeded:
		m.logins.WithLabelValues("succeeded", "").Inc()
	case fiberauth.EventLoginFailed:
		m.logins.WithLabelValues("failed", e.Reason).Inc()
	case fiberauth.EventChallenge:
		m.logins.WithLabelValues("challenged", e.Reason).Inc()
		m.challenges.WithLabelValues(e.Reason).Inc()
	case fiberauth.EventRefresh:
		m.refreshes.Inc()
	case fiberauth.EventRefreshReused:
		m.reuse.Inc()
	case fiberauth.EventThrottled:
		m.throttled.WithLabelValues(e.Reason).Inc()
	}
}

// ObserveHashWait records a hash's wait for a slot: a Config.OnHashWait.
func (m *Metrics) ObserveHashWait(d time.Duration) { m.hashWait.Observe(d.Seconds()) }
