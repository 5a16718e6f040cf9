package cowfs

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/store/mem"
)

func wantErrno(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if got := Errno(err); got != want {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// TestInodeHandles: handles name nodes, not paths: a file renamed (also
// into another directory) while a handle and a File are on it is still
// reached through both, and a removed node's handle answers ENOENT.
func TestInodeHandles(t *testing.T) {
	_, v := apiFS(t)
	ctx := context.Background()
	root := v.RootInode()
	defer root.Release()
	d, err := root.Mkdir(ctx, "d", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	x, f, made, err := d.Create(ctx, "f", os.O_RDWR, 0o644)
	if err != nil || !made {
		t.Fatal(made, err)
	}
	if _, err := f.WriteAt([]byte("hello"), 0); err != nil {
		t.Fatal(err)
	}
	e, err := root.Mkdir(ctx, "e", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Rename(ctx, "f", e, "g", 0); err != nil {
		t.Fatal(err)
	}
	if err := root.Rename(ctx, "e", root, "e2", 0); err != nil {
		t.Fatal(err)
	}
	fi, err := x.Stat(ctx)
	if err != nil || fi.Size() != 5 || fi.Name() != "g" {
		t.Fatalf("stat after rename: %v %v", fi, err)
	}
	if got, _ := v.ReadFile("e2/g"); string(got) != "hello" {
		t.Fatalf("e2/g holds %q", got)
	}
	if _, err := f.WriteAt([]byte("HE"), 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.ReadFile("e2/g"); string(got) != "HEllo" {
		t.Fatalf("write through the File after rename: %q", got)
	}
	size := int64(2)
	if _, err := x.Setattr(ctx, SetAttr{Size: &size}); err != nil {
		t.Fatal(err)
	}
	if err := e.Link(ctx, x, "h"); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.ReadFile("e2/h"); string(got) != "HE" {
		t.Fatalf("link: %q", got)
	}
	f.Close()
	if err := e.Unlink(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if err := e.Unlink(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	_, err = x.Stat(ctx)
	wantErrno(t, "stat of a removed node", err, syscall.ENOENT)
	x.Release()
	wantErrno(t, "rmdir of a missing name", root.Rmdir(ctx, "d2"), syscall.ENOENT)
	wantErrno(t, "unlink of a directory", root.Unlink(ctx, "d"), syscall.EISDIR)
	wantErrno(t, "rmdir of a file", func() error { v.WriteFile("file", nil, 0o644); return root.Rmdir(ctx, "file") }(), syscall.ENOTDIR)
	if err := root.Rmdir(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	_, err = d.Stat(ctx)
	wantErrno(t, "stat of a removed directory", err, syscall.ENOENT)
	d.Release()
	e.Release()
}

// TestInodePinned: a handle keeps its node loaded through eviction, so a
// node the kernel holds is the same one a later lookup finds.
func TestInodePinned(t *testing.T) {
	f, err := Open(mem.New(), &Options{MaxInodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, _ := f.CreateVolume("main")
	ctx := context.Background()
	root := v.RootInode()
	d, _ := root.Mkdir(ctx, "d", 0o755)
	for _, n := range []string{"a", "b", "c"} {
		v.WriteFile("d/"+n, []byte(n), 0o644)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	d2, _, err := root.Lookup(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	if d2.x != d.x {
		t.Error("a pinned directory was evicted: a second lookup found another inode")
	}
	if d.Ino() != d2.Ino() {
		t.Error("inode numbers differ")
	}
}

// TestCredCreate: a new entry belongs to its caller in one step, takes the
// group of a set-group-ID directory (and a directory its bit), and the
// caller's umask applies.
func TestCredCreate(t *testing.T) {
	_, v := apiFS(t)
	root := v.RootInode()
	if err := v.Mkdir("sg", 0o777); err != nil {
		t.Fatal(err)
	}
	v.Chown("sg", 0, 500)
	v.Chmod("sg", 0o2777)
	ctx := WithCred(context.Background(), Cred{UID: 1000, GID: 1000, Umask: 0o022, Check: true})
	sg, _, err := root.Lookup(ctx, "sg")
	if err != nil {
		t.Fatal(err)
	}
	x, f, _, err := sg.Create(ctx, "f", os.O_RDWR, 0o2777)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, _ := x.Stat(ctx)
	if s := st.Stat(); s.UID != 1000 || s.GID != 500 || s.Mode&0o7777 != 0o755 {
		t.Errorf("file in a set-group-ID directory by a non-member: uid %d gid %d mode %o; want 1000 500 0755", s.UID, s.GID, s.Mode&0o7777)
	}
	sub, err := sg.Mkdir(ctx, "sub", 0o777)
	if err != nil {
		t.Fatal(err)
	}
	st, _ = sub.Stat(ctx)
	if s := st.Stat(); s.UID != 1000 || s.GID != 500 || s.Mode&0o7777 != 0o2755 {
		t.Errorf("directory in a set-group-ID directory: uid %d gid %d mode %o; want 1000 500 2755", s.UID, s.GID, s.Mode&0o7777)
	}
	_, err = root.Mkdir(ctx, "mine", 0o755)
	wantErrno(t, "mkdir in root's 0755 root", err, syscall.EACCES)
}

// TestCredChecks: a checked caller is refused what Linux refuses another
// user, and allowed what it allows.
func TestCredChecks(t *testing.T) {
	_, v := apiFS(t)
	root := v.RootInode()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(v.WriteFile("private", []byte("secret"), 0o600))
	must(v.Mkdir("tmp", 0o1777))
	must(v.WriteFile("tmp/roots", nil, 0o666))
	must(v.WriteFile("suid", []byte("x"), 0o666))
	must(v.Chmod("suid", 0o6777))
	must(v.SetXattr("private", "trusted.t", []byte("v"), 0))
	bg := context.Background()
	user := WithCred(bg, Cred{UID: 1000, GID: 1000, Check: true})
	p, _, err := root.Lookup(user, "private")
	must(err)
	_, err = p.Open(user, os.O_RDONLY)
	wantErrno(t, "open 0600 of root's", err, syscall.EACCES)
	mode := uint32(0o644)
	_, err = p.Setattr(user, SetAttr{Mode: &mode})
	wantErrno(t, "chmod of root's file", err, syscall.EPERM)
	_, err = p.GetXattr(user, "trusted.t")
	wantErrno(t, "getxattr trusted.", err, syscall.ENODATA)
	tmp, _, err := root.Lookup(user, "tmp")
	must(err)
	wantErrno(t, "unlink root's file in a sticky directory", tmp.Unlink(user, "roots"), syscall.EPERM)
	_, f, _, err := tmp.Create(user, "mine", os.O_WRONLY, 0o644)
	must(err)
	f.Close()
	must(tmp.Unlink(user, "mine"))

	s, _, err := root.Lookup(user, "suid")
	must(err)
	f, err = s.Open(user, os.O_WRONLY)
	must(err)
	if _, err := f.WriteAt([]byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fi, _ := v.Stat("suid")
	if m := fi.Stat().Mode & 0o7777; m != 0o777 {
		t.Errorf("a write by a non-root user left mode %o, want 0777 (set-ID bits cleared)", m)
	}
	if err := v.Chmod("suid", 0o6777); err != nil {
		t.Fatal(err)
	}
	// Root writing keeps them (CAP_FSETID).
	f, err = s.Open(WithCred(bg, Cred{Check: true}), os.O_WRONLY)
	must(err)
	f.WriteAt([]byte("z"), 0)
	f.Close()
	fi, _ = v.Stat("suid")
	if m := fi.Stat().Mode & 0o7777; m != 0o6777 {
		t.Errorf("a write by root left mode %o, want 6777", m)
	}
	_, _, err = root.Lookup(WithCred(bg, Cred{UID: 1000, Check: true}), "private")
	if err != nil {
		t.Errorf("lookup in a searchable directory: %v", err)
	}
	if err := v.Chmod("tmp", 0o1770); err != nil {
		t.Fatal(err)
	}
	_, _, err = tmp.Lookup(user, "roots")
	wantErrno(t, "lookup in a directory without search permission", err, syscall.EACCES)
	if !errors.Is(err, os.ErrPermission) {
		t.Errorf("EACCES is not os.ErrPermission: %v", err)
	}
}

// TestInodeFrontendHelpers: Parent follows a rename; a checked caller
// other than root makes no device node, may clear the set-ID bits a write
// of its would clear (but no other mode change) on a file it may write,
// is refused a "trusted." attribute before it sends one, and does not see
// "trusted." names; Permits decides for a described node as for a stored
// one.
func TestInodeFrontendHelpers(t *testing.T) {
	_, v := apiFS(t)
	ctx := context.Background()
	user := WithCred(ctx, Cred{UID: 4242, GID: 4242, Check: true})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(v.Mkdir("d", 0o755))
	must(v.WriteFile("d/f", nil, 0o6777))
	must(v.SetXattr("d/f", "trusted.t", []byte("x"), 0))
	must(v.SetXattr("d/f", "user.u", []byte("x"), 0))
	root := v.RootInode()
	defer root.Release()
	d, _, err := root.Lookup(ctx, "d")
	must(err)
	defer d.Release()
	f, _, err := d.Lookup(ctx, "f")
	must(err)
	defer f.Release()
	must(v.Rename("d/f", "g", 0))
	p, name, err := f.Parent(ctx)
	must(err)
	if p.Ino() != root.Ino() || name != "g" {
		t.Errorf("Parent after a rename: ino %d name %q, want the root and g", p.Ino(), name)
	}
	p.Release()
	if _, _, err := root.Parent(ctx); Errno(err) != syscall.ENOENT {
		t.Errorf("Parent of the root: %v, want ENOENT", err)
	}
	_, err = root.Mknod(user, "dev", syscall.S_IFCHR|0o666, 0)
	wantErrno(t, "mknod of a device by a user", err, syscall.EPERM)
	other := uint32(0o4777)
	_, err = f.Setattr(user, SetAttr{Mode: &other})
	wantErrno(t, "chmod by a writer, not only clearing set-ID bits", err, syscall.EPERM)
	cleared := uint32(0o777)
	if fi, err := f.Setattr(user, SetAttr{Mode: &cleared}); err != nil || fi.Stat().Mode&0o7777 != 0o777 {
		t.Errorf("a writer clearing set-ID bits: %v, %v", fi, err)
	}
	wantErrno(t, "MayXattr trusted. by a user", f.MayXattr(user, "trusted.t", true), syscall.EPERM)
	if err := f.MayXattr(user, "user.u", true); err != nil {
		t.Errorf("MayXattr user. on a writable file: %v", err)
	}
	if names, err := f.ListXattr(user); err != nil || len(names) != 1 || names[0] != "user.u" {
		t.Errorf("ListXattr by a user: %q, %v", names, err)
	}
	c := Cred{UID: 4242, GID: 4242, Check: true}
	if st := (&Stat{Mode: syscall.S_IFREG | 0o600}); c.Permits(st, MayRead) || !(Cred{Check: true}).Permits(st, MayRead|MayWrite) {
		t.Errorf("Permits of root's 0600 file: a user may read, or root may not")
	}
}
