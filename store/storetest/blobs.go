package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cowfs/cowfs/store"
)

// TestBlobs checks Put, Get, Stat, List and Usage.
func TestBlobs(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t, newStore)
		for i, n := range []int{0, 1, 2, 100, 4096, 65536 + 3} {
			b := data(uint64(i), n)
			id := put(t, s, b)
			got, err := s.Get(t.Context(), id)
			if err != nil {
				t.Fatalf("Get(%s) of a %d-byte blob: want nil error, got %v", id.Short(), n, err)
			}
			checkBytes(t, fmt.Sprintf("Get(%s)", id.Short()), got, b)
			checkStat(t, s, id, int64(n), 0)
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		s := open(t, newStore)
		b := data(1, 1000)
		id := put(t, s, b)
		if again := put(t, s, append([]byte(nil), b...)); again != id {
			t.Errorf("second Put of the same bytes: want ID %s, got %s", id.Short(), again.Short())
		}
		checkUsage(t, s, store.Usage{Blobs: 1, Bytes: 1000})
		if st := snapshot(t, s); len(st.blobs) != 1 {
			t.Errorf("List after putting one blob twice: want 1 blob, got %d", len(st.blobs))
		}
		checkStat(t, s, id, 1000, 0)
	})

	t.Run("Empty", func(t *testing.T) {
		s := open(t, newStore)
		id := put(t, s, nil)
		if again := put(t, s, []byte{}); again != id {
			t.Errorf("Put([]byte{}) after Put(nil): want ID %s, got %s", id.Short(), again.Short())
		}
		got, err := s.Get(t.Context(), id)
		if err != nil || len(got) != 0 {
			t.Errorf("Get of the empty blob: want 0 bytes, nil error; got %d bytes, %v", len(got), err)
		}
		checkStat(t, s, id, 0, 0)
		checkUsage(t, s, store.Usage{Blobs: 1, Bytes: 0})
	})

	t.Run("Large", func(t *testing.T) {
		s := open(t, newStore)
		const n = 4 << 20
		b := data(2, n)
		id := put(t, s, b)
		got, err := s.Get(t.Context(), id)
		if err != nil {
			t.Fatalf("Get of a 4 MiB blob: want nil error, got %v", err)
		}
		checkBytes(t, "Get of a 4 MiB blob", got, b)
		checkStat(t, s, id, n, 0)
		checkUsage(t, s, store.Usage{Blobs: 1, Bytes: n})
	})

	t.Run("PutCopies", func(t *testing.T) {
		s := open(t, newStore)
		buf := data(3, 512)
		want := append([]byte(nil), buf...)
		id := put(t, s, buf)
		for i := range buf {
			buf[i] ^= 0xff
		}
		got, err := s.Get(t.Context(), id)
		if err != nil {
			t.Fatalf("Get after the caller reused the Put buffer: want nil error, got %v", err)
		}
		checkBytes(t, "Get after the caller reused the Put buffer", got, want)
	})

	t.Run("Missing", func(t *testing.T) {
		s := open(t, newStore)
		put(t, s, data(6, 10))
		for _, id := range []store.ID{store.Sum([]byte("never put")), {}} {
			_, err := s.Get(t.Context(), id)
			wantErr(t, fmt.Sprintf("Get(%s) of a missing blob", id.Short()), err, store.ErrNotFound)
			_, err = s.Stat(t.Context(), id)
			wantErr(t, fmt.Sprintf("Stat(%s) of a missing blob", id.Short()), err, store.ErrNotFound)
		}
	})

	t.Run("List", func(t *testing.T) {
		s := open(t, newStore)
		if st := snapshot(t, s); len(st.blobs) != 0 {
			t.Errorf("List of a new store: want 0 blobs, got %d", len(st.blobs))
		}
		checkUsage(t, s, store.Usage{})
		want := make(map[store.ID]int64)
		var total int64
		for i := range 20 {
			b := data(uint64(i), i*37)
			id := put(t, s, b)
			if _, ok := want[id]; !ok {
				total += int64(len(b))
			}
			want[id] = int64(len(b))
		}
		put(t, s, data(3, 3*37)) // a duplicate
		st := snapshot(t, s)     // fails on a blob listed twice
		for id, size := range want {
			info, ok := st.blobs[id]
			if !ok {
				t.Errorf("List: want blob %s (%d bytes) listed, it was not", id.Short(), size)
			} else if info.Size != size || info.Refs != 0 {
				t.Errorf("List: blob %s: want Size %d Refs 0, got Size %d Refs %d", id.Short(), size, info.Size, info.Refs)
			}
		}
		if len(st.blobs) != len(want) {
			t.Errorf("List: want %d blobs, got %d", len(want), len(st.blobs))
		}
		checkUsage(t, s, store.Usage{Blobs: int64(len(want)), Bytes: total})

		stop := errors.New("stop")
		calls := 0
		err := s.List(t.Context(), func(store.BlobInfo) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("List with fn failing at once: want fn's error after 1 call; got %v after %d calls", err, calls)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t, newStore)
		const workers, perWorker = 8, 40
		// Every fourth blob is put by all goroutines, the others by one.
		blob := func(w, i int) []byte {
			if i%4 == 0 {
				return data(uint64(i), 100+i)
			}
			return data(uint64(1000*w+i), 100+i)
		}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range perWorker {
					b := blob(w, i)
					id, err := s.Put(t.Context(), b)
					if err != nil || id != store.Sum(b) {
						t.Errorf("concurrent Put: want ID %s, nil error; got %s, %v", store.Sum(b).Short(), id.Short(), err)
						return
					}
					got, err := s.Get(t.Context(), id)
					if err != nil {
						t.Errorf("concurrent Get(%s): want nil error, got %v", id.Short(), err)
						return
					}
					checkBytes(t, "concurrent Get", got, b)
				}
			})
		}
		wg.Wait()
		want := make(map[store.ID]bool)
		for w := range workers {
			for i := range perWorker {
				want[store.Sum(blob(w, i))] = true
			}
		}
		if st := snapshot(t, s); len(st.blobs) != len(want) {
			t.Errorf("List after concurrent Puts: want %d distinct blobs, got %d", len(want), len(st.blobs))
		}
	})
}
