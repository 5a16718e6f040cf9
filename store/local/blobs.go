package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/cowfs/cowfs/store"
	bolt "go.etcd.io/bbolt"
)

// listChunk is how many index entries List and Verify read per transaction,
// so that no read transaction stays open while the caller's function runs.
const listChunk = 1024

func notFound(id store.ID) error {
	return fmt.Errorf("local: blob %s: %w", id.Short(), store.ErrNotFound)
}

// location is where a blob's bytes are, and its count.
type location struct {
	seg       *segment
	off, size int64
	refs      int64
}

// locate finds blob id, in the index first, then among the pending blobs.
// The caller holds s.mu.
func (s *Store) locate(id store.ID) (location, error) {
	var rec blobRec
	found := false
	err := s.view(func(_ *bolt.Tx, bs buckets) error {
		v := bs.blobs.Get(id[:])
		if v == nil {
			return nil
		}
		r, err := decodeBlobRec(id[:], v)
		if err != nil {
			return s.corruptIndex(err)
		}
		rec, found = r, true
		return nil
	})
	if err != nil {
		return location{}, err
	}
	if found {
		g := s.segs[rec.seg]
		if g == nil {
			return location{}, s.corruptIndex(fmt.Errorf("blob %s is in segment %d, which the index does not list", id, rec.seg))
		}
		return location{seg: g, off: rec.off, size: rec.size, refs: rec.refs}, nil
	}
	if p := s.pending[id]; p != nil {
		return location{seg: p.seg, off: p.off, size: p.size}, nil
	}
	return location{}, notFound(id)
}

// lookup is locate for callers that do not hold s.mu.
func (s *Store) lookup(id store.ID) (location, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(false); err != nil {
		return location{}, err
	}
	return s.locate(id)
}

