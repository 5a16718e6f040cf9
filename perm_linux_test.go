package cowfs

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/acl"
	"github.com/cowfs/cowfs/internal/fusetest"
	"github.com/cowfs/cowfs/store/mem"
	"golang.org/x/sys/unix"
	"pgregory.net/rapid"
)

// kernelThread runs functions on one OS thread that has its own umask
// (unshare(CLONE_FS)), so the test can set the umask without touching the
// rest of the process. The thread is never given back to the runtime.
type kernelThread chan func()

func newKernelThread(t *testing.T) kernelThread {
	k := make(kernelThread)
	ready := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		ready <- unix.Unshare(unix.CLONE_FS)
		for f := range k {
			f()
		}
	}()
	if err := <-ready; err != nil {
		t.Fatalf("unshare: %v", err)
	}
	t.Cleanup(func() { close(k) })
	return k
}

// do runs f on the thread.
func (k kernelThread) do(f func()) {
	done := make(chan struct{})
	k <- func() { f(); close(done) }
	<-done
}

// TestACLMatchesKernel runs random sequences of creations (with modes and
// umasks), ACL changes, ACL removals and chmods on a cowfs volume and, as
// the model, on a tmpfs (whose ACLs are the kernel's generic ones, as
// ext4's). After every step both must show the same errors, modes and ACL
// attributes on every path, and the invariant checker must pass; now and
// then the FS is reopened from its store.
func TestACLMatchesKernel(t *testing.T) {
	fusetest.RequireRoot(t)
	top := fusetest.Tmpfs(t, "mode=0755")
	k := newKernelThread(t)
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		kdir := filepath.Join(top, strconv.Itoa(run))
		if err := os.Mkdir(kdir, 0o755); err != nil {
			rt.Fatal(err)
		}
		st := keepOpen{mem.New()}
		f, err := Open(st, nil)
		if err != nil {
			rt.Fatal(err)
		}
		v, err := f.CreateVolume("v")
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { f.Close() }()
		paths := []string{"."} // every path that exists, directories first
		dirs := []string{"."}
		kpath := func(p string) string { return filepath.Join(kdir, p) }
		same := func(what string, kerr, err error) {
			if (kerr == nil) != (err == nil) {
				rt.Fatalf("%s: kernel %v, cowfs %v", what, kerr, err)
			}
			if kerr != nil && Errno(err) != kerr.(syscall.Errno) {
				rt.Fatalf("%s: kernel %v, cowfs %v", what, kerr, err)
			}
		}
		for step := range rapid.IntRange(1, 40).Draw(rt, "steps") {
			switch op := rapid.IntRange(0, 5).Draw(rt, "op"); op {
			case 0, 1: // create a file, directory or fifo
				dir := rapid.SampledFrom(dirs).Draw(rt, "dir")
				p := path.Join(dir, "n"+strconv.Itoa(step))
				mode := rapid.Uint32Range(0, 0o7777).Draw(rt, "mode")
				umask := rapid.Uint32Range(0, 0o777).Draw(rt, "umask")
				kind := rapid.SampledFrom([]string{"file", "dir", "fifo", "symlink"}).Draw(rt, "kind")
				var kerr error
				k.do(func() {
					syscall.Umask(int(umask))
					switch kind {
					case "file":
						var fd int
						if fd, kerr = syscall.Open(kpath(p), syscall.O_CREAT|syscall.O_EXCL|syscall.O_RDONLY, mode); kerr == nil {
							syscall.Close(fd)
						}
					case "dir":
						kerr = syscall.Mkdir(kpath(p), mode)
					case "fifo":
						kerr = syscall.Mknod(kpath(p), syscall.S_IFIFO|mode, 0)
					case "symlink":
						kerr = syscall.Symlink("nowhere", kpath(p))
					}
				})
				var err error
				switch kind {
				case "file":
					var fl *File
					if fl, err = v.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDONLY, mode, Umask(umask)); err == nil {
						fl.Close()
					}
				case "dir":
					// mkdir(2) takes only the permission and sticky bits
					// (the kernel drops the rest before a file system sees
					// them), and a directory made in a set-group-ID one is
					// set-group-ID too: the frontends add that bit.
					m := mode & 0o1777
					if fi, serr := v.Lstat(dir); serr == nil && fi.Stat().Mode&syscall.S_ISGID != 0 {
						m |= syscall.S_ISGID
					}
					err = v.Mkdir(p, m, Umask(umask))
				case "fifo":
					err = v.Mknod(p, syscall.S_IFIFO|mode, 0, Umask(umask))
				case "symlink":
					err = v.Symlink("nowhere", p)
				}
				same("create "+kind+" "+p, kerr, err)
				if err == nil {
					paths = append(paths, p)
					if kind == "dir" {
						dirs = append(dirs, p)
					}
				}
			case 2: // set an ACL, valid or not
				p := rapid.SampledFrom(paths).Draw(rt, "path")
				name := rapid.SampledFrom([]string{acl.AccessXattr, acl.DefaultXattr}).Draw(rt, "name")
				a := drawACL(rt)
				b := a.Encode()
				switch rapid.IntRange(0, 9).Draw(rt, "mangle") {
				case 0: // invalid: the owner entry dropped
					b = append(b[:4], b[12:]...)
				case 1: // undecodable: an unknown tag
					b[4] = 0x40
				}
				same("set "+name+" on "+p, unix.Lsetxattr(kpath(p), name, b, 0), v.SetXattr(p, name, b, 0))
			case 3: // remove an ACL
				p := rapid.SampledFrom(paths).Draw(rt, "path")
				name := rapid.SampledFrom([]string{acl.AccessXattr, acl.DefaultXattr}).Draw(rt, "name")
				same("remove "+name+" of "+p, unix.Lremovexattr(kpath(p), name), v.RemoveXattr(p, name))
			case 4: // chmod
				p := rapid.SampledFrom(paths).Draw(rt, "path")
				mode := rapid.Uint32Range(0, 0o7777).Draw(rt, "chmod")
				same("chmod "+p, syscall.Chmod(kpath(p), mode), v.Chmod(p, mode))
			case 5: // reopen from the store
				if err := f.Close(); err != nil {
					rt.Fatal(err)
				}
				if f, err = Open(st, nil); err != nil {
					rt.Fatal(err)
				}
				if v, err = f.Volume("v"); err != nil {
					rt.Fatal(err)
				}
			}
			for _, p := range paths {
				compareACLs(rt, v, p, kpath(p))
			}
			rep, err := f.Check(t.Context())
			if err != nil {
				rt.Fatal(err)
			}
			if err := rep.Err(); err != nil {
				rt.Fatal(err)
			}
		}
	})
}

