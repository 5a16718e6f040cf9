package inomap

import (
	"sync"
	"testing"
)

// TestMap: a key keeps its number, numbers are distinct and above the
// base, Next never repeats a key's number, under concurrent use.
func TestMap(t *testing.T) {
	m := New[int](100)
	var wg sync.WaitGroup
	got := make([][]uint64, 4)
	for g := range got {
		wg.Go(func() {
			for k := range 50 {
				got[g] = append(got[g], m.Get(k))
			}
		})
	}
	wg.Wait()
	seen := map[uint64]int{}
	for k := range 50 {
		n := got[0][k]
		for g := range got {
			if got[g][k] != n {
				t.Fatalf("key %d: numbers %d and %d", k, n, got[g][k])
			}
		}
		if n <= 100 {
			t.Fatalf("key %d: number %d not above the base", k, n)
		}
		if j, ok := seen[n]; ok {
			t.Fatalf("keys %d and %d share number %d", j, k, n)
		}
		seen[n] = k
	}
	if n := m.Next(); n != 151 || m.Get(3) != got[0][3] {
		t.Fatalf("Next %d after 50 keys from base 100, want 151", n)
	}
}
