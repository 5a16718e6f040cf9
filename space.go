package cowfs

import (
	"context"
	"fmt"
	"syscall"

	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
)

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
	space, err := sf.StatFS(context.Background())
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
