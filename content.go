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

// flushBuf moves the write buffer into the rope as a pending extent. When
// moving fails (a node of the rope could not be loaded) the buffer stays as
// it was, so nothing written is lost.
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
	return nil
}

// pendingRun is a run of adjacent pending extents of a file when it was
// taken: its place and its extents, which hold its bytes and by which
// applyRun checks that the run is still there (a pending extent's bytes
// never change, and pending extents never merge).
type pendingRun struct {
	start, end int64
	atEOF      bool // it ended the file
	exts       []rope.Extent
}

// pendingRuns returns x's runs of pending bytes.
func (x *inode) pendingRuns() ([]pendingRun, error) {
	var runs []pendingRun
	err := x.v.f.ropes.Marked(x.ent.Data, func(e rope.Extent, start int64) error {
		if n := len(runs); n > 0 && runs[n-1].end == start {
			runs[n-1].end += e.N
			runs[n-1].exts = append(runs[n-1].exts, e)
		} else {
			runs = append(runs, pendingRun{start: start, end: start + e.N, exts: []rope.Extent{e}})
		}
		return nil
	})
	for i := range runs {
		runs[i].atEOF = runs[i].end == x.ent.Data.Len
	}
	return runs, err
}

// cut turns run r into stored data: a run shorter than rope.InlineMax
// stays inline in the rope's leaves, a longer one is cut into
// content-defined chunks, each a blob, so identical bytes written twice are
// stored once. Unless final, a run that ended the file keeps its tail after
// the last content-defined cut pending, so that later appends chunk
// exactly as if written at once. It touches no inode, so it may run
// without the FS lock; it reports every blob it stored to stored, even
// when it fails.
func cut(ctx context.Context, st store.Store, r pendingRun, final bool, stored func([]store.ID)) ([]rope.Extent, error) {
	buf := make([]byte, 0, r.end-r.start)
	for _, e := range r.exts {
		buf = append(buf, e.Bytes[:e.N]...)
	}
	if len(buf) < rope.InlineMax {
		return []rope.Extent{{Kind: rope.Inline, N: int64(len(buf)), Bytes: buf}}, nil
	}
	var sizes []int64
	var tail []byte
	p := newPutter(ctx, st)
	for len(buf) > 0 {
		n, found := cdc.Cut(buf)
		if !found && !final && r.atEOF {
			// A copy: a slice of buf would keep all of buf (the whole
			// run) alive as long as the tail waits.
			tail = bytes.Clone(buf)
			break
		}
		p.add(buf[:n])
		sizes = append(sizes, int64(n))
		buf = buf[n:]
	}
	ids, err := p.wait()
	stored(ids)
	if err != nil {
		return nil, err
	}
	var exts []rope.Extent
	for i, id := range ids {
		exts = append(exts, rope.Extent{Kind: rope.Data, Blob: id, N: sizes[i]})
	}
	if tail != nil {
		exts = append(exts, rope.Extent{Kind: rope.Pending, N: int64(len(tail)), Bytes: tail})
	}
	return exts, nil
}

// markFresh records blobs just stored as fresh, so that a commit deletes
// them if nothing counts them.
func (f *FS) markFresh(ids []store.ID) {
	for _, id := range ids {
		if !id.IsZero() {
			f.fresh[id] = true
		}
	}
}

// applyRun replaces run r of x with exts, if r is still there: the same
// pending extents at the same places (else it does nothing).
func (x *inode) applyRun(r pendingRun, exts []rope.Extent) error {
	t := x.v.f.ropes
	if r.end > x.ent.Data.Len {
		return nil
	}
	same := true
	pos := r.start
	it := t.Seek(x.ent.Data, r.start)
	for i := 0; same && i < len(r.exts); i++ {
		e, start, ok := it.Next()
		if !ok {
			return it.Err()
		}
		want := r.exts[i]
		same = start == pos && e.Kind == rope.Pending && e.N == want.N && &e.Bytes[0] == &want.Bytes[0]
		pos += e.N
	}
	if !same {
		return nil
	}
	nr, err := t.Replace(x.ent.Data, r.start, r.end, rope.Of(t, exts...))
	if err != nil {
		return err
	}
	x.ent.Data = nr
	return nil
}

