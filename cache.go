package cowfs

import (
	"context"
	"fmt"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/internal/cache"
	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
)

// loadNode returns a loader of decoded nodes that goes through the node
// cache, reading the store with the context ctx returns, once however many
// load a node at once (fetches.once).
func loadNode[N any](f *FS, ctx func() context.Context, decode func(store.ID, []byte) (*N, error)) func(store.ID) (*N, error) {
	return func(id store.ID) (*N, error) {
		if v, ok := f.nodes.Get(id); ok {
			if n, ok := v.(*N); ok {
				return n, nil
			}
			return nil, corrupt("blob %s is not the kind of node expected", id.Short())
		}
		c := ctx()
		v, err := f.fetch.once(c, fetchKey{id, true}, func() (any, error) {
			b, err := f.st.Get(c, id)
			if err != nil {
				return nil, err
			}
			n, err := decode(id, b)
			if err != nil {
				return nil, err
			}
			f.nodes.Add(id, n, int64(len(b))+64)
			return n, nil
		})
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", id.Short(), err)
		}
		n, ok := v.(*N)
		if !ok {
			return nil, corrupt("blob %s is not the kind of node expected", id.Short())
		}
		return n, nil
	}
}

// decodeRope and decodeDir decode nodes with the FS's own trees, so that a
// cached node refers to no reader's tree (nor keeps its context).
func (f *FS) decodeRope(id store.ID, b []byte) (*btree.Node[rope.Extent], error) {
	return f.ropes.Decode(id, b)
}

func (f *FS) decodeDir(id store.ID, b []byte) (*btree.Node[dirtree.Entry], error) {
	return f.dirs.Decode(id, b)
}

// ropesFor returns the FS's rope tree with loads that run with ctx, for a
// reader outside the FS lock (f.ropes loads with the lock holder's context;
// f.bgRopes with context.Background). A reader of directories needs the
// same with f.dirs.
func (f *FS) ropesFor(ctx context.Context) *rope.Tree {
	t := *f.ropes
	t.Load = loadNode(f, func() context.Context { return ctx }, f.decodeRope)
	return &t
}

// blobSource is the FS's data blobs read with one context (rope.Source):
// a reader outside the FS lock passes blobSource{f, ctx}, one under it
// blobSource{f, f.ioCtx()}.
type blobSource struct {
	f   *FS
	ctx context.Context
}

// Blob returns a data blob's bytes, through the data cache.
func (s blobSource) Blob(id store.ID) ([]byte, error) { return s.f.blob(s.ctx, id) }

// Blob returns a data blob's bytes, through the data cache (rope.Source).
// It reads the store with context.Background.
func (f *FS) Blob(id store.ID) ([]byte, error) { return f.blob(context.Background(), id) }

// CacheStats are the counters of one of the FS's caches, since Open.
type CacheStats struct {
	Hits      int64 // lookups that found their blob cached
	Misses    int64 // lookups that did not, and read the store
	Evictions int64 // entries dropped to keep within the cache's bound
	Bytes     int64 // the cost of the entries held (about their blobs' bytes)
	Entries   int64 // the entries held
}

// CacheStats returns the counters of the node cache (decoded tree nodes)
// and of the data cache (data blobs), which share Options.CacheBytes.
func (f *FS) CacheStats() (nodes, data CacheStats) {
	return cacheStats(f.nodes.Stats()), cacheStats(f.data.Stats())
}

// cacheStats converts a cache's counters to the exported form.
func cacheStats(s cache.Stats) CacheStats {
	return CacheStats{Hits: s.Hits, Misses: s.Misses, Evictions: s.Evictions, Bytes: s.Bytes, Entries: s.Entries}
}
