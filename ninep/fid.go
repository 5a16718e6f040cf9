package ninep

import (
	"errors"
	"io"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/control"
)

// nodeKind is what a fid stands for.
type nodeKind uint8

const (
	volNode     nodeKind = iota // a path of a volume
	controlNode                 // a fixed node of .cowfs (fid.ctlNode)
	viewNode                    // a served view, .cowfs/files/N (fid.view)
)

// fid is the server's side of a client fid. It addresses a file by volume
// and path, as the FUSE frontend does; once open, it holds the open file,
// so a file removed or renamed while open keeps working through it.
// Each conn serves one request at a time, so a fid needs no lock.
type fid struct {
	srv     *Server
	sp      *space            // base's control namespace
	vol     *cowfs.Volume     // the volume of path: base, or one of its snapshots
	base    *cowfs.Volume     // the attached volume
	snap    *control.Snapshot // vol, when reached through .cowfs/snapshots
	path    string            // in vol; "." for its root
	kind    nodeKind
	ctlNode control.Node  // for kind controlNode
	view    *control.View // for kind viewNode
	user    *cred
	// versioned: qid versions carry the modification time (9P2000, where
	// clients cache by them); 9P2000.L qids have version 0, as diod's do,
	// because Linux's v9fs takes a new version for a new inode.
	versioned bool

	isOpen bool
	flags  int             // os open flags, once open
	file   *cowfs.File     // open regular file
	dir    *dirList        // open directory
	ctl    *control.Handle // open control file
	xattr  *xattrFid       // extended attribute read or write in progress
	rclose bool            // remove when clunked (9P2000 ORCLOSE)
}

// dirList is an open directory's listing, taken when read from offset 0.
type dirList struct {
	ents []dirEntry
	off  uint64 // 9P2000: byte offset the next read must give
	next int    // 9P2000: index of the next entry to send
}

type dirEntry struct {
	name string
	st   *cowfs.Stat
}

func (f *fid) opened() bool { return f.isOpen || f.xattr != nil }

// walker returns an unopened copy of f to walk.
func (f *fid) walker() *fid {
	return &fid{srv: f.srv, sp: f.sp, vol: f.vol, base: f.base, snap: f.snap, path: f.path, kind: f.kind,
		ctlNode: f.ctlNode, view: f.view, user: f.user, versioned: f.versioned}
}

func (f *fid) describe() string {
	switch f.kind {
	case controlNode:
		return f.ctlNode.Path()
	case viewNode:
		return control.Files.Path() + "/" + f.view.Name()
	}
	if f.snap != nil {
		return control.Snapshots.Path() + "/" + f.snap.Name() + "/" + f.path
	}
	return f.path
}

// servedRoot reports whether f is the root of the attached volume, the
// one directory holding .cowfs.
func (f *fid) servedRoot() bool { return f.kind == volNode && f.path == "." && f.snap == nil }

// validName checks a name of a directory entry to make, remove, rename or
// link: "." and ".." name no entry there (walks handle them themselves).
func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return perr(syscall.EINVAL, "bad file name %q", name)
	}
	return nil
}

// step walks f one name down (or up for "..") and returns the new qid.
// Walking from a directory takes search permission on it.
func (f *fid) step(name string) (Qid, error) {
	if name != ".." && name != "." {
		if err := validName(name); err != nil {
			return Qid{}, err
		}
	}
	if f.kind != volNode {
		if err := f.stepControl(name); err != nil {
			return Qid{}, err
		}
		return f.qid()
	}
	dir, err := f.vol.Lstat(f.path)
	if err != nil {
		return Qid{}, err
	}
	if !dir.IsDir() {
		return Qid{}, syscall.ENOTDIR
	}
	if !f.user.may(dir.Stat(), mayExec) {
		return Qid{}, syscall.EACCES
	}
	switch {
	case name == ".":
	case name == ".." && f.path == "." && f.snap != nil:
		f.vol, f.snap, f.kind, f.ctlNode = f.base, nil, controlNode, control.Snapshots
	case name == "..":
		f.path = path.Dir(f.path)
	case control.Reserved(f.servedRoot(), name):
		f.kind, f.ctlNode = controlNode, control.Root
	default:
		p := path.Join(f.path, name)
		fi, err := f.vol.Lstat(p)
		if err != nil {
			return Qid{}, err
		}
		f.path = p
		return f.qidOf(f.mapped(fi.Stat())), nil
	}
	return f.qid()
}

// stat describes what f stands for; open files are described through
// their open file, so they keep working after removal.
func (f *fid) stat() (*cowfs.Stat, error) {
	switch f.kind {
	case controlNode:
		return f.sp.ns.Stat(f.ctlNode)
	case viewNode:
		return f.view.Stat(), nil
	}
	var fi *cowfs.FileInfo
	var err error
	if f.file != nil {
		fi, err = f.file.Stat()
	} else {
		fi, err = f.vol.Lstat(f.path)
	}
	if err != nil {
		return nil, err
	}
	return f.mapped(fi.Stat()), nil
}

