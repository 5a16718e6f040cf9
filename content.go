package cowfs

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"syscall"

	"github.com/cowfs/cowfs/internal/cdc"
	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
)

// wbufMax bounds one file's sequential write buffer.
const wbufMax = 1 << 20

// bufferWrite adds p at off to x's write buffer, pushing the buffer into the
// rope when the write is not sequential or the buffer is full.
func (x *inode) bufferWrite(p []byte, off int64) error {
	end := x.wbufOff + int64(len(x.wbuf))
	if x.wbuf != nil && off >= x.wbufOff && off <= end && off+int64(len(p))-x.wbufOff <= wbufMax {
		at := int(off - x.wbufOff)
		if need := at + len(p); need > len(x.wbuf) {
			x.wbuf = append(x.wbuf, make([]byte, need-len(x.wbuf))...)
		}
		copy(x.wbuf[at:], p)
		return nil
	}
	if err := x.flushBuf(); err != nil {
		return err
	}
	x.wbuf = append(make([]byte, 0, min(max(len(p), 64<<10), wbufMax)), p...)
	x.wbufOff = off
	return nil
}

// flushBuf moves the write buffer into the rope as a pending extent, and cuts
// pending bytes into blobs once there are many. When moving fails (a node
// of the rope could not be loaded) the buffer stays as it was, so nothing
// written is lost; when cutting fails the bytes stay pending in the rope.
func (x *inode) flushBuf() error {
	if x.wbuf == nil {
		return nil
	}
	buf, off := x.wbuf, x.wbufOff
	t := x.v.f.ropes
	r, err := rope.Put(t, x.ent.Data, off, int64(len(buf)), rope.Of(t, rope.Extent{Kind: rope.Pending, N: int64(len(buf)), Bytes: buf}))
	if err != nil {
		return err
	}
	x.wbuf = nil
	x.ent.Data = r
	x.pending += int64(len(buf))
	if x.pending >= x.v.f.opt.FlushBytes {
		return x.flush(false)
	}
	return nil
}

// flush turns pending extents into stored data: runs shorter than
// rope.InlineMax stay inline in the rope's leaves, longer ones are cut into
// content-defined chunks, each a blob, so identical bytes written twice are
// stored once. Unless final, a run ending at end of file keeps its tail after
// the last content-defined cut pending, so that later appends chunk exactly
// as if written at once.
func (x *inode) flush(final bool) error {
	if err := x.flushBuf(); err != nil {
		return err
	}
	if x.pending == 0 {
		return nil
	}
	f := x.v.f
	t := f.ropes
	type span struct{ start, end int64 }
	var runs []span
	err := t.Marked(x.ent.Data, func(e rope.Extent, start int64) error {
		if n := len(runs); n > 0 && runs[n-1].end == start {
			runs[n-1].end += e.N
		} else {
			runs = append(runs, span{start, start + e.N})
		}
		return nil
	})
	if err != nil {
		return err
	}
	var left int64
	for _, s := range runs {
		buf := make([]byte, s.end-s.start)
		if _, err := rope.ReadAt(t, x.ent.Data, blobSource{f, f.ioCtx()}, buf, s.start); err != nil {
			return err
		}
		var exts []rope.Extent
		if len(buf) < rope.InlineMax {
			exts = append(exts, rope.Extent{Kind: rope.Inline, N: int64(len(buf)), Bytes: buf})
			buf = nil
		}
		var sizes []int64
		var tail []byte
		p := newPutter(f.ioCtx(), f.st)
		for len(buf) > 0 {
			n, found := cdc.Cut(buf)
			if !found && !final && s.end == x.ent.Data.Len {
				// A copy: a slice of buf would keep all of buf (the
				// whole run) alive as long as the tail waits.
				tail = bytes.Clone(buf)
				break
			}
			p.add(buf[:n])
			sizes = append(sizes, int64(n))
			buf = buf[n:]
		}
		ids, err := p.wait()
		for _, id := range ids {
			if !id.IsZero() {
				f.fresh[id] = true // so that a commit sweeps it if nothing counts it
			}
		}
		if err != nil {
			return err
		}
		for i, id := range ids {
			exts = append(exts, rope.Extent{Kind: rope.Data, Blob: id, N: sizes[i]})
		}
		if tail != nil {
			exts = append(exts, rope.Extent{Kind: rope.Pending, N: int64(len(tail)), Bytes: tail})
			left += int64(len(tail))
		}
		r, err := t.Replace(x.ent.Data, s.start, s.end, rope.Of(t, exts...))
		if err != nil {
			return err
		}
		x.ent.Data = r
	}
	x.pending = left
	return nil
}

