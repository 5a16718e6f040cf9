package storetest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cowfs/cowfs/store"
)

// Blocking is a store whose Get and Put, while armed, block until their
// context is done and then fail with its error (doing nothing): a store
// that does not answer, for tests of cancellation. Arming with a number of
// calls to let through first stops an operation part way. Close does
// nothing, so that a test can open a fresh FS on the same store.
type Blocking struct {
	store.Store
	armed atomic.Bool
	pass  atomic.Int64 // armed calls still let through
	// Blocked receives a token for each call that starts blocking, and
	// Unblocked one for each that returns.
	Blocked, Unblocked chan struct{}
}

// NewBlocking wraps s, disarmed.
func NewBlocking(s store.Store) *Blocking {
	return &Blocking{Store: s, Blocked: make(chan struct{}, 1024), Unblocked: make(chan struct{}, 1024)}
}

// Arm makes every Get and Put after the next pass ones block.
func (s *Blocking) Arm(pass int64) {
	s.pass.Store(pass)
	s.armed.Store(true)
}

// Disarm lets every call through again (calls blocked already stay so).
func (s *Blocking) Disarm() { s.armed.Store(false) }

// WaitFor takes a token from c (Blocked or Unblocked) or fails t with
// "what did not happen" after ten seconds.
func WaitFor(t testing.TB, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal(what + " did not happen")
	}
}

func (s *Blocking) wait(ctx context.Context) error {
	if !s.armed.Load() || s.pass.Add(-1) >= 0 {
		return nil
	}
	s.Blocked <- struct{}{}
	<-ctx.Done()
	s.Unblocked <- struct{}{}
	return ctx.Err()
}

// Get is the wrapped store's Get, blocking while armed.
func (s *Blocking) Get(ctx context.Context, id store.ID) ([]byte, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, id)
}

// Put is the wrapped store's Put, blocking while armed.
func (s *Blocking) Put(ctx context.Context, data []byte) (store.ID, error) {
	if err := s.wait(ctx); err != nil {
		return store.ID{}, err
	}
	return s.Store.Put(ctx, data)
}

// Close does nothing: the wrapped store stays open.
func (*Blocking) Close() error { return nil }
