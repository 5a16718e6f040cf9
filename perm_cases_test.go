package cowfs

import (
	"context"
	"errors"
	"os"
	"path"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cowfs/cowfs/acl"
	"github.com/cowfs/cowfs/internal/fusetest"
	"github.com/cowfs/cowfs/internal/permcases"
)

// TestPermissionCases runs the permission cases through the handle API
// with checked callers and compares every outcome with Linux's on a tmpfs.
func TestPermissionCases(t *testing.T) {
	fusetest.RequireRoot(t)
	cases := permcases.Cases()
	want := permcases.RunOS(t, fusetest.Tmpfs(t, ""), cases)
	_, v := apiFS(t)
	got := permcases.Run(t, apiRunner{v}, cases)
	permcases.Compare(t, cases, want, got)
}

// apiRunner runs permission cases on a volume: setup and lstat by the path
// API, operations through Inode handles as the case's user.
type apiRunner struct{ v *Volume }

func (r apiRunner) Setup(n permcases.Node) error {
	v := r.v
	var err error
	switch n.Kind {
	case permcases.File:
		err = v.WriteFile(n.Path, []byte(n.Content), 0)
	case permcases.Dir:
		err = v.Mkdir(n.Path, 0)
	case permcases.Symlink:
		err = v.Symlink(n.Target, n.Path)
	case permcases.Fifo:
		err = v.Mknod(n.Path, syscall.S_IFIFO, 0)
	}
	if err != nil {
		return err
	}
	for name, val := range n.Xattrs {
		if err := v.SetXattr(n.Path, name, []byte(val), 0); err != nil {
			return err
		}
	}
	if err := v.Lchown(n.Path, int(n.UID), int(n.GID)); err != nil {
		return err
	}
	if n.Kind == permcases.Symlink {
		return nil
	}
	if err := v.Chmod(n.Path, n.Mode); err != nil {
		return err
	}
	if n.ACL != nil {
		if err := v.SetXattr(n.Path, acl.AccessXattr, n.ACL, 0); err != nil {
			return err
		}
	}
	if n.Default != nil {
		return v.SetXattr(n.Path, acl.DefaultXattr, n.Default, 0)
	}
	return nil
}

