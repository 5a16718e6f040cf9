// Package mem is an in-memory store.Store, for tests and for caches that need
// no durability. Reads are zero-copy: Get returns a slice of the stored
// bytes, which callers must not modify.
package mem

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/cowfs/cowfs/store"
)

var (
	_ store.Store    = (*Store)(nil)
	_ store.StatFSer = (*Store)(nil)
)

type blob struct {
	data []byte
	refs int64
}

// Store is an in-memory store.Store, created by New. It is safe for
// concurrent use.
type Store struct {
	mu     sync.RWMutex
	closed bool
	blobs  map[store.ID]*blob
	roots  map[string]store.ID
	bytes  int64
}

// New returns an empty Store.
func New() *Store {
	return &Store{blobs: make(map[store.ID]*blob), roots: make(map[string]store.ID)}
}

var errClosed = fmt.Errorf("mem: %w", store.ErrClosed)

func notFound(id store.ID) error {
	return fmt.Errorf("mem: blob %s: %w", id.Short(), store.ErrNotFound)
}

// lookup returns the blob named id; the caller holds s.mu.
func (s *Store) lookup(id store.ID) (*blob, error) {
	if s.closed {
		return nil, errClosed
	}
	b, ok := s.blobs[id]
	if !ok {
		return nil, notFound(id)
	}
	return b, nil
}

// Put stores a private copy of data and returns its ID.
func (s *Store) Put(ctx context.Context, data []byte) (store.ID, error) {
	id := store.Sum(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ID{}, errClosed
	}
	if _, ok := s.blobs[id]; !ok {
		s.blobs[id] = &blob{data: bytes.Clone(data)}
		s.bytes += int64(len(data))
	}
	return id, nil
}

// Get returns the stored bytes of blob id, without copying.
func (s *Store) Get(ctx context.Context, id store.ID) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	return b.data[:len(b.data):len(b.data)], nil
}

// Stat returns the size and count of blob id.
func (s *Store) Stat(ctx context.Context, id store.ID) (store.BlobInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, err := s.lookup(id)
	if err != nil {
		return store.BlobInfo{}, err
	}
	return store.BlobInfo{ID: id, Size: int64(len(b.data)), Refs: b.refs}, nil
}

// List calls fn for every blob. It works on a snapshot taken under the lock,
// so fn runs without the lock held.
func (s *Store) List(ctx context.Context, fn func(store.BlobInfo) error) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return errClosed
	}
	infos := make([]store.BlobInfo, 0, len(s.blobs))
	for id, b := range s.blobs {
		infos = append(infos, store.BlobInfo{ID: id, Size: int64(len(b.data)), Refs: b.refs})
	}
	s.mu.RUnlock()
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// GetRoot returns the ID bound to name.
func (s *Store) GetRoot(ctx context.Context, name string) (store.ID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.ID{}, errClosed
	}
	id, ok := s.roots[name]
	if !ok {
		return store.ID{}, fmt.Errorf("mem: root %q: %w", name, store.ErrNotFound)
	}
	return id, nil
}

// ListRoots returns every root, sorted by name.
func (s *Store) ListRoots(ctx context.Context) ([]store.Root, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	roots := make([]store.Root, 0, len(s.roots))
	for name, id := range s.roots {
		roots = append(roots, store.Root{Name: name, ID: id})
	}
	slices.SortFunc(roots, func(a, b store.Root) int { return strings.Compare(a.Name, b.Name) })
	return roots, nil
}

// Commit validates the whole batch (store.CheckBatch), then applies it; a
// batch that fails validation changes nothing.
func (s *Store) Commit(ctx context.Context, b store.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	err := store.CheckBatch("mem", b,
		func(id store.ID) (int64, bool, error) {
			bl := s.blobs[id]
			if bl == nil {
				return 0, false, nil
			}
			return bl.refs, true, nil
		},
		func(name string) (store.ID, error) { return s.roots[name], nil })
	if err != nil {
		return err
	}

	for id, d := range b.Refs {
		s.blobs[id].refs += d
	}
	for _, id := range b.Delete {
		s.bytes -= int64(len(s.blobs[id].data))
		delete(s.blobs, id)
	}
	for _, sw := range b.Roots {
		if sw.New.IsZero() {
			delete(s.roots, sw.Name)
		} else {
			s.roots[sw.Name] = sw.New
		}
	}
	return nil
}

// Usage reports how many blobs and bytes the store holds.
func (s *Store) Usage(ctx context.Context) (store.Usage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.Usage{}, errClosed
	}
	return store.Usage{Blobs: int64(len(s.blobs)), Bytes: s.bytes}, nil
}

// StatFS reports the machine's memory (store.StatFSer) in 4 KiB blocks,
// and a file node per free block (file nodes cost memory only).
func (s *Store) StatFS(ctx context.Context) (store.StatFS, error) {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return store.StatFS{}, errClosed
	}
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return store.StatFS{}, fmt.Errorf("mem: free memory: %w", err)
	}
	const bsize = 4096
	unit := uint64(si.Unit)
	out := store.StatFS{Bsize: bsize, Frsize: bsize}
	out.Blocks = si.Totalram * unit / bsize
	out.Bfree = si.Freeram * unit / bsize
	out.Bavail = out.Bfree
	out.Files, out.Ffree = out.Blocks, out.Bfree
	return out, nil
}

// Close drops the store's contents. Every later call, Close included, fails
// with store.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.closed = true
	s.blobs, s.roots, s.bytes = nil, nil, 0
	return nil
}
