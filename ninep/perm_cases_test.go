package ninep

import (
	"errors"
	"os"
	"path"
	"strings"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/acl"
	"github.com/cowfs/cowfs/internal/fusetest"
	"github.com/cowfs/cowfs/internal/permcases"
)

func TestMain(m *testing.M) {
	permcases.MaybeChild()
	os.Exit(m.Run())
}

// permRunner runs the permission table on a server: the setup through the
// engine's Go API on the served volume, each user's operations over a
// 9P2000.L attach as that user, sent as Linux's v9fs client sends them
// (a lookup walks one name at a time; the client applies the umask unless
// a default ACL decides the mode).
type permRunner struct {
	t     testing.TB
	s     *Server
	v     *cowfs.Volume
	conns map[uint32]*raw // by user ID
	next  uint32          // the last fid used
}

func (r *permRunner) Setup(n permcases.Node) error {
	v, p := r.v, n.Path
	var err error
	switch n.Kind {
	case permcases.File:
		err = v.WriteFile(p, []byte(n.Content), 0o600)
	case permcases.Dir:
		err = v.Mkdir(p, 0o700)
	case permcases.Symlink:
		err = v.Symlink(n.Target, p)
	case permcases.Fifo:
		err = v.Mknod(p, syscall.S_IFIFO|0o600, 0)
	}
	if err != nil {
		return err
	}
	for k, val := range n.Xattrs {
		if err := v.SetXattr(p, k, []byte(val), 0); err != nil {
			return err
		}
	}
	if err := v.Lchown(p, int(n.UID), int(n.GID)); err != nil {
		return err
	}
	if n.Kind == permcases.Symlink {
		return nil
	}
	if err := v.Chmod(p, n.Mode); err != nil {
		return err
	}
	if n.ACL != nil {
		if err := v.SetXattr(p, acl.AccessXattr, n.ACL, 0); err != nil {
			return err
		}
	}
	if n.Default != nil {
		return v.SetXattr(p, acl.DefaultXattr, n.Default, 0)
	}
	return nil
}

func (r *permRunner) Lstat(p string) (permcases.Stat, error) {
	fi, err := r.v.Lstat(p)
	if errors.Is(err, syscall.ENOENT) {
		return permcases.Stat{}, nil
	} else if err != nil {
		return permcases.Stat{}, err
	}
	st := fi.Stat()
	s := permcases.Stat{Exists: true, Mode: st.Mode, UID: st.UID, GID: st.GID}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		s.Size = st.Size
	case syscall.S_IFLNK:
		return s, nil
	}
	for _, a := range []struct {
		name string
		to   *string
	}{{acl.AccessXattr, &s.ACL}, {acl.DefaultXattr, &s.Default}} {
		b, err := r.v.GetXattr(p, a.name)
		if err != nil && !errors.Is(err, syscall.ENODATA) {
			return s, err
		}
		*a.to = string(b)
	}
	return s, nil
}

// errno is a reply's error, 0 for success.
func errno(m *Msg) syscall.Errno {
	if m.Type == Rlerror {
		return syscall.Errno(m.Ecode)
	}
	return 0
}

// fid returns a new fid number.
func (r *permRunner) fid() uint32 {
	r.next++
	return r.next
}

// walk walks c from its root to p (p "." is the root), one name at a
// time, to a new fid it adds to fids.
func (r *permRunner) walk(c *raw, p string, fids *[]uint32) (uint32, syscall.Errno) {
	f := r.fid()
	if e := errno(c.rpc(&Msg{Type: Twalk, Fid: 0, Newfid: f})); e != 0 {
		return 0, e
	}
	*fids = append(*fids, f)
	if p == "." {
		return f, 0
	}
	for name := range strings.SplitSeq(p, "/") {
		if e := errno(c.rpc(&Msg{Type: Twalk, Fid: f, Newfid: f, Names: []string{name}})); e != 0 {
			return 0, e
		}
	}
	return f, 0
}

