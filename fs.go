package cowfs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/internal/cache"
	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
)

// FS is an opened store holding volumes.
type FS struct {
	st      store.Store
	opt     Options
	ropes   *rope.Tree    // loads with ioCtx: for use under mu
	dirs    *dirtree.Tree // likewise
	bgRopes *rope.Tree    // loads with context.Background: ropesFor
	bgDirs  *dirtree.Tree // likewise: dirsFor
	zombies *btree.Tree[zombie]
	nodes   *cache.Cache[any]    // decoded nodes by ID
	data    *cache.Cache[[]byte] // data blobs by ID
	fetch   fetches              // blob fetches in flight (readahead.go)

	// readMu is held shared by readers of immutable trees outside mu, from
	// taking a tree until done with it, and exclusively by a commit while it
	// deletes blobs, so no reader loses a node under its feet.
	readMu sync.RWMutex

	// mu guards everything below, and the in-memory trees of all volumes.
	// It is held across store I/O; lockOp takes it for an operation with a
	// context, which the store calls under it use (ioCtx).
	mu    fsLock
	vols  map[string]*Volume // open volumes and snapshots, by root name
	fresh map[store.ID]bool  // blobs put since the last commit
	// putJobs are the flushes storing blobs without the lock (flushOutside).
	putJobs map[*putJob]bool
	zq      btree.Ref[zombie] // committed zombie list
	zqID    store.ID          // its root's ID (zero: empty)
	zqErr   error             // the list could not be read (see loadZombies)
	bgErr   error             // a background commit's failure, not yet reported
	bgFail  int               // background commits failed in a row (backgroundDone)
	closed  bool

	views    []*viewPin // views' snapshots, until their release is committed
	nextView uint64     // the last view number used

	stop     chan struct{} // closed by Close to end the background commits
	done     chan struct{} // closed when they have ended
	stopOnce sync.Once
}

// Open opens the volumes kept in st. The FS takes st over: Close closes it.
func Open(st store.Store, opt *Options) (*FS, error) {
	f := &FS{st: st, vols: map[string]*Volume{}, fresh: map[store.ID]bool{}, putJobs: map[*putJob]bool{}}
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
	f.fetch.init()
	f.ropes = rope.New(loadNode(f, f.ioCtx, f.decodeRope))
	f.dirs = dirtree.New(loadNode(f, f.ioCtx, f.decodeDir))
	bg := context.Background
	f.bgRopes = rope.New(loadNode(f, bg, f.decodeRope))
	f.bgDirs = dirtree.New(loadNode(f, bg, f.decodeDir))
	f.zombies = &btree.Tree[zombie]{Ops: zombieOps{}, Kind: btree.KindZombie}
	f.zombies.Load = loadNode(f, f.ioCtx, func(id store.ID, b []byte) (*btree.Node[zombie], error) { return f.zombies.Decode(id, b) })
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

// Store returns the store the FS runs on.
func (f *FS) Store() store.Store { return f.st }

func (f *FS) check(op string) error {
	if f.closed {
		return errorf(op, "", syscall.EBADF, store.ErrClosed)
	}
	return nil
}

// Commit writes every change made so far to the store, atomically. When it
// returns, everything written before the call survives a crash.
func (f *FS) Commit() error { return f.CommitContext(context.Background()) }

// CommitContext is Commit running with ctx. When ctx is done while it waits
// for the FS lock or for the store, it returns an error of Errno EINTR and
// commits nothing: the store's roots are as before, and every change stays
// in memory for the next commit.
func (f *FS) CommitContext(ctx context.Context) error {
	if err := f.lockFor(ctx, "commit", ""); err != nil {
		return err
	}
	defer f.unlockOp()
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
	f.fetch.close()
	if cerr := f.st.Close(); err == nil && cerr != nil {
		err = wrapIO("close", "", cerr)
	}
	return err
}
