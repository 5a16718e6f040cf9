package storetest

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/cowfs/cowfs/store"
)

// Latency is how long each kind of call to a Slow store waits before it
// runs.
type Latency struct {
	Get   time.Duration // Get
	Put   time.Duration // Put
	Other time.Duration // Stat, List, GetRoot, ListRoots, Commit and Usage
}

// Slow is a store whose calls each wait a set time before they run, as the
// calls of a store on other machines do, and that counts the calls in
// flight: a store to prove that callers keep many calls going at once. A
// call whose context is done while it waits fails with the context's
// error, doing nothing. It hides the wrapped store's optional
// capabilities.
type Slow struct {
	s        store.Store
	lat      atomic.Pointer[Latency]
	calls    atomic.Int64
	inFlight atomic.Int64
	peak     atomic.Int64
}

// NewSlow wraps s with latency l.
func NewSlow(s store.Store, l Latency) *Slow {
	slow := &Slow{s: s}
	slow.SetLatency(l)
	return slow
}

// SetLatency changes the latency of the calls that start from now on.
func (s *Slow) SetLatency(l Latency) { s.lat.Store(&l) }

// latency returns the current latency.
func (s *Slow) latency() Latency { return *s.lat.Load() }

// Calls returns how many calls were made.
func (s *Slow) Calls() int64 { return s.calls.Load() }

// InFlight returns how many calls are running now.
func (s *Slow) InFlight() int64 { return s.inFlight.Load() }

// Peak returns the most calls that ran at once since the last ResetPeak.
func (s *Slow) Peak() int64 { return s.peak.Load() }

// ResetPeak starts a new count for Peak.
func (s *Slow) ResetPeak() { s.peak.Store(s.inFlight.Load()) }

// enter waits d, counting the call in flight until the returned function
// is called; it fails if ctx is done first.
func (s *Slow) enter(ctx context.Context, d time.Duration) (func(), error) {
	s.calls.Add(1)
	n := s.inFlight.Add(1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	leave := func() { s.inFlight.Add(-1) }
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			leave()
			return nil, ctx.Err()
		}
	}
	return leave, nil
}

// Put is the wrapped store's Put after Latency.Put.
func (s *Slow) Put(ctx context.Context, data []byte) (store.ID, error) {
	leave, err := s.enter(ctx, s.latency().Put)
	if err != nil {
		return store.ID{}, err
	}
	defer leave()
	return s.s.Put(ctx, data)
}

// Get is the wrapped store's Get after Latency.Get.
func (s *Slow) Get(ctx context.Context, id store.ID) ([]byte, error) {
	leave, err := s.enter(ctx, s.latency().Get)
	if err != nil {
		return nil, err
	}
	defer leave()
	return s.s.Get(ctx, id)
}

// Stat is the wrapped store's Stat after Latency.Other.
func (s *Slow) Stat(ctx context.Context, id store.ID) (store.BlobInfo, error) {
	leave, err := s.enter(ctx, s.latency().Other)
	if err != nil {
		return store.BlobInfo{}, err
	}
	defer leave()
	return s.s.Stat(ctx, id)
}

// List is the wrapped store's List after Latency.Other.
func (s *Slow) List(ctx context.Context, fn func(store.BlobInfo) error) error {
	leave, err := s.enter(ctx, s.latency().Other)
	if err != nil {
		return err
	}
	defer leave()
	return s.s.List(ctx, fn)
}

// GetRoot is the wrapped store's GetRoot after Latency.Other.
func (s *Slow) GetRoot(ctx context.Context, name string) (store.ID, error) {
	leave, err := s.enter(ctx, s.latency().Other)
	if err != nil {
		return store.ID{}, err
	}
	defer leave()
	return s.s.GetRoot(ctx, name)
}

// ListRoots is the wrapped store's ListRoots after Latency.Other.
func (s *Slow) ListRoots(ctx context.Context) ([]store.Root, error) {
	leave, err := s.enter(ctx, s.latency().Other)
	if err != nil {
		return nil, err
	}
	defer leave()
	return s.s.ListRoots(ctx)
}

// Commit is the wrapped store's Commit after Latency.Other.
func (s *Slow) Commit(ctx context.Context, b store.Batch) error {
	leave, err := s.enter(ctx, s.latency().Other)
	if err != nil {
		return err
	}
	defer leave()
	return s.s.Commit(ctx, b)
}

// Usage is the wrapped store's Usage after Latency.Other.
func (s *Slow) Usage(ctx context.Context) (store.Usage, error) {
	leave, err := s.enter(ctx, s.latency().Other)
	if err != nil {
		return store.Usage{}, err
	}
	defer leave()
	return s.s.Usage(ctx)
}

// Close closes the wrapped store at once.
func (s *Slow) Close() error { return s.s.Close() }
