package cowfs

import (
	"errors"
	"syscall"

	"github.com/cowfs/cowfs/store"
)

// Volume is a tree of directories and files: a writable volume or a read-only
// snapshot.
type Volume struct {
	f         *FS
	name      string // volume name, or "VOLUME@SNAPSHOT"
	rootName  string // its root in the store
	readOnly  bool
	meta      volMeta // meta.root is refreshed from root at commit
	root      *inode
	committed store.ID
	dirty     bool // changed since the last commit
	// lazy: access times changed since the last commit, which wait for a
	// commit made for another reason (Options.Atime)
	lazy   bool
	closed bool

	links      map[uint64]*inode // loaded hard-linked inodes
	orphans    map[*inode]bool   // unlinked while open
	dirtySide  map[*inode]bool   // link-table and orphan inodes to write back
	dropKeys   []sideKey         // side-table entries to delete at commit
	scopeCache map[[2]uint64]uint64
	opens      int // open Files
	loaded     int // inodes loaded since the last eviction
}

// newVolume returns the in-memory Volume of volume node m, bound to root
// rootName; only its root inode is loaded.
func newVolume(f *FS, name, rootName string, readOnly bool, m volMeta) *Volume {
	v := &Volume{f: f, name: name, rootName: rootName, readOnly: readOnly, meta: m,
		links: map[uint64]*inode{}, orphans: map[*inode]bool{}, dirtySide: map[*inode]bool{},
		scopeCache: map[[2]uint64]uint64{}}
	v.root = &inode{v: v, ent: m.root}
	return v
}

// Name returns the volume's name ("VOLUME@SNAPSHOT" for a snapshot).
func (v *Volume) Name() string { return v.name }

// ReadOnly reports whether v is a snapshot.
func (v *Volume) ReadOnly() bool { return v.readOnly }

// busy reports whether files of v are open.
func (v *Volume) busy() bool { return v.opens > 0 }

// writable fails on a read-only snapshot.
func (v *Volume) writable(op, p string) error {
	if v.readOnly {
		return errorf(op, p, syscall.EROFS, errors.New("snapshots are read-only"))
	}
	return nil
}
