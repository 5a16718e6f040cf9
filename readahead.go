package cowfs

import (
	"context"
	"fmt"
	"sync"

	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
)

// Read-ahead: a File read sequentially (each read starting where the last
// ended, or within raSlack of it) fetches the blobs of the next window in the background, the
// window doubling from raMin to raMax as the reads go on; any other read
// resets it, so a random read fetches only what it reads. Fetches go
// through FS.blob, so a read that needs a blob being fetched waits for
// that fetch instead of making its own.
const (
	raMin        = 512 << 10
	raMax        = 4 << 20
	fetchWorkers = 128 // background fetches in flight, per FS
	// raSlack is how far from where the last read ended a read may start
	// and still count as sequential: the kernel sends a FUSE file's reads
	// a few at a time, and they may arrive out of order.
	raSlack = 256 << 10
)

// readAhead is a File's sequential-read state.
type readAhead struct {
	mu     sync.Mutex
	next   int64 // where a sequential read would start
	done   int64 // how far blobs were asked for
	window int64 // 0: not sequential
}

// fetches is the FS's store reads in flight and its background fetchers.
type fetches struct {
	mu      sync.Mutex
	running map[fetchKey]*fetch
	slots   chan struct{} // a token per background fetch in flight
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup // background fetches; Add under mu while !closed
	closed  bool
}

// fetchKey names a read: of a data blob, or of a node (decoded).
type fetchKey struct {
	id   store.ID
	node bool
}

// fetch is one read of a blob, which every reader of the blob waits for.
type fetch struct {
	done chan struct{}
	v    any
	err  error
}

func (fs *fetches) init() {
	fs.running = map[fetchKey]*fetch{}
	fs.slots = make(chan struct{}, fetchWorkers)
	fs.ctx, fs.stop = context.WithCancel(context.Background())
}

// close stops the background fetches and waits for them; none starts
// after.
func (fs *fetches) close() {
	fs.mu.Lock()
	fs.closed = true
	fs.mu.Unlock()
	fs.stop()
	fs.wg.Wait()
}

// once runs read (which caches what it reads) once however many ask for
// k at once: a caller that finds a read of k running waits for it, or for
// its own ctx, and runs its own if that one failed (it may have been
// another caller's, cancelled).
func (fs *fetches) once(ctx context.Context, k fetchKey, read func() (any, error)) (any, error) {
	fs.mu.Lock()
	if fl := fs.running[k]; fl != nil {
		fs.mu.Unlock()
		select {
		case <-fl.done:
			if fl.err == nil {
				return fl.v, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return read()
	}
	fl := &fetch{done: make(chan struct{})}
	fs.running[k] = fl
	fs.mu.Unlock()
	fl.v, fl.err = read()
	fs.mu.Lock()
	delete(fs.running, k)
	fs.mu.Unlock()
	close(fl.done)
	return fl.v, fl.err
}

// blob returns a data blob's bytes, through the data cache, reading the
// store with ctx, once however many ask at once (fetches.once).
func (f *FS) blob(ctx context.Context, id store.ID) ([]byte, error) {
	if b, ok := f.data.Get(id); ok {
		return b, nil
	}
	v, err := f.fetch.once(ctx, fetchKey{id, false}, func() (any, error) {
		b, err := f.st.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		f.data.Add(id, b, int64(len(b)))
		return b, nil
	})
	if err != nil {
		return nil, fmt.Errorf("data blob %s: %w", id.Short(), err)
	}
	return v.([]byte), nil
}

// prefetch fetches blob id in the background unless it is cached or being
// fetched; errors are dropped (the read that needs the blob reports its
// own).
func (f *FS) prefetch(id store.ID) {
	fs := &f.fetch
	if f.data.Contains(id) {
		return
	}
	fs.mu.Lock()
	if fs.closed || fs.running[fetchKey{id, false}] != nil {
		fs.mu.Unlock()
		return
	}
	fs.wg.Add(1)
	fs.mu.Unlock()
	go func() {
		defer fs.wg.Done()
		select {
		case fs.slots <- struct{}{}:
		case <-fs.ctx.Done():
			return
		}
		defer func() { <-fs.slots }()
		f.blob(fs.ctx, id)
	}()
}

// readAhead notes a read of n bytes at off of r through fl and, if the
// reads are sequential, starts fetching the blobs of the window past it.
// The caller holds FS.readMu shared, so r's nodes stay stored.
func (fl *File) readAhead(t *rope.Tree, r rope.Rope, off, n int64) {
	ra := &fl.ra
	ra.mu.Lock()
	seq := off == ra.next || ra.window > 0 && off >= ra.next-raSlack && off <= ra.next+raSlack
	if !seq {
		ra.window, ra.done = 0, 0
		ra.next = off + n
		ra.mu.Unlock()
		return
	}
	ra.next = max(ra.next, off+n)
	ra.window = min(max(2*ra.window, raMin), raMax)
	from := max(ra.done, off+n)
	to := off + n + ra.window
	if from >= to || from >= r.Len {
		ra.mu.Unlock()
		return
	}
	ra.done = to
	ra.mu.Unlock()
	f := fl.v.f
	rope.Blobs(t, r, from, to-from, func(id store.ID) bool {
		f.prefetch(id)
		return true
	})
}
