// Package cache is a bounded least-recently-used map from blob ID to a value
// of known cost (usually its size in bytes). It is keyed by blob, never by
// file: every file, volume and snapshot that shares a blob shares its entry.
package cache

import (
	"container/list"
	"sync"

	"github.com/cowfs/cowfs/store"
)

// Stats are a cache's counters.
type Stats struct {
	Hits, Misses, Evictions int64
	Bytes                   int64 // cost of the entries held
	Entries                 int64
}

// LRU is a thread-safe LRU cache bounded by the total cost of its entries.
type LRU[V any] struct {
	mu    sync.Mutex
	max   int64
	ll    *list.List // front: most recently used
	items map[store.ID]*list.Element
	st    Stats
}

type entry[V any] struct {
	id   store.ID
	v    V
	cost int64
}

// New returns a cache holding entries of total cost at most max.
func New[V any](max int64) *LRU[V] {
	return &LRU[V]{max: max, ll: list.New(), items: map[store.ID]*list.Element{}}
}

// Get returns the value cached under id.
func (c *LRU[V]) Get(id store.ID) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		c.ll.MoveToFront(el)
		c.st.Hits++
		return el.Value.(*entry[V]).v, true
	}
	c.st.Misses++
	var zero V
	return zero, false
}

// Add caches v under id with the given cost, evicting the least recently
// used entries beyond the bound. An entry costing more than the bound is not
// kept.
func (c *LRU[V]) Add(id store.ID, v V, cost int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		c.ll.MoveToFront(el)
		return
	}
	if cost > c.max {
		return
	}
	c.items[id] = c.ll.PushFront(&entry[V]{id, v, cost})
	c.st.Bytes += cost
	c.st.Entries++
	for c.st.Bytes > c.max {
		c.remove(c.ll.Back())
		c.st.Evictions++
	}
}

// Remove drops id from the cache.
func (c *LRU[V]) Remove(id store.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		c.remove(el)
	}
}

func (c *LRU[V]) remove(el *list.Element) {
	e := el.Value.(*entry[V])
	c.ll.Remove(el)
	delete(c.items, e.id)
	c.st.Bytes -= e.cost
	c.st.Entries--
}

// Stats returns the counters.
func (c *LRU[V]) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}