// mapped gives a file of a snapshot reached through .cowfs/snapshots its
// own inode number.
func (f *fid) mapped(st *cowfs.Stat) *cowfs.Stat {
	if f.snap == nil {
		return st
	}
	return f.snap.Mapped(st)
}

func (f *fid) qid() (Qid, error) {
	st, err := f.stat()
	if err != nil {
		return Qid{}, err
	}
	return f.qidOf(st), nil
}

func (f *fid) qidOf(st *cowfs.Stat) Qid { return qidOf(st, f.versioned) }

// qidOf is the qid of a file: its inode number, its type and, if
// versioned, its modification time as version.
func qidOf(st *cowfs.Stat, versioned bool) Qid {
	q := Qid{Path: st.Ino}
	if versioned {
		// Nanoseconds since 1970, wrapped to 32 bits (as far as any time
		// goes): a new version whenever the modification time changes.
		q.Vers = uint32(uint64(st.Mtime.Unix())*1e9 + uint64(st.Mtime.Nanosecond()))
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		q.Type = QTDir
	case syscall.S_IFLNK:
		q.Type = QTSymlink
	}
	return q
}

func isDir(st *cowfs.Stat) bool { return st.Mode&syscall.S_IFMT == syscall.S_IFDIR }

// open opens f with os flags (O_RDONLY, O_WRONLY or O_RDWR, O_TRUNC,
// O_APPEND), checking the user's permission.
func (f *fid) open(flags int) error {
	if f.opened() {
		return perr(syscall.EBADF, "fid already open")
	}
	acc := flags & syscall.O_ACCMODE
	write := acc != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
	st, err := f.stat()
	if err != nil {
		return err
	}
	want := uint32(0)
	if acc != syscall.O_WRONLY {
		want |= mayRead
	}
	if write {
		want |= mayWrite
	}
	if !f.user.may(st, want) {
		return syscall.EACCES
	}
	switch {
	case f.kind == controlNode && f.ctlNode == control.Ctl:
		// Commands run with the server's rights: the file is root's, 0600.
		if write && f.vol.ReadOnly() {
			return syscall.EROFS
		}
		f.ctl = control.NewHandle(f.sp.ctl.Exec)
		f.isOpen, f.flags = true, flags
		return nil
	case f.kind == viewNode:
		if err := f.view.Open(flags); err != nil {
			return err
		}
		f.isOpen, f.flags = true, flags
		return nil
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		if write {
			return syscall.EISDIR
		}
		f.dir = &dirList{}
	case syscall.S_IFREG:
		fl := flags & (syscall.O_ACCMODE | os.O_TRUNC | os.O_APPEND)
		if fl&os.O_TRUNC != 0 && acc == syscall.O_RDONLY {
			fl |= os.O_RDWR // truncate, as Linux does; reads only, still
		}
		file, err := f.vol.OpenFile(f.path, fl, 0)
		if err != nil {
			return err
		}
		// The path is checked and opened in two steps: if it changed in
		// between (to a symlink, say), refuse what was opened.
		if fi, err := file.Stat(); err != nil || f.mapped(fi.Stat()).Ino != st.Ino {
			file.Close()
			return syscall.ESTALE
		}
		f.file = file
	case syscall.S_IFLNK:
		return syscall.ELOOP
	default:
		return perr(syscall.EOPNOTSUPP, "%s is a special file: it cannot be opened over 9P", f.describe())
	}
	f.isOpen, f.flags = true, flags
	return nil
}

// list reads the entries of the directory f stands for.
func (f *fid) list() ([]dirEntry, error) {
	if f.kind != volNode {
		return f.listControl()
	}
	infos, err := f.vol.ReadDir(f.path)
	if err != nil {
		return nil, err
	}
	ents := make([]dirEntry, 0, len(infos))
	for _, fi := range infos {
		if control.Reserved(f.servedRoot(), fi.Name()) {
			continue
		}
		ents = append(ents, dirEntry{fi.Name(), f.mapped(fi.Stat())})
	}
	return ents, nil
}

// read reads into buf from offset off of an open file or control file.
func (f *fid) read(buf []byte, off uint64) ([]byte, error) {
	var r io.ReaderAt = f.file
	switch {
	case f.xattr != nil:
		return f.xattr.read(buf, off)
	case !f.isOpen:
		return nil, perr(syscall.EBADF, "fid not open")
	case f.flags&syscall.O_ACCMODE == syscall.O_WRONLY:
		return nil, perr(syscall.EBADF, "fid not open for reading")
	case f.ctl != nil:
		return buf[:f.ctl.Read(buf)], nil
	case f.kind == viewNode:
		r = f.view
	case f.file == nil:
		return nil, syscall.EISDIR
	}
	if off > 1<<62 {
		return buf[:0], nil
	}
	n, err := r.ReadAt(buf, int64(off))
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return buf[:n], err
}

