// Package cowfs is a copy-on-write file system served as a Go library.
//
// Copies cost metadata, not bytes: cloning a file or a whole directory tree is
// O(1); copying any byte range of one file into another at any offsets shares
// the data in O(log n); identical data written twice is stored once.
//
// An FS is an opened store (see package store and its backends). It holds
// volumes: writable trees of directories and files, each a named root in the
// store. A volume can be snapshotted (a read-only, O(1) copy) and cloned into
// a new writable volume (also O(1)).
//
// Everything a volume holds is one persistent tree (seed 001): the volume node
// points at the root directory's B-tree of entries; an entry of a directory
// points at that directory's tree, an entry of a file at the file's rope of
// extents. Nodes are immutable blobs named by their hash, shared by every
// tree that contains them, and loaded on demand.
//
// Changes live in memory until Commit writes the new nodes, swaps the
// volumes' roots and adjusts reference counts, atomically. Sync of a file
// commits. Commit is FS-wide: every dirty volume goes into one batch, so no
// in-memory reference to a blob is ever lost to another volume's commit.
//
// Paths are slash-separated and relative to the volume root ("a/b" and "/a/b"
// name the same file). All methods are safe for concurrent use.
package cowfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/internal/cache"
	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
)

// Options tune an FS. The zero value is usable.
type Options struct {
	// CacheBytes bounds the decoded-node and data caches (default 256 MiB).
	CacheBytes int64
	// FlushBytes is how many written bytes a file buffers before cutting them
	// into data blobs (default 32 MiB).
	FlushBytes int64
	// ReleaseBudget bounds the blobs one commit deletes (default 100,000);
	// the rest wait in a list that later commits work through (zombies.go),
	// so deleting a huge file or snapshot never stalls a commit.
	ReleaseBudget int
	// CommitInterval, if positive, commits in the background this often, so
	// written data becomes durable without an explicit Sync; a long-running
	// server should set a few seconds. An error of a background commit is
	// kept and returned by the next Commit, Sync or Close.
	CommitInterval time.Duration
	// MaxInodes is how many inodes a volume loads before the next commit
	// drops those not in use (default 100,000). Only memory depends on it.
	MaxInodes int
	// Now, if set, is the clock that stamps files (default time.Now);
	// tests set it to make whole protocol exchanges reproducible.
	Now func() time.Time
	// Atime says when reading a file (File.Read, ReadAt) or listing a
	// directory (ReadDir) updates its access time; the default is
	// Relatime, as Linux mounts by default. Snapshots never change. An
	// access time update alone does not make the volume dirty: it goes
	// into the next commit made for another reason, or by Commit, Sync or
	// Close, and a crash before then loses it.
	Atime AtimeMode
	// Logger receives the failures that have no caller to go to: a
	// background commit's (the first of a run of failures, at Error, and
	// the success that ends the run, at Info) and, at Open, an unreadable
	// list of blobs waiting for deletion (Error). Errors returned to a
	// caller are not logged. nil discards.
	Logger *slog.Logger
}

// AtimeMode says when reads update access times, as Linux's mount options
// relatime, noatime and strictatime do.
type AtimeMode int

const (
	// Relatime updates the access time when it is not after the
	// modification or change time, or is at least 24 hours old.
	Relatime AtimeMode = iota
	// Noatime never updates it.
	Noatime
	// Strictatime updates it at every read.
	Strictatime
)

// String returns the mount option's name: relatime, noatime, strictatime.
func (m AtimeMode) String() string {
	switch m {
	case Relatime:
		return "relatime"
	case Noatime:
		return "noatime"
	case Strictatime:
		return "strictatime"
	}
	return fmt.Sprintf("AtimeMode(%d)", int(m))
}

// ParseAtimeMode parses a name String returns.
func ParseAtimeMode(s string) (AtimeMode, error) {
	for _, m := range []AtimeMode{Relatime, Noatime, Strictatime} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("atime mode %q: want relatime, noatime or strictatime", s)
}

// Atime returns when reads update access times (Options.Atime).
func (f *FS) Atime() AtimeMode { return f.opt.Atime }

// logger returns the FS's logger; nil Options.Logger discards.
func (f *FS) logger() *slog.Logger {
	if f.opt.Logger == nil {
		return discardLogger
	}
	return f.opt.Logger
}

// discardLogger drops every record.
var discardLogger = slog.New(slog.DiscardHandler)

// clock returns the time of the FS's clock (Options.Now).
func (f *FS) clock() time.Time {
	if f.opt.Now != nil {
		return f.opt.Now()
	}
	return time.Now()
}

