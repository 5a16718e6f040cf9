package cowfs

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/cowfs/cowfs/internal/dirtree"
)

// Inode is a handle on one file, directory or other node of a volume: the
// node itself, not a path. It stays valid when the node is renamed or
// moved, and the node stays loaded while a handle on it exists; once the
// node is removed (and no File has it open), calls on the handle fail with
// ENOENT. A frontend holds one for each node the kernel or a 9P fid knows,
// and calls Release when that forgets it.
//
// Every method takes the operation's context, which carries the caller's
// identity (WithCred; RootCred if none): creating, changing and, with
// Cred.Check, checking permission are done for that caller, as Linux does.
// Methods on one Inode may be called from several goroutines.
type Inode struct {
	v *Volume
	x *inode
}

// RootInode returns a handle on the volume's root directory.
func (v *Volume) RootInode() *Inode {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	return v.handle(v.root)
}

// handle pins x and returns a handle on it. The caller holds f.mu.
func (v *Volume) handle(x *inode) *Inode {
	x.pins++
	return &Inode{v: v, x: x}
}

// Release drops the handle; it must not be used afterwards.
func (n *Inode) Release() {
	n.v.f.mu.Lock()
	defer n.v.f.mu.Unlock()
	if n.x != nil {
		n.x.pins--
		n.x = nil
	}
}

// Dup returns a second handle on the same node (for a cloned 9P fid).
func (n *Inode) Dup() *Inode {
	n.v.f.mu.Lock()
	defer n.v.f.mu.Unlock()
	return n.v.handle(n.x)
}

// Volume returns the volume the node belongs to.
func (n *Inode) Volume() *Volume { return n.v }

// Ino returns the node's inode number, as Stat reports it.
func (n *Inode) Ino() uint64 {
	n.v.f.mu.Lock()
	defer n.v.f.mu.Unlock()
	return n.x.ino()
}

// begin takes the FS lock for an operation on n and returns its caller;
// it fails, holding no lock, if ctx is done before the lock is free, the
// handle was released, the volume closed or the node removed. With write,
// it also fails on a snapshot (EROFS). On success the caller must call end.
func (n *Inode) begin(ctx context.Context, op string, write bool) (Cred, error) {
	if err := n.v.f.lockFor(ctx, op, ""); err != nil {
		return Cred{}, err
	}
	if err := n.usable(ctx, op, write); err != nil {
		n.end()
		return Cred{}, err
	}
	return CredFrom(ctx), nil
}

// usable is begin's check of n, under the FS lock.
func (n *Inode) usable(ctx context.Context, op string, write bool) error {
	x := n.x
	switch {
	case x == nil:
		return errorf(op, "", syscall.EBADF, errors.New("released handle"))
	case n.v.closed:
		return errorf(op, x.path(), syscall.EBADF, errors.New("volume closed"))
	case x.removed:
		return errorf(op, x.path(), syscall.ENOENT, errors.New("removed"))
	}
	if err := ctx.Err(); err != nil {
		return wrapIO(op, x.path(), err)
	}
	if write {
		return n.v.writable(op, x.path())
	}
	return nil
}

// end releases the FS lock begin took.
func (n *Inode) end() { n.v.f.mu.Unlock() }

