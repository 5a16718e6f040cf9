package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cowfs/cowfs/store"
)

// TestRoots checks GetRoot, ListRoots and root swaps in Commit.
func TestRoots(t *testing.T, newStore func(t *testing.T) store.Store) {
	var zero store.ID
	swap := func(name string, from, to store.ID) store.Batch {
		return store.Batch{Roots: []store.RootSwap{{Name: name, Old: from, New: to}}}
	}

	t.Run("Lifecycle", func(t *testing.T) {
		s := open(t, newStore)
		x, y := put(t, s, data(1, 10)), put(t, s, data(2, 10))
		checkNoRoot(t, s, "vol")
		if roots, err := s.ListRoots(t.Context()); err != nil || len(roots) != 0 {
			t.Errorf("ListRoots of a new store: want [], nil error; got %s, %v", rootsString(roots), err)
		}
		commit(t, s, swap("vol", zero, x))
		checkRoot(t, s, "vol", x)
		commit(t, s, swap("vol", x, y))
		checkRoot(t, s, "vol", y)
		commit(t, s, swap("vol", y, y)) // asserts the value, changes nothing
		checkRoot(t, s, "vol", y)
		commit(t, s, swap("vol", y, zero))
		checkNoRoot(t, s, "vol")
		commit(t, s, swap("vol", zero, zero)) // asserts absence, changes nothing
		checkNoRoot(t, s, "vol")
		if roots, err := s.ListRoots(t.Context()); err != nil || len(roots) != 0 {
			t.Errorf("ListRoots after deleting the only root: want [], nil error; got %s, %v", rootsString(roots), err)
		}
		// Swaps change no counts.
		checkStat(t, s, x, 10, 0)
		checkStat(t, s, y, 10, 0)
	})

	t.Run("Conflict", func(t *testing.T) {
		s := open(t, newStore)
		x, y, z := put(t, s, data(1, 10)), put(t, s, data(2, 10)), put(t, s, data(3, 10))
		w := put(t, s, data(4, 10))
		commit(t, s, store.Batch{Refs: map[store.ID]int64{x: 1}, Roots: []store.RootSwap{{Name: "a", New: x}, {Name: "b", New: y}}})
		checkRoot(t, s, "a", x)
		checkRoot(t, s, "b", y)
		// Everything else in this batch is valid; the wrong Old of "a" must
		// stop all of it.
		failCommit(t, s, "a batch with one wrong Old", store.Batch{
			Refs:   map[store.ID]int64{x: -1, z: 2},
			Roots:  []store.RootSwap{{Name: "b", Old: y, New: z}, {Name: "a", Old: y, New: z}, {Name: "c", New: z}},
			Delete: []store.ID{w},
		}, store.ErrConflict)
		failCommit(t, s, "creating an existing root", swap("a", zero, z), store.ErrConflict)
		failCommit(t, s, "swapping an absent root", swap("c", x, z), store.ErrConflict)
		failCommit(t, s, "deleting a root with the wrong Old", swap("a", y, zero), store.ErrConflict)
		failCommit(t, s, "asserting absence of an existing root", swap("a", zero, zero), store.ErrConflict)
		failCommit(t, s, "deleting an absent root", swap("c", z, zero), store.ErrConflict)
	})

	t.Run("Sorted", func(t *testing.T) {
		s := open(t, newStore)
		names := []string{"m", "a b", "Z", "\xff", "a", "ab", "a-b", "0", "zz", "~"}
		want := make(map[string]store.ID)
		for i, name := range names {
			id := put(t, s, data(uint64(i), 10))
			commit(t, s, swap(name, zero, id))
			want[name] = id
		}
		roots, err := s.ListRoots(t.Context())
		if err != nil {
			t.Fatalf("ListRoots: want nil error, got %v", err)
		}
		sorted := append([]string(nil), names...)
		slices.Sort(sorted)
		if len(roots) != len(sorted) {
			t.Fatalf("ListRoots: want %d roots, got %d: %s", len(sorted), len(roots), rootsString(roots))
		}
		for i, r := range roots {
			if r.Name != sorted[i] || r.ID != want[sorted[i]] {
				t.Errorf("ListRoots()[%d]: want %q:%s, got %q:%s", i, sorted[i], want[sorted[i]].Short(), r.Name, r.ID.Short())
			}
		}
		// The result belongs to the caller.
		roots[0] = store.Root{Name: "changed", ID: want["m"]}
		again, err := s.ListRoots(t.Context())
		if err != nil || len(again) == 0 || again[0].Name != sorted[0] {
			t.Errorf("ListRoots after the caller changed an earlier result: want first root %q; got %s, %v", sorted[0], rootsString(again), err)
		}
	})

	t.Run("InvalidNames", func(t *testing.T) {
		s := open(t, newStore)
		x := put(t, s, data(1, 10))
		for _, name := range []string{"", "/", "a/b", "a/", "\x00", "a\x00b", strings.Repeat("x", 256)} {
			failCommit(t, s, fmt.Sprintf("a swap of invalid root name %q", name), store.Batch{
				Refs:  map[store.ID]int64{x: 1},
				Roots: []store.RootSwap{{Name: "ok", New: x}, {Name: name, New: x}},
			}, store.ErrInvalid)
			if _, err := s.GetRoot(t.Context(), name); !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrInvalid) {
				t.Errorf("GetRoot(%q): want error wrapping %q or %q, got %v", name, store.ErrNotFound, store.ErrInvalid, err)
			}
		}
		long := strings.Repeat("x", 255)
		commit(t, s, swap(long, zero, x))
		checkRoot(t, s, long, x)
	})

	t.Run("DuplicateName", func(t *testing.T) {
		s := open(t, newStore)
		x, y := put(t, s, data(1, 10)), put(t, s, data(2, 10))
		failCommit(t, s, "two swaps of one root", store.Batch{
			Roots: []store.RootSwap{{Name: "a", New: x}, {Name: "a", Old: x, New: y}},
		}, store.ErrInvalid)
		failCommit(t, s, "two identical swaps of one root", store.Batch{
			Roots: []store.RootSwap{{Name: "a", New: x}, {Name: "a", New: x}},
		}, store.ErrInvalid)
	})

	t.Run("Targets", func(t *testing.T) {
		s := open(t, newStore)
		empty := put(t, s, nil)
		x := put(t, s, data(1, 10))
		commit(t, s, swap("empty", zero, empty))
		checkRoot(t, s, "empty", empty)
		commit(t, s, swap("x", zero, x))
		checkRoot(t, s, "x", x)
		missing := store.Sum([]byte("never put"))
		failCommit(t, s, "creating a root on a missing blob", swap("m", zero, missing), store.ErrInvalid)
		failCommit(t, s, "swapping a root to a missing blob", swap("x", x, missing), store.ErrInvalid)
		y := put(t, s, data(2, 10))
		failCommit(t, s, "binding a root to a blob the batch deletes", store.Batch{
			Roots:  []store.RootSwap{{Name: "y", New: y}},
			Delete: []store.ID{y},
		}, store.ErrInvalid)
	})

	t.Run("ConcurrentCAS", func(t *testing.T) {
		s := open(t, newStore)
		const workers, rounds = 8, 20
		var ids [rounds][workers]store.ID
		for r := range rounds {
			for w := range workers {
				ids[r][w] = put(t, s, data(uint64(r*workers+w), 16))
			}
		}
		var cur store.ID
		for r := range rounds {
			var errs [workers]error
			var wg sync.WaitGroup
			start := make(chan struct{})
			for w := range workers {
				wg.Go(func() {
					<-start
					errs[w] = s.Commit(t.Context(), swap("cas", cur, ids[r][w]))
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for w, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("round %d: want exactly one winning swap, got goroutines %d and %d", r, winner, w)
				case err == nil:
					winner = w
				case !errors.Is(err, store.ErrConflict):
					t.Errorf("round %d: losing swap: want error wrapping %q, got %v", r, store.ErrConflict, err)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: want exactly one winning swap, got none", r)
			}
			cur = ids[r][winner]
			checkRoot(t, s, "cas", cur)
		}
	})
}
