package ninep

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cowfs/cowfs/ctl/ctlclient"
	"github.com/cowfs/cowfs/fusefs"
	"github.com/cowfs/cowfs/internal/control"
	"github.com/cowfs/cowfs/internal/fusetest"
)

// nsOp is an operation on a path of a served volume, as a system call
// names it: what the control namespace test runs through both frontends.
type nsOp struct {
	do       string // stat, list, read, open, mkdir, create, symlink, link, unlink, rmdir, rename, chmod, truncate, getxattr, listxattr, setxattr
	path, to string // to: the new name of link and rename, the target of symlink
	flags    int    // open's flags
	uid      uint32 // the caller: 0 (root) or otherUser
}

// otherUser is a user without an entry in the user database, so without
// groups.
const otherUser = 4242

func (o nsOp) String() string {
	s := o.do + " " + o.path
	if o.to != "" {
		s += " " + o.to
	}
	if o.do == "open" {
		s += fmt.Sprintf(" %#x", o.flags)
	}
	if o.uid != 0 {
		s += fmt.Sprintf(" as %d", o.uid)
	}
	return s
}

// nsOutcome is what an operation came to: its errno (0 for success) and,
// for stat, list, read, getxattr and listxattr, what it found.
type nsOutcome struct {
	errno syscall.Errno
	val   string
}

func (o nsOutcome) String() string {
	if o.errno != 0 {
		return fmt.Sprintf("%v (%d)", o.errno, int(o.errno))
	}
	return "ok " + o.val
}

// statVal is the value of a stat: the kind of number (a fixed node's, one
// handed out, or the volume's own), mode, owner, links and size.
func statVal(ino uint64, mode, uid, gid uint32, nlink, size uint64) string {
	num := "volume"
	switch {
	case ino > control.AllocBase:
		num = "handed-out"
	case ino >= control.FirstIno:
		num = fmt.Sprintf("fixed-%#x", ino)
	}
	return fmt.Sprintf("%s mode=%o uid=%d gid=%d nlink=%d size=%d", num, mode, uid, gid, nlink, size)
}

