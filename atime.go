package cowfs

import (
	"fmt"
	"math"

	"github.com/cowfs/cowfs/internal/dirtree"
)

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

// accessed updates x's access time for a read of its content or, for a
// directory, of its entries, as Options.Atime says: with Relatime when the
// access time is not after the modification or change time or is a day
// old, as Linux's relatime_need_update, and never to the time it already
// holds. The update marks x for writing back but leaves the volume clean:
// it waits for the next commit made for another reason (v.lazy). A
// snapshot never changes.
func (x *inode) accessed() {
	now := x.v.f.now()
	if !x.atimeDue(now) {
		return
	}
	x.ent.Atime = now
	x.v.lazy = true
	x.mark()
}

// atimeDue reports whether a read at now updates x's access time (see
// accessed).
func (x *inode) atimeDue(now dirtree.Time) bool {
	v := x.v
	mode := v.f.opt.Atime
	e := &x.ent
	if v.readOnly || mode == Noatime || x.removed || e.Atime == now {
		return false
	}
	const day = 24 * 60 * 60
	return mode == Strictatime || e.Mtime.Compare(e.Atime) >= 0 || e.Ctime.Compare(e.Atime) >= 0 ||
		now.Sec >= math.MinInt64+day && e.Atime.Sec <= now.Sec-day
}

// AtimeDue reports whether a read now would update the file's access time
// (Options.Atime). The mount drops the kernel's cached pages of a file
// opened for reading while it is (and no other open of it writes), so
// that the first read reaches cowfs.
func (f *File) AtimeDue() bool {
	f.v.f.mu.Lock()
	defer f.v.f.mu.Unlock()
	return !f.closed && f.x.atimeDue(f.v.f.now())
}
