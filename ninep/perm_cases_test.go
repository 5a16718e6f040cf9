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
	return permcases.NewStat(st.Mode, st.UID, st.GID, st.Size, func(name string) (string, error) {
		b, err := r.v.GetXattr(p, name)
		if errors.Is(err, syscall.ENODATA) {
			return "", nil
		}
		return string(b), err
	})
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

// TestPermissionCases9P runs the permission table over 9P2000.L and on a
// tmpfs, and compares.
func TestPermissionCases9P(t *testing.T) {
	fusetest.RequireRoot(t)
	s := newServer(t)
	v, _ := s.FS.Volume("main")
	cases := permcases.Without(t, permcases.Cases(), skip9P)
	want := permcases.RunOS(t, fusetest.Tmpfs(t, "mode=0755"), cases)
	got := permcases.Run(t, &permRunner{t: t, s: s, v: v, conns: map[uint32]*raw{}}, cases)
	permcases.Compare(t, cases, want, got)
}