// TestControlNamespaceLikeFUSE runs the same operations on the control
// namespace .cowfs through a real FUSE mount (fusefs) and through a 9P
// server, both serving volume main of one FS, each with a view served in
// files/ through its own control file, and checks that both come to the
// outcome package internal/control's rules give: the root's listing hides
// .cowfs (even though the volume holds an entry of that name, which a
// snapshot shows); the nodes' numbers, modes and owners; the reserved name
// refused at the root; nothing made or removed inside .cowfs but a served
// view; snapshots and views read-only; ctl root's.
func TestControlNamespaceLikeFUSE(t *testing.T) {
	fusetest.Require(t)
	s := newServer(t)
	vol, err := s.FS.Volume("main")
	must(t, err)
	must(t, vol.WriteFile("f", []byte("content"), 0o644))
	must(t, vol.Mkdir("d", 0o755))
	must(t, vol.Mkdir(control.DirName, 0o755)) // made through the Go API: hidden all the same
	must(t, vol.Snapshot("s"))

	dir := fusetest.TempDir(t)
	must(t, os.Chmod(filepath.Dir(dir), 0o755)) // for otherUser: tests' temporary directories are 0700
	mnt, err := fusefs.Mount(s.FS, vol, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mnt.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		mnt.Wait()
	})
	if served, err := (ctlclient.Mount{Root: dir}).SnapshotFile("f"); err != nil || served != filepath.Join(dir, ".cowfs/files/1") {
		t.Fatalf("snapshot-file through the mount: %q, %v", served, err)
	}
	ninep := map[uint32]*aclClient{0: newACLClient(t, s, 0), otherUser: newACLClient(t, s, otherUser)}
	ctlFid := ninep[0].walk(".cowfs", "ctl")
	ninep[0].ok(&Msg{Type: Tlopen, Fid: ctlFid, Flags: syscall.O_RDWR})
	ninep[0].ok(&Msg{Type: Twrite, Fid: ctlFid, Data: []byte("snapshot-file f\n")})
	if rd := ninep[0].ok(&Msg{Type: Tread, Fid: ctlFid, Count: 100}); string(rd.Data) != ".cowfs/files/1\n" {
		t.Fatalf("snapshot-file over 9P: %q", rd.Data)
	}
	ninep[0].ok(&Msg{Type: Tclunk, Fid: ctlFid})

	dirMode := func(ino uint64) string { return statVal(ino, syscall.S_IFDIR|0o555, 0, 0, 2, 0) }
	ok := func(val string) nsOutcome { return nsOutcome{val: val} }
	fails := func(e syscall.Errno) nsOutcome { return nsOutcome{errno: e} }
	cases := []struct {
		op   nsOp
		want nsOutcome
	}{
		// Listings: .cowfs only by lookup, and only at the served root.
		{nsOp{do: "list", path: "."}, ok("d f")},
		{nsOp{do: "list", path: ".cowfs"}, ok("ctl files snapshots")},
		{nsOp{do: "list", path: ".cowfs/snapshots"}, ok("s")},
		{nsOp{do: "list", path: ".cowfs/files"}, ok("1")},
		{nsOp{do: "list", path: ".cowfs/snapshots/s"}, ok(".cowfs d f")},
		// Attributes and numbers.
		{nsOp{do: "stat", path: ".cowfs"}, ok(dirMode(control.RootIno))},
		{nsOp{do: "stat", path: ".cowfs/ctl"}, ok(statVal(control.CtlIno, syscall.S_IFREG|0o600, 0, 0, 1, 0))},
		{nsOp{do: "stat", path: ".cowfs/ctl", uid: otherUser}, ok(statVal(control.CtlIno, syscall.S_IFREG|0o600, 0, 0, 1, 0))},
		{nsOp{do: "stat", path: ".cowfs/snapshots"}, ok(dirMode(control.SnapshotsIno))},
		{nsOp{do: "stat", path: ".cowfs/files"}, ok(dirMode(control.FilesIno))},
		{nsOp{do: "stat", path: ".cowfs/files/1"}, ok(statVal(control.AllocBase+1, syscall.S_IFREG|0o444, 0, 0, 1, 7))},
		{nsOp{do: "stat", path: ".cowfs/snapshots/s"}, ok(statVal(control.AllocBase+1, syscall.S_IFDIR|0o755, 0, 0, 4, 4096))},
		{nsOp{do: "stat", path: ".cowfs/snapshots/s/f"}, ok(statVal(control.AllocBase+1, syscall.S_IFREG|0o644, 0, 0, 1, 7))},
		{nsOp{do: "stat", path: ".cowfs/snapshots/s/.cowfs"}, ok(statVal(control.AllocBase+1, syscall.S_IFDIR|0o755, 0, 0, 2, 4096))},
		{nsOp{do: "stat", path: ".cowfs/nothing"}, fails(syscall.ENOENT)},
		{nsOp{do: "stat", path: ".cowfs/files/01"}, fails(syscall.ENOENT)},
		{nsOp{do: "stat", path: ".cowfs/snapshots/nosuch"}, fails(syscall.ENOENT)},
		{nsOp{do: "read", path: ".cowfs/files/1"}, ok("content")},
		{nsOp{do: "read", path: ".cowfs/snapshots/s/f"}, ok("content")},
		// The reserved name at the root.
		{nsOp{do: "mkdir", path: ".cowfs"}, fails(syscall.EEXIST)},
		{nsOp{do: "create", path: ".cowfs"}, fails(syscall.EEXIST)},
		{nsOp{do: "symlink", path: ".cowfs", to: "f"}, fails(syscall.EEXIST)},
		{nsOp{do: "link", path: "f", to: ".cowfs"}, fails(syscall.EEXIST)},
		{nsOp{do: "rmdir", path: ".cowfs"}, fails(syscall.EBUSY)},
		{nsOp{do: "rename", path: ".cowfs", to: "x"}, fails(syscall.EBUSY)},
		{nsOp{do: "rename", path: "d", to: ".cowfs"}, fails(syscall.EBUSY)},
		// Nothing is made or removed inside .cowfs; renames do not cross it.
		{nsOp{do: "mkdir", path: ".cowfs/x"}, fails(syscall.EROFS)},
		{nsOp{do: "mkdir", path: ".cowfs/snapshots/x"}, fails(syscall.EROFS)},
		{nsOp{do: "create", path: ".cowfs/x"}, fails(syscall.EROFS)},
		{nsOp{do: "create", path: ".cowfs/files/x"}, fails(syscall.EROFS)},
		{nsOp{do: "symlink", path: ".cowfs/x", to: "f"}, fails(syscall.EROFS)},
		{nsOp{do: "link", path: "f", to: ".cowfs/x"}, fails(syscall.EROFS)},
		{nsOp{do: "unlink", path: ".cowfs/ctl"}, fails(syscall.EROFS)},
		{nsOp{do: "rmdir", path: ".cowfs/snapshots"}, fails(syscall.EROFS)},
		{nsOp{do: "rmdir", path: ".cowfs/snapshots/s"}, fails(syscall.EROFS)},
		{nsOp{do: "rename", path: ".cowfs/ctl", to: ".cowfs/x"}, fails(syscall.EXDEV)},
		{nsOp{do: "rename", path: "f", to: ".cowfs/files/x"}, fails(syscall.EXDEV)},
		{nsOp{do: "rename", path: ".cowfs/files/1", to: "g"}, fails(syscall.EXDEV)},
		{nsOp{do: "chmod", path: ".cowfs"}, fails(syscall.EPERM)},
		{nsOp{do: "chmod", path: ".cowfs/snapshots"}, fails(syscall.EPERM)},
		{nsOp{do: "chmod", path: ".cowfs/ctl"}, fails(syscall.EPERM)},
		{nsOp{do: "truncate", path: ".cowfs/ctl"}, ok("")},
		// Snapshots and views are read-only.
		{nsOp{do: "create", path: ".cowfs/snapshots/s/new"}, fails(syscall.EROFS)},
		{nsOp{do: "mkdir", path: ".cowfs/snapshots/s/x"}, fails(syscall.EROFS)},
		{nsOp{do: "unlink", path: ".cowfs/snapshots/s/f"}, fails(syscall.EROFS)},
		{nsOp{do: "rename", path: ".cowfs/snapshots/s/f", to: ".cowfs/snapshots/s/g"}, fails(syscall.EROFS)},
		{nsOp{do: "open", path: ".cowfs/snapshots/s/f", flags: os.O_WRONLY}, fails(syscall.EROFS)},
		{nsOp{do: "chmod", path: ".cowfs/snapshots/s/f"}, fails(syscall.EROFS)},
		{nsOp{do: "open", path: ".cowfs/files/1", flags: os.O_WRONLY}, fails(syscall.EROFS)},
		{nsOp{do: "chmod", path: ".cowfs/files/1"}, fails(syscall.EROFS)},
		// No extended attributes; setting one is a change.
		{nsOp{do: "getxattr", path: ".cowfs"}, fails(syscall.ENODATA)},
		{nsOp{do: "getxattr", path: ".cowfs/ctl"}, fails(syscall.ENODATA)},
		{nsOp{do: "getxattr", path: ".cowfs/files/1"}, fails(syscall.ENODATA)},
		{nsOp{do: "listxattr", path: ".cowfs/ctl"}, ok("")},
		{nsOp{do: "listxattr", path: ".cowfs/files/1"}, ok("")},
		{nsOp{do: "setxattr", path: ".cowfs"}, fails(syscall.EPERM)},
		{nsOp{do: "setxattr", path: ".cowfs/ctl"}, fails(syscall.EPERM)},
		{nsOp{do: "setxattr", path: ".cowfs/files/1"}, fails(syscall.EROFS)},
		{nsOp{do: "setxattr", path: ".cowfs/snapshots/s/f"}, fails(syscall.EROFS)},
		// The control file is root's.
		{nsOp{do: "open", path: ".cowfs/ctl", flags: os.O_RDWR, uid: otherUser}, fails(syscall.EACCES)},
		{nsOp{do: "open", path: ".cowfs/ctl", flags: os.O_RDWR}, ok("")},
		// Permissions come first, as the kernel checks them.
		{nsOp{do: "rmdir", path: ".cowfs", uid: otherUser}, fails(syscall.EACCES)},
		{nsOp{do: "rename", path: ".cowfs", to: "x", uid: otherUser}, fails(syscall.EACCES)},
		{nsOp{do: "unlink", path: ".cowfs/ctl", uid: otherUser}, fails(syscall.EACCES)},
		{nsOp{do: "rmdir", path: ".cowfs/snapshots/s", uid: otherUser}, fails(syscall.EACCES)},
		{nsOp{do: "mkdir", path: ".cowfs/x", uid: otherUser}, fails(syscall.EACCES)},
		// Removing a served view releases it; only root may.
		{nsOp{do: "unlink", path: ".cowfs/files/1", uid: otherUser}, fails(syscall.EACCES)},
		{nsOp{do: "unlink", path: ".cowfs/files/1"}, ok("")},
		{nsOp{do: "list", path: ".cowfs/files"}, ok("")},
		{nsOp{do: "stat", path: ".cowfs/files/1"}, fails(syscall.ENOENT)},
	}
	for _, tc := range cases {
		viaFUSE := fuseDo(dir, tc.op)
		via9P := ninepDo(ninep[tc.op.uid], tc.op)
		if viaFUSE != tc.want || via9P != tc.want {
			t.Errorf("%v:\n\tFUSE %v\n\t9P   %v\n\twant %v", tc.op, viaFUSE, via9P, tc.want)
		}
	}
}

