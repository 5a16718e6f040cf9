package ninep

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/control"
)

// nodeKind is what a fid stands for.
type nodeKind uint8

const (
	volNode     nodeKind = iota // a node of a volume (fid.node)
	controlNode                 // a fixed node of .cowfs (fid.ctlNode)
	viewNode                    // a served view, .cowfs/files/N (fid.view)
)

// fid is the server's side of a client fid. It holds an engine handle on
// the node it stands for (and, once open, the open file), so a node
// renamed or removed while a fid has it keeps working through the fid.
// The engine decides what the fid's user may do: every call carries the
// user's credentials (fid.as). Each conn serves one request at a time, so
// a fid needs no lock.
type fid struct {
	srv     *Server
	sp      *space            // base's control namespace
	vol     *cowfs.Volume     // the volume of node: base, or one of its snapshots
	base    *cowfs.Volume     // the attached volume
	snap    *control.Snapshot // vol, when reached through .cowfs/snapshots
	node    *cowfs.Inode      // for kind volNode; released at clunk
	rootIno uint64            // the inode number of vol's root
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

// as is ctx carrying f's user as the engine's caller, whose new entries
// get the user's primary group.
func (f *fid) as(ctx context.Context) context.Context {
	return cowfs.WithCred(ctx, f.user.engine(f.user.primary()))
}

// asGroup is as, with new entries of group gid.
func (f *fid) asGroup(ctx context.Context, gid uint32) context.Context {
	return cowfs.WithCred(ctx, f.user.engine(gid))
}

func (f *fid) opened() bool { return f.isOpen || f.xattr != nil }

// walker returns an unopened copy of f to walk, with a handle of its own.
func (f *fid) walker() *fid {
	nf := &fid{srv: f.srv, sp: f.sp, vol: f.vol, base: f.base, snap: f.snap, rootIno: f.rootIno, kind: f.kind,
		ctlNode: f.ctlNode, view: f.view, user: f.user, versioned: f.versioned}
	if f.node != nil {
		nf.node = f.node.Dup()
	}
	return nf
}

// setNode makes f stand for node n of volume vol, releasing what it held.
func (f *fid) setNode(vol *cowfs.Volume, n *cowfs.Inode) {
	if f.node != nil {
		f.node.Release()
	}
	f.vol, f.node, f.kind, f.ctlNode, f.view = vol, n, volNode, 0, nil
}

// setControl makes f stand for a node of .cowfs, releasing its handle.
func (f *fid) setControl(kind nodeKind, n control.Node, v *control.View) {
	if f.node != nil {
		f.node.Release()
	}
	f.vol, f.snap, f.node, f.kind, f.ctlNode, f.view = f.base, nil, nil, kind, n, v
}

// atRoot reports whether f is the root of its volume.
func (f *fid) atRoot() bool { return f.kind == volNode && f.node.Ino() == f.rootIno }

// servedRoot reports whether f is the root of the attached volume, the
// one directory holding .cowfs.
func (f *fid) servedRoot() bool { return f.snap == nil && f.atRoot() }

// validName checks a name of a directory entry to make, remove, rename or
// link: "." and ".." name no entry there (walks handle them themselves).
func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return perr(syscall.EINVAL, "bad file name %q", name)
	}
	return nil
}

// step walks f one name down (or up for "..") and returns the new qid.
// The engine checks search permission on the directory walked from.
func (f *fid) step(ctx context.Context, name string) (Qid, error) {
	if name != ".." && name != "." {
		if err := validName(name); err != nil {
			return Qid{}, err
		}
	}
	if f.kind != volNode {
		if err := f.stepControl(ctx, name); err != nil {
			return Qid{}, err
		}
		return f.qid(ctx)
	}
	up := name == ".." && f.snap != nil && f.atRoot()
	if up || control.Reserved(f.servedRoot(), name) {
		// Nodes the engine does not know: search permission on f first.
		self, _, err := f.node.Lookup(f.as(ctx), ".")
		if err != nil {
			return Qid{}, err
		}
		self.Release()
		if up {
			f.setControl(controlNode, control.Snapshots, nil)
		} else {
			f.setControl(controlNode, control.Root, nil)
		}
		return f.qid(ctx)
	}
	n, fi, err := f.node.Lookup(f.as(ctx), name)
	if err != nil {
		return Qid{}, err
	}
	f.setNode(f.vol, n)
	return f.qidOf(f.mapped(fi.Stat())), nil
}

