package cowfs

import (
	"context"

	"github.com/cowfs/cowfs/store"
)

// GCReport says what a garbage collection did.
type GCReport struct {
	Commits    int   // commits made to work through the waiting list
	Blobs      int64 // blobs deleted
	Bytes      int64 // bytes of blobs deleted
	Compacted  bool  // the store compacted its files
	BlobsAfter int64 // blobs the store holds now
	BytesAfter int64
}

// GC commits, works through every blob waiting for deletion (see
// Options.ReleaseBudget), then lets the store compact its files if it can.
// progress, if set, is called after each commit with the blobs still
// waiting.
func (f *FS) GC(ctx context.Context, progress func(waiting int64)) (GCReport, error) {
	var rep GCReport
	before, err := f.st.Usage(ctx)
	if err != nil {
		return rep, wrapIO("gc", "", err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := f.CommitContext(ctx); err != nil {
			return rep, err
		}
		rep.Commits++
		waiting := f.Zombies()
		if progress != nil {
			progress(waiting)
		}
		if waiting == 0 {
			break
		}
	}
	if c, ok := f.st.(store.Compacter); ok {
		// Compaction moves live blobs; the store keeps reads that race a
		// move correct, so readers go on meanwhile.
		if err := c.Compact(); err != nil {
			return rep, wrapIO("gc", "", err)
		}
		rep.Compacted = true
	}
	after, err := f.st.Usage(ctx)
	if err != nil {
		return rep, wrapIO("gc", "", err)
	}
	rep.Blobs, rep.Bytes = before.Blobs-after.Blobs, before.Bytes-after.Bytes
	rep.BlobsAfter, rep.BytesAfter = after.Blobs, after.Bytes
	return rep, nil
}