// nsXattr is the extended attribute the xattr operations name.
const nsXattr = "user.x"

// xattrVal is a value or a list of extended attributes (NUL-separated
// names), printable.
func xattrVal(b []byte) string { return strings.ReplaceAll(string(b), "\x00", " ") }

// errnoOfErr is the errno of a system call's error; 0 for none.
func errnoOfErr(err error) syscall.Errno {
	var e syscall.Errno
	if err == nil || !errors.As(err, &e) {
		return 0
	}
	return e
}

// fuseDo runs o on the mount at dir through system calls.
func fuseDo(dir string, o nsOp) nsOutcome {
	if o.uid != 0 {
		// The kernel checks a FUSE mount's permissions against the file
		// system user of the calling thread.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		unix.Setfsuid(int(o.uid))
		unix.Setfsgid(int(o.uid))
		defer unix.Setfsgid(0)
		defer unix.Setfsuid(0)
	}
	p, to := filepath.Join(dir, o.path), filepath.Join(dir, o.to)
	var err error
	var val string
	switch o.do {
	case "stat":
		var st syscall.Stat_t
		if err = syscall.Lstat(p, &st); err == nil {
			val = statVal(st.Ino, st.Mode, st.Uid, st.Gid, st.Nlink, uint64(st.Size))
		}
	case "list":
		var ents []os.DirEntry
		ents, err = os.ReadDir(p)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		val = strings.Join(names, " ")
	case "read":
		var b []byte
		b, err = os.ReadFile(p)
		val = string(b)
	case "open":
		var f *os.File
		if f, err = os.OpenFile(p, o.flags, 0); err == nil {
			f.Close()
		}
	case "mkdir":
		err = syscall.Mkdir(p, 0o755)
	case "create":
		var fd int
		if fd, err = syscall.Open(p, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, 0o644); err == nil {
			syscall.Close(fd)
		}
	case "symlink":
		err = syscall.Symlink(o.to, p)
	case "link":
		err = syscall.Link(p, to)
	case "unlink":
		err = syscall.Unlink(p)
	case "rmdir":
		err = syscall.Rmdir(p)
	case "rename":
		err = syscall.Rename(p, to)
	case "chmod":
		err = syscall.Chmod(p, 0o700)
	case "truncate":
		err = syscall.Truncate(p, 0)
	case "getxattr", "listxattr":
		buf := make([]byte, 1000)
		var n int
		if o.do == "getxattr" {
			n, err = unix.Getxattr(p, nsXattr, buf)
		} else {
			n, err = unix.Listxattr(p, buf)
		}
		val = xattrVal(buf[:max(n, 0)])
	case "setxattr":
		err = unix.Setxattr(p, nsXattr, []byte("v"), 0)
	}
	if err != nil {
		return nsOutcome{errno: errnoOfErr(err)}
	}
	return nsOutcome{val: val}
}

