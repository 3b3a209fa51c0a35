package sqlstore_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/fiberauth/fiberauth"
)

// BenchmarkRevokeSession is Store.RevokeSession of a live family: the store
// call a logout makes (with its change notice, where the store sends one).
func BenchmarkRevokeSession(b *testing.B) {
	for _, st := range benchStores() {
		if st.name == "memory" {
			continue
		}
		b.Run(st.name, func(b *testing.B) {
			s := st.open(b)
			ctx := context.Background()
			now := time.Now()
			u := fiberauth.User{ID: rand.Text(), Email: rand.Text() + "@example.com", ETag: "e", CreatedAt: now, UpdatedAt: now}
			if err := s.CreateUser(ctx, u); err != nil {
				b.Fatal(err)
			}
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = rand.Text()
				if err := s.CreateSession(ctx, fiberauth.Session{ID: ids[i], UserID: u.ID, TokenHash: []byte(ids[i]),
					CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				if err := s.RevokeSession(ctx, ids[i], now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
