package fusefs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/acl"
	"github.com/cowfs/cowfs/internal/fusetest"
	"golang.org/x/sys/unix"
)

// The ACL tests compare the mount with the kernel's own ACLs on a tmpfs
// (the generic ones ext4 also uses): the same real tools run in both, and
// every path must end up with the same mode, owner, times and ACLs.

const nobody = 65534 // the unprivileged user the tests act as (group nogroup)

// aclTmpfs mounts a tmpfs (ACLs on) that nobody may reach.
func aclTmpfs(t *testing.T) string {
	t.Helper()
	dir := fusetest.Tmpfs(t, "mode=0755")
	openUp(t, dir)
	return dir
}

// openUp lets other users reach dir (tests' temporary directories are 0700).
func openUp(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{filepath.Dir(dir), dir} {
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, os.FileMode(st.Mode&0o7777|0o755)); err != nil {
			t.Fatal(err)
		}
	}
}

// aclAttrs is what a path holds that the ACL tests compare.
type aclAttrs struct {
	mode           uint32
	uid, gid       uint32
	size           int64
	mtime          syscall.Timespec
	access, defacl []byte
	data, getfacl  string
}

// aclTree describes every path under root, sorted.
func aclTree(t *testing.T, root string) ([]string, map[string]aclAttrs) {
	t.Helper()
	var paths []string
	attrs := map[string]aclAttrs{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		a := aclAttrs{mode: st.Mode, uid: st.Uid, gid: st.Gid, size: st.Size, mtime: syscall.Timespec(st.Mtim)}
		a.access = lgetxattr(t, p, acl.AccessXattr)
		a.defacl = lgetxattr(t, p, acl.DefaultXattr)
		if st.Mode&syscall.S_IFMT == syscall.S_IFREG {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			a.data = string(b)
		}
		paths = append(paths, rel)
		attrs[rel] = a
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(paths)
	// getfacl's own view, path by path (-n: numeric IDs, -p: keep paths).
	for _, p := range paths {
		if attrs[p].mode&syscall.S_IFMT == syscall.S_IFLNK {
			continue
		}
		out, err := inDir(root, "getfacl -n -p -- \"$1\"", p).CombinedOutput()
		if err != nil {
			t.Fatalf("getfacl %s: %v: %s", p, err, out)
		}
		a := attrs[p]
		a.getfacl = string(out)
		attrs[p] = a
	}
	return paths, attrs
}

func lgetxattr(t *testing.T, p, name string) []byte {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Lgetxattr(p, name, buf)
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil
	}
	if err != nil {
		t.Fatalf("getxattr %s %s: %v", p, name, err)
	}
	return buf[:n]
}

// aclCompare fails where the tree under got differs from the one under
// want: paths, types, modes, owners, sizes, contents and ACLs, and
// modification times to the second (exact, if times is exact; not at all if
// it is ignore).
func aclCompare(t *testing.T, what, want, got string, times timeCheck) {
	t.Helper()
	wp, wa := aclTree(t, want)
	gp, ga := aclTree(t, got)
	if !slices.Equal(wp, gp) {
		t.Fatalf("%s: paths %q, want %q", what, gp, wp)
	}
	for _, p := range wp {
		w, g := wa[p], ga[p]
		if p == "." {
			g.mtime, w.mtime = syscall.Timespec{}, syscall.Timespec{} // the roots were made, not copied
		}
		if g.mode != w.mode || g.uid != w.uid || g.gid != w.gid {
			t.Errorf("%s: %s: mode %o owner %d:%d, want %o %d:%d", what, p, g.mode, g.uid, g.gid, w.mode, w.uid, w.gid)
		}
		if w.mode&syscall.S_IFMT != syscall.S_IFDIR && g.size != w.size || g.data != w.data {
			t.Errorf("%s: %s: size %d, want %d (or other content)", what, p, g.size, w.size)
		}
		if !bytes.Equal(g.access, w.access) || !bytes.Equal(g.defacl, w.defacl) {
			t.Errorf("%s: %s: access ACL % x default % x, want % x and % x", what, p, g.access, g.defacl, w.access, w.defacl)
		}
		if g.getfacl != w.getfacl {
			t.Errorf("%s: %s: getfacl says\n%s\nwant\n%s", what, p, g.getfacl, w.getfacl)
		}
		if w.mode&syscall.S_IFMT == syscall.S_IFLNK || times == ignore {
			continue
		}
		if g.mtime.Sec != w.mtime.Sec || times == exact && g.mtime.Nsec != w.mtime.Nsec {
			t.Errorf("%s: %s: mtime %v, want %v", what, p, g.mtime, w.mtime)
		}
	}
}