// ninepDo runs o over 9P2000.L, with the messages Linux's v9fs sends for
// its system call.
func ninepDo(c *aclClient, o nsOp) nsOutcome {
	var cleanup []uint32
	defer func() {
		for _, fid := range cleanup {
			c.rpc(&Msg{Type: Tclunk, Fid: fid})
		}
	}()
	// walk returns a new fid for p; a walk that stops short is ENOENT.
	walk := func(p string) (uint32, syscall.Errno) {
		var names []string
		if p != "." {
			names = strings.Split(p, "/")
		}
		c.next++
		r := c.rpc(&Msg{Type: Twalk, Fid: 0, Newfid: c.next, Names: names})
		switch {
		case r.Type == Rlerror:
			return 0, syscall.Errno(r.Ecode)
		case len(r.Qids) < len(names):
			return 0, syscall.ENOENT
		}
		cleanup = append(cleanup, c.next)
		return c.next, 0
	}
	// call sends m and returns its errno.
	call := func(m *Msg) (*Msg, syscall.Errno) {
		r := c.rpc(m)
		if r.Type == Rlerror {
			return r, syscall.Errno(r.Ecode)
		}
		return r, 0
	}
	// onPath walks to p and runs do on its fid.
	onPath := func(p string, do func(fid uint32) (string, syscall.Errno)) nsOutcome {
		fid, e := walk(p)
		if e != 0 {
			return nsOutcome{errno: e}
		}
		val, e := do(fid)
		return nsOutcome{errno: e, val: val}
	}
	// inDir walks to the directory of p and runs do on its fid and p's name.
	inDir := func(p string, do func(dfid uint32, name string) *Msg) nsOutcome {
		return onPath(path.Dir(p), func(dfid uint32) (string, syscall.Errno) {
			_, e := call(do(dfid, path.Base(p)))
			return "", e
		})
	}
	switch o.do {
	case "getxattr", "listxattr":
		name := nsXattr
		if o.do == "listxattr" {
			name = ""
		}
		b, e := c.xattrGet(name, strings.Split(o.path, "/")...)
		return nsOutcome{errno: e, val: xattrVal(b)}
	case "setxattr":
		return nsOutcome{errno: c.xattrSet(nsXattr, []byte("v"), 0, strings.Split(o.path, "/")...)}
	case "stat":
		return onPath(o.path, func(fid uint32) (string, syscall.Errno) {
			r, e := call(&Msg{Type: Tgetattr, Fid: fid, Mask: attrBasic})
			a := r.Attr
			return statVal(a.Qid.Path, a.Mode, a.UID, a.GID, a.Nlink, a.Size), e
		})
	case "list":
		return onPath(o.path, func(fid uint32) (string, syscall.Errno) {
			if _, e := call(&Msg{Type: Tlopen, Fid: fid, Flags: syscall.O_RDONLY}); e != 0 {
				return "", e
			}
			var names []string
			for off := uint64(0); ; {
				r, e := call(&Msg{Type: Treaddir, Fid: fid, Offset: off, Count: 8000})
				if e != 0 || len(r.Data) == 0 {
					slices.Sort(names)
					return strings.Join(names, " "), e
				}
				for d := (decoder{b: r.Data}); len(d.b) > 0 && d.err == nil; {
					d.qid()
					off = d.u64()
					d.u8()
					if name := d.str(); name != "." && name != ".." {
						names = append(names, name)
					}
				}
			}
		})
	case "read", "open":
		return onPath(o.path, func(fid uint32) (string, syscall.Errno) {
			if _, e := call(&Msg{Type: Tlopen, Fid: fid, Flags: uint32(o.flags)}); e != 0 || o.do == "open" {
				return "", e
			}
			r, e := call(&Msg{Type: Tread, Fid: fid, Count: 100})
			return string(r.Data), e
		})
	case "mkdir":
		return inDir(o.path, func(dfid uint32, name string) *Msg {
			return &Msg{Type: Tmkdir, Dfid: dfid, Name: name, Mode: 0o755}
		})
	case "create":
		return inDir(o.path, func(dfid uint32, name string) *Msg {
			return &Msg{Type: Tlcreate, Fid: dfid, Name: name, Flags: syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL, Mode: 0o644}
		})
	case "symlink":
		return inDir(o.path, func(dfid uint32, name string) *Msg {
			return &Msg{Type: Tsymlink, Fid: dfid, Name: name, Target: o.to}
		})
	case "link":
		return onPath(o.path, func(fid uint32) (string, syscall.Errno) {
			return "", inDir(o.to, func(dfid uint32, name string) *Msg {
				return &Msg{Type: Tlink, Dfid: dfid, Fid: fid, Name: name}
			}).errno
		})
	case "unlink", "rmdir":
		var flags uint32
		if o.do == "rmdir" {
			flags = atRemoveDir
		}
		return inDir(o.path, func(dfid uint32, name string) *Msg {
			return &Msg{Type: Tunlinkat, Fid: dfid, Name: name, Flags: flags}
		})
	case "rename":
		return onPath(path.Dir(o.to), func(ndfid uint32) (string, syscall.Errno) {
			return "", inDir(o.path, func(odfid uint32, name string) *Msg {
				return &Msg{Type: Trenameat, Fid: odfid, Name: name, Dfid: ndfid, NewName: path.Base(o.to)}
			}).errno
		})
	case "chmod", "truncate":
		attr := Attr{Valid: attrMode, Mode: 0o700}
		if o.do == "truncate" {
			attr = Attr{Valid: setattrSize}
		}
		return onPath(o.path, func(fid uint32) (string, syscall.Errno) {
			_, e := call(&Msg{Type: Tsetattr, Fid: fid, Attr: attr})
			return "", e
		})
	}
	c.t.Fatalf("unknown operation %q", o.do)
	return nsOutcome{}
}

