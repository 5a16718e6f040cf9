package cowfs

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
)

// PageSize is the granularity at which a View detaches what is written
// into it.
const PageSize = 4096

// View is a deferred read: a private snapshot of a byte range of
// a file, taken in O(log n) node copies whatever the range's size. Nothing is
// read until the view is: its accessors fault pages in from the shared cache
// or the store. Later writes to the file never show through. A write into
// the view detaches the pages it touches (they become the view's own);
// WriteTo writes back only those, and turns every other page into an extent
// shared with the snapshot, so reading and writing back unchanged data is a
// clone.
//
// A view holds its snapshot until Release: the snapshot is a root of the
// store (q:view:N) from the next commit on, so nothing it refers to is freed
// meanwhile, and a process that dies holding views has them released when
// the store is next opened. A View is safe for concurrent use.
type View struct {
	f *FS

	mu    sync.Mutex
	snap  rope.Rope        // the snapshot; immutable
	pages map[int64][]byte // detached pages by index, each PageSize (the last may be shorter)
	pin   *viewPin         // nil once released
}

// viewPin is a view's claim on its snapshot, as the FS tracks it across
// commits.
type viewPin struct {
	n         uint64    // names the root q:view:n
	snap      rope.Rope // what the root holds
	committed store.ID  // the root's blob once committed; zero before
	released  bool
}

// ReadDeferred returns a view of the n bytes at off (fewer if the file ends
// first). It costs O(log n) whatever n; it first stores the file's buffered
// writes, as a commit would.
func (fl *File) ReadDeferred(off, n int64) (*View, error) {
	const op = "read deferred"
	if off < 0 || n < 0 {
		return nil, errorf(op, fl.name, syscall.EINVAL, errors.New("negative offset or length"))
	}
	f := fl.v.f
	f.mu.Lock()
	defer f.mu.Unlock()
	snap, err := fl.snapshotLocked(op, off, n)
	if err != nil {
		return nil, err
	}
	v := &View{f: f, snap: snap, pages: map[int64][]byte{}}
	v.pin = f.pinLocked(snap)
	return v, nil
}

// snapshotLocked returns the rope of [off, off+n) of the file, clamped to
// its end, with no pending extents.
func (fl *File) snapshotLocked(op string, off, n int64) (rope.Rope, error) {
	if err := fl.use(op, false); err != nil {
		return rope.Rope{}, err
	}
	x := fl.x
	if x.ent.Type() != dirtree.TypeReg {
		return rope.Rope{}, errorf(op, fl.name, syscall.EINVAL, errors.New("not a regular file"))
	}
	if err := x.flush(true); err != nil {
		return rope.Rope{}, wrapIO(op, fl.name, err)
	}
	size := x.ent.Data.Len
	if off >= size || n == 0 {
		return rope.Rope{}, nil
	}
	n = min(n, size-off)
	snap, err := fl.v.f.ropes.Slice(x.ent.Data, off, off+n)
	if err != nil {
		return rope.Rope{}, wrapIO(op, fl.name, err)
	}
	return snap, nil
}

// pinLocked registers a view's snapshot, to become a root at the next
// commit.
func (f *FS) pinLocked(snap rope.Rope) *viewPin {
	f.nextView++
	p := &viewPin{n: f.nextView, snap: snap}
	f.views = append(f.views, p)
	return p
}

// Len returns the view's length.
func (v *View) Len() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.snap.Len
}