// timeCheck is how aclCompare compares modification times.
type timeCheck int

const (
	ignore  timeCheck = iota // the trees were made at different times
	seconds                  // copies by tools that keep whole seconds
	exact                    // copies that keep nanoseconds
)

// inDir returns a command that runs the shell script in dir, with args as
// $1 and on. The shell changes directory itself: a child given cmd.Dir in
// the mount would chdir between fork and exec, and its FUSE requests then
// wait for this process, which may not be able to start the thread to
// serve them until the fork is done (go-fuse's "Deadlocks").
func inDir(dir, script string, args ...string) *exec.Cmd {
	return toolCmd("sh", append([]string{"-c", "cd \"$0\" || exit 97\n" + script, dir}, args...)...)
}

// sh runs a shell script in dir as root, failing the test if it fails.
func sh(t *testing.T, dir, script string) {
	t.Helper()
	cmd := inDir(dir, "set -e\n"+script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("in %s: %v\n%s\n%s", dir, err, script, out)
	}
}

// shAs runs a shell script in dir as nobody and returns its output and
// whether it succeeded.
func shAs(t *testing.T, dir, script string) (string, bool) {
	t.Helper()
	cmd := inDir(dir, script)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// aclSource is a tree with the modes and ACLs a copy must keep: plain
// modes 0644, 0755 and 0600, a set-group-ID directory 2775, files with
// extended ACLs (named users and groups, a mask narrower than the entries),
// a directory with a default ACL and what it passed on, other owners, a
// symlink and a fifo.
const aclSource = `
umask 022
mkdir t t/sgid t/inherit t/plain
echo 644 > t/f644; chmod 644 t/f644
echo 755 > t/f755; chmod 755 t/f755
echo 600 > t/f600; chmod 600 t/f600
chmod 2775 t/sgid; echo in > t/sgid/in; chown 1000:100 t/sgid/in
echo acl > t/acl; setfacl -m u:1000:rw,u:1001:r,g:100:rwx,g:65534:r t/acl
echo masked > t/masked; setfacl -m u:1000:rwx,m::r t/masked
setfacl -d -m u:1000:rwx,g:100:rx,o::- t/inherit
echo kid > t/inherit/kid; mkdir t/inherit/sub; mkfifo t/inherit/fifo
setfacl -m u:1002:rx t/plain; chown 65534:65534 t/plain
ln -s f644 t/link
chown 1000:100 t/f755
touch -d '2001-02-03 04:05:06.789' t/f600
`

// TestACLCopiesKeepAttributes copies a tree with modes and ACLs into the
// mount with cp -a, cp -rp, rsync -a, rsync -aA and tar --acls, and
// compares every path with the original: the bug this catches is cp -a
// (which sets the mode through system.posix_acl_access) leaving 0644 files
// 0600 and 0755 ones 0700.
func TestACLCopiesKeepAttributes(t *testing.T) {
	m := mountMem(t)
	src := aclTmpfs(t)
	sh(t, src, aclSource)
	tarball := filepath.Join(t.TempDir(), "t.tar")
	sh(t, src, "tar --acls --xattrs -cpf "+tarball+" t")
	for _, c := range []struct {
		name, script string
		acls         bool
		times        timeCheck
	}{
		{"cp -a", "cp -a " + src + "/t cpa", true, exact},
		{"cp -rp", "cp -rp " + src + "/t cpp", true, exact},
		{"rsync -a", "rsync -a " + src + "/t/ rsync/", false, seconds},
		{"rsync -aA", "rsync -aA " + src + "/t/ rsyncA/", true, seconds},
		{"tar --acls", "mkdir tar && tar --acls -xpf " + tarball + " -C tar", true, seconds},
	} {
		sh(t, m.dir, c.script)
		dst := strings.Fields(c.script)[len(strings.Fields(c.script))-1]
		switch c.name {
		case "rsync -a", "rsync -aA":
			dst = strings.TrimSuffix(dst, "/")
		case "tar --acls":
			dst = "tar/t"
		}
		want := src + "/t"
		if !c.acls {
			// rsync without -A keeps the mode (an extended ACL's mask as
			// the group bits) and drops the ACLs: the model is a copy of
			// the tree on the tmpfs made the same way.
			want = filepath.Join(src, "noacl-"+dst)
			sh(t, src, c.script[:strings.LastIndex(c.script, " ")]+" "+want+"/")
		}
		aclCompare(t, c.name, want, filepath.Join(m.dir, dst), c.times)
	}
}

// TestACLToolsMatchKernel runs setfacl, chmod, umask and creations in
// directories with default ACLs, as root and as a user outside the file's
// group (whose ACL changes and chmods clear the set-group-ID bit), in the
// mount and on a tmpfs, and compares the two trees.
func TestACLToolsMatchKernel(t *testing.T) {
	m := mountMem(t)
	openUp(t, m.dir)
	model := aclTmpfs(t)
	const root = `
umask 022
touch f1 f2 f3; mkdir d1 d2 d3
setfacl -m u:1000:rw f1
setfacl -m u::rwx,g::r,o::- f2
setfacl -m g:100:rx,m::r f1
chmod 751 f1
setfacl -x u:1000 f1
setfacl -m u:1001:rwx,u:1000:r,g:101:w f3
setfacl -b f2
setfacl -d -m u:1000:rwx,g::rx,o::- d1
umask 077
touch d1/a; mkdir d1/b; mkfifo d1/p; mkdir d1/b/c; touch d1/b/c/deep
mkdir d2/c; touch d2/e
umask 022
setfacl -R -m u:1001:r d1
setfacl -k d1/b
setfacl -d -m g:100:rwx d3
setfacl -d -x g:100 d3
chmod 2775 d2
setfacl -m u:1000:r d2
setfacl --set u::rw,g::r,o::r,u:1002:rw f2
setfacl -M - f3 <<EOF
u:1003:x
g:102:r
EOF
chmod 0 f3
touch g1 g2 g3; mkdir shared; chmod 0777 shared
chown 65534:0 g1 g2 g3; chmod 2775 g1 g2 g3
`
	sh(t, model, root)
	sh(t, m.dir, root)
	// nobody owns g1..g3 but is not in their group 0: its setfacl clears
	// the set-group-ID bit, its chmod too; a default ACL it sets on its own
	// directory governs what it creates there, whatever its umask.
	const user = `
setfacl -m u:1000:r g1
chmod 2755 g2
setfacl -m o::r g3
mkdir shared/mine && setfacl -d -m u::rwx,g::rwx,o::rwx shared/mine
umask 077; touch shared/mine/f; mkdir shared/mine/d
`
	for _, dir := range []string{model, m.dir} {
		if out, ok := shAs(t, dir, user); !ok {
			t.Fatalf("as nobody in %s: %s", dir, out)
		}
	}
	aclCompare(t, "setfacl", model, m.dir, ignore)
	for _, p := range []string{"g1", "g2", "g3"} {
		if fi, err := os.Stat(filepath.Join(m.dir, p)); err != nil || fi.Mode()&os.ModeSetgid != 0 {
			t.Errorf("%s: %v, %v: nobody's change must clear the set-group-ID bit", p, fi, err)
		}
	}
	// Through the Go API: the mode is stored, the base-only ACL of f2 is not.
	st, err := m.vol.Lstat("f1")
	if err != nil || st.Stat().ACL == nil {
		t.Fatalf("f1: %v, ACL %v", err, st.Stat().ACL)
	}
	for p, want := range map[string]uint32{"shared/mine/f": 0o666, "shared/mine/d": 0o777, "d2/e": 0o600} {
		if fi, err := m.vol.Lstat(p); err != nil || fi.Stat().Mode&0o777 != want {
			t.Errorf("%s: %v: mode %o, want %o (umask 077 applies only without a default ACL)", p, err, fi.Stat().Mode&0o777, want)
		}
	}
}

// TestACLEnforced checks that the kernel lets nobody in exactly as the ACLs
// say: a named user entry, the mask, a named group, a named entry that
// denies what other's bits allow, a directory opened by an entry, and a
// file that inherited a default ACL.
func TestACLEnforced(t *testing.T) {
	m := mountMem(t)
	openUp(t, m.dir)
	sh(t, m.dir, `
umask 077
echo secret > f
echo group > g
echo public > p; chmod 644 p
mkdir d; echo inside > d/x
`)
	step := 0
	check := func(script string, allowed bool) {
		t.Helper()
		step++
		out, ok := shAs(t, m.dir, script)
		if ok != allowed {
			t.Errorf("step %d: nobody: %q: success %v (%s), want %v", step, script, ok, strings.TrimSpace(out), allowed)
		} else if !ok && !strings.Contains(out, "Permission denied") {
			t.Errorf("step %d: nobody: %q: %s; want Permission denied", step, script, out)
		}
	}
	check("cat f", false)
	sh(t, m.dir, "setfacl -m u:65534:r f")
	check("cat f", true)
	check("echo x >> f", false)
	sh(t, m.dir, "setfacl -m m::- f")
	check("cat f", false) // the mask takes the named entry's r away
	sh(t, m.dir, "chmod 640 f")
	check("cat f", true) // chmod's group bits are the mask
	sh(t, m.dir, "setfacl -m g:65534:rw g")
	check("echo x >> g && cat g", true)
	sh(t, m.dir, "setfacl -m u:65534:- g")
	check("cat g", false) // a named user entry comes before the groups
	sh(t, m.dir, "setfacl -m u:65534:- p")
	check("cat p", false) // though other's bits allow it
	check("ls d", false)
	sh(t, m.dir, "setfacl -m u:65534:rwx d")
	check("ls d && touch d/mine", true)
	check("cat d/x", false)
	sh(t, m.dir, "setfacl -d -m u:65534:rw d && touch d/later")
	check("echo mine > d/later", true)
	sh(t, m.dir, "setfacl -x u:65534 d")
	check("ls d", false)
	if b, err := m.vol.ReadFile("d/later"); err != nil || string(b) != "mine\n" {
		t.Errorf("d/later: %q, %v", b, err)
	}
	if fi, err := m.vol.Lstat("d/mine"); err != nil || fi.Stat().UID != nobody {
		t.Errorf("d/mine: %v, %v; want nobody's", fi, err)
	}
}

// TestACLAfterRemount checks that ACLs and the modes they set survive a
// commit and a new mount of the same volume.
func TestACLAfterRemount(t *testing.T) {
	r := newRemountable(t)
	dir := r.dir
	sh(t, dir, "umask 022; touch f; setfacl -m u:1000:rwx f; mkdir d; setfacl -d -m g:100:r d; touch d/x")
	type attr struct{ path, name string }
	want := map[attr][]byte{}
	for _, p := range []string{"f", "d", "d/x"} {
		for _, name := range []string{acl.AccessXattr, acl.DefaultXattr} {
			want[attr{p, name}] = lgetxattr(t, filepath.Join(dir, p), name)
		}
	}
	r.unmount()
	r.mount()
	for a, w := range want {
		if got := lgetxattr(t, filepath.Join(dir, a.path), a.name); !bytes.Equal(got, w) {
			t.Errorf("%s %s after remount: % x, want % x", a.path, a.name, got, w)
		}
	}
	if w := want[attr{"d/x", acl.AccessXattr}]; w == nil {
		t.Error("d/x inherited no ACL")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "f"), &st); err != nil || st.Mode&0o777 != 0o674 {
		t.Errorf("f after remount: mode %o, %v; want 674 (the mask rwx)", st.Mode&0o777, err)
	}
}
