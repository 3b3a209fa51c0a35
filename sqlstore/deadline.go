package sqlstore

import (
	"context"
	"sync"
	"time"
)

// Shared deadlines for the calls whose context can never end
// (context.Background, as Fiber's handlers pass). Each such call on
// PostgreSQL must still be bounded by the query timeout, but a timer of its
// own per call is dear: arming a timer wakes the thread that waits on the
// network (the runtime's netpoller) so that it sleeps until the new
// deadline instead, a switch of threads per statement. On two cores that
// made a point read about a third slower (BenchmarkRefreshVsFloor; a
// family read went from about 60 to 90 µs). So the calls that start within
// one slice of the timeout share one deadline, a slice after the timeout
// of the first of them: each call is bounded by at least the timeout and
// at most the timeout and a slice, and there is one timer per slice,
// however many calls.

// deadlineSlices is how many slices a timeout has: a shared deadline adds
// at most timeout/deadlineSlices to it.
const deadlineSlices = 64

// deadlines hands out the shared deadline of the current slice.
type deadlines struct {
	mu   sync.Mutex
	ctx  context.Context // ends a slice after the timeout of the calls of the slice
	next time.Time       // when the slice ends
	// stop is never called: ctx ends at its deadline, when every call of
	// its slice has had its time. (Ending it sooner would end those calls.)
	stop context.CancelFunc
}

// bound returns ctx, which can never end, bounded by the shared deadline of
// calls that start now with timeout.
func (d *deadlines) bound(ctx context.Context, timeout time.Duration) context.Context {
	now := time.Now()
	d.mu.Lock()
	if d.ctx == nil || !now.Before(d.next) {
		d.next = now.Add(timeout / deadlineSlices)
		d.ctx, d.stop = context.WithDeadline(context.Background(), d.next.Add(timeout))
	}
	limit := d.ctx
	d.mu.Unlock()
	return boundCtx{ctx, limit}
}

// boundCtx is a context that can never end (the caller's values) bounded by
// a shared one (its deadline, end and error).
type boundCtx struct {
	context.Context
	limit context.Context
}

func (c boundCtx) Deadline() (time.Time, bool) { return c.limit.Deadline() }
func (c boundCtx) Done() <-chan struct{}       { return c.limit.Done() }
func (c boundCtx) Err() error                  { return c.limit.Err() }

// AfterFunc is how context.AfterFunc and the contexts derived from c (pgx
// watches each query's context so) hear of c's end: by registering with
// the shared context, rather than a goroutine each waiting on Done.
func (c boundCtx) AfterFunc(f func()) (stop func() bool) { return context.AfterFunc(c.limit, f) }