// now is the time that stamps a change.
func (f *FS) now() dirtree.Time { return fromTime(f.clock()) }

// nowNano is the time that stamps a volume's or snapshot's creation, in
// nanoseconds since 1970 (what a volume node keeps), held within int64.
func (f *FS) nowNano() int64 {
	t := f.now()
	if ns, ok := t.Nano(); ok {
		return ns
	}
	if t.Sec < 0 {
		return math.MinInt64
	}
	return math.MaxInt64
}

// FS is an opened store holding volumes.
type FS struct {
	st      store.Store
	opt     Options
	ropes   *rope.Tree
	dirs    *dirtree.Tree
	zombies *btree.Tree[zombie]
	nodes   *cache.Cache[any]    // decoded nodes by ID
	data    *cache.Cache[[]byte] // data blobs by ID

	// readMu is held shared by readers of immutable trees outside mu, from
	// taking a tree until done with it, and exclusively by a commit while it
	// deletes blobs, so no reader loses a node under its feet.
	readMu sync.RWMutex

	// mu guards everything below, and the in-memory trees of all volumes.
	mu     sync.Mutex
	vols   map[string]*Volume // open volumes and snapshots, by root name
	fresh  map[store.ID]bool  // blobs put since the last commit
	zq     btree.Ref[zombie]  // committed zombie list
	zqID   store.ID           // its root's ID (zero: empty)
	zqErr  error              // the list could not be read (see loadZombies)
	bgErr  error              // a background commit's failure, not yet reported
	bgFail int                // background commits failed in a row (backgroundDone)
	closed bool

	views    []*viewPin // views' snapshots, until their release is committed
	nextView uint64     // the last view number used

	stop     chan struct{} // closed by Close to end the background commits
	done     chan struct{} // closed when they have ended
	stopOnce sync.Once
}

// Open opens the volumes kept in st. The FS takes st over: Close closes it.
func Open(st store.Store, opt *Options) (*FS, error) {
	f := &FS{st: st, vols: map[string]*Volume{}, fresh: map[store.ID]bool{}}
	if opt != nil {
		f.opt = *opt
	}
	if f.opt.CacheBytes <= 0 {
		f.opt.CacheBytes = 256 << 20
	}
	if f.opt.FlushBytes <= 0 {
		f.opt.FlushBytes = 32 << 20
	}
	if f.opt.ReleaseBudget <= 0 {
		f.opt.ReleaseBudget = 100_000
	}
	if f.opt.MaxInodes <= 0 {
		f.opt.MaxInodes = 100_000
	}
	if f.opt.Atime < Relatime || f.opt.Atime > Strictatime {
		return nil, errorf("open", "", syscall.EINVAL, fmt.Errorf("unknown atime mode %d", f.opt.Atime))
	}
	f.nodes = cache.New[any](f.opt.CacheBytes / 4)
	f.data = cache.New[[]byte](f.opt.CacheBytes - f.opt.CacheBytes/4)
	f.ropes = rope.New(loadNode(f, func(id store.ID, b []byte) (*btree.Node[rope.Extent], error) { return f.ropes.Decode(id, b) }))
	f.dirs = dirtree.New(loadNode(f, func(id store.ID, b []byte) (*btree.Node[dirtree.Entry], error) { return f.dirs.Decode(id, b) }))
	f.zombies = &btree.Tree[zombie]{Ops: zombieOps{}, Kind: zombieKind}
	f.zombies.Load = loadNode(f, func(id store.ID, b []byte) (*btree.Node[zombie], error) { return f.zombies.Decode(id, b) })
	if err := f.loadZombies(); err != nil {
		return nil, wrapIO("open", "", err)
	}
	if err := f.releaseViewsOfDeadProcess(); err != nil {
		return nil, wrapIO("open", "", err)
	}
	if f.opt.CommitInterval > 0 {
		f.stop, f.done = make(chan struct{}), make(chan struct{})
		go f.commitLoop()
	}
	return f, nil
}

// commitLoop commits every CommitInterval until Close.
func (f *FS) commitLoop() {
	defer close(f.done)
	tick := time.NewTicker(f.opt.CommitInterval)
	defer tick.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-tick.C:
			f.mu.Lock()
			if !f.closed {
				f.backgroundDone(f.commitSomeLocked(nil, false))
			}
			f.mu.Unlock()
		}
	}
}

