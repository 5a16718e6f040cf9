package fusefs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// xattrSteps runs the same extended attribute calls in dir and returns
// what each gave: an errno, a size, a hash of the bytes read.
func xattrSteps(t *testing.T, dir string) []string {
	t.Helper()
	f, g := filepath.Join(dir, "f"), filepath.Join(dir, "g")
	for _, p := range []string{f, g} {
		if err := unix.Mknod(p, unix.S_IFREG|0o644, 0); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 65,536 bytes: XATTR_SIZE_MAX
	var out []string
	res := func(what string, n int, err error, data []byte) {
		s := fmt.Sprintf("%s: %d", what, n)
		if err != nil {
			var e syscall.Errno
			errors.As(err, &e)
			s = fmt.Sprintf("%s: %s", what, unix.ErrnoName(e))
		} else if data != nil {
			s += fmt.Sprintf(" %x", sha256.Sum256(data))
		}
		out = append(out, s)
	}
	set := func(p, name string, v []byte, flags int) {
		res(fmt.Sprintf("set %s %.12s %d %d", filepath.Base(p), name, len(v), flags), 0, unix.Setxattr(p, name, v, flags), nil)
	}
	get := func(p, name string, size int) {
		var buf []byte
		if size > 0 {
			buf = make([]byte, size)
		}
		n, err := unix.Getxattr(p, name, buf)
		var data []byte
		if size > 0 && err == nil {
			data = buf[:n]
		}
		res(fmt.Sprintf("get %s %.12s into %d", filepath.Base(p), name, size), n, err, data)
	}
	list := func(p string, size int) {
		var buf []byte
		if size > 0 {
			buf = make([]byte, size)
		}
		n, err := unix.Listxattr(p, buf)
		var data []byte
		if size > 0 && err == nil {
			// The order of the names is the file system's.
			names := strings.Split(string(buf[:n]), "\x00")
			slices.Sort(names)
			data = []byte(strings.Join(names, "\x00"))
		}
		res(fmt.Sprintf("list %s into %d", filepath.Base(p), size), n, err, data)
	}
	set(f, "user.big", big, 0)
	set(f, "user.big2", append(big, 'x'), 0)
	get(f, "user.big", 0)
	get(f, "user.big", len(big)-1)
	get(f, "user.big", len(big))
	get(f, "user.big", 2*len(big))
	set(f, "user.tiny", []byte("t"), 0)
	set(f, "user.tiny", big[:65535], unix.XATTR_REPLACE)
	get(f, "user.tiny", len(big))
	set(f, "user.tiny", []byte("small again"), unix.XATTR_REPLACE)
	get(f, "user.tiny", 100)
	set(f, "user."+strings.Repeat("n", 250), []byte("v"), 0)
	set(f, "user."+strings.Repeat("n", 251), []byte("v"), 0)
	get(f, "user."+strings.Repeat("n", 251), 10)
	set(f, "user.big", []byte("v"), unix.XATTR_CREATE)
	set(f, "user.none", big, unix.XATTR_REPLACE)
	get(f, "user.none", 10)
	res("remove f user.none", 0, unix.Removexattr(f, "user.none"), nil)
	set(f, "user.empty", []byte{}, 0)
	get(f, "user.empty", 0)
	get(f, "user.empty", 10)
	list(f, 0)
	n, _ := unix.Listxattr(f, nil)
	list(f, n-1)
	list(f, n)
	// A list of exactly XATTR_LIST_MAX bytes: 256 names of 255 bytes.
	for i := range 256 {
		name := fmt.Sprintf("user.%03d%s", i, strings.Repeat("n", 255-8))
		if err := unix.Setxattr(g, name, big[:i*256], 0); err != nil {
			t.Fatalf("setxattr %s of %d bytes: %v", name[:8], i*256, err)
		}
	}
	list(g, 0)
	list(g, 65535)
	list(g, 65536)
	get(g, fmt.Sprintf("user.%03d%s", 255, strings.Repeat("n", 255-8)), 65536)
	res("remove g user.000", 0, unix.Removexattr(g, "user.000"+strings.Repeat("n", 255-8)), nil)
	set(g, "user.x", big, 0)
	list(g, 65536)
	return out
}

// TestXattrsLikeTmpfs: extended attributes through the mount behave as on
// a tmpfs, call by call: 64 KiB values (a tiny one replaced by a large one
// with XATTR_REPLACE too; they failed with ENOSPC), E2BIG past 64 KiB,
// ERANGE for a long name and for a buffer too small, size probes, a list of
// exactly 64 KiB of names. Past that, tmpfs takes more names (and then
// listxattr fails with E2BIG); cowfs refuses the name with ENOSPC, as ext4
// does when a file's attributes are full, so every list can be read.
func TestXattrsLikeTmpfs(t *testing.T) {
	m := mountMem(t)
	ref := tmpfsDir(t)
	got, want := xattrSteps(t, m.dir), xattrSteps(t, ref)
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("step %d: %s, want (as on tmpfs) %s", i, g, w)
		}
	}
	g := filepath.Join(m.dir, "g")
	n, err := unix.Listxattr(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	fill := "user." + strings.Repeat("f", 65536-n-1-len("user."))
	if err := unix.Setxattr(g, fill, nil, 0); err != nil {
		t.Fatalf("setxattr of a name that fills the list to 64 KiB: %v", err)
	}
	if err := unix.Setxattr(g, "user.more", nil, 0); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("setxattr past a 64 KiB list: %v, want ENOSPC", err)
	}
	if err := unix.Setxattr(g, fill, []byte("replacing fits"), 0); err != nil {
		t.Errorf("setxattr replacing a value of a full list: %v", err)
	}
	if n, err := unix.Listxattr(g, make([]byte, 65536)); err != nil || n != 65536 {
		t.Errorf("listxattr of the full list: %d, %v", n, err)
	}
}
