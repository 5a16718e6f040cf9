// Package control is the control namespace both frontends (fusefs, ninep)
// serve at the root of a volume: the hidden directory .cowfs, holding
//
//	ctl         the control file (package ctl): write one command line,
//	            then read its reply
//	snapshots/  the volume's snapshots, each a read-only directory NAME/
//	files/      the file snapshots ctl's snapshot-file serves, each a
//	            read-only file N
//
// It holds what the namespace is, once: its names, the attributes and
// numbers of its nodes, the numbers of the files shown below it, the rules
// a frontend applies at the served root, the volume's snapshots and served
// views, and an open control file. A frontend only translates these to its
// protocol (go-fuse nodes, 9P fids and qids).
//
// # Rules
//
//   - .cowfs is an entry of the served root only (the volume a mount or a
//     9P attach serves, not a snapshot under .cowfs/snapshots): found by
//     lookup or walk, left out of the root's listing, like ZFS's .zfs.
//     Reserved reports it.
//   - Its name is reserved there: making an entry of that name fails with
//     ErrMake (EEXIST), removing it or renaming anything to or from it with
//     ErrRemove (EBUSY), whether or not the volume itself holds an entry of
//     that name (one made through the Go API stays hidden).
//   - Everything below it is read-only: making or removing an entry there
//     fails with ErrReadOnly (EROFS), but removing files/N, which
//     releases its view; a rename into, out of or within .cowfs fails with
//     ErrMove (EXDEV), as between two volumes. Snapshots refuse every
//     change (EROFS), and so do served views. The control file takes a change of its size (a shell's
//     "> ctl" truncates) and ignores it; any other change of an attribute
//     of a node of .cowfs fails with EPERM (ErrAttr). The nodes have no
//     extended attributes: reading one fails with ENODATA, the list is
//     empty, and setting or removing one is a change of an attribute
//     (EPERM; EROFS for a view).
//   - The directories are root's, mode 0555; ctl is mode 0600, owned by the
//     user the server lets run commands (New), because commands run with
//     the server's rights. A served view has the owner, permission bits
//     (less the write bits) and times of the file it was taken of. The
//     fixed nodes carry the times of the served root, so they are the same
//     through either frontend and across remounts.
//
// # Numbers
//
// A frontend shows one number space (inode numbers; 9P qid paths). The
// volume's own numbers stay below FirstIno: cowfs numbers a live volume's
// inodes with a 24-bit scope prefix that would need 2^23 clones to reach
// it. From FirstIno come the four fixed nodes, then, from AllocBase on, the
// numbers Numbers hands out: one per inode of a snapshot reached under
// snapshots/ (a snapshot shares its inode numbers with its volume, and one
// server must not show a number twice) and one per served view. They hold
// for the life of one server: file handles of them do not outlive it.
package control

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"syscall"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/inomap"
)

// Names of the namespace.
const (
	DirName       = ".cowfs"                // the control directory, at the served root
	CtlName       = "ctl"                   // the control file, in DirName
	SnapshotsName = "snapshots"             // the snapshots' directory, in DirName
	FilesName     = "files"                 // the served views' directory, in DirName
	CtlPath       = DirName + "/" + CtlName // the control file from the served root
)

// What requests on the namespace fail with (see the package rules).
const (
	ErrMake     = syscall.EEXIST // making an entry named DirName at the served root
	ErrRemove   = syscall.EBUSY  // removing or renaming DirName at the served root
	ErrReadOnly = syscall.EROFS  // making or removing an entry below DirName; changing a served view
	ErrMove     = syscall.EXDEV  // a rename into, out of or within DirName
	ErrAttr     = syscall.EPERM  // changing an attribute of a fixed node
)

// Reserved reports whether entry name of a directory is the control
// directory: name DirName in the served root (servedRoot). Such an entry is
// left out of the root's listing, looked up as the control directory, and
// never made, removed or renamed (ErrMake, ErrRemove).
func Reserved(servedRoot bool, name string) bool { return servedRoot && name == DirName }

// Node is a fixed node of the namespace; the zero Node is none of them.
type Node uint8

// The fixed nodes.
const (
	Root      Node = iota + 1 // DirName
	Ctl                       // DirName/ctl
	Snapshots                 // DirName/snapshots
	Files                     // DirName/files
)

// Numbers of the namespace (see the package documentation).
const (
	RootIno      = AllocBase - 1 // DirName
	CtlIno       = AllocBase - 2 // DirName/ctl
	SnapshotsIno = AllocBase - 3 // DirName/snapshots
	FilesIno     = AllocBase - 4 // DirName/files
	FirstIno     = FilesIno      // the lowest number that is not the volume's own
	AllocBase    = 3 << 62       // Numbers hands out the numbers above it
)