// backgroundDone records the outcome of a background commit. A failure is
// kept for the next Commit, Sync or Close to return, and logged at Error
// when it starts a run of failures; the failures after it in the run (the
// same trouble, met again every CommitInterval) are not logged, and the
// success that ends the run is, at Info, with how many commits failed. The
// caller holds f.mu.
func (f *FS) backgroundDone(err error) {
	if err != nil {
		err = wrapIO("background commit", "", err)
		if f.bgErr == nil {
			f.bgErr = err
		}
		if f.bgFail++; f.bgFail == 1 {
			f.logger().Error("background commit failed; retrying every interval", "op", "background commit",
				"interval", f.opt.CommitInterval, "err", err)
		}
		return
	}
	if f.bgFail > 0 {
		f.logger().Info("background commit succeeded again", "op", "background commit", "failed_commits", f.bgFail)
		f.bgFail = 0
	}
}

// commitAllLocked commits, first reporting a background commit's failure.
func (f *FS) commitAllLocked() error {
	if err := f.bgErr; err != nil {
		f.bgErr = nil
		if cerr := f.commitLocked(nil); cerr != nil {
			return errors.Join(err, wrapIO("commit", "", cerr))
		}
		return err
	}
	return wrapIO("commit", "", f.commitLocked(nil))
}

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

// Store returns the store the FS runs on.
func (f *FS) Store() store.Store { return f.st }

// Root names: "v:NAME" for a volume, "s:VOLUME:NAME" for a snapshot.
func volRoot(name string) string       { return "v:" + name }
func snapRoot(vol, name string) string { return "s:" + vol + ":" + name }
func snapPrefix(vol string) string     { return "s:" + vol + ":" }
func validName(name string) bool {
	if len(name) == 0 || len(name) > 100 || name == "." || name == ".." {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (f *FS) check(op string) error {
	if f.closed {
		return errorf(op, "", syscall.EBADF, store.ErrClosed)
	}
	return nil
}

// CreateVolume creates an empty volume and returns it open.
func (f *FS) CreateVolume(name string) (*Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("create volume"); err != nil {
		return nil, err
	}
	if !validName(name) {
		return nil, errorf("create volume", name, syscall.EINVAL, errors.New("names are 1-100 of [A-Za-z0-9._-]"))
	}
	if _, err := f.st.GetRoot(context.Background(), volRoot(name)); err == nil {
		return nil, errorf("create volume", name, syscall.EEXIST, nil)
	}
	now := f.now()
	root := dirtree.Entry{Mode: dirtree.TypeDir | 0o755, Local: 1, Atime: now, Mtime: now, Ctime: now, Btime: now}
	v := newVolume(f, name, volRoot(name), false, volMeta{root: root, nextLocal: 2, nextScope: 1, nextPrefix: 1, nextLink: 1, created: f.nowNano()})
	v.dirty = true
	if err := f.commitLocked([]*Volume{v}); err != nil {
		return nil, wrapIO("create volume", name, err)
	}
	f.vols[v.rootName] = v
	return v, nil
}

// Volume opens an existing volume; opening it again returns the same Volume.
func (f *FS) Volume(name string) (*Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.openLocked(volRoot(name), name, false)
}

func (f *FS) openLocked(rootName, name string, readOnly bool) (*Volume, error) {
	if err := f.check("open volume"); err != nil {
		return nil, err
	}
	if v, ok := f.vols[rootName]; ok {
		return v, nil
	}
	id, err := f.st.GetRoot(context.Background(), rootName)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf("open volume", name, syscall.ENOENT, nil)
	}
	if err != nil {
		return nil, wrapIO("open volume", name, err)
	}
	meta, err := f.loadVolume(id)
	if err != nil {
		return nil, wrapIO("open volume", name, err)
	}
	v := newVolume(f, name, rootName, readOnly, meta)
	v.committed = id
	if !readOnly && !meta.orphans.Empty() {
		// Files unlinked while open in an earlier run: nothing holds them now.
		v.meta.orphans = dirtree.Dir{}
		v.dirty = true
	}
	f.vols[rootName] = v
	return v, nil
}

// Volumes lists the volumes' names, sorted.
func (f *FS) Volumes() ([]string, error) {
	roots, err := f.st.ListRoots(context.Background())
	if err != nil {
		return nil, wrapIO("list volumes", "", err)
	}
	var names []string
	for _, r := range roots {
		if strings.HasPrefix(r.Name, "v:") {
			names = append(names, r.Name[2:])
		}
	}
	sort.Strings(names)
	return names, nil
}

// CloneVolume creates volume dst as a writable copy of volume src in O(1).
// Uncommitted changes of src are committed first.
func (f *FS) CloneVolume(src, dst string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("clone volume"); err != nil {
		return err
	}
	if !validName(dst) {
		return errorf("clone volume", dst, syscall.EINVAL, nil)
	}
	return f.linkRootLocked("clone volume", volRoot(src), volRoot(dst), src)
}

// linkRootLocked binds root name to to a copy of the committed root of
// from (after committing everything): a new volume node that shares the
// source's trees, so the copy costs O(1) whatever the volume holds. The copy
// records its own creation time and none of the source's open orphans.
func (f *FS) linkRootLocked(op, from, to, what string) error {
	if err := f.commitLocked(nil); err != nil {
		return wrapIO(op, what, err)
	}
	id, err := f.st.GetRoot(context.Background(), from)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(op, what, syscall.ENOENT, nil)
	}
	if err != nil {
		return wrapIO(op, what, err)
	}
	m, err := f.loadVolume(id)
	if err != nil {
		return wrapIO(op, what, err)
	}
	m.created = f.nowNano()
	m.orphans = dirtree.Dir{}
	node := &volumeNode{f: f, m: m}
	nid, err := node.Hash()
	if err != nil {
		return wrapIO(op, what, err)
	}
	c := newCommit(f)
	if err := c.materialize(btree.Child{ID: nid, Mem: node}); err != nil {
		return wrapIO(op, what, err)
	}
	c.swaps = append(c.swaps, store.RootSwap{Name: to, New: nid})
	if err := c.run(); errors.Is(err, store.ErrConflict) {
		return errorf(op, to, syscall.EEXIST, nil)
	} else if err != nil {
		return wrapIO(op, what, err)
	}
	return nil
}

