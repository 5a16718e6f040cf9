package acl

// These tests take Linux itself as the model: the same ACLs are set, changed
// and inherited on a tmpfs (whose ACLs are the kernel's generic ones, as on
// ext4) and computed by this package, and the results must agree exactly.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cowfs/cowfs/internal/fusetest"
	"golang.org/x/sys/unix"
)

// childEnv names the list of checks a child process runs (see TestMain).
const childEnv = "COWFS_ACL_CHILD_CHECKS"

// TestMain runs as a child that checks access as another user when
// childEnv is set: each line of that file is "WANT PATH"; the child prints
// "1" or "0" per line, whether access(2) grants WANT.
func TestMain(m *testing.M) {
	if list := os.Getenv(childEnv); list != "" {
		os.Exit(runChild(list))
	}
	os.Exit(m.Run())
}

func runChild(list string) int {
	b, err := os.ReadFile(list)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	out := bufio.NewWriter(os.Stdout)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		want, p, _ := strings.Cut(line, " ")
		w, _ := strconv.Atoi(want)
		err := unix.Faccessat(unix.AT_FDCWD, p, uint32(w), 0)
		switch {
		case err == nil:
			fmt.Fprintln(out, 1)
		case errors.Is(err, syscall.EACCES):
			fmt.Fprintln(out, 0)
		default:
			fmt.Fprintln(os.Stderr, p, err)
			return 2
		}
	}
	out.Flush()
	return 0
}

// tmpfs mounts a tmpfs on a new directory for the test.
func tmpfs(t *testing.T) string { return fusetest.Tmpfs(t, "mode=0755") }

func newRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed))
}

// randACL draws a valid ACL over a few users and groups.
func randACL(r *rand.Rand) ACL {
	perm := func() uint16 { return uint16(r.IntN(8)) }
	a := ACL{{Tag: UserObj, Perm: perm()}}
	named := false
	for u := uint32(1000); u < 1004; u++ {
		if r.IntN(3) == 0 {
			a, named = append(a, Entry{Tag: User, Perm: perm(), ID: u}), true
		}
	}
	a = append(a, Entry{Tag: GroupObj, Perm: perm()})
	for g := uint32(100); g < 104; g++ {
		if r.IntN(3) == 0 {
			a, named = append(a, Entry{Tag: Group, Perm: perm(), ID: g}), true
		}
	}
	if named || r.IntN(3) == 0 {
		a = append(a, Entry{Tag: Mask, Perm: perm()})
	}
	return append(a, Entry{Tag: Other, Perm: perm()})
}

// mangle returns the xattr form of a, sometimes broken the ways a client
// could break it.
func mangle(r *rand.Rand, a ACL) []byte {
	a = append(ACL(nil), a...)
	switch r.IntN(8) {
	case 0: // two entries swapped
		i, j := r.IntN(len(a)), r.IntN(len(a))
		a[i], a[j] = a[j], a[i]
	case 1: // one dropped
		i := r.IntN(len(a))
		a = append(a[:i], a[i+1:]...)
	case 2: // one repeated
		i := r.IntN(len(a))
		a = append(a[:i+1], a[i:]...)
	case 3: // a bad permission or tag
		i := r.IntN(len(a))
		if r.IntN(2) == 0 {
			a[i].Perm = 8 << r.IntN(3)
		} else {
			a[i].Tag = Tag(0x40 << r.IntN(3))
		}
	}
	b := a.Encode()
	switch r.IntN(16) {
	case 0:
		b = append(b, byte(r.IntN(256)))
	case 1:
		b[0] = 3
	}
	return b
}

func getxattr(t *testing.T, p, name string) []byte {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := syscall.Getxattr(p, name, buf)
	if errors.Is(err, syscall.ENODATA) {
		return nil
	}
	if err != nil {
		t.Fatalf("getxattr %s %s: %v", p, name, err)
	}
	return buf[:n]
}

func modeOf(t *testing.T, p string) uint32 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode
}

