package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"
)

type deadlineKey struct{}

// A context that can never end, bounded by a shared deadline: the timeout
// and at most a slice more, the caller's values, and an end that reaches
// context.AfterFunc and derived contexts; calls that start together share
// the deadline.
func TestSharedDeadline(t *testing.T) {
	var d deadlines
	parent := context.WithValue(context.Background(), deadlineKey{}, "v")

	const long = time.Hour
	start := time.Now()
	a, b := d.bound(parent, long), d.bound(context.Background(), long)
	da, ok := a.Deadline()
	if !ok || da.Before(start.Add(long)) || da.After(time.Now().Add(long+long/deadlineSlices)) {
		t.Fatalf("deadline %v (%v): want within a slice after %v", da, ok, start.Add(long))
	}
	if db, _ := b.Deadline(); !db.Equal(da) {
		t.Fatalf("calls of one slice: deadlines %v and %v, want one", da, db)
	}
	if a.Value(deadlineKey{}) != "v" || a.Err() != nil {
		t.Fatalf("value %v, err %v: want the caller's value, no error yet", a.Value(deadlineKey{}), a.Err())
	}

	const short = 2 * time.Millisecond
	var d2 deadlines
	c := d2.bound(parent, short)
	heard := make(chan struct{})
	context.AfterFunc(c, func() { close(heard) })
	derived, cancel := context.WithCancel(c)
	defer cancel()
	<-derived.Done()
	<-heard
	if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(derived.Err(), context.DeadlineExceeded) ||
		!errors.Is(context.Cause(c), context.DeadlineExceeded) {
		t.Fatalf("errors %v, %v, cause %v: want deadline exceeded", c.Err(), derived.Err(), context.Cause(c))
	}
	if took := time.Since(start); took < short {
		t.Fatalf("ended after %v, before the timeout %v", took, short)
	}
}
