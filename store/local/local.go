package local

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cowfs/cowfs/store"
	bolt "go.etcd.io/bbolt"
)

var (
	_ store.Store     = (*Store)(nil)
	_ store.StatFSer  = (*Store)(nil)
	_ store.Compacter = (*Store)(nil)
)

// DefaultSegmentSize is the size past which appends start a new segment file.
const DefaultSegmentSize = 64 << 20

// Errors of Open, besides those of the operating system. Test with errors.Is.
var (
	// ErrInUse: another process (or another Open in this one) has the store
	// open. It is store.ErrInUse.
	ErrInUse = store.ErrInUse
	// ErrFormat: the directory is not a cowfs local store, or one in a format
	// version this package does not read.
	ErrFormat = errors.New("not a supported cowfs store")
)

// Options tune a Store. The zero value (or a nil *Options) is the default.
type Options struct {
	// SegmentSize is the size past which appends start a new segment file;
	// 0 means DefaultSegmentSize. A blob larger than it gets a segment of its
	// own.
	SegmentSize int64
	// NoAutoCompact turns off the background compaction that runs after
	// commits that delete blobs. Compact still works.
	NoAutoCompact bool
	// Logger receives the errors of background compaction, at Error, once
	// per segment that failed (the background does not retry it; Compact
	// does, and returns its errors instead); nil discards them.
	Logger *slog.Logger
}

// Store is a durable store.Store in a directory, created by Open. It is safe
// for concurrent use.
type Store struct {
	dir    string
	segDir string
	opt    Options
	lock   *os.File
	db     *bolt.DB

	// Lock order: commitMu, then appendMu, then mu.
	commitMu sync.Mutex // serializes Commit, Compact and Close
	appendMu sync.Mutex // serializes appends to the current segment

	mu      sync.RWMutex
	closed  bool
	pending map[store.ID]*pendingBlob // written, not yet indexed
	segs    map[uint32]*segment       // every segment file the store uses
	cur     *segment                  // where appends go; nil until needed
	maxSeg  uint32                    // highest segment number used

	failed atomic.Pointer[error] // set when the store can no longer write safely

	dirGen    atomic.Uint64 // segment files created; guarded writes under appendMu
	dirSynced uint64        // dirGen at the last sync of the segments directory; commitMu

	wake     chan struct{} // nudges the background compactor
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// pendingBlob is a blob written to a segment and not yet indexed.
type pendingBlob struct {
	seg  *segment
	off  int64 // of the blob's bytes
	size int64
}

// Open opens the store in dir, creating the directory and an empty store if
// dir does not exist or is empty. It fails with an error wrapping ErrInUse if
// another process has the store open, and with one wrapping ErrFormat if dir
// holds something else or a store of an unknown format version.
func Open(dir string, opt *Options) (*Store, error) {
	s := &Store{
		dir:     dir,
		segDir:  filepath.Join(dir, segDirName),
		pending: make(map[store.ID]*pendingBlob),
		segs:    make(map[uint32]*segment),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if opt != nil {
		s.opt = *opt
	}
	if s.opt.SegmentSize <= 0 {
		s.opt.SegmentSize = DefaultSegmentSize
	}
	if err := mkdirDurable(dir); err != nil {
		return nil, fmt.Errorf("local: create store: %w", err)
	}
	// Refuse a foreign directory before creating anything in it.
	if _, err := inspectDir(dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.open(); err != nil {
		if s.db != nil {
			_ = s.db.Close()
		}
		for _, g := range s.segs {
			g.close()
		}
		holdDir(dir, false)
		_ = s.lock.Close()
		return nil, err
	}
	go s.compactor()
	if !s.opt.NoAutoCompact {
		s.nudge() // a crash may have left segments to compact
	}
	return s, nil
}

// open does the work of Open once the directory is locked.
func (s *Store) open() error {
	hasIndex, err := inspectDir(s.dir)
	if err != nil {
		return err
	}
	if !hasIndex {
		if err := createIndex(s.dir); err != nil {
			return err
		}
	}
	db, err := openIndex(s.dir)
	if err != nil {
		return err
	}
	s.db = db
	if err := s.checkFormat(); err != nil {
		return err
	}
	return s.loadSegments()
}

var errClosed = fmt.Errorf("local: %w", store.ErrClosed)

// usable reports whether the store may be used (for writing, if write);
// the caller holds s.mu.
func (s *Store) usable(write bool) error {
	if s.closed {
		return errClosed
	}
	if f := s.failed.Load(); write && f != nil {
		return fmt.Errorf("local: store %s must be reopened after an earlier failure: %w", s.dir, *f)
	}
	return nil
}

// fail puts the store into the failed state: reads go on, writes are refused
// until it is reopened. Used when the disk may no longer hold what the
// process believes (a failed fsync).
func (s *Store) fail(err error) {
	s.failed.CompareAndSwap(nil, &err)
}

// Close releases the store: it stops background compaction, closes every
// file and unlocks the directory. Pending blobs (put but named by no
// committed batch) are dropped. Every later call, Close included, fails with
// store.ErrClosed.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.closed = true
	// Give back the space of pending blobs: nothing will ever name them.
	for _, p := range s.pending {
		p.seg.punch(p.off-blobHeaderSize, blobHeaderSize+p.size)
	}
	var errs []error
	for _, num := range slices.Sorted(maps.Keys(s.segs)) {
		if err := s.segs[num].closeErr(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("local: close %s: %w", indexName, err))
	}
	holdDir(s.dir, false)
	if err := s.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("local: unlock: %w", err))
	}
	s.pending, s.segs, s.cur = nil, nil, nil
	return errors.Join(errs...)
}

// mkdirDurable creates dir and any missing parents, and fsyncs the parent of
// each directory it creates, so that a store created and committed to is not
// lost with a directory entry after a power cut.
func mkdirDurable(dir string) error {
	var created []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, d := range created {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}
