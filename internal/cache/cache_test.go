package cache

import (
	"testing"

	"github.com/cowfs/cowfs/store"
)

func id(i int) store.ID { return store.Sum([]byte{byte(i), byte(i >> 8)}) }

// TestBoundAndOrder: the cache never holds more than its bound, evicts the
// least recently used entry first, refuses an entry larger than the bound,
// and counts hits, misses and evictions.
func TestBoundAndOrder(t *testing.T) {
	c := New[int](100)
	for i := 0; i < 10; i++ {
		c.Add(id(i), i, 10)
	}
	if _, ok := c.Get(id(0)); !ok { // 0 becomes the most recently used
		t.Fatal("entry 0 missing before the cache was full")
	}
	c.Add(id(10), 10, 10) // evicts 1, the least recently used
	if _, ok := c.Get(id(1)); ok {
		t.Fatal("entry 1 survived: eviction is not LRU")
	}
	if v, ok := c.Get(id(0)); !ok || v != 0 {
		t.Fatal("entry 0 was evicted although recently used")
	}
	c.Add(id(11), 11, 1000) // larger than the bound: not kept
	if _, ok := c.Get(id(11)); ok {
		t.Fatal("an entry larger than the bound was kept")
	}
	c.Remove(id(0))
	st := c.Stats()
	if st.Bytes > 100 || st.Bytes != st.Entries*10 || st.Entries != 9 {
		t.Fatalf("stats %+v: want 9 entries of 10 bytes", st)
	}
	if st.Evictions != 1 || st.Hits != 2 || st.Misses != 2 {
		t.Fatalf("stats %+v: want 1 eviction, 2 hits, 2 misses", st)
	}
}
