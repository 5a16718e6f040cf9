package ninep

import (
	"errors"
	"io"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/ctl"
)

// nodeKind is what a fid stands for.
type nodeKind uint8

const (
	volNode      nodeKind = iota // a path of a volume
	controlDir                   // .cowfs
	controlFile                  // .cowfs/ctl
	snapshotsDir                 // .cowfs/snapshots
)

const controlName = ".cowfs"

// Qid paths of the control nodes, outside cowfs inode numbers in practice.
const (
	controlDirPath   = 1<<63 - 1
	controlFilePath  = 1<<63 - 2
	snapshotsDirPath = 1<<63 - 3
)

// fid is the server's side of a client fid. It addresses a file by volume
// and path, as the FUSE frontend does; once open, it holds the open file,
// so a file removed or renamed while open keeps working through it.
// Each conn serves one request at a time, so a fid needs no lock.
type fid struct {
	srv  *Server
	vol  *cowfs.Volume // the volume of path: base, or one of its snapshots
	base *cowfs.Volume // the attached volume
	snap string        // vol's snapshot name when reached through .cowfs/snapshots
	path string        // in vol; "." for its root
	kind nodeKind
	user *cred
	// versioned: qid versions carry the modification time (9P2000, where
	// clients cache by them); 9P2000.L qids have version 0, as diod's do,
	// because Linux's v9fs takes a new version for a new inode.
	versioned bool

	isOpen bool
	flags  int         // os open flags, once open
	file   *cowfs.File // open regular file
	dir    *dirList    // open directory
	ctl    *ctl.Server // open control file
	reply  []byte      // control file: what is left of the last reply
	xattr  *xattrFid   // extended attribute read or write in progress
	rclose bool        // remove when clunked (9P2000 ORCLOSE)
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
	return &fid{srv: f.srv, vol: f.vol, base: f.base, snap: f.snap, path: f.path, kind: f.kind, user: f.user, versioned: f.versioned}
}

