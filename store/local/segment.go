package local

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/cowfs/cowfs/store"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

const (
	segDirName = "segments"

	// A segment file starts with segMagic and a big-endian uint32 version,
	// padded to segHeaderSize.
	segHeaderSize = 16
	segMagic      = "cowfsSEG"
	segVersion    = 1

	// Each blob record starts with blobMagic, 4 zero bytes, the big-endian
	// uint64 size and the ID.
	blobHeaderSize = 48
	blobMagic      = "cwb1"

	// maxSegNum keeps segment names at 8 decimal digits.
	maxSegNum = 99999999

	// punchBlock is the unit of hole punching: only whole blocks inside a
	// deleted record are punched, so no block that holds live bytes is
	// touched.
	punchBlock = 4096
)

// segment is one segment file.
type segment struct {
	num  uint32
	path string
	f    *os.File // nil if the file is missing

	// damaged says why the file cannot take appends (missing or shorter than
	// the index says); its blobs may still be readable. Set at Open.
	damaged string

	size    atomic.Int64  // bytes in the file; appends go here
	written atomic.Uint64 // number of writes so far
	synced  uint64        // written at the last fdatasync; guarded by commitMu

	pending   int  // pending blobs located here; guarded by Store.mu
	noCompact bool // background compaction of it failed; guarded by commitMu
}

func segName(num uint32) string { return fmt.Sprintf("%08d", num) }

// parseSegName returns the number a segment file name stands for.
func parseSegName(name string) (uint32, bool) {
	if len(name) != 8 {
		return 0, false
	}
	n, err := strconv.ParseUint(name, 10, 32)
	if err != nil || n == 0 || n > maxSegNum {
		return 0, false
	}
	return uint32(n), true
}

// createSegment creates segment file num in dir and writes its header.
func createSegment(dir string, num uint32) (*segment, error) {
	if num == 0 || num > maxSegNum {
		return nil, fmt.Errorf("local: segment numbers exhausted (%d)", num)
	}
	g := &segment{num: num, path: filepath.Join(dir, segName(num))}
	f, err := os.OpenFile(g.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local: create segment: %w", err)
	}
	var hdr [segHeaderSize]byte
	copy(hdr[:], segMagic)
	binary.BigEndian.PutUint32(hdr[len(segMagic):], segVersion)
	if _, err := f.WriteAt(hdr[:], 0); err != nil {
		_ = f.Close()
		_ = os.Remove(g.path)
		return nil, fmt.Errorf("local: create segment %s: %w", g.path, err)
	}
	g.f = f
	g.size.Store(segHeaderSize)
	g.written.Store(1)
	return g, nil
}

// full reports whether a record of n bytes should go to a new segment.
func (g *segment) full(n, max int64) bool {
	if g.damaged != "" || g.f == nil {
		return true
	}
	size := g.size.Load()
	return size > segHeaderSize && size+n > max
}

// appendRecord writes a blob record at the end of the segment and returns the
// offset of the blob's bytes. The caller holds Store.appendMu.
func (g *segment) appendRecord(id store.ID, data []byte) (int64, error) {
	off := g.size.Load()
	var hdr [blobHeaderSize]byte
	copy(hdr[:], blobMagic)
	binary.BigEndian.PutUint64(hdr[8:], uint64(len(data)))
	copy(hdr[16:], id[:])
	_, err := g.f.WriteAt(hdr[:], off)
	if err == nil && len(data) > 0 {
		_, err = g.f.WriteAt(data, off+blobHeaderSize)
	}
	if err != nil {
		_ = g.f.Truncate(off) // drop the partial record, giving back its space
		return 0, fmt.Errorf("local: append to segment %s: %w", g.path, err)
	}
	g.size.Store(off + blobHeaderSize + int64(len(data)))
	g.written.Add(1)
	return off + blobHeaderSize, nil
}

// read returns the size bytes at off, for blob id (named in errors).
// A missing or short file is an error wrapping store.ErrCorrupt.
func (g *segment) read(id store.ID, off, size int64) ([]byte, error) {
	if size == 0 {
		return []byte{}, nil
	}
	if g.f == nil {
		return nil, fmt.Errorf("local: blob %s: segment file %s is missing: %w", id, g.path, store.ErrCorrupt)
	}
	// Check the extent against the file before allocating: a damaged index
	// entry must not make a huge allocation.
	if end := g.size.Load(); off > end || size > end-off {
		return nil, fmt.Errorf("local: blob %s: segment file %s ends at %d, inside it (bytes [%d,%d)): %w",
			id, g.path, end, off, off+size, store.ErrCorrupt)
	}
	buf := make([]byte, size)
	n, err := g.f.ReadAt(buf, off)
	switch {
	case err == io.EOF || (err == nil && n < len(buf)):
		return nil, fmt.Errorf("local: blob %s: segment file %s ends inside it (bytes [%d,%d)): %w",
			id, g.path, off, off+size, store.ErrCorrupt)
	case err != nil:
		return nil, fmt.Errorf("local: blob %s: read segment %s: %w", id, g.path, err)
	}
	return buf, nil
}

