package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	"github.com/fiberauth/fiberauth"
)

// Group commit of SQLite rotations. SQLite has one writer, and with
// synchronous=FULL each transaction waits for an fsync, so a burst of
// refreshes would commit one fsync at a time. Instead, a rotation joins the
// rotations pending; whichever of them gets the writer's turn first commits
// every rotation pending then in one transaction (one fsync), and the
// others, done, leave the queue without taking a turn. Each rotation is
// still its own conditional UPDATE, in the order they arrived: of two
// rotations of one token in a batch, the second finds the token replaced
// (ErrNotCurrent). A batch that fails as a whole (the COMMIT, or an error
// other than ErrNotCurrent or ErrNotFound) fails every rotation in it, and
// none of them is written. A rotation alone commits as one statement, as on
// PostgreSQL.

// rotations are the rotations waiting for a turn of the writer.
type rotations struct {
	mu      sync.Mutex
	pending []*rotation
}

// rotation is one RotateSession or RotateSessionIfUser call (check set),
// and its answer once done is closed.
type rotation struct {
	r     fiberauth.Rotation
	check *userCheck
	taken bool // a batch took it (under rotations.mu)
	done  chan struct{}
	out   fiberauth.Session
	user  fiberauth.User // with check
	err   error
}

func (q *rotations) add(x *rotation) {
	q.mu.Lock()
	q.pending = append(q.pending, x)
	q.mu.Unlock()
}

// take returns the rotations pending, which the caller commits.
func (q *rotations) take() []*rotation {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch := q.pending
	q.pending = nil
	for _, x := range batch {
		x.taken = true
	}
	return batch
}

// drop withdraws x, unless a batch has taken it (then it reports false: x
// will be done, and its answer stands).
func (q *rotations) drop(x *rotation) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if x.taken {
		return false
	}
	for i, y := range q.pending {
		if y == x {
			q.pending = append(q.pending[:i], q.pending[i+1:]...)
			break
		}
	}
	return true
}

// rotateSQLite is RotateSession on SQLite: it waits, in the write queue
// (bounded, as long as ctx lets it), for its turn or for another rotation's
// turn to commit it.
func (s *Store) rotateSQLite(ctx context.Context, r fiberauth.Rotation) (fiberauth.Session, error) {
	x, err := s.queueRotation(ctx, &rotation{r: r})
	return x.out, err
}

// queueRotation does x in the write queue and returns it answered (x.err,
// or the queue's own error: full, or ctx ended while x waited).
func (s *Store) queueRotation(ctx context.Context, x *rotation) (*rotation, error) {
	x.done = make(chan struct{})
	s.rotations.add(x)
	if s.waiting.Add(1) > s.maxQueued {
		s.waiting.Add(-1)
		if s.rotations.drop(x) {
			return x, errWriteQueueFull
		}
		<-x.done
		return x, x.err
	}
	select {
	case s.writer <- struct{}{}:
		s.waiting.Add(-1)
		if batch := s.rotations.take(); len(batch) > 0 {
			s.commitRotations(context.WithoutCancel(ctx), batch)
		}
		<-s.writer
	case <-x.done:
		s.waiting.Add(-1)
	case <-ctx.Done():
		s.waiting.Add(-1)
		if s.rotations.drop(x) {
			return x, ctx.Err()
		}
	}
	<-x.done
	return x, x.err
}

// commitRotations commits batch, holding the writer's turn, and tells each
// rotation its answer. The batch is everyone's, so no one's context may end
// it: ctx is the values of the caller's that leads (a tracer's) without its
// end; busy_timeout bounds its wait for another process's lock (see call).
func (s *Store) commitRotations(ctx context.Context, batch []*rotation) {
	defer func() {
		for _, x := range batch {
			close(x.done)
		}
	}()
	if len(batch) == 1 {
		x := batch[0]
		s.rotateOne(x, func(query string, args ...any) scanner { return s.queryRow(ctx, query, args...) })
		return
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		row := func(query string, args ...any) scanner {
			if st := s.prepare(ctx, query); st != nil {
				return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
			}
			return tx.QueryRowContext(ctx, query, args...)
		}
		for _, x := range batch {
			s.rotateOne(x, row)
			if x.err != nil && !errors.Is(x.err, fiberauth.ErrNotCurrent) && !errors.Is(x.err, fiberauth.ErrNotFound) {
				return x.err
			}
		}
		return nil
	})
	if err != nil {
		for _, x := range batch {
			x.out, x.user, x.err = fiberauth.Session{}, fiberauth.User{}, err
		}
	}
}

// rotateOne does x by row and sets its answer.
func (s *Store) rotateOne(x *rotation, row func(query string, args ...any) scanner) {
	if x.check != nil {
		rotateChecked(x, s.pg, row)
		return
	}
	x.out, x.err = rotateProbed(x.r, row)
}
