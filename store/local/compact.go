package local

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"

	"github.com/cowfs/cowfs/store"
	bolt "go.etcd.io/bbolt"
)

// compactRatio: a segment is compacted when its live bytes times
// compactRatio fall below its size (live below 25%).
const compactRatio = 4

// Compact compacts every segment whose live bytes are below a quarter of its
// size: it copies the segment's live blobs to the current segment, syncs
// them, re-points them in one index transaction, then removes the old file.
// The current segment, and segments holding pending blobs, are left alone.
// Compact returns the errors of the segments it could not compact (a corrupt
// blob stops the compaction of its segment).
func (s *Store) Compact() error { return s.compact(true) }

// nudge wakes the background compactor.
func (s *Store) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// compactor is the background compaction goroutine, nudged after commits
// that delete blobs. It stops when Close closes s.stop.
func (s *Store) compactor() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		}
		// A segment whose compaction failed is not tried again in the
		// background (compact), so each failure is logged once.
		err := s.compact(false)
		if err != nil && s.opt.Logger != nil && !errors.Is(err, store.ErrClosed) {
			s.opt.Logger.Error("background compaction failed", "op", "compact", "store", s.dir, "err", err)
		}
	}
}

// stopping reports whether Close has begun.
func (s *Store) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// compact compacts the segments below the threshold. In the background
// (!explicit) it skips segments whose compaction failed before and stops
// early when the store is closing.
func (s *Store) compact(explicit bool) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.RLock()
	err := s.usable(true)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	recs, err := s.allSegRecs()
	if err != nil {
		return err
	}
	var todo []*segment
	s.mu.RLock()
	for num, r := range recs {
		g := s.segs[num]
		if g == nil || g == s.cur || g.pending > 0 || (!explicit && g.noCompact) {
			continue
		}
		if size := max(g.size.Load(), r.end); r.live*compactRatio < size {
			todo = append(todo, g)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(todo, func(a, b *segment) int { return int(a.num) - int(b.num) })
	var errs []error
	for _, g := range todo {
		if !explicit && s.stopping() {
			break
		}
		if err := s.compactSegment(g); err != nil {
			g.noCompact = true
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// move is a live blob being copied out of a segment.
type move struct {
	id        store.ID
	off, size int64
	to        *segment
	newOff    int64
}

// compactSegment moves g's live blobs to the current segment and removes g.
// The caller holds s.commitMu, so no commit changes the index meanwhile.
func (s *Store) compactSegment(g *segment) error {
	var moves []move
	prefix := segKey(g.num)
	err := s.view(func(_ *bolt.Tx, bs buckets) error {
		c := bs.extents.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) != 12 || len(v) != store.IDSize {
				return s.corruptIndex(fmt.Errorf("extent %x: malformed entry", k))
			}
			off := int64(binary.BigEndian.Uint64(k[4:]))
			r, err := decodeBlobRec(v, bs.blobs.Get(v))
			if err != nil {
				return s.corruptIndex(fmt.Errorf("extent %d/%d: %w", g.num, off, err))
			}
			if r.seg != g.num || r.off != off {
				return s.corruptIndex(fmt.Errorf("extent %d/%d names blob %x, which is at %d/%d", g.num, off, v[:6], r.seg, r.off))
			}
			moves = append(moves, move{id: store.ID(v), off: off, size: r.size})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := range moves {
		m := &moves[i]
		buf, err := g.read(m.id, m.off, m.size)
		if err == nil && store.Sum(buf) != m.id {
			err = fmt.Errorf("local: blob %s in segment file %s (bytes [%d,%d)): content does not match the ID: %w",
				m.id, g.path, m.off, m.off+m.size, store.ErrCorrupt)
		}
		if err == nil {
			m.to, m.newOff, err = s.appendBlob(m.id, buf)
		}
		if err != nil {
			return fmt.Errorf("local: compact segment %s: %w", g.path, err)
		}
	}
	if len(moves) > 0 {
		if err := s.syncSegments(); err != nil {
			return fmt.Errorf("local: compact segment %s: %w", g.path, err)
		}
	}
	fromFn, err := s.update(func(_ *bolt.Tx, bs buckets) error {
		recs := s.segRecs(bs)
		for _, m := range moves {
			r, err := decodeBlobRec(m.id[:], bs.blobs.Get(m.id[:]))
			if err != nil {
				return s.corruptIndex(err)
			}
			if r.seg != g.num || r.off != m.off {
				return s.corruptIndex(fmt.Errorf("blob %s moved during compaction", m.id))
			}
			r.seg, r.off = m.to.num, m.newOff
			if err := bs.blobs.Put(m.id[:], r.encode()); err != nil {
				return err
			}
			if err := bs.extents.Delete(extKey(g.num, m.off)); err != nil {
				return err
			}
			if err := bs.extents.Put(extKey(m.to.num, m.newOff), m.id[:]); err != nil {
				return err
			}
			dr, err := recs.get(m.to.num)
			if err != nil {
				return err
			}
			dr.live += blobHeaderSize + m.size
			dr.end = max(dr.end, m.newOff+m.size)
		}
		if err := recs.flush(); err != nil {
			return err
		}
		return bs.segments.Delete(prefix)
	})
	if err != nil {
		if !fromFn && !errors.Is(err, syscall.ENOSPC) {
			s.fail(err)
		}
		return fmt.Errorf("local: compact segment %s: %w", g.path, err)
	}
	// The index no longer knows g: a crash from here on leaves a file that
	// Open deletes.
	s.mu.Lock()
	delete(s.segs, g.num)
	s.mu.Unlock()
	g.close()
	if err := os.Remove(g.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("local: remove compacted segment: %w", err)
	}
	return nil
}