func (r *permRunner) conn(u permcases.User) *raw {
	c, ok := r.conns[u.UID]
	if !ok {
		c = dial(r.t, r.s)
		c.attachL(u.UID, "")
		r.conns[u.UID] = c
	}
	return c
}

// createMode is what Linux's client asks for when u makes an entry of
// mode in dir: the mode without u's umask, unless dir has a default ACL.
func (r *permRunner) createMode(u permcases.User, dir string, mode uint32) uint32 {
	if def, err := r.v.GetXattr(dir, acl.DefaultXattr); err == nil && len(def) > 0 {
		return mode
	}
	return mode &^ u.Umask
}

// xattrSet sets (value non-nil) or removes attribute name of fid f.
func xattrSet(c *raw, f uint32, name string, value []byte) syscall.Errno {
	if e := errno(c.rpc(&Msg{Type: Txattrcreate, Fid: f, Name: name, Size: uint64(len(value))})); e != 0 {
		return e
	}
	if len(value) > 0 {
		if e := errno(c.rpc(&Msg{Type: Twrite, Fid: f, Data: value})); e != 0 {
			return e
		}
	}
	return errno(c.rpc(&Msg{Type: Tclunk, Fid: f}))
}

func (r *permRunner) Do(u permcases.User, op permcases.Op) syscall.Errno {
	c := r.conn(u)
	var fids []uint32
	defer func() {
		for _, f := range fids {
			c.rpc(&Msg{Type: Tclunk, Fid: f})
		}
	}()
	walk := func(p string) (uint32, syscall.Errno) { return r.walk(c, p, &fids) }
	dir, name := path.Split(op.Path)
	dir = path.Clean(dir)
	parent := func() (uint32, syscall.Errno) { return walk(dir) }
	setattr := func(a Attr) syscall.Errno {
		f, e := walk(op.Path)
		if e != 0 {
			return e
		}
		return errno(c.rpc(&Msg{Type: Tsetattr, Fid: f, Attr: a}))
	}
	switch op.Kind {
	case permcases.Open:
		if op.Flags&syscall.O_CREAT != 0 {
			d, e := parent()
			if e != 0 {
				return e
			}
			f := r.fid()
			e = errno(c.rpc(&Msg{Type: Twalk, Fid: d, Newfid: f, Names: []string{name}}))
			switch {
			case e == 0 && op.Flags&syscall.O_EXCL != 0:
				fids = append(fids, f)
				return syscall.EEXIST
			case e == 0:
				fids = append(fids, f)
				return errno(c.rpc(&Msg{Type: Tlopen, Fid: f, Flags: uint32(op.Flags &^ (syscall.O_CREAT | syscall.O_EXCL))}))
			case e != syscall.ENOENT:
				return e
			}
			return errno(c.rpc(&Msg{Type: Tlcreate, Fid: d, Name: name, Flags: uint32(op.Flags),
				Mode: r.createMode(u, dir, op.Mode), Gid: u.GID}))
		}
		f, e := walk(op.Path)
		if e != 0 {
			return e
		}
		return errno(c.rpc(&Msg{Type: Tlopen, Fid: f, Flags: uint32(op.Flags)}))
	case permcases.Mkdir, permcases.Mkfifo, permcases.MkSymlink:
		d, e := parent()
		if e != 0 {
			return e
		}
		switch op.Kind {
		case permcases.Mkdir:
			return errno(c.rpc(&Msg{Type: Tmkdir, Dfid: d, Name: name, Mode: r.createMode(u, dir, op.Mode), Gid: u.GID}))
		case permcases.Mkfifo:
			return errno(c.rpc(&Msg{Type: Tmknod, Dfid: d, Name: name, Mode: syscall.S_IFIFO | r.createMode(u, dir, op.Mode), Gid: u.GID}))
		}
		return errno(c.rpc(&Msg{Type: Tsymlink, Fid: d, Name: name, Target: op.Target, Gid: u.GID}))
	case permcases.Link:
		f, e := walk(op.Path)
		if e != 0 {
			return e
		}
		d, e := walk(path.Dir(op.Path2))
		if e != 0 {
			return e
		}
		return errno(c.rpc(&Msg{Type: Tlink, Dfid: d, Fid: f, Name: path.Base(op.Path2)}))
	case permcases.Unlink, permcases.Rmdir:
		d, e := parent()
		if e != 0 {
			return e
		}
		var flags uint32
		if op.Kind == permcases.Rmdir {
			flags = atRemoveDir
		}
		return errno(c.rpc(&Msg{Type: Tunlinkat, Fid: d, Name: name, Flags: flags}))
	case permcases.Rename:
		d, e := parent()
		if e != 0 {
			return e
		}
		nd, e := walk(path.Dir(op.Path2))
		if e != 0 {
			return e
		}
		return errno(c.rpc(&Msg{Type: Trenameat, Fid: d, Name: name, Dfid: nd, NewName: path.Base(op.Path2)}))
	case permcases.Chmod:
		return setattr(Attr{Valid: attrMode, Mode: op.Mode})
	case permcases.Chown:
		var a Attr
		if op.UID >= 0 {
			a.Valid, a.UID = a.Valid|attrUID, uint32(op.UID)
		}
		if op.GID >= 0 {
			a.Valid, a.GID = a.Valid|attrGID, uint32(op.GID)
		}
		return setattr(a)
	case permcases.Truncate:
		return setattr(Attr{Valid: setattrSize})
	case permcases.UtimesNow:
		return setattr(Attr{Valid: setattrAtime | setattrMtime})
	case permcases.UtimesSet:
		ts := Timespec{Sec: 981173106}
		return setattr(Attr{Valid: setattrAtime | setattrMtime | setattrAtSet | setattrMtSet, Atime: ts, Mtime: ts})
	case permcases.Write:
		f, e := walk(op.Path)
		if e != 0 {
			return e
		}
		if e := errno(c.rpc(&Msg{Type: Tlopen, Fid: f, Flags: syscall.O_WRONLY})); e != 0 {
			return e
		}
		return errno(c.rpc(&Msg{Type: Twrite, Fid: f, Data: []byte("w")}))
	case permcases.SetXattr, permcases.RemoveXattr, permcases.SetACL:
		f, e := walk(op.Path)
		if e != 0 {
			return e
		}
		switch op.Kind {
		case permcases.SetACL:
			return xattrSet(c, f, acl.AccessXattr, op.Value)
		case permcases.RemoveXattr:
			return xattrSet(c, f, op.Name, nil)
		}
		return xattrSet(c, f, op.Name, op.Value)
	case permcases.GetXattr:
		f, e := walk(op.Path)
		if e != 0 {
			return e
		}
		x := r.fid()
		e = errno(c.rpc(&Msg{Type: Txattrwalk, Fid: f, Newfid: x, Name: op.Name}))
		if e == 0 {
			fids = append(fids, x)
		}
		return e
	case permcases.Lstat:
		f, e := walk(op.Path)
		if e != 0 {
			return e
		}
		return errno(c.rpc(&Msg{Type: Tgetattr, Fid: f, Mask: attrBasic}))
	case permcases.Readdir:
		f, e := walk(op.Path)
		if e != 0 {
			return e
		}
		if e := errno(c.rpc(&Msg{Type: Tlopen, Fid: f, Flags: syscall.O_RDONLY | syscall.O_DIRECTORY})); e != 0 {
			return e
		}
		return errno(c.rpc(&Msg{Type: Treaddir, Fid: f, Count: 4096}))
	}
	return syscall.ENOSYS
}

