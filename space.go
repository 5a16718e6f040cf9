package cowfs

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
)

// Fallocate modes, as in fallocate(2).
const (
	FallocKeepSize      = 0x01
	FallocPunchHole     = 0x02
	FallocCollapseRange = 0x08
	FallocZeroRange     = 0x10
	FallocInsertRange   = 0x20
)

// Fallocate allocates (extends the size unless FallocKeepSize), punches a
// hole, zeroes, inserts or collapses the range [off, off+n), at any byte
// offsets. Allocating and zeroing reserve no space (the range stays a hole,
// and a later write into it needs new space whatever fallocate did, as
// every write of a copy-on-write store does) but fail with ENOSPC, changing
// nothing, when the range's bytes that hold no data are more than the
// store has free.
func (f *File) Fallocate(mode uint32, off, n int64) error {
	return f.FallocateContext(context.Background(), mode, off, n)
}

// FallocateContext is Fallocate running with ctx: when ctx is done while
// it waits for the FS lock or for the store, it returns an error of Errno
// EINTR, having changed nothing.
func (f *File) FallocateContext(ctx context.Context, mode uint32, off, n int64) error {
	v := f.v
	const op = "fallocate"
	if err := v.f.lockFor(ctx, op, f.name); err != nil {
		return err
	}
	defer v.f.unlockOp()
	if err := f.use(op, true); err != nil {
		return err
	}
	x := f.x
	if x.ent.Type() != dirtree.TypeReg {
		return errorf(op, f.name, syscall.ENODEV, nil)
	}
	if off < 0 || n <= 0 {
		return errorf(op, f.name, syscall.EINVAL, nil)
	}
	if off > rope.MaxSize || n > rope.MaxSize-off {
		return errorf(op, f.name, syscall.EFBIG, nil)
	}
	if err := x.flushBuf(); err != nil {
		return wrapIO(op, f.name, err)
	}
	t := v.f.ropes
	r := x.ent.Data
	size := r.Len
	var err error
	switch mode {
	case 0, FallocKeepSize, FallocZeroRange, FallocZeroRange | FallocKeepSize:
		if err := f.checkSpace(op, r, off, n); err != nil {
			return err
		}
	}
	switch mode {
	case 0, FallocKeepSize:
		// No space is reserved (checkSpace); only the size grows.
		if mode == 0 && off+n > size {
			r, err = rope.Truncate(t, r, off+n)
		}
	case FallocPunchHole | FallocKeepSize:
		if end := min(off+n, size); off < end {
			r, err = rope.Put(t, r, off, end-off, rope.HoleOf(t, end-off))
		}
	case FallocZeroRange, FallocZeroRange | FallocKeepSize:
		end := off + n
		if mode&FallocKeepSize != 0 {
			end = min(end, size)
		}
		if off < end {
			r, err = rope.Put(t, r, off, end-off, rope.HoleOf(t, end-off))
		}
	case FallocInsertRange:
		if off >= size {
			return errorf(op, f.name, syscall.EINVAL, errors.New("insert range starts at or past the end of file"))
		}
		if n > rope.MaxSize-size {
			return errorf(op, f.name, syscall.EFBIG, nil)
		}
		r, err = rope.Put(t, r, off, 0, rope.HoleOf(t, n))
	case FallocCollapseRange:
		if off+n >= size {
			return errorf(op, f.name, syscall.EINVAL, errors.New("collapse range reaches the end of file"))
		}
		r, err = rope.Put(t, r, off, n, rope.Rope{})
	default:
		return errorf(op, f.name, syscall.EOPNOTSUPP, nil)
	}
	if err != nil {
		return wrapIO(op, f.name, err)
	}
	x.ent.Data = r
	x.recountPending()
	x.stamp(true)
	return nil
}

// checkSpace fails with ENOSPC when the range [off, off+n) of r holds
// more bytes without data (holes, and past the end: what ext4 and XFS
// would allocate) than the store can take (store.StatFSer; a store that
// cannot tell is not asked). That is all an allocating fallocate promises
// on a copy-on-write store: it reserves nothing, since the range stays a
// hole and any later write into it needs new space whatever fallocate did
// (docs/design.md, "fallocate and free space").
func (f *File) checkSpace(op string, r rope.Rope, off, n int64) error {
	sf, ok := f.v.f.st.(store.StatFSer)
	if !ok {
		return nil
	}
	need, err := unbacked(f.v.f.ropes, r, off, n)
	if err != nil || need == 0 {
		return wrapIO(op, f.name, err)
	}
	space, err := sf.StatFS(f.v.f.ioCtx())
	if err != nil {
		return wrapIO(op, f.name, err)
	}
	free := space.Avail()
	if need > free {
		return errorf(op, f.name, syscall.ENOSPC, fmt.Errorf("the range has %d bytes without data to allocate and the store has %d free", need, free))
	}
	return nil
}

// unbacked returns how many bytes of [off, off+n) of r hold no data: those
// in holes, and those past r's end.
func unbacked(t *rope.Tree, r rope.Rope, off, n int64) (int64, error) {
	end := off + n
	var none int64
	if end > r.Len {
		none = end - max(off, r.Len)
	}
	if off >= r.Len {
		return none, nil
	}
	it := t.Seek(r, off)
	for e, start, ok := it.Next(); ok && start < end; e, start, ok = it.Next() {
		if e.Kind == rope.Hole {
			none += min(start+e.N, end) - max(start, off)
		}
	}
	return none, it.Err()
}