// stat describes what f stands for; an open file is described through
// its open file.
func (f *fid) stat(ctx context.Context) (*cowfs.Stat, error) {
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
		fi, err = f.node.Stat(f.as(ctx))
	}
	if err != nil {
		return nil, err
	}
	return f.mapped(fi.Stat()), nil
}

// name is the name of what f stands for, for a 9P2000 stat: "/" for the
// attached root, a snapshot's name for its root.
func (f *fid) name(ctx context.Context) (string, error) {
	switch {
	case f.kind == controlNode:
		return f.ctlNode.Name(), nil
	case f.kind == viewNode:
		return f.view.Name(), nil
	case f.atRoot() && f.snap != nil:
		return f.snap.Name(), nil
	case f.atRoot():
		return "/", nil
	}
	fi, err := f.node.Stat(f.as(ctx))
	if err != nil {
		return "", err
	}
	return fi.Name(), nil
}

// mapped gives a file of a snapshot reached through .cowfs/snapshots its
// own inode number.
func (f *fid) mapped(st *cowfs.Stat) *cowfs.Stat {
	if f.snap == nil {
		return st
	}
	return f.snap.Mapped(st)
}

func (f *fid) qid(ctx context.Context) (Qid, error) {
	st, err := f.stat(ctx)
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

// openAccess is what opening with os flags needs: read unless write-only,
// write if writing or truncating.
func openAccess(flags int) uint32 {
	acc := flags & syscall.O_ACCMODE
	want := uint32(0)
	if acc != syscall.O_WRONLY {
		want |= cowfs.MayRead
	}
	if acc != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		want |= cowfs.MayWrite
	}
	return want
}

// may fails with EACCES unless f's user has access want to what f stands
// for: the engine decides, also for the nodes of .cowfs (by their stat).
func (f *fid) may(ctx context.Context, want uint32) error {
	if f.kind == volNode {
		return f.node.Access(f.as(ctx), want)
	}
	st, err := f.stat(ctx)
	if err != nil {
		return err
	}
	if !f.user.engine(f.user.primary()).Permits(st, want) {
		return syscall.EACCES
	}
	return nil
}

// open opens f with os flags (O_RDONLY, O_WRONLY or O_RDWR, O_TRUNC,
// O_APPEND), as the user.
func (f *fid) open(ctx context.Context, flags int) error {
	if f.opened() {
		return perr(syscall.EBADF, "fid already open")
	}
	want := openAccess(flags)
	write := want&cowfs.MayWrite != 0
	switch f.kind {
	case controlNode, viewNode:
		if err := f.may(ctx, want); err != nil {
			return err
		}
		switch {
		case f.kind == viewNode:
			if err := f.view.Open(flags); err != nil {
				return err
			}
		case f.ctlNode == control.Ctl:
			// Commands run with the server's rights: the file is root's, 0600.
			if write && f.vol.ReadOnly() {
				return syscall.EROFS
			}
			f.ctl = control.NewHandle(f.sp.ctl.Exec)
		case write:
			return syscall.EISDIR
		default:
			f.dir = &dirList{}
		}
		f.isOpen, f.flags = true, flags
		return nil
	}
	st, err := f.stat(ctx)
	if err != nil {
		return err
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		if err := f.may(ctx, want); err != nil {
			return err
		}
		if write {
			return syscall.EISDIR
		}
		f.dir = &dirList{}
	case syscall.S_IFREG:
		fl := flags & (syscall.O_ACCMODE | os.O_TRUNC | os.O_APPEND)
		if fl&os.O_TRUNC != 0 && fl&syscall.O_ACCMODE == syscall.O_RDONLY {
			fl |= os.O_RDWR // truncate, as Linux does; reads only, still
		}
		file, err := f.node.Open(f.as(ctx), fl)
		if err != nil {
			return err
		}
		f.file = file
	case syscall.S_IFLNK:
		return syscall.ELOOP
	default:
		if err := f.may(ctx, want); err != nil {
			return err
		}
		name, _ := f.name(ctx)
		return perr(syscall.EOPNOTSUPP, "%s is a special file: it cannot be opened over 9P", name)
	}
	f.isOpen, f.flags = true, flags
	return nil
}

// list reads the entries of the directory f stands for.
func (f *fid) list(ctx context.Context) ([]dirEntry, error) {
	if f.kind != volNode {
		return f.listControl()
	}
	infos, err := f.node.ReadDir(f.as(ctx), 0, -1)
	if err != nil {
		return nil, err
	}
	root := f.servedRoot()
	ents := make([]dirEntry, 0, len(infos))
	for _, fi := range infos {
		if control.Reserved(root, fi.Name()) {
			continue
		}
		ents = append(ents, dirEntry{fi.Name(), f.mapped(fi.Stat())})
	}
	return ents, nil
}