// write writes data at offset off of an open file (at its end if opened
// with O_APPEND), runs a control command, or adds to an extended
// attribute being written.
func (f *fid) write(data []byte, off uint64) (int, error) {
	switch {
	case f.xattr != nil:
		return f.xattr.write(data, off)
	case !f.isOpen:
		return 0, perr(syscall.EBADF, "fid not open")
	case f.flags&syscall.O_ACCMODE == syscall.O_RDONLY:
		return 0, perr(syscall.EBADF, "fid not open for writing")
	case f.ctl != nil:
		return f.ctl.Write(data)
	case f.file == nil:
		return 0, syscall.EISDIR
	case off > 1<<62:
		return 0, syscall.EFBIG
	case f.flags&os.O_APPEND != 0:
		return f.file.Write(data)
	}
	return f.file.WriteAt(data, int64(off))
}

// close releases what f holds: its open file, a pending extended attribute
// (set now), and with ORCLOSE the file itself.
func (f *fid) close() error {
	var err error
	if f.xattr != nil {
		err = f.xattr.commit(f)
		f.xattr = nil
	}
	if f.rclose {
		f.rclose = false
		if e := f.unlinkSelf(); err == nil {
			err = e
		}
	}
	if f.file != nil {
		f.file.Close()
		f.file = nil
	}
	if f.kind == viewNode && f.isOpen {
		f.view.Close()
	}
	f.isOpen, f.dir, f.ctl = false, nil, nil
	return err
}

// unlinkSelf removes the file f stands for, if the user may. An open
// file is removed only if its path still names it.
func (f *fid) unlinkSelf() error {
	if f.file != nil {
		open, err := f.file.Stat()
		if err != nil {
			return err
		}
		now, err := f.vol.Lstat(f.path)
		if err != nil {
			return err
		}
		if now.Stat().Ino != open.Stat().Ino {
			return syscall.ESTALE
		}
	}
	return f.unlink(path.Dir(f.path), path.Base(f.path))
}

// unlink removes entry name of directory dir of f's volume, checking
// write and search permission on dir and its sticky bit.
func (f *fid) unlink(dir, name string) error {
	p := path.Join(dir, name)
	if f.snap == nil && dir == "." && control.Reserved(true, name) {
		return control.ErrRemove
	}
	dfi, err := f.vol.Lstat(dir)
	if err != nil {
		return err
	}
	xfi, err := f.vol.Lstat(p)
	if err != nil {
		return err
	}
	if !f.user.mayUnlink(dfi.Stat(), xfi.Stat()) {
		return syscall.EACCES
	}
	return f.vol.Remove(p)
}

// makeIn returns the directory fid stands for, with write and search
// permission checked, to make an entry in.
func (f *fid) makeIn(name string) (*cowfs.Stat, string, error) {
	if err := validName(name); err != nil {
		return nil, "", err
	}
	if control.Reserved(f.servedRoot(), name) {
		return nil, "", control.ErrMake
	}
	if f.kind == volNode && f.vol.ReadOnly() {
		return nil, "", syscall.EROFS
	}
	st, err := f.stat()
	if err != nil {
		return nil, "", err
	}
	if !isDir(st) {
		return nil, "", syscall.ENOTDIR
	}
	if !f.user.may(st, mayWrite|mayExec) {
		return nil, "", syscall.EACCES
	}
	if f.kind != volNode {
		return nil, "", control.ErrReadOnly
	}
	return st, path.Join(f.path, name), nil
}

// made gives the new entry p to the user, with group gid, and returns its
// qid; if that fails the entry is removed again.
func (f *fid) made(p string, gid uint32) (Qid, error) {
	if err := f.vol.Lchown(p, int(f.user.uid), int(gid)); err != nil {
		f.vol.Remove(p)
		return Qid{}, err
	}
	fi, err := f.vol.Lstat(p)
	if err != nil {
		return Qid{}, err
	}
	return f.qidOf(fi.Stat()), nil
}

// createFile makes and opens regular file name in directory f with mode
// and group gid and turns f into the new file, open with os flags.
func (f *fid) createFile(name string, flags int, mode, gid uint32) (Qid, error) {
	if f.opened() {
		return Qid{}, perr(syscall.EBADF, "fid already open")
	}
	_, p, err := f.makeIn(name)
	if err != nil {
		return Qid{}, err
	}
	flags &= syscall.O_ACCMODE | os.O_APPEND
	mode = f.user.createMode(gid, mode&0o7777)
	file, err := f.vol.OpenFile(p, flags|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return Qid{}, err
	}
	if err := file.Chown(int(f.user.uid), int(gid)); err != nil {
		file.Close()
		f.vol.Remove(p)
		return Qid{}, err
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return Qid{}, err
	}
	f.path, f.file, f.isOpen, f.flags = p, file, true, flags
	return f.qidOf(fi.Stat()), nil
}

// renamed follows a rename in every fid of c: paths at or under from now
// start with to.
func (c *conn) renamed(vol *cowfs.Volume, from, to string) {
	for _, f := range c.fids {
		if f.vol != vol || f.kind != volNode {
			continue
		}
		if f.path == from {
			f.path = to
		} else if rest, ok := strings.CutPrefix(f.path, from+"/"); ok {
			f.path = path.Join(to, rest)
		}
	}
}
