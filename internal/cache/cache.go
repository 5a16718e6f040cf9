// Package cache is a bounded map from blob ID to a value of known cost
// (usually its size in bytes). It is keyed by blob, never by file: every
// file, volume, snapshot and view that shares a blob shares its entry.
//
// Eviction is S3-FIFO (Yang et al., SOSP 2023), which resists scans: a new
// entry goes to a small FIFO queue (a tenth of the bound); one used again
// before it reaches the queue's end moves to the main FIFO queue, and one
// that is not leaves, its ID remembered in a ghost queue so that it goes
// straight to the main queue if it comes back soon. The main queue gives an
// entry that was used since it last reached its end another round. So a
// single pass over more data than the bound (a backup, a cp of a huge file)
// evicts only what the small queue holds, never the working set in the main
// queue. A hit only bumps a counter; nothing moves.
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

// Cache is a thread-safe S3-FIFO cache bounded by the total cost of its
// entries.
type Cache[V any] struct {
	mu     sync.Mutex
	max    int64
	small  queue // new entries
	main   queue // entries used twice or more
	ghost  queue // IDs (with their cost) recently evicted from small
	ghosts map[store.ID]*list.Element
	items  map[store.ID]*list.Element // in small or main
	st     Stats
}

// queue is a FIFO of entries with their total cost: push at the front,
// pop at the back.
type queue struct {
	l    list.List
	cost int64
}

type entry[V any] struct {
	id   store.ID
	v    V
	cost int64
	freq uint8 // uses since insertion or since the last round, at most maxFreq
	main bool  // in the main queue
}

const maxFreq = 3

// New returns a cache holding entries of total cost at most max.
func New[V any](max int64) *Cache[V] {
	return &Cache[V]{max: max, items: map[store.ID]*list.Element{}, ghosts: map[store.ID]*list.Element{}}
}

// smallMax is the small queue's share of the bound.
func (c *Cache[V]) smallMax() int64 { return c.max / 10 }

// Get returns the value cached under id.
func (c *Cache[V]) Get(id store.ID) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		e := el.Value.(*entry[V])
		if e.freq < maxFreq {
			e.freq++
		}
		c.st.Hits++
		return e.v, true
	}
	c.st.Misses++
	var zero V
	return zero, false
}

// Contains reports whether id is cached, without counting a hit or a miss
// or a use.
func (c *Cache[V]) Contains(id store.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[id]
	return ok
}

// Add caches v under id with the given cost, evicting entries beyond the
// bound. An entry costing more than the bound is not kept; adding an ID
// already cached counts as a use.
func (c *Cache[V]) Add(id store.ID, v V, cost int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		if e := el.Value.(*entry[V]); e.freq < maxFreq {
			e.freq++
		}
		return
	}
	if cost > c.max {
		return
	}
	e := &entry[V]{id: id, v: v, cost: cost}
	if g, ok := c.ghosts[id]; ok {
		c.dropGhost(g)
		e.main = true
		c.items[id] = c.main.push(e, cost)
	} else {
		c.items[id] = c.small.push(e, cost)
	}
	c.st.Bytes += cost
	c.st.Entries++
	for c.st.Bytes > c.max {
		c.evict()
	}
}

// evict makes room: from the small queue while it holds more than its
// share (or the main queue is empty), else from the main queue.
func (c *Cache[V]) evict() {
	if c.small.cost > c.smallMax() || c.main.l.Len() == 0 {
		el := c.small.l.Back()
		e := el.Value.(*entry[V])
		c.small.remove(el, e.cost)
		if e.freq > 0 {
			e.freq, e.main = 0, true
			c.items[e.id] = c.main.push(e, e.cost)
			return
		}
		c.forget(e)
		c.ghosts[e.id] = c.ghost.push(ghostEntry{e.id, e.cost}, e.cost)
		for c.ghost.cost > c.max-c.smallMax() {
			g := c.ghost.l.Back()
			c.dropGhost(g)
		}
		return
	}
	for {
		el := c.main.l.Back()
		e := el.Value.(*entry[V])
		c.main.remove(el, e.cost)
		if e.freq > 0 {
			e.freq--
			c.items[e.id] = c.main.push(e, e.cost)
			continue
		}
		c.forget(e)
		return
	}
}

// forget drops an entry that left both queues.
func (c *Cache[V]) forget(e *entry[V]) {
	delete(c.items, e.id)
	c.st.Bytes -= e.cost
	c.st.Entries--
	c.st.Evictions++
}

// ghostEntry is an ID the small queue evicted, with the cost it had.
type ghostEntry struct {
	id   store.ID
	cost int64
}

func (c *Cache[V]) dropGhost(g *list.Element) {
	ge := g.Value.(ghostEntry)
	c.ghost.remove(g, ge.cost)
	delete(c.ghosts, ge.id)
}

// Remove drops id from the cache (its blob was deleted).
func (c *Cache[V]) Remove(id store.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		e := el.Value.(*entry[V])
		if e.main {
			c.main.remove(el, e.cost)
		} else {
			c.small.remove(el, e.cost)
		}
		delete(c.items, id)
		c.st.Bytes -= e.cost
		c.st.Entries--
	}
	if g, ok := c.ghosts[id]; ok {
		c.dropGhost(g)
	}
}

// Stats returns the counters.
func (c *Cache[V]) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

func (q *queue) push(v any, cost int64) *list.Element {
	q.cost += cost
	return q.l.PushFront(v)
}

func (q *queue) remove(el *list.Element, cost int64) {
	q.cost -= cost
	q.l.Remove(el)
}
