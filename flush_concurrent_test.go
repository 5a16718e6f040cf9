package cowfs

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/mem"
	"github.com/cowfs/cowfs/store/storetest"
)

// TestFlushOutsideLockConcurrent: writers whose flushes cut and store with
// the FS lock released, next to commits, checks, clones, truncations and a
// writer of the same bytes that deletes its copies (so a flush's Put finds
// a blob stored that a commit is about to drop): every file reads back
// what its writer wrote, before and after reopening, and the checker finds
// nothing wrong.
func TestFlushOutsideLockConcurrent(t *testing.T) {
	st := mem.New()
	f, err := Open(mdlStore{Store: st}, &Options{FlushBytes: 96 << 10, ReleaseBudget: 50})
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.CreateVolume("v")
	if err != nil {
		t.Fatal(err)
	}
	const writers, rounds = 3, 60
	// Every writer writes pieces of one shared pool, so that different
	// files (and the duplicator) hold identical chunks.
	pool := randBytes(99, 2<<20)
	want := make([][]byte, writers)
	stop := make(chan struct{})
	var wg, bg sync.WaitGroup
	fail := func(format string, args ...any) { t.Errorf(format, args...) }
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			name := fmt.Sprint("w", w)
			fl, err := v.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				fail("open %s: %v", name, err)
				return
			}
			defer fl.Close()
			var model []byte
			for range rounds {
				n := 1 + rng.IntN(200<<10)
				src := rng.IntN(len(pool) - n)
				off := int64(len(model))
				if rng.IntN(4) == 0 && len(model) > 0 {
					off = rng.Int64N(int64(len(model)))
				}
				if rng.IntN(10) == 0 && len(model) > 0 {
					size := rng.Int64N(int64(len(model)))
					if err := fl.Truncate(size); err != nil {
						fail("truncate %s: %v", name, err)
						return
					}
					model = model[:size]
					continue
				}
				if _, err := fl.WriteAt(pool[src:src+n], off); err != nil {
					fail("write %s: %v", name, err)
					return
				}
				if end := int(off) + n; end > len(model) {
					model = append(model, make([]byte, end-len(model))...)
				}
				copy(model[off:], pool[src:src+n])
			}
			want[w] = model
		})
	}
	bg.Go(func() { // commits and checks
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%5 == 4 {
				rep, err := f.Check(context.Background())
				if err != nil {
					fail("check: %v", err)
				} else if len(rep.Problems) > 0 {
					fail("check: %v", rep.Problems)
				}
				continue
			}
			if err := f.Commit(); err != nil {
				fail("commit: %v", err)
			}
		}
	})
	bg.Go(func() { // copies of the same bytes, deleted again; clones
		rng := rand.New(rand.NewPCG(42, 42))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			n := 100<<10 + rng.IntN(400<<10)
			src := rng.IntN(len(pool) - n)
			if err := v.WriteFile("dup", pool[src:src+n], 0o644); err != nil {
				fail("write dup: %v", err)
			}
			if err := f.Commit(); err != nil {
				fail("commit: %v", err)
			}
			if err := v.Remove("dup"); err != nil {
				fail("remove dup: %v", err)
			}
			if err := v.Clone(fmt.Sprint("w", i%writers), "clone"); err == nil {
				v.Remove("clone")
			}
		}
	})
	wg.Wait()
	close(stop)
	bg.Wait()
	verify := func(v *Volume, when string) {
		for w := range writers {
			got, err := v.ReadFile(fmt.Sprint("w", w))
			if err != nil || !bytes.Equal(got, want[w]) {
				t.Fatalf("%s: w%d: %v, or not what was written (%d bytes, want %d)", when, w, err, len(got), len(want[w]))
			}
		}
	}
	verify(v, "after the writers")
	mustCheck(t, f)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	g, err := Open(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	w, err := g.Volume("v")
	if err != nil {
		t.Fatal(err)
	}
	verify(w, "after reopening")
	mustCheck(t, g)
}

// gatedPuts is a store whose Puts, once armed, do their work and then wait
// for the gate to open before they return.
type gatedPuts struct {
	store.Store
	armed   chan struct{} // closed: Puts wait
	gate    chan struct{} // closed: they go on
	waiting chan struct{} // a token per Put that waits
}

func (s *gatedPuts) Put(ctx context.Context, b []byte) (store.ID, error) {
	id, err := s.Store.Put(ctx, b)
	select {
	case <-s.armed:
		s.waiting <- struct{}{}
		<-s.gate
	default:
	}
	return id, err
}

func (*gatedPuts) Close() error { return nil }

// TestFlushGuardsDedupedBlobs: a flush outside the lock whose Puts found
// their bytes stored already (another file's, committed) keeps them, even
// though a commit that ran meanwhile removed that file (the commit waits
// for the Puts and deletes none of their blobs; it also cuts the same
// pending bytes itself, and counts them).
func TestFlushGuardsDedupedBlobs(t *testing.T) {
	content := randBytes(5, 1<<20)
	st := &gatedPuts{Store: mem.New(), armed: make(chan struct{}), gate: make(chan struct{}), waiting: make(chan struct{}, 1000)}
	f, err := Open(st, &Options{FlushBytes: int64(len(content) / 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, _ := f.CreateVolume("v")
	if err := v.WriteFile("a", content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	b, err := v.Create("b")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	half := len(content) / 2
	if _, err := b.Write(content[:half]); err != nil {
		t.Fatal(err)
	}
	close(st.armed)
	wrote := make(chan error)
	go func() { _, err := b.Write(content[half:]); wrote <- err }()
	storetest.WaitFor(t, st.waiting, "the flush's first Put, outside the lock,")
	if err := v.Remove("a"); err != nil {
		t.Fatal(err)
	}
	committed := make(chan error)
	go func() { committed <- f.Commit() }()
	close(st.gate)
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := v.ReadFile("b"); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("b: %v, or not what was written", err)
	}
	mustCheck(t, f)
}