// has reports whether blob id is stored (indexed or pending); the caller
// holds s.mu.
func (s *Store) has(id store.ID) (bool, error) {
	_, err := s.locate(id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Put stores data and returns its ID. A new blob is pending: readable at
// once, durable once a committed batch names it.
func (s *Store) Put(ctx context.Context, data []byte) (store.ID, error) {
	id := store.Sum(data)
	s.mu.RLock()
	err := s.usable(true)
	have := false
	if err == nil {
		have, err = s.has(id)
	}
	s.mu.RUnlock()
	if err != nil {
		return store.ID{}, err
	}
	if have {
		return id, nil
	}
	g, off, err := s.appendBlob(id, data)
	if err != nil {
		return store.ID{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(true); err != nil {
		return store.ID{}, err
	}
	// Another Put of the same bytes may have won meanwhile (and a commit
	// indexed it); then the record just written is garbage.
	if have, err := s.has(id); err != nil || have {
		return id, err
	}
	s.pending[id] = &pendingBlob{seg: g, off: off, size: int64(len(data))}
	g.pending++
	return id, nil
}

// appendBlob appends a record of blob id to the current segment, starting a
// new segment when it is full, and returns where the blob's bytes are.
func (s *Store) appendBlob(id store.ID, data []byte) (*segment, int64, error) {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.mu.RLock()
	err := s.usable(true)
	g := s.cur
	s.mu.RUnlock()
	if err != nil {
		return nil, 0, err
	}
	if g == nil || g.full(blobHeaderSize+int64(len(data)), s.opt.SegmentSize) {
		if g, err = s.newSegment(); err != nil {
			return nil, 0, err
		}
	}
	off, err := g.appendRecord(id, data)
	return g, off, err
}

// newSegment creates the next segment and makes it current. The caller
// holds s.appendMu.
func (s *Store) newSegment() (*segment, error) {
	g, err := createSegment(s.segDir, s.maxSeg+1)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.segs[g.num] = g
	s.cur = g
	s.maxSeg = g.num
	s.mu.Unlock()
	s.dirGen.Add(1)
	return g, nil
}

// Get reads blob id and returns it after checking its hash.
func (s *Store) Get(ctx context.Context, id store.ID) ([]byte, error) {
	return s.read(id)
}

// testHookRead, if set, runs in read between finding a blob and reading it.
var testHookRead func()

// read returns blob id once its hash checks out.
func (s *Store) read(id store.ID) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		l, err := s.lookup(id)
		if err != nil {
			return nil, err
		}
		if testHookRead != nil {
			testHookRead()
		}
		buf, err := l.seg.read(id, l.off, l.size)
		if err == nil && store.Sum(buf) != id {
			err = fmt.Errorf("local: blob %s in segment file %s (bytes [%d,%d)): content does not match the ID: %w",
				id, l.seg.path, l.off, l.off+l.size, store.ErrCorrupt)
		}
		if err == nil {
			return buf, nil
		}
		// A commit may have deleted the blob, or a compaction moved it,
		// while it was read.
		l2, err2 := s.lookup(id)
		if err2 != nil && errors.Is(err2, store.ErrNotFound) {
			return nil, err2
		}
		if err2 != nil || attempt >= 2 || (l2.seg == l.seg && l2.off == l.off) {
			return nil, err
		}
	}
}

// Stat returns the size and committed count of blob id (0 while pending).
func (s *Store) Stat(ctx context.Context, id store.ID) (store.BlobInfo, error) {
	l, err := s.lookup(id)
	if err != nil {
		return store.BlobInfo{}, err
	}
	return store.BlobInfo{ID: id, Size: l.size, Refs: l.refs}, nil
}

// List calls fn for every blob, pending ones first. It reads the index in
// chunks, so fn runs with no lock or transaction held; a blob committed or
// deleted while List runs may be listed or not, but none is listed twice.
func (s *Store) List(ctx context.Context, fn func(store.BlobInfo) error) error {
	s.mu.RLock()
	if err := s.usable(false); err != nil {
		s.mu.RUnlock()
		return err
	}
	pend := make([]store.BlobInfo, 0, len(s.pending))
	listed := make(map[store.ID]bool, len(s.pending))
	for id, p := range s.pending {
		pend = append(pend, store.BlobInfo{ID: id, Size: p.size})
		listed[id] = true
	}
	s.mu.RUnlock()
	for _, info := range pend {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return s.eachIndexed(ctx, func(info store.BlobInfo, _ blobRec) error {
		if listed[info.ID] {
			return nil
		}
		return fn(info)
	})
}

// eachIndexed calls fn for every indexed blob, in ID order, reading the index
// listChunk entries at a time with no lock held while fn runs.
func (s *Store) eachIndexed(ctx context.Context, fn func(store.BlobInfo, blobRec) error) error {
	type entry struct {
		info store.BlobInfo
		rec  blobRec
	}
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var chunk []entry
		s.mu.RLock()
		err := s.usable(false)
		if err == nil {
			err = s.view(func(_ *bolt.Tx, bs buckets) error {
				c := bs.blobs.Cursor()
				var k, v []byte
				if after == nil {
					k, v = c.First()
				} else if k, v = c.Seek(after); bytes.Equal(k, after) {
					k, v = c.Next()
				}
				for ; k != nil && len(chunk) < listChunk; k, v = c.Next() {
					if len(k) != store.IDSize {
						return s.corruptIndex(fmt.Errorf("blob key %x", k))
					}
					r, err := decodeBlobRec(k, v)
					if err != nil {
						return s.corruptIndex(err)
					}
					id := store.ID(k)
					chunk = append(chunk, entry{store.BlobInfo{ID: id, Size: r.size, Refs: r.refs}, r})
				}
				return nil
			})
		}
		s.mu.RUnlock()
		if err != nil {
			return err
		}
		if len(chunk) == 0 {
			return nil
		}
		last := chunk[len(chunk)-1].info.ID
		after = last[:]
		for _, e := range chunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(e.info, e.rec); err != nil {
				return err
			}
		}
	}
}

// Usage reports how many blobs (indexed and pending) the store holds, and the
// sum of their sizes.
func (s *Store) Usage(ctx context.Context) (store.Usage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(false); err != nil {
		return store.Usage{}, err
	}
	var u store.Usage
	err := s.view(func(_ *bolt.Tx, bs buckets) error {
		var err error
		if u.Blobs, err = getUint64(bs.meta, keyBlobs); err != nil {
			return s.corruptIndex(err)
		}
		if u.Bytes, err = getUint64(bs.meta, keyBytes); err != nil {
			return s.corruptIndex(err)
		}
		for id, p := range s.pending {
			// A commit that just indexed a pending blob drops it from
			// s.pending only after its transaction: count it once.
			if bs.blobs.Get(id[:]) == nil {
				u.Blobs++
				u.Bytes += p.size
			}
		}
		return nil
	})
	return u, err
}

// StatFS reports the file system holding the store (store.StatFSer), as
// statfs(2) of its directory does.
func (s *Store) StatFS(ctx context.Context) (store.StatFS, error) {
	s.mu.RLock()
	err := s.usable(false)
	s.mu.RUnlock()
	if err != nil {
		return store.StatFS{}, err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &st); err != nil {
		return store.StatFS{}, fmt.Errorf("local: statfs of %s: %w", s.dir, err)
	}
	return store.StatFS{
		Bsize: uint32(st.Bsize), Frsize: uint32(st.Frsize),
		Blocks: st.Blocks, Bfree: st.Bfree, Bavail: st.Bavail,
		Files: st.Files, Ffree: st.Ffree,
	}, nil
}