// punch gives back the whole blocks of the record [off, off+n) to the file
// system. It is best effort: space not punched is reclaimed by compaction.
func (g *segment) punch(off, n int64) {
	start := (off + punchBlock - 1) / punchBlock * punchBlock
	end := (off + n) / punchBlock * punchBlock
	if g.f == nil || end <= start {
		return
	}
	_ = control(g.f, func(fd int) error {
		return unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, start, end-start)
	})
}

// sync makes the segment's written bytes durable.
func (g *segment) sync() error {
	if g.f == nil {
		return nil
	}
	if err := control(g.f, unix.Fdatasync); err != nil {
		return fmt.Errorf("local: sync segment %s: %w", g.path, err)
	}
	return nil
}

func (g *segment) close() { _ = g.closeErr() }

func (g *segment) closeErr() error {
	if g.f == nil {
		return nil
	}
	err := g.f.Close()
	if err != nil {
		err = fmt.Errorf("local: close segment %s: %w", g.path, err)
	}
	return err
}

// control runs fn on f's descriptor, retrying EINTR.
func control(f *os.File, fn func(fd int) error) error {
	conn, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = conn.Control(func(fd uintptr) {
		for {
			if ferr = fn(int(fd)); !errors.Is(ferr, unix.EINTR) {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return ferr
}

// allSegRecs reads every segment's record from the index.
func (s *Store) allSegRecs() (map[uint32]segRec, error) {
	recs := make(map[uint32]segRec)
	err := s.view(func(_ *bolt.Tx, bs buckets) error {
		return bs.segments.ForEach(func(k, v []byte) error {
			if len(k) != 4 {
				return s.corruptIndex(fmt.Errorf("segment key %x", k))
			}
			num := binary.BigEndian.Uint32(k)
			r, err := decodeSegRec(num, v)
			if err != nil {
				return s.corruptIndex(err)
			}
			recs[num] = r
			return nil
		})
	})
	return recs, err
}

// loadSegments opens every segment the index knows, deletes segment files
// it does not know, truncates each known file to its last indexed end, and
// picks the segment appends go to.
func (s *Store) loadSegments() error {
	recs, err := s.allSegRecs()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.segDir, 0o700); err != nil {
		return fmt.Errorf("local: open store: %w", err)
	}
	ents, err := os.ReadDir(s.segDir)
	if err != nil {
		return fmt.Errorf("local: open store: %w", err)
	}
	for _, e := range ents {
		num, ok := parseSegName(e.Name())
		if !ok {
			continue // not ours: leave it alone
		}
		if _, known := recs[num]; !known {
			// Created after the last commit, or compacted away: garbage.
			if err := os.Remove(filepath.Join(s.segDir, e.Name())); err != nil {
				return fmt.Errorf("local: remove leftover segment: %w", err)
			}
			continue
		}
		s.maxSeg = max(s.maxSeg, num)
	}
	for num, r := range recs {
		s.maxSeg = max(s.maxSeg, num)
		g := &segment{num: num, path: filepath.Join(s.segDir, segName(num))}
		s.segs[num] = g
		f, err := os.OpenFile(g.path, os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			g.damaged = "file missing"
			continue
		} else if err != nil {
			return fmt.Errorf("local: open segment: %w", err)
		}
		g.f = f
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("local: open segment: %w", err)
		}
		size := fi.Size()
		switch {
		case size < r.end:
			g.damaged = fmt.Sprintf("file is %d bytes, the index says %d", size, r.end)
		case size > r.end:
			// Records appended after the last commit are garbage.
			if err := f.Truncate(r.end); err != nil {
				return fmt.Errorf("local: truncate segment %s: %w", g.path, err)
			}
			size = r.end
		}
		g.size.Store(size)
	}
	if last := s.segs[s.maxSeg]; last != nil && !last.full(0, s.opt.SegmentSize) && last.size.Load() < s.opt.SegmentSize {
		s.cur = last
	}
	return nil
}