// DeleteVolume removes a volume and its snapshots; space shared with nothing
// else is released. The volume must not be open elsewhere in this FS.
func (f *FS) DeleteVolume(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("delete volume"); err != nil {
		return err
	}
	roots, err := f.st.ListRoots(context.Background())
	if err != nil {
		return wrapIO("delete volume", name, err)
	}
	found := false
	var drop []string
	for _, r := range roots {
		if r.Name == volRoot(name) || strings.HasPrefix(r.Name, snapPrefix(name)) {
			found = found || r.Name == volRoot(name)
			drop = append(drop, r.Name)
		}
	}
	if !found {
		return errorf("delete volume", name, syscall.ENOENT, nil)
	}
	return f.dropRootLocked("delete volume", name, drop...)
}

// dropRootLocked deletes roots, in one batch, and releases what only they
// held. It fails with EBUSY, changing nothing, if files are open on any.
func (f *FS) dropRootLocked(op, what string, rootNames ...string) error {
	for _, name := range rootNames {
		if v, ok := f.vols[name]; ok && v.busy() {
			return errorf(op, what, syscall.EBUSY, errors.New("files are open on it"))
		}
	}
	// Commit the rest first: the drop's batch deletes unreferenced fresh
	// blobs, which is safe only once every in-memory tree is materialized.
	if err := f.commitLocked(nil); err != nil {
		return wrapIO(op, what, err)
	}
	ctx := context.Background()
	c := newCommit(f)
	for _, name := range rootNames {
		id, err := f.st.GetRoot(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return errorf(op, what, syscall.ENOENT, nil)
		} else if err != nil {
			return wrapIO(op, what, err)
		}
		c.swaps = append(c.swaps, store.RootSwap{Name: name, Old: id})
		c.release(id, false)
	}
	if err := c.run(); err != nil {
		return wrapIO(op, what, err)
	}
	for _, name := range rootNames {
		if v, ok := f.vols[name]; ok {
			delete(f.vols, name)
			v.closed = true
		}
	}
	return nil
}

// Commit writes every change made so far to the store, atomically. When it
// returns, everything written before the call survives a crash.
func (f *FS) Commit() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("commit"); err != nil {
		return err
	}
	return f.commitAllLocked()
}

// Close commits and closes the FS and its store.
func (f *FS) Close() error {
	if f.stop != nil {
		f.stopOnce.Do(func() {
			close(f.stop)
			<-f.done
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	err := f.commitAllLocked()
	f.closed = true
	for _, v := range f.vols {
		v.closed = true
	}
	if cerr := f.st.Close(); err == nil && cerr != nil {
		err = wrapIO("close", "", cerr)
	}
	return err
}

// CacheStats returns the node and data cache counters.
func (f *FS) CacheStats() (nodes, data cache.Stats) { return f.nodes.Stats(), f.data.Stats() }
