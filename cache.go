package cowfs

import (
	"context"
	"fmt"

	"github.com/cowfs/cowfs/internal/cache"
	"github.com/cowfs/cowfs/store"
)

// loadNode returns a loader of decoded nodes that goes through the node cache.
func loadNode[N any](f *FS, decode func(store.ID, []byte) (*N, error)) func(store.ID) (*N, error) {
	return func(id store.ID) (*N, error) {
		if v, ok := f.nodes.Get(id); ok {
			if n, ok := v.(*N); ok {
				return n, nil
			}
			return nil, corrupt("blob %s is not the kind of node expected", id.Short())
		}
		b, err := f.st.Get(context.Background(), id)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", id.Short(), err)
		}
		n, err := decode(id, b)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", id.Short(), err)
		}
		f.nodes.Add(id, n, int64(len(b))+64)
		return n, nil
	}
}

// Blob returns a data blob's bytes, through the data cache (rope.Source).
func (f *FS) Blob(id store.ID) ([]byte, error) {
	if b, ok := f.data.Get(id); ok {
		return b, nil
	}
	b, err := f.st.Get(context.Background(), id)
	if err != nil {
		return nil, fmt.Errorf("data blob %s: %w", id.Short(), err)
	}
	f.data.Add(id, b, int64(len(b)))
	return b, nil
}

// CacheStats returns the node and data cache counters.
func (f *FS) CacheStats() (nodes, data cache.Stats) { return f.nodes.Stats(), f.data.Stats() }