// TestControlRemoveAndRename9P covers the requests of the control
// namespace that only 9P has, on a fid rather than a name: Tremove
// (9P2000's remove) and Trename. Only a served view can be removed; the
// rest refuse as their names do in a directory (EBUSY for .cowfs, EROFS
// below it, EXDEV for a rename), after the permission check on the
// directory holding them.
func TestControlRemoveAndRename9P(t *testing.T) {
	s := newServer(t)
	vol, _ := s.FS.Volume("main")
	must(t, vol.WriteFile("f", []byte("content"), 0o644))
	must(t, vol.Snapshot("s"))
	root, other := newACLClient(t, s, 0), newACLClient(t, s, otherUser)
	ctlFid := root.walk(".cowfs", "ctl")
	root.ok(&Msg{Type: Tlopen, Fid: ctlFid, Flags: syscall.O_RDWR})
	root.ok(&Msg{Type: Twrite, Fid: ctlFid, Data: []byte("snapshot-file f")})
	root.ok(&Msg{Type: Tclunk, Fid: ctlFid})

	for _, tc := range []struct {
		path       []string
		asRoot     syscall.Errno
		rename     syscall.Errno
		asOtherRem syscall.Errno
	}{
		{[]string{".cowfs"}, syscall.EBUSY, syscall.EBUSY, syscall.EACCES},
		{[]string{".cowfs", "ctl"}, syscall.EROFS, syscall.EXDEV, syscall.EACCES},
		{[]string{".cowfs", "snapshots"}, syscall.EROFS, syscall.EXDEV, syscall.EACCES},
		{[]string{".cowfs", "snapshots", "s"}, syscall.EROFS, syscall.EXDEV, syscall.EACCES},
	} {
		other.fails(&Msg{Type: Tremove, Fid: other.walk(tc.path...)}, tc.asOtherRem)
		root.fails(&Msg{Type: Tremove, Fid: root.walk(tc.path...)}, tc.asRoot)
		root.fails(&Msg{Type: Trename, Fid: root.walk(tc.path...), Dfid: 0, Name: "x"}, tc.rename)
	}
	root.fails(&Msg{Type: Trename, Fid: root.walk(".cowfs", "files", "1"), Dfid: 0, Name: "x"}, syscall.EXDEV)
	other.fails(&Msg{Type: Tremove, Fid: other.walk(".cowfs", "files", "1")}, syscall.EACCES)
	root.ok(&Msg{Type: Tremove, Fid: root.walk(".cowfs", "files", "1")})
	if r := root.rpc(&Msg{Type: Twalk, Fid: 0, Newfid: 99, Names: []string{".cowfs", "files", "1"}}); r.Type != Twalk+1 || len(r.Qids) != 2 {
		t.Errorf("walk to a removed view: %v, want a walk that stops at files", r)
	}
}