// path is x's path in its volume, for error messages: a node with no name
// (unlinked while open) or one only the link table knows shows as
// "#INO" below the names that are known.
func (x *inode) path() string {
	var names []string
	for y := x; y != nil && y.parent != nil; y = y.parent {
		names = append(names, y.name)
		if len(names) > 4096 {
			break
		}
	}
	var b strings.Builder
	top := x
	for top.parent != nil {
		top = top.parent
	}
	if top != x.v.root {
		b.WriteString("#" + strconv.FormatUint(top.ino(), 10))
	}
	for i := len(names) - 1; i >= 0; i-- {
		b.WriteString("/" + names[i])
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// childAt looks name up in directory d for c, who needs search
// permission on d; "." and ".." name d and its parent.
func (v *Volume) childAt(c Cred, op string, d *inode, name string) (resolved, string, error) {
	p := d.path() + "/" + name
	if !d.isDir() {
		return resolved{}, p, errorf(op, p, syscall.ENOTDIR, nil)
	}
	if err := c.may(op, p, &d.ent, MayExec); err != nil {
		return resolved{}, p, err
	}
	switch {
	case name == "" || strings.IndexByte(name, '/') >= 0 || strings.IndexByte(name, 0) >= 0:
		return resolved{}, p, errorf(op, p, syscall.EINVAL, errors.New("bad name"))
	case len(name) > dirtree.MaxName:
		return resolved{}, p, errorf(op, p, syscall.ENAMETOOLONG, nil)
	case name == ".":
		return resolved{dir: d.parentOrSelf(), name: d.name, x: d}, p, nil
	case name == "..":
		up := d.parentOrSelf()
		return resolved{dir: up.parentOrSelf(), name: up.name, x: up}, p, nil
	}
	x, err := d.child(name)
	if err != nil {
		return resolved{}, p, wrapIO(op, p, err)
	}
	return resolved{dir: d, name: name, x: x}, p, nil
}

// newName is childAt for a name an operation makes or removes: "." and
// ".." are refused (EEXIST to make, EINVAL to remove, as Linux answers
// mkdir and rmdir), and so is a directory that was removed.
func (v *Volume) newName(c Cred, op string, d *inode, name string, dots syscall.Errno) (resolved, string, error) {
	if name == "." || name == ".." {
		p := d.path() + "/" + name
		if err := c.may(op, p, &d.ent, MayExec); err != nil {
			return resolved{}, p, err
		}
		return resolved{}, p, errorf(op, p, dots, nil)
	}
	return v.childAt(c, op, d, name)
}

// Lookup returns a handle on the entry name of directory n, and its
// description. The caller needs search permission on n.
func (n *Inode) Lookup(ctx context.Context, name string) (*Inode, *FileInfo, error) {
	c, err := n.begin(ctx, "lookup", false)
	if err != nil {
		return nil, nil, err
	}
	defer n.end()
	r, p, err := n.v.childAt(c, "lookup", n.x, name)
	if err != nil {
		return nil, nil, err
	}
	if r.x == nil {
		return nil, nil, errorf("lookup", p, syscall.ENOENT, nil)
	}
	if err := r.x.flushBuf(); err != nil {
		return nil, nil, wrapIO("lookup", p, err)
	}
	return n.v.handle(r.x), r.x.info(baseName(p)), nil
}

// Stat describes the node.
func (n *Inode) Stat(ctx context.Context) (*FileInfo, error) {
	_, err := n.begin(ctx, "stat", false)
	if err != nil {
		return nil, err
	}
	defer n.end()
	if err := n.x.flushBuf(); err != nil {
		return nil, wrapIO("stat", n.x.path(), err)
	}
	return n.x.info(baseName(n.x.path())), nil
}

// Access reports whether the caller has every access bit of want (MayRead,
// MayWrite, MayExec) on the node, by its ACL or mode, as access(2) with
// the caller's IDs: nil, or EACCES. An unchecked caller always may.
func (n *Inode) Access(ctx context.Context, want uint32) error {
	c, err := n.begin(ctx, "access", false)
	if err != nil {
		return err
	}
	defer n.end()
	if want&MayWrite != 0 {
		if err := n.v.writable("access", n.x.path()); err != nil {
			return err
		}
	}
	return c.may("access", n.x.path(), &n.x.ent, want&7)
}

// Readlink returns a symlink's target.
func (n *Inode) Readlink(ctx context.Context) (string, error) {
	_, err := n.begin(ctx, "readlink", false)
	if err != nil {
		return "", err
	}
	defer n.end()
	if n.x.ent.Type() != dirtree.TypeLink {
		return "", errorf("readlink", n.x.path(), syscall.EINVAL, errors.New("not a symlink"))
	}
	return n.x.ent.Target, nil
}

// ReadDir returns up to count entries (count < 0: all) of directory n
// from position pos, in name order, and updates its access time as
// Options.Atime says. Positions count entries from 0, without "." and
// "..". Permission to read a directory is checked when it is opened (Open).
func (n *Inode) ReadDir(ctx context.Context, pos int64, count int) ([]*FileInfo, error) {
	_, err := n.begin(ctx, "readdir", false)
	if err != nil {
		return nil, err
	}
	defer n.end()
	if !n.x.isDir() {
		return nil, errorf("readdir", n.x.path(), syscall.ENOTDIR, nil)
	}
	list, err := n.x.list(pos, count)
	if err != nil {
		return nil, wrapIO("readdir", n.x.path(), err)
	}
	n.x.accessed()
	return list, nil
}

// Open opens the node with os-style flags (os.O_RDONLY, O_WRONLY, O_RDWR,
// O_TRUNC, O_APPEND), for the caller: it needs read and write permission as
// the flags ask. A directory opens for reading only.
func (n *Inode) Open(ctx context.Context, flag int) (*File, error) {
	c, err := n.begin(ctx, "open", flag&(os.O_WRONLY|os.O_RDWR|os.O_TRUNC) != 0)
	if err != nil {
		return nil, err
	}
	defer n.end()
	f, _, err := n.v.openAt(c, "open", n.x.path(), resolved{x: n.x}, flag&^(os.O_CREATE|os.O_EXCL), 0)
	return f, err
}

// Create opens the entry name of directory n, making it as a regular file
// with permission bits perm if it does not exist (made reports that), as
// open(2) with O_CREAT; with os.O_EXCL an existing entry is EEXIST. The
// new file belongs to the caller (see Cred), in one step.
func (n *Inode) Create(ctx context.Context, name string, flag int, perm uint32) (x *Inode, f *File, made bool, err error) {
	const op = "create"
	c, err := n.begin(ctx, op, true)
	if err != nil {
		return nil, nil, false, err
	}
	defer n.end()
	r, p, err := n.v.newName(c, op, n.x, name, syscall.EISDIR)
	if err != nil {
		return nil, nil, false, err
	}
	if r.x != nil && r.x.ent.Type() == dirtree.TypeLink && flag&os.O_EXCL == 0 {
		return nil, nil, false, errorf(op, p, syscall.ELOOP, errors.New("a symlink: resolve it first"))
	}
	f, made, err = n.v.openAt(c, op, p, r, flag|os.O_CREATE, perm&0o7777)
	if err != nil {
		return nil, nil, false, err
	}
	return n.v.handle(f.x), f, made, nil
}

// Mkdir makes the directory name in n with permission bits perm (set-ID
// bits are dropped and set-group-ID comes from n, as mkdir(2)) and returns
// a handle on it.
func (n *Inode) Mkdir(ctx context.Context, name string, perm uint32) (*Inode, error) {
	return n.make(ctx, "mkdir", name, dirtree.Entry{Mode: dirtree.TypeDir | perm&0o1777})
}

// Mknod makes a fifo, socket, device node or empty regular file; mode
// holds the type and permission bits, as mknod(2).
func (n *Inode) Mknod(ctx context.Context, name string, mode uint32, dev uint64) (*Inode, error) {
	switch mode & dirtree.TypeMask {
	case dirtree.TypeFifo, dirtree.TypeSock, dirtree.TypeChar, dirtree.TypeBlk:
	case 0, dirtree.TypeReg:
		mode, dev = dirtree.TypeReg|mode&0o7777, 0
	default:
		return nil, errorf("mknod", name, syscall.EINVAL, errors.New("unsupported file type"))
	}
	if t := mode & dirtree.TypeMask; t == dirtree.TypeChar || t == dirtree.TypeBlk {
		// A device node needs CAP_MKNOD: root, for a checked caller.
		if c := CredFrom(ctx); c.Check && !c.root() {
			return nil, errorf("mknod", name, syscall.EPERM, errors.New("only root makes device nodes"))
		}
	}
	return n.make(ctx, "mknod", name, dirtree.Entry{Mode: mode, Rdev: dev})
}

// Symlink makes the symbolic link name in n, pointing at target.
func (n *Inode) Symlink(ctx context.Context, target, name string) (*Inode, error) {
	if target == "" || len(target) > dirtree.MaxTarget || strings.IndexByte(target, 0) >= 0 {
		return nil, errorf("symlink", name, syscall.EINVAL, errors.New("bad target"))
	}
	return n.make(ctx, "symlink", name, dirtree.Entry{Mode: dirtree.TypeLink | 0o777, Target: target})
}

// make creates entry e as name in directory n for the caller.
func (n *Inode) make(ctx context.Context, op, name string, e dirtree.Entry) (*Inode, error) {
	c, err := n.begin(ctx, op, true)
	if err != nil {
		return nil, err
	}
	defer n.end()
	r, p, err := n.v.newName(c, op, n.x, name, syscall.EEXIST)
	if err != nil {
		return nil, err
	}
	x, err := n.v.create(op, p, r, e, c)
	if err != nil {
		return nil, err
	}
	return n.v.handle(x), nil
}

// Link gives the node x (not a directory) the name name in directory n.
func (n *Inode) Link(ctx context.Context, x *Inode, name string) error {
	const op = "link"
	c, err := n.begin(ctx, op, true)
	if err != nil {
		return err
	}
	defer n.end()
	if x.v != n.v {
		return errorf(op, name, syscall.EXDEV, nil)
	}
	if x.x == nil || x.x.removed {
		return errorf(op, name, syscall.ENOENT, nil)
	}
	rd, p, err := n.v.newName(c, op, n.x, name, syscall.EEXIST)
	if err != nil {
		return err
	}
	return n.v.linkAt(c, op, p, x.x, rd)
}

// Unlink removes the entry name, not a directory (EISDIR), from n.
func (n *Inode) Unlink(ctx context.Context, name string) error {
	return n.remove(ctx, "unlink", name, removeFile)
}

// Rmdir removes the empty directory name from n.
func (n *Inode) Rmdir(ctx context.Context, name string) error {
	return n.remove(ctx, "rmdir", name, removeDir)
}

// Remove removes the entry name, a file or an empty directory, from n.
func (n *Inode) Remove(ctx context.Context, name string) error {
	return n.remove(ctx, "remove", name, removeAny)
}

func (n *Inode) remove(ctx context.Context, op, name string, kind int) error {
	c, err := n.begin(ctx, op, true)
	if err != nil {
		return err
	}
	defer n.end()
	dots := syscall.EISDIR
	if kind != removeFile {
		dots = syscall.EINVAL
		if name == ".." {
			dots = syscall.ENOTEMPTY
		}
	}
	r, p, err := n.v.newName(c, op, n.x, name, dots)
	if err != nil {
		return err
	}
	return n.v.removeAt(c, op, p, r, kind)
}

// Rename moves the entry name of n to newName in directory to, with
// Volume.Rename's flags. Handles on the moved nodes stay valid.
func (n *Inode) Rename(ctx context.Context, name string, to *Inode, newName string, flags int) error {
	const op = "rename"
	c, err := n.begin(ctx, op, true)
	if err != nil {
		return err
	}
	defer n.end()
	if to.v != n.v {
		return errorf(op, name, syscall.EXDEV, nil)
	}
	if to.x == nil || to.x.removed {
		return errorf(op, newName, syscall.ENOENT, nil)
	}
	rs, oldp, err := n.v.newName(c, op, n.x, name, syscall.EBUSY)
	if err != nil {
		return err
	}
	rd, newp, err := n.v.newName(c, op, to.x, newName, syscall.EBUSY)
	if err != nil {
		return err
	}
	if !rd.dir.isDir() {
		return errorf(op, newp, syscall.ENOTDIR, nil)
	}
	if rd.dir.removed || (rd.dir.parent == nil && rd.dir != n.v.root) {
		return errorf(op, newp, syscall.ENOENT, errors.New("directory was removed"))
	}
	return n.v.renameAt(c, op, oldp, newp, rs, rd, flags)
}

// Setattr changes the node's attributes for the caller, as Linux's
// setattr decides (see SetAttr), and returns its new description. A size
// through a handle needs write permission; through a File open for
// writing (File.Setattr) it does not.
func (n *Inode) Setattr(ctx context.Context, a SetAttr) (*FileInfo, error) {
	c, err := n.begin(ctx, "setattr", true)
	if err != nil {
		return nil, err
	}
	defer n.end()
	p := n.x.path()
	if err := n.v.setattrAt(c, "setattr", p, n.x, a, false); err != nil {
		return nil, err
	}
	if err := n.x.flushBuf(); err != nil {
		return nil, wrapIO("setattr", p, err)
	}
	return n.x.info(baseName(p)), nil
}

// GetXattr returns the node's extended attribute name (see
// Volume.GetXattr), if the caller may read it.
func (n *Inode) GetXattr(ctx context.Context, name string) ([]byte, error) {
	c, err := n.begin(ctx, "getxattr", false)
	if err != nil {
		return nil, err
	}
	defer n.end()
	return n.v.getXattrAt(c, "getxattr", n.x.path(), n.x, name)
}

// ListXattr returns the names of the node's extended attributes, sorted.
// A checked caller other than root does not see "trusted." names, as on
// Linux.
func (n *Inode) ListXattr(ctx context.Context) ([]string, error) {
	c, err := n.begin(ctx, "listxattr", false)
	if err != nil {
		return nil, err
	}
	defer n.end()
	names := n.x.xattrNames()
	if c.Check && !c.root() {
		names = slices.DeleteFunc(names, func(s string) bool { return strings.HasPrefix(s, "trusted.") })
	}
	return names, nil
}

// MayXattr fails as setting (write) or reading extended attribute name of
// the node would for the caller's permission, without doing it: for a
// frontend that learns a value after the name (9P's Txattrcreate).
func (n *Inode) MayXattr(ctx context.Context, name string, write bool) error {
	c, err := n.begin(ctx, "xattr", write)
	if err != nil {
		return err
	}
	defer n.end()
	if err := xattrName("xattr", n.x.path(), name); err != nil {
		return err
	}
	return c.xattrAccess("xattr", n.x.path(), &n.x.ent, name, write)
}

// Parent returns a handle on the directory holding the node and the
// node's name there. A root, and a node that has no name (removed while
// open), have none: ENOENT.
func (n *Inode) Parent(ctx context.Context) (*Inode, string, error) {
	_, err := n.begin(ctx, "parent", false)
	if err != nil {
		return nil, "", err
	}
	defer n.end()
	if n.x.parent == nil || n.x.parent.removed {
		return nil, "", errorf("parent", n.x.path(), syscall.ENOENT, errors.New("no directory holds it"))
	}
	return n.v.handle(n.x.parent), n.x.name, nil
}

// SetXattr sets the node's extended attribute name (see Volume.SetXattr),
// if the caller may.
func (n *Inode) SetXattr(ctx context.Context, name string, value []byte, flags int) error {
	c, err := n.begin(ctx, "setxattr", true)
	if err != nil {
		return err
	}
	defer n.end()
	if err := n.v.setXattrAt(c, "setxattr", n.x.path(), n.x, name, value, flags); err != nil {
		return err
	}
	n.x.stamp(false)
	return nil
}

// RemoveXattr removes the node's extended attribute name (see
// Volume.RemoveXattr), if the caller may.
func (n *Inode) RemoveXattr(ctx context.Context, name string) error {
	c, err := n.begin(ctx, "removexattr", true)
	if err != nil {
		return err
	}
	defer n.end()
	if err := removeXattrAt(c, "removexattr", n.x.path(), n.x, name); err != nil {
		return err
	}
	n.x.stamp(false)
	return nil
}
