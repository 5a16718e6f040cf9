package mem_test

import (
	"encoding/binary"
	"testing"

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