// TestSetMatchesKernel sets valid and broken ACLs on files of random modes:
// Parse must accept exactly what the kernel accepts (with the same errno),
// and the mode and stored attribute must be what the package computes.
func TestSetMatchesKernel(t *testing.T) {
	dir, r := tmpfs(t), newRand(t)
	for i := range 500 {
		p := filepath.Join(dir, strconv.Itoa(i))
		mode := uint32(r.IntN(0o10000))
		if err := os.WriteFile(p, nil, 0); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		b := mangle(r, randACL(r))
		kerr := syscall.Setxattr(p, AccessXattr, b, 0)
		a, err := Parse(b)
		if kerr != nil {
			if err == nil || !errors.Is(err, kerr) {
				t.Fatalf("kernel refused % x with %v; Parse: %v, %v", b, kerr, a, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("kernel took % x; Parse: %v", b, err)
		}
		wantMode := syscall.S_IFREG | mode&^0o777 | a.Mode()
		if got := modeOf(t, p); got != wantMode {
			t.Fatalf("%v on mode %o: kernel mode %o, want %o", a, mode, got, wantMode)
		}
		stored := getxattr(t, p, AccessXattr)
		if a.Equiv() != (stored == nil) || (stored != nil && !bytes.Equal(stored, a.Encode())) {
			t.Fatalf("%v: kernel stored % x, want % x (equiv %v)", a, stored, a.Encode(), a.Equiv())
		}
		// chmod rewrites the stored ACL as Chmod does.
		m2 := uint32(r.IntN(0o1000))
		if err := syscall.Chmod(p, m2); err != nil {
			t.Fatal(err)
		}
		if stored != nil {
			if got := getxattr(t, p, AccessXattr); !bytes.Equal(got, a.Chmod(m2).Encode()) {
				t.Fatalf("chmod %o of %v: kernel % x, want % x", m2, a, got, a.Chmod(m2).Encode())
			}
		}
	}
}

// TestInheritMatchesKernel creates files, directories and fifos with random
// modes and umasks in directories with random default ACLs (or none).
func TestInheritMatchesKernel(t *testing.T) {
	dir, r := tmpfs(t), newRand(t)
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	for i := range 300 {
		d := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
		var def ACL
		if r.IntN(4) != 0 {
			def = randACL(r)
			if err := syscall.Setxattr(d, DefaultXattr, def.Encode(), 0); err != nil {
				t.Fatalf("set default %v: %v", def, err)
			}
		}
		umask := uint32(r.IntN(0o1000))
		mode := uint32(r.IntN(0o10000))
		syscall.Umask(int(umask))
		kinds := []string{"file", "dir", "fifo"}
		for _, kind := range kinds {
			p := filepath.Join(d, kind)
			var err error
			switch kind {
			case "file":
				var fd int
				fd, err = syscall.Open(p, syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY, mode)
				if err == nil {
					syscall.Close(fd)
				}
			case "dir":
				err = syscall.Mkdir(p, mode)
			case "fifo":
				err = syscall.Mknod(p, syscall.S_IFIFO|mode, 0)
			}
			if err != nil {
				t.Fatalf("make %s: %v", kind, err)
			}
			perm := mode & 0o777 &^ umask
			var access ACL
			if def != nil {
				access, perm = Inherit(def, mode)
			}
			special := mode & 0o7000
			if kind == "dir" {
				special &= syscall.S_ISVTX // mkdir keeps only the sticky bit here
			}
			got := modeOf(t, p)
			if got&0o777 != perm || got&0o1000 != special&0o1000 {
				t.Fatalf("%s with mode %o, umask %o, default %v: kernel mode %o, want %o", kind, mode, umask, def, got, perm|special)
			}
			stored := getxattr(t, p, AccessXattr)
			if (access == nil) != (stored == nil) || (stored != nil && !bytes.Equal(stored, access.Encode())) {
				t.Fatalf("%s with mode %o under %v: kernel access ACL % x, want %v", kind, mode, def, stored, access)
			}
			gotDef := getxattr(t, p, DefaultXattr)
			if kind == "dir" && def != nil {
				if !bytes.Equal(gotDef, def.Encode()) {
					t.Fatalf("dir under %v: kernel default % x", def, gotDef)
				}
			} else if gotDef != nil {
				t.Fatalf("%s got a default ACL % x", kind, gotDef)
			}
		}
	}
}

// TestPermitsMatchesKernel puts random ACLs on files with random owners and
// asks, as several users with several groups, what access(2) grants.
func TestPermitsMatchesKernel(t *testing.T) {
	dir, r := tmpfs(t), newRand(t)
	type file struct {
		path         string
		owner, group uint32
		a            ACL
	}
	var files []file
	for i := range 300 {
		f := file{
			path:  filepath.Join(dir, strconv.Itoa(i)),
			owner: 1000 + uint32(r.IntN(4)),
			group: 100 + uint32(r.IntN(4)),
			a:     randACL(r),
		}
		if err := os.WriteFile(f.path, nil, 0); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setxattr(f.path, AccessXattr, f.a.Encode(), 0); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(f.path, int(f.owner), int(f.group)); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	var list bytes.Buffer
	for _, f := range files {
		for want := 1; want <= 7; want++ {
			fmt.Fprintf(&list, "%d %s\n", want, f.path)
		}
	}
	listFile := filepath.Join(t.TempDir(), "checks")
	if err := os.WriteFile(listFile, list.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	creds := []syscall.Credential{
		{Uid: 1000, Gid: 100},
		{Uid: 1001, Gid: 101, Groups: []uint32{102}},
		{Uid: 1002, Gid: 103, Groups: []uint32{100, 101}},
		{Uid: 1003, Gid: 102},
		{Uid: 1004, Gid: 104},
		{Uid: 1004, Gid: 104, Groups: []uint32{100, 101, 102, 103}},
	}
	// The child runs a copy of this test binary that other users may run.
	bin := filepath.Join(t.TempDir(), "acl.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	// Other users must reach it, the list and the files: open up the
	// test's temporary directories (the tmpfs itself is 0755).
	for _, d := range []string{filepath.Dir(dir), filepath.Dir(bin), filepath.Dir(listFile)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range creds {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), childEnv+"="+listFile)
		cc := c
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &cc}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("child as %d: %v: %s", c.Uid, err, stderr.String())
		}
		lines := strings.Fields(string(out))
		if len(lines) != 7*len(files) {
			t.Fatalf("child as %d answered %d checks of %d", c.Uid, len(lines), 7*len(files))
		}
		groups := append([]uint32{c.Gid}, c.Groups...)
		in := func(g uint32) bool {
			for _, x := range groups {
				if x == g {
					return true
				}
			}
			return false
		}
		for i, f := range files {
			for want := uint32(1); want <= 7; want++ {
				kernel := lines[i*7+int(want)-1] == "1"
				if got := f.a.Permits(f.owner, f.group, c.Uid, in, want); got != kernel {
					t.Fatalf("uid %d groups %v want %o on %v (owner %d group %d): Permits %v, kernel %v",
						c.Uid, groups, want, f.a, f.owner, f.group, got, kernel)
				}
			}
		}
	}
}