// nodes describes the fixed nodes, by Node.
var nodes = [...]struct {
	name, path string
	ino        uint64
	mode       uint32
}{
	Root:      {DirName, DirName, RootIno, syscall.S_IFDIR | 0o555},
	Ctl:       {CtlName, CtlPath, CtlIno, syscall.S_IFREG | 0o600},
	Snapshots: {SnapshotsName, DirName + "/" + SnapshotsName, SnapshotsIno, syscall.S_IFDIR | 0o555},
	Files:     {FilesName, DirName + "/" + FilesName, FilesIno, syscall.S_IFDIR | 0o555},
}

// Entries lists the control directory, by name.
var Entries = []Node{Ctl, Files, Snapshots}

// Lookup returns the entry name of the control directory; false if there
// is none (ENOENT).
func Lookup(name string) (Node, bool) {
	for _, n := range Entries {
		if n.Name() == name {
			return n, true
		}
	}
	return 0, false
}

// Name is n's name in its directory.
func (n Node) Name() string { return nodes[n].name }

// Path is n's path from the served root.
func (n Node) Path() string { return nodes[n].path }

// Ino is n's number.
func (n Node) Ino() uint64 { return nodes[n].ino }

// Mode is n's type and permission bits.
func (n Node) Mode() uint32 { return nodes[n].mode }

// Parent is the directory holding n: Root, or 0 (the served root) for Root.
func (n Node) Parent() Node {
	if n == Root {
		return 0
	}
	return Root
}

// Numbers hands out a server's numbers from AllocBase on (see the package
// documentation). One server (a mount; a 9P server of many volumes, which
// shows them in one qid space) has one. It is safe for concurrent use.
type Numbers struct{ m *inomap.Map[fileKey] }

// fileKey is an inode of an opened snapshot.
type fileKey struct{ snap, ino uint64 }

// NewNumbers returns the numbers of a new server.
func NewNumbers() *Numbers { return &Numbers{inomap.New[fileKey](AllocBase)} }

// Namespace is the control namespace of one volume a server serves: the
// snapshots opened under snapshots/ and the views served in files/. It is
// safe for concurrent use.
type Namespace struct {
	vol            *cowfs.Volume
	nums           *Numbers
	ctlUID, ctlGID uint32
	mu             sync.Mutex
	snaps          map[string]*Snapshot // opened snapshots, by name
	views          map[uint64]*View     // served views, by N
	lastView       uint64               // the last N handed out
}

// New returns the namespace of vol, served with the numbers nums; the
// control file belongs to ctlUID and ctlGID, the user the server lets run
// commands.
func New(vol *cowfs.Volume, nums *Numbers, ctlUID, ctlGID uint32) *Namespace {
	return &Namespace{vol: vol, nums: nums, ctlUID: ctlUID, ctlGID: ctlGID, snaps: map[string]*Snapshot{}, views: map[uint64]*View{}}
}

// Volume is the served volume.
func (ns *Namespace) Volume() *cowfs.Volume { return ns.vol }

// Stat describes fixed node n (see the package rules): its number, mode and
// owner, no size, and the times of the served root.
func (ns *Namespace) Stat(n Node) (*cowfs.Stat, error) {
	fi, err := ns.vol.Lstat(".")
	if err != nil {
		return nil, err
	}
	root := fi.Stat()
	st := &cowfs.Stat{Ino: n.Ino(), Mode: n.Mode(), Nlink: 2,
		Atime: root.Atime, Mtime: root.Mtime, Ctime: root.Ctime, Btime: root.Btime}
	if n == Ctl {
		st.Nlink, st.UID, st.GID = 1, ns.ctlUID, ns.ctlGID
	}
	return st, nil
}

// Snapshot is a snapshot of the served volume, opened under snapshots/.
type Snapshot struct {
	name string
	vol  *cowfs.Volume
	id   uint64 // tells apart two snapshots of one name made at different times
	nums *Numbers
}

