package storetest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cowfs/cowfs/store/mem"
	"github.com/cowfs/cowfs/store/storetest"
)

// TestSlow: each call waits its latency, calls wait side by side (Peak
// counts them), and a call whose context ends while it waits fails with
// the context's error.
func TestSlow(t *testing.T) {
	const d = 50 * time.Millisecond
	s := storetest.NewSlow(mem.New(), storetest.Latency{Get: d, Put: d})
	ctx := context.Background()
	start := time.Now()
	id, err := s.Put(ctx, []byte("blob"))
	if err != nil {
		t.Fatal(err)
	}
	if e := time.Since(start); e < d {
		t.Errorf("Put took %v, less than its latency", e)
	}
	var wg sync.WaitGroup
	start = time.Now()
	for range 8 {
		wg.Go(func() {
			if b, err := s.Get(ctx, id); err != nil || string(b) != "blob" {
				t.Errorf("Get: %q, %v", b, err)
			}
		})
	}
	wg.Wait()
	if e := time.Since(start); e < d || e > 4*d {
		t.Errorf("8 Gets at once took %v, want about %v", e, d)
	}
	if p := s.Peak(); p != 8 {
		t.Errorf("Peak %d, want 8", p)
	}
	if n := s.Calls(); n != 9 {
		t.Errorf("Calls %d, want 9", n)
	}
	if n := s.InFlight(); n != 0 {
		t.Errorf("InFlight %d after the calls", n)
	}
	cctx, cancel := context.WithTimeout(ctx, d/5)
	defer cancel()
	if _, err := s.Get(cctx, id); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get past its deadline: %v", err)
	}
	s.ResetPeak()
	if p := s.Peak(); p != 0 {
		t.Errorf("Peak %d after ResetPeak", p)
	}
}
