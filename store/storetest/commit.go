package storetest

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/cowfs/cowfs/store"
)

// TestCommit checks reference counts, deletion, atomicity and Close.
func TestCommit(t *testing.T, newStore func(t *testing.T) store.Store) {
	type refs = map[store.ID]int64
	missing := store.Sum([]byte("never put"))

	t.Run("Refs", func(t *testing.T) {
		s := open(t, newStore)
		x, y := put(t, s, data(1, 10)), put(t, s, data(2, 20))
		commit(t, s, store.Batch{Refs: refs{x: 2, y: 1}})
		checkStat(t, s, x, 10, 2)
		checkStat(t, s, y, 20, 1)
		commit(t, s, store.Batch{Refs: refs{x: -1, y: 0}})
		checkStat(t, s, x, 10, 1)
		checkStat(t, s, y, 20, 1)
		put(t, s, data(1, 10)) // putting again keeps the count
		checkStat(t, s, x, 10, 1)
		st := snapshot(t, s)
		if st.blobs[x].Refs != 1 || st.blobs[y].Refs != 1 {
			t.Errorf("List: want Refs 1 for both blobs, got %d and %d", st.blobs[x].Refs, st.blobs[y].Refs)
		}
	})

	t.Run("Negative", func(t *testing.T) {
		s := open(t, newStore)
		x, y := put(t, s, data(1, 10)), put(t, s, data(2, 10))
		commit(t, s, store.Batch{Refs: refs{x: 1}})
		failCommit(t, s, "a count going below zero", store.Batch{Refs: refs{x: -2, y: 1}}, store.ErrInvalid)
		failCommit(t, s, "a count going below zero", store.Batch{Refs: refs{y: -1}}, store.ErrInvalid)
		failCommit(t, s, "a count overflowing", store.Batch{Refs: refs{x: math.MaxInt64, y: 1}}, store.ErrInvalid)
		failCommit(t, s, "a delta of MinInt64", store.Batch{Refs: refs{x: math.MinInt64}}, store.ErrInvalid)
	})

	t.Run("RefsMissing", func(t *testing.T) {
		s := open(t, newStore)
		x := put(t, s, data(1, 10))
		failCommit(t, s, "Refs of a missing blob", store.Batch{Refs: refs{x: 1, missing: 1}}, store.ErrNotFound)
		failCommit(t, s, "Refs of the zero ID", store.Batch{Refs: refs{x: 1, {}: 1}}, store.ErrNotFound)
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t, newStore)
		x, y := put(t, s, data(1, 10)), put(t, s, data(2, 20))
		commit(t, s, store.Batch{Delete: []store.ID{x}})
		_, err := s.Get(t.Context(), x)
		wantErr(t, "Get of a deleted blob", err, store.ErrNotFound)
		_, err = s.Stat(t.Context(), x)
		wantErr(t, "Stat of a deleted blob", err, store.ErrNotFound)
		checkUsage(t, s, store.Usage{Blobs: 1, Bytes: 20})
		if st := snapshot(t, s); len(st.blobs) != 1 || st.blobs[y].Size != 20 {
			t.Errorf("List after deleting one of two blobs: want only %s, got %d blobs", y.Short(), len(st.blobs))
		}
		put(t, s, data(1, 10)) // a deleted blob can come back, at count 0
		checkStat(t, s, x, 10, 0)
		checkUsage(t, s, store.Usage{Blobs: 2, Bytes: 30})
	})

	t.Run("DeleteReferenced", func(t *testing.T) {
		s := open(t, newStore)
		x, y := put(t, s, data(1, 10)), put(t, s, data(2, 10))
		commit(t, s, store.Batch{Refs: refs{x: 1}})
		failCommit(t, s, "deleting a referenced blob", store.Batch{Refs: refs{y: 1}, Delete: []store.ID{x}}, store.ErrInvalid)
		failCommit(t, s, "deleting a blob the batch references", store.Batch{Refs: refs{y: 1}, Delete: []store.ID{y}}, store.ErrInvalid)
		failCommit(t, s, "deleting a blob twice", store.Batch{Delete: []store.ID{y, y}}, store.ErrInvalid)
	})

	t.Run("DeleteMissing", func(t *testing.T) {
		s := open(t, newStore)
		x, y := put(t, s, data(1, 10)), put(t, s, data(2, 10))
		failCommit(t, s, "deleting a missing blob", store.Batch{Refs: refs{x: 1}, Delete: []store.ID{y, missing}}, store.ErrNotFound)
	})

	t.Run("DecrementAndDelete", func(t *testing.T) {
		s := open(t, newStore)
		x, y := put(t, s, data(1, 10)), put(t, s, data(2, 20))
		commit(t, s, store.Batch{Refs: refs{x: 2}, Roots: []store.RootSwap{{Name: "r", New: x}}})
		commit(t, s, store.Batch{
			Refs:   refs{x: -2, y: 1},
			Roots:  []store.RootSwap{{Name: "r", Old: x, New: y}},
			Delete: []store.ID{x},
		})
		_, err := s.Get(t.Context(), x)
		wantErr(t, "Get of a blob decremented to 0 and deleted", err, store.ErrNotFound)
		checkStat(t, s, y, 20, 1)
		checkRoot(t, s, "r", y)
		checkUsage(t, s, store.Usage{Blobs: 1, Bytes: 20})
	})

	t.Run("Empty", func(t *testing.T) {
		s := open(t, newStore)
		x := put(t, s, data(1, 10))
		commit(t, s, store.Batch{Refs: refs{x: 1}, Roots: []store.RootSwap{{Name: "r", New: x}}})
		before := snapshot(t, s)
		commit(t, s, store.Batch{})
		commit(t, s, store.Batch{Refs: refs{}, Roots: []store.RootSwap{}, Delete: []store.ID{}})
		checkUnchanged(t, "an empty Commit", s, before)
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t, newStore)
		x, y := put(t, s, data(1, 10)), put(t, s, data(2, 10))
		const workers, perWorker = 8, 50
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range perWorker {
					if err := s.Commit(t.Context(), store.Batch{Refs: refs{x: 1, y: 2}}); err != nil {
						t.Errorf("concurrent Commit: want nil error, got %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		checkStat(t, s, x, 10, workers*perWorker)
		checkStat(t, s, y, 10, 2*workers*perWorker)
	})

	t.Run("Closed", func(t *testing.T) {
		s := open(t, newStore)
		x := put(t, s, data(1, 10))
		commit(t, s, store.Batch{Refs: refs{x: 1}, Roots: []store.RootSwap{{Name: "r", New: x}}})
		if err := s.Close(); err != nil {
			t.Fatalf("Close: want nil error, got %v", err)
		}
		ctx := t.Context()
		calls := []struct {
			name string
			call func() error
		}{
			{"Put", func() error { _, err := s.Put(ctx, data(2, 10)); return err }},
			{"Put of a stored blob", func() error { _, err := s.Put(ctx, data(1, 10)); return err }},
			{"Get", func() error { _, err := s.Get(ctx, x); return err }},
			{"Stat", func() error { _, err := s.Stat(ctx, x); return err }},
			{"List", func() error {
				return s.List(ctx, func(store.BlobInfo) error { return errors.New("fn called after Close") })
			}},
			{"GetRoot", func() error { _, err := s.GetRoot(ctx, "r"); return err }},
			{"ListRoots", func() error { _, err := s.ListRoots(ctx); return err }},
			{"Commit", func() error { return s.Commit(ctx, store.Batch{Refs: refs{x: -1}}) }},
			{"Commit of an empty batch", func() error { return s.Commit(ctx, store.Batch{}) }},
			{"Usage", func() error { _, err := s.Usage(ctx); return err }},
			{"Close", s.Close},
		}
		for _, c := range calls {
			wantErr(t, fmt.Sprintf("%s after Close", c.name), c.call(), store.ErrClosed)
		}
	})
}