// ReadAt reads from the view, faulting in the pages it needs; io.EOF when
// fewer than len(p) bytes remain.
func (v *View) ReadAt(p []byte, off int64) (int, error) {
	return v.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt running with ctx: when ctx is done while a page
// fault waits for the store, it returns an error of Errno EINTR (and what
// it read before).
func (v *View) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pin == nil {
		return 0, errorf("read view", "", syscall.EBADF, errors.New("view released"))
	}
	if off < 0 {
		return 0, errorf("read view", "", syscall.EINVAL, errors.New("negative offset"))
	}
	if off >= v.snap.Len {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), v.snap.Len-off))
	for done := 0; done < n; {
		at := off + int64(done)
		pg, in := at/PageSize, at%PageSize
		k := int(min(int64(n-done), PageSize-in))
		if b, ok := v.pages[pg]; ok {
			copy(p[done:done+k], b[in:])
		} else if err := v.readSnap(ctx, p[done:done+k], at); err != nil {
			return done, err
		}
		done += k
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readSnap reads the snapshot's bytes at off into p, through the cache.
func (v *View) readSnap(ctx context.Context, p []byte, off int64) error {
	f := v.f
	f.readMu.RLock()
	defer f.readMu.RUnlock()
	if _, err := rope.ReadAt(f.ropesFor(ctx), v.snap, blobSource{f, ctx}, p, off); err != nil && !errors.Is(err, io.EOF) {
		return wrapIO("read view", "", err)
	}
	return nil
}

// WriteAt writes p into the view at off, detaching the pages it touches.
// A view does not grow: a write past its end is short, with EFBIG.
func (v *View) WriteAt(p []byte, off int64) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	const op = "write view"
	if v.pin == nil {
		return 0, errorf(op, "", syscall.EBADF, errors.New("view released"))
	}
	if off < 0 {
		return 0, errorf(op, "", syscall.EINVAL, errors.New("negative offset"))
	}
	n := 0
	if off < v.snap.Len {
		n = int(min(int64(len(p)), v.snap.Len-off))
	}
	for done := 0; done < n; {
		at := off + int64(done)
		pg, in := at/PageSize, at%PageSize
		k := int(min(int64(n-done), PageSize-in))
		b, ok := v.pages[pg]
		if !ok {
			b = make([]byte, min(PageSize, v.snap.Len-pg*PageSize))
			if err := v.readSnap(context.Background(), b, pg*PageSize); err != nil {
				return done, err
			}
			v.pages[pg] = b
		}
		copy(b[in:], p[done:done+k])
		done += k
	}
	if n < len(p) {
		return n, errorf(op, "", syscall.EFBIG, errors.New("write past the end of the view"))
	}
	return n, nil
}

// Detached returns the indexes of the pages written into the view, in
// order: the pages WriteTo writes.
func (v *View) Detached() []int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return sortedKeys(v.pages)
}

// WriteTo writes the view into dst at off, as a write of all its bytes
// would, but writes only the detached pages: the rest becomes extents shared
// with the snapshot (whatever dst held there, changed since or not). It
// returns how many bytes it wrote, the detached pages' length.
func (v *View) WriteTo(dst *File, off int64) (int64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	const op = "write back view"
	d, err := v.shareLocked(context.Background(), op, 0, dst, off, v.snap.Len)
	if err != nil || d == nil {
		return 0, err
	}
	defer v.f.mu.Unlock()
	var written int64
	for _, pg := range sortedKeys(v.pages) {
		b := v.pages[pg]
		if err := d.bufferWrite(b, off+pg*PageSize); err != nil {
			return written, wrapIO(op, dst.name, err)
		}
		written += int64(len(b))
	}
	d.stamp(true)
	return written, nil
}

// CopyRange shares n bytes of the view's snapshot at soff into dst at doff,
// like cowfs.CopyRange: no byte is copied. Pages written into the view do
// not count: this is the snapshot as it was read. It copies less than n
// only when the view ends first.
func (v *View) CopyRange(soff int64, dst *File, doff int64, n int64) (int64, error) {
	return v.CopyRangeContext(context.Background(), soff, dst, doff, n)
}

// CopyRangeContext is CopyRange running with ctx: when ctx is done while it
// waits for the FS lock or for the store, it returns an error of Errno
// EINTR, having copied nothing.
func (v *View) CopyRangeContext(ctx context.Context, soff int64, dst *File, doff int64, n int64) (int64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	const op = "copy range from view"
	if soff < 0 || n < 0 {
		return 0, errorf(op, dst.name, syscall.EINVAL, nil)
	}
	if soff >= v.snap.Len || n == 0 {
		return 0, nil
	}
	n = min(n, v.snap.Len-soff)
	d, err := v.shareLocked(ctx, op, soff, dst, doff, n)
	if err != nil || d == nil {
		return 0, err
	}
	defer v.f.mu.Unlock()
	d.stamp(true)
	return n, nil
}