// read reads into buf from offset off of an open file or control file.
func (f *fid) read(ctx context.Context, buf []byte, off uint64) ([]byte, error) {
	var read func(context.Context, []byte, int64) (int, error)
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
		read = f.view.ReadAtContext
	case f.file == nil:
		return nil, syscall.EISDIR
	default:
		read = f.file.ReadAtContext
	}
	if off > 1<<62 {
		return buf[:0], nil
	}
	n, err := read(ctx, buf, int64(off))
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return buf[:n], err
}

// write writes data at offset off of an open file (at its end if opened
// with O_APPEND), runs a control command, or adds to an extended
// attribute being written.
func (f *fid) write(ctx context.Context, data []byte, off uint64) (int, error) {
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
	}
	if f.flags&os.O_APPEND != 0 {
		return f.file.WriteContext(ctx, data)
	}
	return f.file.WriteAtContext(ctx, data, int64(off))
}

// close ends f's open: its open file, a pending extended attribute (set
// now), and with ORCLOSE the file itself. ctx is the clunk's.
func (f *fid) close(ctx context.Context) error {
	var err error
	if f.xattr != nil {
		err = f.xattr.commit(ctx, f)
		f.xattr = nil
	}
	if f.rclose {
		f.rclose = false
		if e := f.unlinkSelf(ctx); err == nil {
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

// clunk closes f and releases its handle; f is not used afterwards.
func (f *fid) clunk(ctx context.Context) error {
	err := f.close(ctx)
	if f.node != nil {
		f.node.Release()
		f.node = nil
	}
	return err
}

// parent returns a fid for the directory holding f's node, and the node's
// name there.
func (f *fid) parent(ctx context.Context) (*fid, string, error) {
	d, name, err := f.node.Parent(f.as(ctx))
	if err != nil {
		return nil, "", err
	}
	p := f.walker()
	p.setNode(f.vol, d)
	return p, name, nil
}

// unlinkSelf removes the node f stands for from the directory holding it,
// as the user.
func (f *fid) unlinkSelf(ctx context.Context) error {
	if f.kind != volNode || f.atRoot() {
		return perr(syscall.EPERM, "cannot remove the root")
	}
	d, name, err := f.parent(ctx)
	if err != nil {
		return err
	}
	defer d.clunk(ctx)
	return d.node.Remove(f.as(ctx), name)
}

// makeIn checks that name may be made in the directory f stands for as
// far as the engine cannot tell: a valid name, not .cowfs; in .cowfs
// nothing can be made (after the permission the kernel checks first).
func (f *fid) makeIn(ctx context.Context, name string) error {
	if err := validName(name); err != nil {
		return err
	}
	if control.Reserved(f.servedRoot(), name) {
		return control.ErrMake
	}
	if f.kind == volNode {
		return nil
	}
	st, err := f.stat(ctx)
	if err != nil {
		return err
	}
	if !isDir(st) {
		return syscall.ENOTDIR
	}
	if err := f.may(ctx, cowfs.MayWrite|cowfs.MayExec); err != nil {
		return err
	}
	return control.ErrReadOnly
}

// qidOfNode is the qid of a node just made, which it releases.
func (f *fid) qidOfNode(ctx context.Context, n *cowfs.Inode) (Qid, error) {
	defer n.Release()
	fi, err := n.Stat(f.as(ctx))
	if err != nil {
		return Qid{}, err
	}
	return f.qidOf(f.mapped(fi.Stat())), nil
}

// createFile makes and opens regular file name in directory f with mode,
// as the caller ctx carries, and turns f into the new file, open with os
// flags.
func (f *fid) createFile(ctx context.Context, name string, flags int, mode uint32) (Qid, error) {
	if f.opened() {
		return Qid{}, perr(syscall.EBADF, "fid already open")
	}
	if err := f.makeIn(ctx, name); err != nil {
		return Qid{}, err
	}
	flags &= syscall.O_ACCMODE | os.O_APPEND
	n, file, _, err := f.node.Create(ctx, name, flags|os.O_EXCL, mode&0o7777)
	if err != nil {
		return Qid{}, err
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		n.Release()
		return Qid{}, err
	}
	f.setNode(f.vol, n)
	f.file, f.isOpen, f.flags = file, true, flags
	return f.qidOf(f.mapped(fi.Stat())), nil
}
