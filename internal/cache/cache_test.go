package cache

import (
	"math/rand/v2"
	"testing"

	"github.com/cowfs/cowfs/store"
)

func id(i int) store.ID { return store.Sum([]byte{byte(i), byte(i >> 8), byte(i >> 16)}) }

// check verifies the cache's bookkeeping against its queues.
func check[V any](t *testing.T, c *Cache[V]) {
	t.Helper()
	st := c.Stats()
	if st.Bytes > c.max {
		t.Fatalf("holds %d bytes, bound %d", st.Bytes, c.max)
	}
	if st.Bytes != c.small.cost+c.main.cost || st.Entries != int64(c.small.l.Len()+c.main.l.Len()) || int(st.Entries) != len(c.items) {
		t.Fatalf("stats %+v disagree with the queues (small %d/%d, main %d/%d, items %d)",
			st, c.small.l.Len(), c.small.cost, c.main.l.Len(), c.main.cost, len(c.items))
	}
	if len(c.ghosts) != c.ghost.l.Len() || c.ghost.cost > c.max {
		t.Fatalf("ghost queue: %d IDs, %d in the map, cost %d", c.ghost.l.Len(), len(c.ghosts), c.ghost.cost)
	}
	for gid := range c.ghosts {
		if _, ok := c.items[gid]; ok {
			t.Fatalf("%v is both cached and a ghost", gid)
		}
	}
}

// TestBoundCountersRemove: the cache never holds more than its bound,
// refuses an entry larger than the bound, counts hits, misses and
// evictions, and forgets what is removed.
func TestBoundCountersRemove(t *testing.T) {
	c := New[int](100)
	for i := range 10 {
		c.Add(id(i), i, 10)
	}
	check(t, c)
	if v, ok := c.Get(id(3)); !ok || v != 3 {
		t.Fatal("entry 3 missing before the cache was full")
	}
	c.Add(id(10), 10, 10) // evicts 0, the oldest unused
	if _, ok := c.Get(id(0)); ok {
		t.Fatal("entry 0 survived: the oldest unused entry goes first")
	}
	c.Add(id(11), 11, 1000) // larger than the bound: not kept
	if _, ok := c.Get(id(11)); ok {
		t.Fatal("an entry larger than the bound was kept")
	}
	c.Remove(id(3))
	if _, ok := c.Get(id(3)); ok {
		t.Fatal("a removed entry is still there")
	}
	check(t, c)
	st := c.Stats()
	if st.Entries != 9 || st.Bytes != 90 {
		t.Fatalf("stats %+v: want 9 entries of 10 bytes", st)
	}
	if st.Evictions != 1 || st.Hits != 1 || st.Misses != 3 {
		t.Fatalf("stats %+v: want 1 eviction, 1 hit, 3 misses", st)
	}
}

// TestScanResistance: a working set used again and again survives a single
// pass over ten times the bound (an LRU cache would lose all of it).
func TestScanResistance(t *testing.T) {
	c := New[int](1000)
	const hot = 50 // 500 bytes: half the bound
	for round := range 3 {
		for i := range hot {
			if _, ok := c.Get(id(i)); !ok {
				if round == 2 {
					t.Fatalf("hot entry %d missing before the scan", i)
				}
				c.Add(id(i), i, 10)
			}
		}
	}
	for i := range 1000 { // the scan: 10,000 bytes, each entry used once
		c.Add(id(1000+i), i, 10)
		if i%100 == 0 {
			check(t, c)
		}
	}
	for i := range hot {
		if _, ok := c.Get(id(i)); !ok {
			t.Errorf("hot entry %d evicted by the scan", i)
		}
	}
}

// TestGhostReadmits: an entry evicted unused and added again soon goes to
// the main queue and then outlives new entries.
func TestGhostReadmits(t *testing.T) {
	c := New[int](100)
	for i := range 15 {
		c.Add(id(i), i, 10)
	}
	if _, ok := c.items[id(0)]; ok {
		t.Fatal("entry 0 still cached")
	}
	if _, ok := c.ghosts[id(0)]; !ok {
		t.Fatal("entry 0 left no ghost")
	}
	c.Add(id(0), 0, 10)
	if e := c.items[id(0)].Value.(*entry[int]); !e.main {
		t.Fatal("an entry coming back from the ghost queue is not in the main queue")
	}
	for i := 100; i < 110; i++ {
		c.Add(id(i), i, 10)
	}
	if _, ok := c.Get(id(0)); !ok {
		t.Fatal("the readmitted entry was evicted by new ones")
	}
	check(t, c)
}

// TestRandomAgainstBookkeeping runs random operations and checks the
// invariants after each.
func TestRandomAgainstBookkeeping(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := New[int](1 << 12)
	for step := range 20000 {
		k := id(r.IntN(600))
		switch r.IntN(10) {
		case 0:
			c.Remove(k)
		case 1, 2, 3, 4:
			c.Add(k, step, int64(1+r.IntN(100)))
		default:
			c.Get(k)
		}
		if step%97 == 0 {
			check(t, c)
		}
	}
	check(t, c)
}

// TestContains: Contains answers without counting a hit, a miss or a use.
func TestContains(t *testing.T) {
	c := New[int](100)
	c.Add(id(1), 1, 10)
	if !c.Contains(id(1)) || c.Contains(id(2)) {
		t.Fatal("Contains is wrong")
	}
	if st := c.Stats(); st.Hits != 0 || st.Misses != 0 {
		t.Errorf("Contains counted: %+v", st)
	}
}