// Snapshot returns the served volume's snapshot name, opening it on first
// use. A snapshot deleted and made again under its name is another one,
// whose files get numbers of their own: cowfs returns the same Volume for
// a snapshot for as long as it exists, and another one once it was made
// again.
func (ns *Namespace) Snapshot(name string) (*Snapshot, error) {
	v, err := ns.vol.OpenSnapshot(name)
	if err != nil {
		return nil, err
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if s, ok := ns.snaps[name]; ok && s.vol == v {
		return s, nil
	}
	s := &Snapshot{name: name, vol: v, id: ns.nums.m.Next(), nums: ns.nums}
	ns.snaps[name] = s
	return s, nil
}

// Forget drops the opened snapshots that no longer exist, and returns their
// names, for a frontend to drop what its client caches of them; a frontend
// calls it after a snapshot was deleted (ctl.Server.SnapshotsChanged).
func (ns *Namespace) Forget() []string {
	list, err := ns.vol.Snapshots()
	if err != nil {
		return nil
	}
	live := map[string]bool{}
	for _, s := range list {
		live[s.Name] = true
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	var gone []string
	for name := range ns.snaps {
		if !live[name] {
			gone = append(gone, name)
			delete(ns.snaps, name)
		}
	}
	sort.Strings(gone)
	return gone
}

// Snapshots lists snapshots/: the served volume's snapshots, by name,
// each opened (Snapshot); one deleted meanwhile is left out.
func (ns *Namespace) Snapshots() ([]*Snapshot, error) {
	list, err := ns.vol.Snapshots()
	if err != nil {
		return nil, err
	}
	var out []*Snapshot
	for _, info := range list {
		if s, err := ns.Snapshot(info.Name); err == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// Name is the snapshot's name.
func (s *Snapshot) Name() string { return s.name }

// Volume is the snapshot, read-only.
func (s *Snapshot) Volume() *cowfs.Volume { return s.vol }

// Ino is the number the snapshot's inode ino shows as, handed out the
// first time.
func (s *Snapshot) Ino(ino uint64) uint64 { return s.nums.m.Get(fileKey{s.id, ino}) }

// Root describes the snapshot's root directory, numbered (Mapped).
func (s *Snapshot) Root() (*cowfs.Stat, error) {
	fi, err := s.vol.Lstat(".")
	if err != nil {
		return nil, err
	}
	return s.Mapped(fi.Stat()), nil
}

// Mapped is st, a file of the snapshot, with the number it shows as.
func (s *Snapshot) Mapped(st *cowfs.Stat) *cowfs.Stat {
	c := *st
	c.Ino = s.Ino(st.Ino)
	return &c
}

// View is a file snapshot (a cowfs.View of a whole file) served as
// files/N: read-only, with the owner, permission bits and times of the file
// it was taken of. Removing it releases the view, at once or at its last
// close.
type View struct {
	v   *cowfs.View
	n   uint64
	ino uint64
	st  cowfs.Stat // of the file it was taken of

	mu    sync.Mutex
	opens int  // files open on it
	gone  bool // removed: released at the last close
}

// ServeView serves v, a view of the file st describes, as files/N and
// returns that path from the served root; it is ctl.Server.ServeView.
func (ns *Namespace) ServeView(v *cowfs.View, st *cowfs.Stat) (string, error) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	ns.lastView++
	sv := &View{v: v, n: ns.lastView, ino: ns.nums.m.Next(), st: *st}
	ns.views[sv.n] = sv
	return Files.Path() + "/" + sv.Name(), nil
}

// View returns the view served as files/name; false if there is none.
// Names are decimal numbers without leading zeros: "07" names nothing.
func (ns *Namespace) View(name string) (*View, bool) {
	n, err := strconv.ParseUint(name, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != name {
		return nil, false
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	sv, ok := ns.views[n]
	return sv, ok
}

// Views lists files/, in the order the views were served.
func (ns *Namespace) Views() []*View {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	list := make([]*View, 0, len(ns.views))
	for _, sv := range ns.views {
		list = append(list, sv)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].n < list[j].n })
	return list
}

// RemoveView stops serving files/name and releases its view once no file
// is open on it (files open on it keep reading it until closed); ENOENT
// if there is no such view.
func (ns *Namespace) RemoveView(name string) error {
	sv, ok := ns.View(name)
	if !ok {
		return syscall.ENOENT
	}
	ns.mu.Lock()
	delete(ns.views, sv.n)
	ns.mu.Unlock()
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.gone = true
	if sv.opens == 0 {
		sv.v.Release()
	}
	return nil
}

// Name is the view's name in files/.
func (sv *View) Name() string { return strconv.FormatUint(sv.n, 10) }

// Stat describes the view (see View).
func (sv *View) Stat() *cowfs.Stat {
	size := sv.v.Len()
	return &cowfs.Stat{
		Ino: sv.ino, Mode: syscall.S_IFREG | sv.st.Mode&0o7555, Nlink: 1,
		UID: sv.st.UID, GID: sv.st.GID,
		Size: size, Blocks: cowfs.SizeBlocks(size),
		Atime: sv.st.Atime, Mtime: sv.st.Mtime, Ctime: sv.st.Ctime, Btime: sv.st.Btime,
	}
}

// Open opens the view with open(2) flags: for reading only (EROFS
// otherwise), and not once removed (ENOENT). Each Open needs a Close.
func (sv *View) Open(flags int) error {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return ErrReadOnly
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.gone {
		return syscall.ENOENT
	}
	sv.opens++
	return nil
}

// Close ends an Open; the last close of a removed view releases it.
func (sv *View) Close() {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.opens--
	if sv.opens == 0 && sv.gone {
		sv.v.Release()
	}
}

// ReadAt reads the view at off, as io.ReaderAt; only between Open and Close.
func (sv *View) ReadAt(p []byte, off int64) (int, error) { return sv.v.ReadAt(p, off) }

// ReadAtContext is ReadAt running with ctx (cowfs.View.ReadAtContext).
func (sv *View) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	return sv.v.ReadAtContext(ctx, p, off)
}

// CopyRange shares n bytes of the view at off into dst at doff (a clone;
// cowfs.View.CopyRangeContext); only between Open and Close.
func (sv *View) CopyRange(ctx context.Context, off int64, dst *cowfs.File, doff, n int64) (int64, error) {
	return sv.v.CopyRangeContext(ctx, off, dst, doff, n)
}
