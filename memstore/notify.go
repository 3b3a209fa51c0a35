package memstore

import (
	"slices"
	"sync"

	"github.com/fiberauth/fiberauth"
)

// subscribers are the functions Subscribe registered. Changes are announced
// after the store's lock is released, from the goroutine that made them.
type subscribers struct {
	mu   sync.RWMutex // held for reading while announcing; cancel waits for it
	next int
	fns  map[int]func(fiberauth.Change)
}

// Subscribe implements fiberauth.Notifier: every Auth on this Store hears
// at once of the changes the others make.
func (m *Store) Subscribe(fn func(fiberauth.Change)) (cancel func(), err error) {
	s := &m.subs
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fns == nil {
		s.fns = map[int]func(fiberauth.Change){}
	}
	id := s.next
	s.next++
	s.fns[id] = fn
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.fns, id)
			s.mu.Unlock()
		})
	}, nil
}

// announce calls every subscriber with c.
func (s *subscribers) announce(c fiberauth.Change) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, fn := range s.fns {
		fn(c)
	}
}

// updated announces a user update and the families it revoked.
func (s *subscribers) updated(up *fiberauth.UserUpdate, res *fiberauth.UpdateResult) {
	s.announce(fiberauth.Change{UserID: up.User.ID, ETag: up.User.ETag, Sessions: slices.Clone(res.Revoked)})
}