// drawACL draws a valid ACL over a few users and groups.
func drawACL(t *rapid.T) acl.ACL {
	perm := rapid.Uint16Range(0, 7)
	a := acl.ACL{{Tag: acl.UserObj, Perm: perm.Draw(t, "owner")}}
	named := false
	for _, u := range []uint32{1000, 1001} {
		if rapid.Bool().Draw(t, "user") {
			a, named = append(a, acl.Entry{Tag: acl.User, Perm: perm.Draw(t, "uperm"), ID: u}), true
		}
	}
	a = append(a, acl.Entry{Tag: acl.GroupObj, Perm: perm.Draw(t, "group")})
	if rapid.Bool().Draw(t, "namedgroup") {
		a, named = append(a, acl.Entry{Tag: acl.Group, Perm: perm.Draw(t, "gperm"), ID: 100}), true
	}
	if named || rapid.Bool().Draw(t, "mask") {
		a = append(a, acl.Entry{Tag: acl.Mask, Perm: perm.Draw(t, "maskperm")})
	}
	return append(a, acl.Entry{Tag: acl.Other, Perm: perm.Draw(t, "other")})
}

// compareACLs fails unless p has the same mode and ACL attributes in v as
// kp on the kernel's file system.
func compareACLs(t *rapid.T, v *Volume, p, kp string) {
	var st syscall.Stat_t
	if err := syscall.Lstat(kp, &st); err != nil {
		t.Fatal(err)
	}
	fi, err := v.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Stat().Mode; got != st.Mode {
		t.Fatalf("%s: mode %o, kernel %o", p, got, st.Mode)
	}
	for _, name := range []string{acl.AccessXattr, acl.DefaultXattr} {
		buf := make([]byte, 1<<16)
		n, kerr := unix.Lgetxattr(kp, name, buf)
		val, err := v.GetXattr(p, name)
		if kerr != nil {
			if Errno(err) != kerr.(syscall.Errno) {
				t.Fatalf("%s %s: kernel %v, cowfs %v % x", p, name, kerr, err, val)
			}
			continue
		}
		if err != nil || !bytes.Equal(val, buf[:n]) {
			t.Fatalf("%s %s: kernel % x, cowfs % x, %v", p, name, buf[:n], val, err)
		}
	}
	if a := fi.Stat().ACL; (a != nil) != hasXattr(kp, acl.AccessXattr) {
		t.Fatalf("%s: Stat.ACL %v", p, a)
	}
}

func hasXattr(p, name string) bool {
	_, err := unix.Lgetxattr(p, name, nil)
	return err == nil
}
