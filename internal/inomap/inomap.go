// Package inomap hands out inode numbers outside a volume's own, for the
// frontends that show a snapshot's files beside the live volume's (a
// snapshot shares its inode numbers with the volume it was taken of, and
// one mount or 9P server must not show one number twice).
package inomap

import "sync"

// Map gives each key a number of its own, counting up from a base; the
// same key always gets the same number. It is safe for concurrent use.
// Numbers are never taken back: the map grows with the keys it is asked.
type Map[K comparable] struct {
	mu   sync.Mutex
	last uint64
	m    map[K]uint64
}

// New returns a Map whose first number is base+1.
func New[K comparable](base uint64) *Map[K] {
	return &Map[K]{last: base, m: map[K]uint64{}}
}

// Get returns k's number, handing out the next one the first time.
func (m *Map[K]) Get(k K) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.m[k]; ok {
		return n
	}
	m.last++
	m.m[k] = m.last
	return m.last
}

// Next hands out a number no key has, for a node without a key.
func (m *Map[K]) Next() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last++
	return m.last
}