// flush turns x's pending extents into stored data (cut), under the FS
// lock.
func (x *inode) flush(final bool) error {
	if err := x.flushBuf(); err != nil {
		return err
	}
	if x.pending == 0 {
		return nil
	}
	f := x.v.f
	runs, err := x.pendingRuns()
	if err != nil {
		return err
	}
	defer x.recountPending()
	for _, r := range runs {
		exts, err := cut(f.ioCtx(), f.st, r, final, f.markFresh)
		if err != nil {
			return err
		}
		if err := x.applyRun(r, exts); err != nil {
			return err
		}
	}
	return nil
}

// flushOutside is flush(false) for a writer whose file holds
// Options.FlushBytes pending, run with the FS lock released while it cuts
// and stores (the caller holds the lock, and holds it again when
// flushOutside returns, whatever happened meanwhile: the caller checks its
// file again). A second flush of the file waits for the first, which
// holds back a writer that outruns its Puts. After the Puts, a run is
// replaced only if it is still there (applyRun); a run changed meanwhile
// keeps its pending bytes, and the blobs cut from them are fresh. A
// commit meanwhile waits for the Puts and deletes none of their blobs
// (putJob).
func (x *inode) flushOutside(ctx context.Context) error {
	f := x.v.f
	for x.flushing != nil {
		wait := x.flushing
		f.unlockOp()
		var err error
		select {
		case <-wait:
		case <-ctx.Done():
			err = ctx.Err()
		}
		f.mu.LockAs(ctx)
		if err != nil {
			return err
		}
	}
	if err := x.flushBuf(); err != nil {
		return err
	}
	if x.pending < f.opt.FlushBytes {
		return nil // another flush did it
	}
	runs, err := x.pendingRuns()
	if err != nil {
		return err
	}
	done := make(chan struct{})
	x.flushing = done
	job := &putJob{done: make(chan struct{})}
	f.putJobs[job] = true
	f.unlockOp()
	var cuts [][]rope.Extent
	for _, r := range runs {
		var exts []rope.Extent
		if exts, err = cut(ctx, f.st, r, false, job.stored); err != nil {
			break
		}
		cuts = append(cuts, exts)
	}
	close(job.done)
	f.mu.LockAs(ctx)
	delete(f.putJobs, job)
	f.markFresh(job.ids)
	x.flushing = nil
	close(done)
	defer x.recountPending()
	if err != nil {
		return err
	}
	for i, exts := range cuts {
		if err := x.applyRun(runs[i], exts); err != nil {
			return err
		}
	}
	return nil
}

// putJob is a flush's Puts made without the FS lock: done is closed when
// they have all returned, and ids holds the blobs they stored. A commit
// waits for every job in FS.putJobs and deletes none of those blobs: a
// Put of bytes already stored returns the stored blob, which the commit
// could otherwise delete at count zero just before the flush points a
// rope at it.
type putJob struct {
	done chan struct{}
	mu   sync.Mutex
	ids  []store.ID
}

// putJobBlobs waits for the Puts of every flush running outside the lock
// (or for ctx) and returns the blobs they stored, which nothing counts yet
// and which must not be deleted. The caller holds the FS lock, so no job
// starts or ends meanwhile.
func (f *FS) putJobBlobs(ctx context.Context) (map[store.ID]bool, error) {
	var ids map[store.ID]bool
	for j := range f.putJobs {
		select {
		case <-j.done:
		case <-ctx.Done():
			return nil, wrapIO("commit", "", ctx.Err())
		}
		if ids == nil {
			ids = map[store.ID]bool{}
		}
		for _, id := range j.ids {
			ids[id] = true
		}
	}
	return ids, nil
}

// stored records blobs the job stored.
func (j *putJob) stored(ids []store.ID) {
	j.mu.Lock()
	j.ids = append(j.ids, ids...)
	j.mu.Unlock()
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
