package cowfs

import (
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/mem"
	"github.com/cowfs/cowfs/store/storetest"
)

// countingGets counts the Gets of each blob.
type countingGets struct {
	store.Store
	mu   sync.Mutex
	gets map[store.ID]int
}

func (s *countingGets) Get(ctx context.Context, id store.ID) ([]byte, error) {
	s.mu.Lock()
	s.gets[id]++
	s.mu.Unlock()
	return s.Store.Get(ctx, id)
}

func (*countingGets) Close() error { return nil }

// total returns the Gets counted, and forgets them.
func (s *countingGets) total() (n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.gets {
		n += k
	}
	clear(s.gets)
	return n
}

// readAheadFS writes files of size bytes to a store and returns it, with a
// function that opens a fresh FS on it (nothing cached) whose store
// calls go through wrap.
func readAheadFS(t *testing.T, names []string, size int) (map[string][]byte, func(wrap func(store.Store) store.Store) (*FS, *Volume)) {
	t.Helper()
	base := mem.New()
	f, err := Open(&countingGets{Store: base, gets: map[store.ID]int{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := f.CreateVolume("v")
	want := map[string][]byte{}
	for i, name := range names {
		want[name] = randBytes(uint64(i+1), size)
		if err := v.WriteFile(name, want[name], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return want, func(wrap func(store.Store) store.Store) (*FS, *Volume) {
		g, err := Open(wrap(&countingGets{Store: base, gets: map[store.ID]int{}}), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		w, err := g.Volume("v")
		if err != nil {
			t.Fatal(err)
		}
		return g, w
	}
}

// TestReadAheadSequential: a sequential reader of a store with 5 ms per
// Get keeps many Gets in flight and reads the right bytes, several times
// faster than one Get at a time would allow; Close waits for the
// fetches it started.
func TestReadAheadSequential(t *testing.T) {
	const size = 8 << 20
	want, open := readAheadFS(t, []string{"f"}, size)
	var slow *storetest.Slow
	g, v := open(func(s store.Store) store.Store {
		slow = storetest.NewSlow(s, storetest.Latency{Get: 5 * time.Millisecond})
		return slow
	})
	fl, err := v.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(fl)
	if err != nil || string(got) != string(want["f"]) {
		t.Fatalf("read back: %v, or other bytes", err)
	}
	fl.Close()
	if slow.Peak() < 8 {
		t.Errorf("at most %d Gets in flight", slow.Peak())
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if n := slow.InFlight(); n != 0 {
		t.Errorf("%d Gets still running after Close", n)
	}
}

// TestReadAheadRandom: random reads fetch only the blobs they read.
func TestReadAheadRandom(t *testing.T) {
	const size = 8 << 20
	want, open := readAheadFS(t, []string{"f"}, size)
	var cg *countingGets
	_, v := open(func(s store.Store) store.Store { cg = s.(*countingGets); return s })
	fl, err := v.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	fl.ReadAt(make([]byte, 1), size-1) // loads the rope's nodes
	cg.total()
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	for range 50 {
		off := rng.Int64N(size - int64(len(buf)))
		if _, err := fl.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		if string(buf) != string(want["f"][off:off+int64(len(buf))]) {
			t.Fatalf("read at %d: other bytes", off)
		}
	}
	// Every read touches one blob, two at a chunk boundary; read-ahead
	// would fetch whole windows.
	if n := cg.total(); n > 60 {
		t.Errorf("50 random reads of 4 KiB made %d Gets", n)
	}
}

// TestSharedFetch: readers of one uncached file at once make one Get of
// each of its blobs (its rope's node and its data blob).
func TestSharedFetch(t *testing.T) {
	want, open := readAheadFS(t, []string{"f"}, 40<<10) // one blob
	var cg *countingGets
	_, v := open(func(s store.Store) store.Store {
		cg = s.(*countingGets)
		return storetest.NewSlow(s, storetest.Latency{Get: 20 * time.Millisecond})
	})
	fl, err := v.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	cg.total()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			buf := make([]byte, 100)
			if _, err := fl.ReadAt(buf, 1000); err != nil || string(buf) != string(want["f"][1000:1100]) {
				t.Errorf("read: %v, or other bytes", err)
			}
		})
	}
	wg.Wait()
	cg.mu.Lock()
	defer cg.mu.Unlock()
	if len(cg.gets) == 0 {
		t.Fatal("no Gets counted")
	}
	for id, n := range cg.gets {
		if n != 1 {
			t.Errorf("8 readers made %d Gets of blob %s", n, id.Short())
		}
	}
}
