package cowfs

import (
	"log/slog"
	"math"
	"time"

	"github.com/cowfs/cowfs/internal/dirtree"
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
