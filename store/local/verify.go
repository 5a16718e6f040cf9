package local

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cowfs/cowfs/store"
	bolt "go.etcd.io/bbolt"
)

// Verify reads every indexed blob and checks its hash, calling fn for each
// with nil or the error reading it gave (an error wrapping store.ErrCorrupt
// names the blob and its segment file). It then checks the index's own
// invariants (every entry well formed, extents and blobs pointing at each
// other, the per-segment live bytes and the blob totals adding up) and
// returns an error wrapping store.ErrCorrupt if one fails; it also returns
// ctx's error if ctx ends. fn may call the store; blobs committed or deleted
// while Verify runs may be visited or not.
func (s *Store) Verify(ctx context.Context, fn func(id store.ID, err error)) error {
	err := s.eachIndexed(ctx, func(info store.BlobInfo, _ blobRec) error {
		_, err := s.read(info.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil // deleted meanwhile
		}
		if errors.Is(err, store.ErrClosed) {
			return err
		}
		fn(info.ID, err)
		return nil
	})
	if err != nil {
		return err
	}
	return s.checkIndex()
}

// checkIndex checks the invariants of the index in one read transaction.
func (s *Store) checkIndex() error {
	// Holding commitMu: no commit or compaction is halfway through its
	// bookkeeping, and Close waits.
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.RLock()
	err := s.usable(false)
	open := make(map[uint32]bool, len(s.segs))
	for num := range s.segs {
		open[num] = true
	}
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	return s.view(func(_ *bolt.Tx, bs buckets) error {
		var errs []error
		bad := func(format string, args ...any) {
			if len(errs) < 20 {
				errs = append(errs, fmt.Errorf(format, args...))
			}
		}
		segs := make(map[uint32]segRec)
		err := bs.segments.ForEach(func(k, v []byte) error {
			if len(k) != 4 {
				bad("segment key %x", k)
				return nil
			}
			num := binary.BigEndian.Uint32(k)
			r, err := decodeSegRec(num, v)
			if err != nil {
				bad("%v", err)
				return nil
			}
			segs[num] = r
			if !open[num] {
				bad("segment %d is in the index but not open", num)
			}
			return nil
		})
		if err != nil {
			return err
		}
		live := make(map[uint32]int64)
		var nBlobs, nBytes int64
		err = bs.blobs.ForEach(func(k, v []byte) error {
			if len(k) != store.IDSize {
				bad("blob key %x", k)
				return nil
			}
			r, err := decodeBlobRec(k, v)
			if err != nil {
				bad("%v", err)
				return nil
			}
			nBlobs++
			nBytes += r.size
			sr, ok := segs[r.seg]
			switch {
			case !ok:
				bad("blob %x is in segment %d, which has no entry", k[:6], r.seg)
			case r.off+r.size > sr.end:
				bad("blob %x ends at %d, past the end %d of segment %d", k[:6], r.off+r.size, sr.end, r.seg)
			}
			live[r.seg] += blobHeaderSize + r.size
			if e := bs.extents.Get(extKey(r.seg, r.off)); string(e) != string(k) {
				bad("blob %x at %d/%d: extent names %x", k[:6], r.seg, r.off, e)
			}
			return nil
		})
		if err != nil {
			return err
		}
		nExtents := int64(0)
		err = bs.extents.ForEach(func(k, v []byte) error {
			nExtents++
			if len(k) != 12 {
				bad("extent key %x", k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if nExtents != nBlobs {
			bad("%d extents for %d blobs", nExtents, nBlobs)
		}
		for num, r := range segs {
			if live[num] != r.live {
				bad("segment %d: entry says %d live bytes, its blobs hold %d", num, r.live, live[num])
			}
		}
		for num := range live {
			if _, ok := segs[num]; !ok {
				bad("blobs in segment %d, which has no entry", num)
			}
		}
		if n, err := getUint64(bs.meta, keyBlobs); err != nil || n != nBlobs {
			bad("meta says %d blobs (%v), the index holds %d", n, err, nBlobs)
		}
		if n, err := getUint64(bs.meta, keyBytes); err != nil || n != nBytes {
			bad("meta says %d bytes (%v), the index holds %d", n, err, nBytes)
		}
		err = bs.roots.ForEach(func(k, v []byte) error {
			if !store.ValidRootName(string(k)) || len(v) != store.IDSize {
				bad("root %q: malformed entry", k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(errs) > 0 {
			return s.corruptIndex(errors.Join(errs...))
		}
		return nil
	})
}