func (r apiRunner) Lstat(p string) (permcases.Stat, error) {
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

// fixedTime is the time UtimesSet sets (permcases' own).
var fixedTime = time.Date(2001, 2, 3, 0, 0, 0, 0, time.UTC)

func (r apiRunner) Do(u permcases.User, op permcases.Op) syscall.Errno {
	ctx := WithCred(context.Background(), Cred{UID: u.UID, GID: u.GID, Groups: u.Groups, Umask: u.Umask, Check: true})
	return Errno(r.do(ctx, op))
}

// walk returns a handle on the directory holding p's last name, and the
// name, looking up each directory on the way as the caller.
func (r apiRunner) walk(ctx context.Context, p string) (*Inode, string, error) {
	d := r.v.RootInode()
	parts := splitPath(p)
	for _, name := range parts[:len(parts)-1] {
		next, _, err := d.Lookup(ctx, name)
		d.Release()
		if err != nil {
			return nil, "", err
		}
		d = next
	}
	return d, parts[len(parts)-1], nil
}

// node returns a handle on what p names, following a final symlink if
// follow.
func (r apiRunner) node(ctx context.Context, p string, follow bool) (*Inode, error) {
	for range maxSymlinks {
		d, name, err := r.walk(ctx, p)
		if err != nil {
			return nil, err
		}
		x, fi, err := d.Lookup(ctx, name)
		d.Release()
		if err != nil {
			return nil, err
		}
		if !follow || fi.Mode()&os.ModeSymlink == 0 {
			return x, nil
		}
		x.Release()
		target := fi.Stat().Target
		if !strings.HasPrefix(target, "/") {
			target = path.Join(path.Dir(p), target)
		}
		p = target
	}
	return nil, errorf("lookup", p, syscall.ELOOP, nil)
}

func (r apiRunner) do(ctx context.Context, op permcases.Op) error {
	p := op.Path
	switch op.Kind {
	case permcases.Open:
		if op.Flags&syscall.O_CREAT != 0 {
			d, name, err := r.walk(ctx, p)
			if err != nil {
				return err
			}
			defer d.Release()
			x, f, _, err := d.Create(ctx, name, op.Flags&^syscall.O_CREAT, op.Mode)
			if err != nil {
				return err
			}
			x.Release()
			return f.Close()
		}
		x, err := r.node(ctx, p, true)
		if err != nil {
			return err
		}
		defer x.Release()
		if op.Flags&syscall.O_DIRECTORY != 0 {
			if fi, err := x.Stat(ctx); err != nil || !fi.IsDir() {
				return errorf("open", p, syscall.ENOTDIR, err)
			}
		}
		f, err := x.Open(ctx, op.Flags&^syscall.O_DIRECTORY)
		if err != nil {
			return err
		}
		return f.Close()
	case permcases.Mkdir, permcases.Mkfifo, permcases.MkSymlink:
		d, name, err := r.walk(ctx, p)
		if err != nil {
			return err
		}
		defer d.Release()
		var x *Inode
		switch op.Kind {
		case permcases.Mkdir:
			x, err = d.Mkdir(ctx, name, op.Mode)
		case permcases.Mkfifo:
			x, err = d.Mknod(ctx, name, syscall.S_IFIFO|op.Mode, 0)
		default:
			x, err = d.Symlink(ctx, op.Target, name)
		}
		if err == nil {
			x.Release()
		}
		return err
	case permcases.Link:
		x, err := r.node(ctx, p, false)
		if err != nil {
			return err
		}
		defer x.Release()
		d, name, err := r.walk(ctx, op.Path2)
		if err != nil {
			return err
		}
		defer d.Release()
		return d.Link(ctx, x, name)
	case permcases.Unlink, permcases.Rmdir:
		d, name, err := r.walk(ctx, p)
		if err != nil {
			return err
		}
		defer d.Release()
		if op.Kind == permcases.Unlink {
			return d.Unlink(ctx, name)
		}
		return d.Rmdir(ctx, name)
	case permcases.Rename:
		d, name, err := r.walk(ctx, p)
		if err != nil {
			return err
		}
		defer d.Release()
		d2, name2, err := r.walk(ctx, op.Path2)
		if err != nil {
			return err
		}
		defer d2.Release()
		return d.Rename(ctx, name, d2, name2, 0)
	case permcases.Write:
		x, err := r.node(ctx, p, true)
		if err != nil {
			return err
		}
		defer x.Release()
		f, err := x.Open(ctx, os.O_WRONLY)
		if err != nil {
			return err
		}
		_, err = f.WriteAt([]byte("w"), 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	case permcases.Readdir:
		x, err := r.node(ctx, p, true)
		if err != nil {
			return err
		}
		defer x.Release()
		if fi, err := x.Stat(ctx); err != nil || !fi.IsDir() {
			return errorf("open", p, syscall.ENOTDIR, err)
		}
		f, err := x.Open(ctx, os.O_RDONLY)
		if err != nil {
			return err
		}
		if _, err := x.ReadDir(ctx, 0, -1); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	follow := map[permcases.OpKind]bool{permcases.Chmod: true, permcases.Truncate: true,
		permcases.UtimesNow: true, permcases.UtimesSet: true, permcases.SetACL: true, permcases.Access: true}
	x, err := r.node(ctx, p, follow[op.Kind])
	if err != nil {
		return err
	}
	defer x.Release()
	switch op.Kind {
	case permcases.Chmod:
		_, err = x.Setattr(ctx, SetAttr{Mode: &op.Mode})
	case permcases.Chown:
		a := chownAttr(op.UID, op.GID)
		_, err = x.Setattr(ctx, a)
	case permcases.Truncate:
		var zero int64
		_, err = x.Setattr(ctx, SetAttr{Size: &zero})
	case permcases.UtimesNow:
		now := time.Now()
		_, err = x.Setattr(ctx, SetAttr{Atime: &now, Mtime: &now, TimesNow: true})
	case permcases.UtimesSet:
		_, err = x.Setattr(ctx, SetAttr{Atime: &fixedTime, Mtime: &fixedTime})
	case permcases.SetXattr:
		err = x.SetXattr(ctx, op.Name, op.Value, 0)
	case permcases.RemoveXattr:
		err = x.RemoveXattr(ctx, op.Name)
	case permcases.GetXattr:
		_, err = x.GetXattr(ctx, op.Name)
	case permcases.SetACL:
		err = x.SetXattr(ctx, acl.AccessXattr, op.Value, 0)
	case permcases.Lstat:
		_, err = x.Stat(ctx)
	case permcases.Access:
		err = x.Access(ctx, op.Mode)
	default:
		err = errorf(string(op.Kind), p, syscall.ENOSYS, nil)
	}
	return err
}