func (f *fid) describe() string {
	switch f.kind {
	case controlDir:
		return controlName
	case controlFile:
		return controlName + "/ctl"
	case snapshotsDir:
		return controlName + "/snapshots"
	}
	if f.snap != "" {
		return controlName + "/snapshots/" + f.snap + "/" + f.path
	}
	return f.path
}

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
	if name == "." && f.kind != volNode {
		if f.kind == controlFile {
			return Qid{}, syscall.ENOTDIR
		}
		return f.qid()
	}
	switch f.kind {
	case controlFile:
		return Qid{}, syscall.ENOTDIR
	case controlDir:
		switch name {
		case "..":
			f.kind, f.path = volNode, "."
		case "ctl":
			f.kind = controlFile
		case "snapshots":
			f.kind = snapshotsDir
		default:
			return Qid{}, syscall.ENOENT
		}
		return f.qid()
	case snapshotsDir:
		if name == ".." {
			f.kind = controlDir
			return f.qid()
		}
		sv, err := f.base.OpenSnapshot(name)
		if err != nil {
			return Qid{}, err
		}
		f.vol, f.snap, f.path, f.kind = sv, name, ".", volNode
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
	case name == ".." && f.path == "." && f.snap != "":
		f.vol, f.snap, f.kind = f.base, "", snapshotsDir
	case name == "..":
		f.path = path.Dir(f.path)
	case f.path == "." && f.snap == "" && name == controlName:
		f.kind = controlDir
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
	if f.kind != volNode {
		// Control nodes are root's and carry the volume root's times.
		root, err := f.base.Lstat(".")
		if err != nil {
			return nil, err
		}
		st := *root.Stat()
		st.UID, st.GID, st.Size, st.Blocks, st.Nlink, st.Mode = 0, 0, 0, 0, 2, syscall.S_IFDIR|0o555
		switch f.kind {
		case controlDir:
			st.Ino = controlDirPath
		case snapshotsDir:
			st.Ino = snapshotsDirPath
		case controlFile:
			st.Ino, st.Nlink, st.Mode = controlFilePath, 1, syscall.S_IFREG|0o600
		}
		return &st, nil
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
	if f.snap == "" {
		return st
	}
	c := *st
	c.Ino = f.srv.snaps.Get(snapKey{f.base.Name(), f.snap, st.Ino})
	return &c
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
	if f.kind == controlFile {
		// Commands run with the server's rights: the file is root's, 0600.
		if !f.user.root() {
			return syscall.EACCES
		}
		if write && f.vol.ReadOnly() {
			return syscall.EROFS
		}
		f.ctl = &ctl.Server{FS: f.srv.FS, Vol: f.vol}
		f.isOpen, f.flags = true, flags
		return nil
	}
	if !f.user.may(st, want) {
		return syscall.EACCES
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
	switch f.kind {
	case controlDir:
		ents := []dirEntry{{name: "ctl"}, {name: "snapshots"}}
		for i, k := range []nodeKind{controlFile, snapshotsDir} {
			var err error
			if ents[i].st, err = (&fid{base: f.base, kind: k}).stat(); err != nil {
				return nil, err
			}
		}
		return ents, nil
	case snapshotsDir:
		snaps, err := f.base.Snapshots()
		if err != nil {
			return nil, err
		}
		var ents []dirEntry
		for _, s := range snaps {
			w := f.walker()
			w.vol, w.snap, w.path, w.kind = nil, s.Name, ".", volNode
			if w.vol, err = f.base.OpenSnapshot(s.Name); err != nil {
				continue // deleted meanwhile
			}
			if st, err := w.stat(); err == nil {
				ents = append(ents, dirEntry{s.Name, st})
			}
		}
		return ents, nil
	}
	infos, err := f.vol.ReadDir(f.path)
	if err != nil {
		return nil, err
	}
	ents := make([]dirEntry, 0, len(infos))
	for _, fi := range infos {
		if f.path == "." && f.snap == "" && fi.Name() == controlName {
			continue
		}
		ents = append(ents, dirEntry{fi.Name(), f.mapped(fi.Stat())})
	}
	return ents, nil
}

// read reads into buf from offset off of an open file or control file.
func (f *fid) read(buf []byte, off uint64) ([]byte, error) {
	switch {
	case f.xattr != nil:
		return f.xattr.read(buf, off)
	case !f.isOpen:
		return nil, perr(syscall.EBADF, "fid not open")
	case f.flags&syscall.O_ACCMODE == syscall.O_WRONLY:
		return nil, perr(syscall.EBADF, "fid not open for reading")
	case f.kind == controlFile:
		n := copy(buf, f.reply)
		f.reply = f.reply[n:]
		return buf[:n], nil
	case f.file == nil:
		return nil, syscall.EISDIR
	case off > 1<<62:
		return buf[:0], nil
	}
	n, err := f.file.ReadAt(buf, int64(off))
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
	case f.kind == controlFile:
		reply, err := f.ctl.Exec(strings.TrimRight(string(data), "\n"))
		if err != nil {
			f.reply = []byte(err.Error() + "\n")
			return 0, err
		}
		f.reply = []byte(reply)
		return len(data), nil
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
	f.isOpen, f.dir, f.ctl, f.reply = false, nil, nil, nil
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
	if f.snap == "" && dir == "." && name == controlName {
		return syscall.EPERM
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

// dirOf returns the directory fid stands for, with write and search
// permission checked, to make an entry in.
func (f *fid) makeIn(name string) (*cowfs.Stat, string, error) {
	if err := validName(name); err != nil {
		return nil, "", err
	}
	if f.kind != volNode {
		return nil, "", syscall.EACCES
	}
	if f.path == "." && f.snap == "" && name == controlName {
		return nil, "", syscall.EEXIST
	}
	if f.vol.ReadOnly() {
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
