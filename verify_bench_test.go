package fiberauth

import (
	"log/slog"
	"testing"
	"time"
)

// noStore is a Store that New accepts and verify never calls.
type noStore struct{ Store }

// BenchmarkVerifyUnseen is the middleware's work for a token it has not
// seen (tokenSigner.verify: decode, header, signature, claims), for each
// algorithm. HS256 must not pay for the asymmetric keys:
//
//	go test -run '^$' -bench BenchmarkVerifyUnseen -benchmem -count 10 . | benchstat -
func BenchmarkVerifyUnseen(b *testing.B) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, alg := range []string{"HS256", AlgorithmEdDSA, AlgorithmES256} {
		b.Run(alg, func(b *testing.B) {
			cfg := Config{Store: noStore{}, Secret: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)}
			if alg != "HS256" {
				k, err := GenerateSigningKey(alg)
				if err != nil {
					b.Fatal(err)
				}
				cfg.SigningKeys = []*SigningKey{k}
			}
			a, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			raw, _, err := a.tokens.sign("user", "session", "etag", now)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := a.tokens.verify(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
