package mem_test

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/mem"
	"github.com/cowfs/cowfs/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.TestAll(t, func(*testing.T) store.Store { return mem.New() })
}

func BenchmarkGet(b *testing.B) {
	s := mem.New()
	data := make([]byte, 1<<20)
	id, err := s.Put(b.Context(), data)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := s.Get(b.Context(), id); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPut(b *testing.B) {
	s := mem.New()
	data := make([]byte, 64<<10)
	b.SetBytes(int64(len(data)))
	var i uint64
	for b.Loop() {
		i++
		if i%1024 == 0 {
			s = mem.New() // bound memory: every Put stores a new blob
		}
		binary.LittleEndian.PutUint64(data, i)
		if _, err := s.Put(b.Context(), data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStatFS: an in-memory store reports the machine's memory in 4 KiB
// blocks, free memory as available; a closed store fails with ErrClosed.
func TestStatFS(t *testing.T) {
	s := mem.New()
	got, err := s.StatFS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	if want := si.Totalram * uint64(si.Unit) / 4096; got.Blocks != want || got.Bsize != 4096 || got.Frsize != 4096 {
		t.Errorf("StatFS %+v: want %d blocks of 4096 bytes (the machine's memory)", got, want)
	}
	if got.Bavail == 0 || got.Bavail > got.Blocks || got.Bfree != got.Bavail || got.Avail() != int64(got.Bavail)*4096 {
		t.Errorf("StatFS %+v, Avail %d: want free memory available, within the total", got, got.Avail())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StatFS(t.Context()); !errors.Is(err, store.ErrClosed) {
		t.Errorf("StatFS of a closed store: %v, want ErrClosed", err)
	}
}

// TestSlowConformance: the conformance suite passes through storetest.Slow.
func TestSlowConformance(t *testing.T) {
	storetest.TestAll(t, func(*testing.T) store.Store {
		return storetest.NewSlow(mem.New(), storetest.Latency{Get: 100 * time.Microsecond, Put: 100 * time.Microsecond, Other: 100 * time.Microsecond})
	})
}