// putWorkers is how many Puts a putter keeps in flight: enough to keep
// both cores hashing and a store with a few milliseconds per call busy.
const putWorkers = 16

// A putter stores blobs on up to putWorkers goroutines while its caller goes on
// (cutting the next chunk): add queues a blob, wait returns every ID in
// the order added. On an error it stops starting Puts and wait returns
// the first error with the IDs of the blobs stored all the same (zero
// for the others): the caller must record them as fresh, or they would
// stay stored, counted by nothing.
type putter struct {
	st      store.Store
	ctx     context.Context
	cancel  context.CancelCauseFunc
	next    chan int
	wg      sync.WaitGroup
	mu      sync.Mutex
	blobs   [][]byte
	ids     []store.ID
	workers int // goroutines started, at most putWorkers: one per add until then
}

// newPutter starts a putter on st with ctx.
func newPutter(ctx context.Context, st store.Store) *putter {
	p := &putter{st: st, next: make(chan int, putWorkers)}
	p.ctx, p.cancel = context.WithCancelCause(ctx)
	return p
}

func (p *putter) work() {
	for i := range p.next {
		p.mu.Lock()
		b := p.blobs[i]
		p.mu.Unlock()
		id, err := p.st.Put(p.ctx, b)
		if err != nil {
			p.cancel(err)
			continue
		}
		p.mu.Lock()
		p.ids[i] = id
		p.mu.Unlock()
	}
}

// add queues b, which must not change until wait returns; it blocks while
// putWorkers blobs wait to start (back-pressure), and does nothing after
// an error.
func (p *putter) add(b []byte) {
	if p.ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	p.blobs = append(p.blobs, b)
	p.ids = append(p.ids, store.ID{})
	i := len(p.blobs) - 1
	p.mu.Unlock()
	if p.workers < putWorkers {
		p.workers++
		p.wg.Go(p.work)
	}
	p.next <- i
}

// wait waits for every Put and returns the IDs, in the order added.
func (p *putter) wait() ([]store.ID, error) {
	close(p.next)
	p.wg.Wait()
	err := context.Cause(p.ctx)
	p.cancel(nil)
	return p.ids, err
}

// truncate sets x's size.
func (x *inode) truncate(size int64) error {
	if x.isDir() {
		return errorf("truncate", "", syscall.EISDIR, nil)
	}
	if x.ent.Type() != dirtree.TypeReg {
		return errorf("truncate", "", syscall.EINVAL, nil)
	}
	if size < 0 {
		return errorf("truncate", "", syscall.EINVAL, errors.New("negative size"))
	}
	if size > rope.MaxSize {
		return errorf("truncate", "", syscall.EFBIG, nil)
	}
	if err := x.flushBuf(); err != nil {
		return err
	}
	r, err := rope.Truncate(x.v.f.ropes, x.ent.Data, size)
	if err != nil {
		return err
	}
	x.ent.Data = r
	x.recountPending()
	x.ent.Mtime = x.v.f.now()
	return nil
}

// recountPending recomputes x.pending after an operation that may have
// dropped pending bytes, visiting only subtrees that hold some.
func (x *inode) recountPending() {
	var n int64
	x.v.f.ropes.Marked(x.ent.Data, func(e rope.Extent, _ int64) error { n += e.N; return nil })
	x.pending = n
}