// shareLocked puts [soff, soff+n) of the snapshot into dst at doff and
// returns dst's inode with the FS locked, or nil (and the FS unlocked) if
// there was nothing to do or it failed. The caller holds v.mu; the FS lock
// is waited for with ctx.
func (v *View) shareLocked(ctx context.Context, op string, soff int64, dst *File, doff, n int64) (*inode, error) {
	if v.pin == nil {
		return nil, errorf(op, dst.name, syscall.EBADF, errors.New("view released"))
	}
	f := v.f
	if dst.v.f != f {
		return nil, errorf(op, dst.name, syscall.EXDEV, nil)
	}
	if err := f.lockFor(ctx, op, dst.name); err != nil {
		return nil, err
	}
	fail := func(err error) (*inode, error) { f.mu.Unlock(); return nil, err }
	if err := dst.use(op, true); err != nil {
		return fail(err)
	}
	if dst.v.readOnly {
		return fail(errorf(op, dst.name, syscall.EROFS, nil))
	}
	if dst.flag&os.O_APPEND != 0 {
		return fail(errorf(op, dst.name, syscall.EBADF, errors.New("destination opened with O_APPEND")))
	}
	d := dst.x
	if d.ent.Type() != dirtree.TypeReg {
		return fail(errorf(op, dst.name, syscall.EINVAL, errors.New("not a regular file")))
	}
	if doff < 0 || doff > rope.MaxSize || n > rope.MaxSize-doff {
		return fail(errorf(op, dst.name, syscall.EFBIG, nil))
	}
	if n == 0 {
		return fail(nil)
	}
	if err := d.flushBuf(); err != nil {
		return fail(wrapIO(op, dst.name, err))
	}
	piece := v.snap
	if soff != 0 || n != v.snap.Len {
		var err error
		if piece, err = f.ropes.Slice(v.snap, soff, soff+n); err != nil {
			return fail(wrapIO(op, dst.name, err))
		}
	}
	r, err := rope.Put(f.ropes, d.ent.Data, doff, n, piece)
	if err != nil {
		return fail(wrapIO(op, dst.name, err))
	}
	d.ent.Data = r
	d.recountPending()
	return d, nil
}

// Reread makes the view a new snapshot of the file at off, of the same
// length (less if the file ends first): detached pages rejoin the snapshot,
// and the old snapshot is released.
func (v *View) Reread(fl *File, off int64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	const op = "reread view"
	if v.pin == nil {
		return errorf(op, fl.name, syscall.EBADF, errors.New("view released"))
	}
	if fl.v.f != v.f {
		return errorf(op, fl.name, syscall.EXDEV, nil)
	}
	if off < 0 {
		return errorf(op, fl.name, syscall.EINVAL, errors.New("negative offset"))
	}
	f := v.f
	f.mu.Lock()
	defer f.mu.Unlock()
	snap, err := fl.snapshotLocked(op, off, v.snap.Len)
	if err != nil {
		return err
	}
	v.pin.released = true
	v.snap, v.pages = snap, map[int64][]byte{}
	v.pin = f.pinLocked(snap)
	return nil
}

// Release frees the view's snapshot (at the next commit) and its pages.
// Releasing twice is harmless.
func (v *View) Release() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pin == nil {
		return
	}
	v.f.mu.Lock()
	v.pin.released = true
	v.f.mu.Unlock()
	v.pin, v.pages, v.snap = nil, nil, rope.Rope{}
}

func sortedKeys[V any](m map[int64]V) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// commitViews adds the views' roots to commit c: a new view's snapshot
// becomes a root (materialized here), and a released one's root goes: its
// ID is returned for the caller to release after every new root of the
// commit is materialized. finishViews applies the outcome once c
// succeeded. The caller holds f.mu.
func (f *FS) commitViews(c *commit) (released []store.ID, err error) {
	for _, p := range f.views {
		switch {
		case p.released && !p.committed.IsZero():
			c.swaps = append(c.swaps, store.RootSwap{Name: viewRootName(p.n), Old: p.committed})
			released = append(released, p.committed)
		case p.released, !p.committed.IsZero(), p.snap.Empty():
		default:
			ch, err := btree.RefChild(p.snap)
			if err != nil {
				return nil, err
			}
			if err := c.materialize(ch); err != nil {
				return nil, err
			}
			c.swaps = append(c.swaps, store.RootSwap{Name: viewRootName(p.n), New: ch.ID})
			c.views = append(c.views, viewRoot{p, ch.ID})
		}
	}
	return released, nil
}

// finishViews records what a successful commit did to the views: new roots
// are committed, released views are gone.
func (f *FS) finishViews(c *commit) {
	for _, r := range c.views {
		r.p.committed = r.id
	}
	f.views = slices.DeleteFunc(f.views, func(p *viewPin) bool { return p.released })
}

// viewRoot is a view's root as a commit creates it.
type viewRoot struct {
	p  *viewPin
	id store.ID
}

// releaseViewsOfDeadProcess releases the view roots a previous process
// left: views live no longer than the FS that made them.
func (f *FS) releaseViewsOfDeadProcess() error {
	roots, err := f.st.ListRoots(context.Background())
	if err != nil {
		return err
	}
	c := newCommit(f)
	for _, r := range roots {
		if !strings.HasPrefix(r.Name, viewRootPrefix) {
			continue
		}
		n, err := strconv.ParseUint(r.Name[len(viewRootPrefix):], 10, 64)
		if err != nil {
			return corrupt("root %q is not a view's", r.Name)
		}
		f.nextView = max(f.nextView, n)
		c.swaps = append(c.swaps, store.RootSwap{Name: r.Name, Old: r.ID})
		c.release(r.ID, false)
	}
	if len(c.swaps) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return c.run()
}