// skip9P says why a case cannot be expressed over 9P2000.L.
func skip9P(c permcases.Case) string {
	if c.Op.Kind == permcases.Access {
		return "9P2000.L has no access(2): Linux's client decides it from the mode it fetched"
	}
	switch c.Op.Kind {
	case permcases.Open, permcases.Chmod, permcases.SetACL:
		for _, n := range c.Nodes {
			if n.Path == c.Op.Path && n.Kind == permcases.Symlink {
				return "following a symlink is the client's path walk (Treadlink), not a server request"
			}
		}
	}
	return ""
}

// known9PDiffs are the cases whose outcome over 9P differs from Linux's on
// a tmpfs today, by why (a short name, then the reason in the comment).
var known9PDiffs = permcases.Known(map[string][]string{
	// A chown that changes nothing (the owner it has, or the group it has) by a user who does not own
	// the file: Linux refuses it (EPERM: chown_ok, chgrp_ok); the server lets it through.
	"chown-noop": {
		"file/0600-4242:65534/u4343/chown f 4242:-1",
		"file/0600-4242:65534/u4343/chown f -1:65534",
		"file/0600-4242:4000/u4343/chown f 4242:-1",
		"file/0600-4242:4000/u4343/chown f -1:4000",
		"file/0600-0:65534/u4242/chown f 0:-1",
		"file/0600-0:65534/u4242/chown f -1:65534",
		"file/0600-0:65534/u4343/chown f 0:-1",
		"file/0600-0:65534/u4343/chown f -1:65534",
		"file/0644-4242:65534/u4343/chown f 4242:-1",
		"file/0644-4242:65534/u4343/chown f -1:65534",
		"file/0644-4242:4000/u4343/chown f 4242:-1",
		"file/0644-4242:4000/u4343/chown f -1:4000",
		"file/0644-0:65534/u4242/chown f 0:-1",
		"file/0644-0:65534/u4242/chown f -1:65534",
		"file/0644-0:65534/u4343/chown f 0:-1",
		"file/0644-0:65534/u4343/chown f -1:65534",
		"file/0660-4242:65534/u4343/chown f 4242:-1",
		"file/0660-4242:65534/u4343/chown f -1:65534",
		"file/0660-4242:4000/u4343/chown f 4242:-1",
		"file/0660-4242:4000/u4343/chown f -1:4000",
		"file/0660-0:65534/u4242/chown f 0:-1",
		"file/0660-0:65534/u4242/chown f -1:65534",
		"file/0660-0:65534/u4343/chown f 0:-1",
		"file/0660-0:65534/u4343/chown f -1:65534",
		"file/0070-4242:65534/u4343/chown f 4242:-1",
		"file/0070-4242:65534/u4343/chown f -1:65534",
		"file/0070-4242:4000/u4343/chown f 4242:-1",
		"file/0070-4242:4000/u4343/chown f -1:4000",
		"file/0070-0:65534/u4242/chown f 0:-1",
		"file/0070-0:65534/u4242/chown f -1:65534",
		"file/0070-0:65534/u4343/chown f 0:-1",
		"file/0070-0:65534/u4343/chown f -1:65534",
		"file/0755-4242:65534/u4343/chown f 4242:-1",
		"file/0755-4242:65534/u4343/chown f -1:65534",
		"file/0755-4242:4000/u4343/chown f 4242:-1",
		"file/0755-4242:4000/u4343/chown f -1:4000",
		"file/0755-0:65534/u4242/chown f 0:-1",
		"file/0755-0:65534/u4242/chown f -1:65534",
		"file/0755-0:65534/u4343/chown f 0:-1",
		"file/0755-0:65534/u4343/chown f -1:65534",
		"file/4755-4242:65534/u4343/chown f 4242:-1",
		"file/4755-4242:65534/u4343/chown f -1:65534",
		"file/4755-4242:4000/u4343/chown f 4242:-1",
		"file/4755-4242:4000/u4343/chown f -1:4000",
		"file/4755-0:65534/u4242/chown f 0:-1",
		"file/4755-0:65534/u4242/chown f -1:65534",
		"file/4755-0:65534/u4343/chown f 0:-1",
		"file/4755-0:65534/u4343/chown f -1:65534",
		"file/2745-4242:65534/u4343/chown f 4242:-1",
		"file/2745-4242:65534/u4343/chown f -1:65534",
		"file/2745-4242:4000/u4343/chown f 4242:-1",
		"file/2745-4242:4000/u4343/chown f -1:4000",
		"file/2745-0:65534/u4242/chown f 0:-1",
		"file/2745-0:65534/u4242/chown f -1:65534",
		"file/2745-0:65534/u4343/chown f 0:-1",
		"file/2745-0:65534/u4343/chown f -1:65534",
		"file/6777-4242:65534/u4343/chown f 4242:-1",
		"file/6777-4242:65534/u4343/chown f -1:65534",
		"file/6777-4242:4000/u4343/chown f 4242:-1",
		"file/6777-4242:4000/u4343/chown f -1:4000",
		"file/6777-0:65534/u4242/chown f 0:-1",
		"file/6777-0:65534/u4242/chown f -1:65534",
		"file/6777-0:65534/u4343/chown f 0:-1",
		"file/6777-0:65534/u4343/chown f -1:65534",
		"types/4242:65534/u4343/chown l -1:65534",
		"types/0:65534/u4242/chown l -1:65534",
		"types/0:65534/u4343/chown l -1:65534",
	},
	// A chown clears a regular file's set-user-ID bit, and its set-group-ID bit with group execute (or,
	// without, for a user outside the group), even root's on Linux; the server keeps them (Linux's
	// client sends the cleared mode in the same Tsetattr).
	"chown-setid": {
		"file/4755-4242:65534/u4242/chown f 4242:-1",
		"file/4755-4242:65534/u4242/chown f -1:65534",
		"file/4755-4242:4000/u4242/chown f 4242:-1",
		"file/4755-4242:4000/u4242/chown f -1:65534",
		"file/4755-4242:4000/u4242/chown f -1:4000",
		"file/2745-4242:4000/u4242/chown f 4242:-1",
		"file/2745-4242:4000/u4242/chown f -1:65534",
		"file/2745-4242:4000/u4242/chown f -1:4000",
		"file/6777-4242:65534/root/chown f 4343:-1",
		"file/6777-4242:65534/root/chown f 4242:-1",
		"file/6777-4242:65534/root/chown f -1:65534",
		"file/6777-4242:65534/root/chown f -1:4000",
		"file/6777-4242:65534/u4242/chown f 4242:-1",
		"file/6777-4242:65534/u4242/chown f -1:65534",
		"file/6777-4242:4000/root/chown f 4343:-1",
		"file/6777-4242:4000/root/chown f 4242:-1",
		"file/6777-4242:4000/root/chown f -1:65534",
		"file/6777-4242:4000/root/chown f -1:4000",
		"file/6777-4242:4000/u4242/chown f 4242:-1",
		"file/6777-4242:4000/u4242/chown f -1:65534",
		"file/6777-4242:4000/u4242/chown f -1:4000",
		"file/6777-0:65534/root/chown f 4343:-1",
		"file/6777-0:65534/root/chown f 0:-1",
		"file/6777-0:65534/root/chown f -1:65534",
		"file/6777-0:65534/root/chown f -1:4000",
	},
	// A write, truncate or O_TRUNC open by a user without CAP_FSETID clears set-ID bits on Linux
	// (file_remove_privs); the server keeps them (Linux's client sends a Tsetattr of the mode).
	"write-setid": {
		"file/4755-4242:65534/u4242/open f O_WRONLY|O_TRUNC",
		"file/4755-4242:65534/u4242/truncate f",
		"file/4755-4242:65534/u4242/write f",
		"file/4755-4242:4000/u4242/open f O_WRONLY|O_TRUNC",
		"file/4755-4242:4000/u4242/truncate f",
		"file/4755-4242:4000/u4242/write f",
		"file/2745-4242:4000/u4242/open f O_WRONLY|O_TRUNC",
		"file/2745-4242:4000/u4242/truncate f",
		"file/2745-4242:4000/u4242/write f",
		"file/6777-4242:65534/u4242/open f O_WRONLY|O_TRUNC",
		"file/6777-4242:65534/u4242/truncate f",
		"file/6777-4242:65534/u4242/write f",
		"file/6777-4242:65534/u4343/open f O_WRONLY|O_TRUNC",
		"file/6777-4242:65534/u4343/truncate f",
		"file/6777-4242:65534/u4343/write f",
		"file/6777-4242:4000/u4242/open f O_WRONLY|O_TRUNC",
		"file/6777-4242:4000/u4242/truncate f",
		"file/6777-4242:4000/u4242/write f",
		"file/6777-4242:4000/u4343/open f O_WRONLY|O_TRUNC",
		"file/6777-4242:4000/u4343/truncate f",
		"file/6777-4242:4000/u4343/write f",
		"file/6777-0:65534/u4242/open f O_WRONLY|O_TRUNC",
		"file/6777-0:65534/u4242/truncate f",
		"file/6777-0:65534/u4242/write f",
		"file/6777-0:65534/u4343/open f O_WRONLY|O_TRUNC",
		"file/6777-0:65534/u4343/truncate f",
		"file/6777-0:65534/u4343/write f",
		"acl/alice-rw-0:4000/u4242/write f",
		"acl/alice-rw-0:4000/u4242/truncate f",
		"acl/alice-rw-4242:4000/u4242/write f",
		"acl/alice-rw-4242:4000/u4242/truncate f",
		"acl/alice-masked-4242:4000/u4242/write f",
		"acl/alice-masked-4242:4000/u4242/truncate f",
		"acl/nogroup-rw-0:4000/u4242/write f",
		"acl/nogroup-rw-0:4000/u4242/truncate f",
		"acl/nogroup-rw-0:4000/u4343/write f",
		"acl/nogroup-rw-0:4000/u4343/truncate f",
		"acl/nogroup-rw-4242:4000/u4242/write f",
		"acl/nogroup-rw-4242:4000/u4242/truncate f",
		"acl/nogroup-rw-4242:4000/u4343/write f",
		"acl/nogroup-rw-4242:4000/u4343/truncate f",
		"acl/other-rwx-4242:4000/u4242/write f",
		"acl/other-rwx-4242:4000/u4242/truncate f",
	},
	// fs.protected_hardlinks=1: a link to a file one neither owns nor may read and write is EPERM,
	// checked before the directories' permissions (may_linkat); the server has no such rule (Linux's
	// client would refuse in its own VFS).
	"link": {
		"dir/0755-0:4000/victim-4343/u4242/link d/f d/l",
		"dir/0755-0:4000/victim-4242/u4343/link d/f d/l",
		"dir/0755-4242:65534/victim-4343/u4242/link d/f d/l",
		"dir/0755-4242:65534/victim-4242/u4343/link d/f d/l",
		"dir/0777-0:4000/victim-4343/u4242/link d/f d/l",
		"dir/0777-0:4000/victim-4242/u4343/link d/f d/l",
		"dir/0777-4242:65534/victim-4343/u4242/link d/f d/l",
		"dir/0777-4242:65534/victim-4242/u4343/link d/f d/l",
		"dir/0775-0:4000/victim-4343/u4242/link d/f d/l",
		"dir/0775-0:4000/victim-4242/u4343/link d/f d/l",
		"dir/0775-4242:65534/victim-4343/u4242/link d/f d/l",
		"dir/0775-4242:65534/victim-4242/u4343/link d/f d/l",
		"dir/0757-0:4000/victim-4343/u4242/link d/f d/l",
		"dir/0757-0:4000/victim-4242/u4343/link d/f d/l",
		"dir/0757-4242:65534/victim-4343/u4242/link d/f d/l",
		"dir/0757-4242:65534/victim-4242/u4343/link d/f d/l",
		"dir/0733-0:4000/victim-4343/u4242/link d/f d/l",
		"dir/0733-0:4000/victim-4242/u4343/link d/f d/l",
		"dir/0733-4242:65534/victim-4343/u4242/link d/f d/l",
		"dir/0733-4242:65534/victim-4242/u4343/link d/f d/l",
		"dir/0744-4242:65534/victim-4343/u4242/link d/f d/l",
		"dir/1777-0:4000/victim-4343/u4242/link d/f d/l",
		"dir/1777-0:4000/victim-4242/u4343/link d/f d/l",
		"dir/1777-4242:65534/victim-4343/u4242/link d/f d/l",
		"dir/1777-4242:65534/victim-4242/u4343/link d/f d/l",
		"dir/1733-0:4000/victim-4343/u4242/link d/f d/l",
		"dir/1733-0:4000/victim-4242/u4343/link d/f d/l",
		"dir/1733-4242:65534/victim-4343/u4242/link d/f d/l",
		"dir/1733-4242:65534/victim-4242/u4343/link d/f d/l",
		"dir/2777-0:4000/victim-4343/u4242/link d/f d/l",
		"dir/2777-0:4000/victim-4242/u4343/link d/f d/l",
		"dir/2777-4242:65534/victim-4343/u4242/link d/f d/l",
		"dir/2777-4242:65534/victim-4242/u4343/link d/f d/l",
		"types/4242:65534/u4343/link p p2",
		"types/0:65534/u4242/link p p2",
		"types/0:65534/u4343/link p p2",
	},
	// Removing or replacing another user's entry of a sticky directory is EPERM on Linux; the server
	// answers EACCES.
	"sticky": {
		"dir/1777-0:4000/victim-4343/u4242/unlink d/f",
		"dir/1777-0:4000/victim-4343/u4242/rmdir d/sub",
		"dir/1777-0:4000/victim-4343/u4242/rename d/f d/g",
		"dir/1777-0:4000/victim-4343/u4242/rename d/f e/g",
		"dir/1777-0:4000/victim-4343/u4242/rename e/x d/f",
		"dir/1777-0:4000/victim-4343/u4242/rename d/sub e/sub",
		"dir/1777-0:4000/victim-4343/u4242/rename d/sub d/sub2",
		"dir/1777-0:4000/victim-4242/u4343/unlink d/f",
		"dir/1777-0:4000/victim-4242/u4343/rmdir d/sub",
		"dir/1777-0:4000/victim-4242/u4343/rename d/f d/g",
		"dir/1777-0:4000/victim-4242/u4343/rename d/f e/g",
		"dir/1777-0:4000/victim-4242/u4343/rename e/x d/f",
		"dir/1777-0:4000/victim-4242/u4343/rename d/sub e/sub",
		"dir/1777-0:4000/victim-4242/u4343/rename d/sub d/sub2",
		"dir/1777-4242:65534/victim-4242/u4343/unlink d/f",
		"dir/1777-4242:65534/victim-4242/u4343/rmdir d/sub",
		"dir/1777-4242:65534/victim-4242/u4343/rename d/f d/g",
		"dir/1777-4242:65534/victim-4242/u4343/rename d/f e/g",
		"dir/1777-4242:65534/victim-4242/u4343/rename e/x d/f",
		"dir/1777-4242:65534/victim-4242/u4343/rename d/sub e/sub",
		"dir/1777-4242:65534/victim-4242/u4343/rename d/sub d/sub2",
		"dir/1733-0:4000/victim-4343/u4242/unlink d/f",
		"dir/1733-0:4000/victim-4343/u4242/rmdir d/sub",
		"dir/1733-0:4000/victim-4343/u4242/rename d/f d/g",
		"dir/1733-0:4000/victim-4343/u4242/rename d/f e/g",
		"dir/1733-0:4000/victim-4343/u4242/rename e/x d/f",
		"dir/1733-0:4000/victim-4343/u4242/rename d/sub e/sub",
		"dir/1733-0:4000/victim-4343/u4242/rename d/sub d/sub2",
		"dir/1733-0:4000/victim-4242/u4343/unlink d/f",
		"dir/1733-0:4000/victim-4242/u4343/rmdir d/sub",
		"dir/1733-0:4000/victim-4242/u4343/rename d/f d/g",
		"dir/1733-0:4000/victim-4242/u4343/rename d/f e/g",
		"dir/1733-0:4000/victim-4242/u4343/rename e/x d/f",
		"dir/1733-0:4000/victim-4242/u4343/rename d/sub e/sub",
		"dir/1733-0:4000/victim-4242/u4343/rename d/sub d/sub2",
		"dir/1733-4242:65534/victim-4242/u4343/unlink d/f",
		"dir/1733-4242:65534/victim-4242/u4343/rmdir d/sub",
		"dir/1733-4242:65534/victim-4242/u4343/rename d/f d/g",
		"dir/1733-4242:65534/victim-4242/u4343/rename d/f e/g",
		"dir/1733-4242:65534/victim-4242/u4343/rename e/x d/f",
		"dir/1733-4242:65534/victim-4242/u4343/rename d/sub e/sub",
		"dir/1733-4242:65534/victim-4242/u4343/rename d/sub d/sub2",
	},
	// user. attributes belong to regular files and directories only (EPERM elsewhere, even for
	// root); the server sets them on symlinks and fifos.
	"xattr-type": {
		"types/4242:65534/root/setxattr l user.test",
		"types/4242:65534/root/setxattr p user.test",
		"types/4242:65534/u4242/setxattr l user.test",
		"types/4242:65534/u4242/setxattr p user.test",
		"types/4242:65534/u4343/setxattr l user.test",
		"types/4242:65534/u4343/setxattr p user.test",
		"types/0:65534/root/setxattr l user.test",
		"types/0:65534/root/setxattr p user.test",
		"types/0:65534/u4242/setxattr l user.test",
		"types/0:65534/u4242/setxattr p user.test",
		"types/0:65534/u4343/setxattr l user.test",
		"types/0:65534/u4343/setxattr p user.test",
	},
	// Setting the times to now without write permission and without owning the file is EACCES on
	// Linux; the server answers EPERM.
	"utimes": {
		"file/0600-4242:65534/u4343/utimes-now f",
		"file/0600-4242:4000/u4343/utimes-now f",
		"file/0600-0:65534/u4242/utimes-now f",
		"file/0600-0:65534/u4343/utimes-now f",
		"file/0644-4242:65534/u4343/utimes-now f",
		"file/0644-4242:4000/u4343/utimes-now f",
		"file/0644-0:65534/u4242/utimes-now f",
		"file/0644-0:65534/u4343/utimes-now f",
		"file/0660-4242:4000/u4343/utimes-now f",
		"file/0070-4242:4000/u4343/utimes-now f",
		"file/0755-4242:65534/u4343/utimes-now f",
		"file/0755-4242:4000/u4343/utimes-now f",
		"file/0755-0:65534/u4242/utimes-now f",
		"file/0755-0:65534/u4343/utimes-now f",
		"file/4755-4242:65534/u4343/utimes-now f",
		"file/4755-4242:4000/u4343/utimes-now f",
		"file/4755-0:65534/u4242/utimes-now f",
		"file/4755-0:65534/u4343/utimes-now f",
		"file/2745-4242:65534/u4343/utimes-now f",
		"file/2745-4242:4000/u4343/utimes-now f",
		"file/2745-0:65534/u4242/utimes-now f",
		"file/2745-0:65534/u4343/utimes-now f",
	},
})

// TestPermissionCases9P runs the permission table over 9P2000.L and on a
// tmpfs, and compares.
func TestPermissionCases9P(t *testing.T) {
	fusetest.RequireRoot(t)
	s := newServer(t)
	v, _ := s.FS.Volume("main")
	cases := permcases.Without(t, permcases.Cases(), skip9P)
	want := permcases.RunOS(t, fusetest.Tmpfs(t, "mode=0755"), cases)
	got := permcases.Run(t, &permRunner{t: t, s: s, v: v, conns: map[uint32]*raw{}}, cases)
	permcases.Compare(t, cases, want, got, known9PDiffs)
}
