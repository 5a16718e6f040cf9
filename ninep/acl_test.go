package ninep

import (
	"bytes"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/acl"
)

// aclClient is a 9P2000.L connection that sets and reads ACLs through the
// xattr messages, as Linux's v9fs client does.
type aclClient struct {
	*raw
	next uint32
}

func newACLClient(t *testing.T, s *Server, uid uint32) *aclClient {
	r := dial(t, s)
	r.attachL(uid, "")
	return &aclClient{raw: r, next: 100}
}

// walk returns a new fid for path (names below the root).
func (c *aclClient) walk(names ...string) uint32 {
	c.t.Helper()
	c.next++
	c.ok(&Msg{Type: Twalk, Fid: 0, Newfid: c.next, Names: names})
	return c.next
}

// open tries to open path with flags and returns the error.
func (c *aclClient) open(flags uint32, names ...string) syscall.Errno {
	c.t.Helper()
	fid := c.walk(names...)
	defer c.rpc(&Msg{Type: Tclunk, Fid: fid})
	if m := c.rpc(&Msg{Type: Tlopen, Fid: fid, Flags: flags}); m.Type == Rlerror {
		return syscall.Errno(m.Ecode)
	}
	return 0
}

// TestACLs: ACLs set, read and inherited over 9P2000.L's xattr messages
// follow Linux's rules as they do through the mount, and the server's
// permission checks for the attaching user honour their entries: named
// users and groups, the mask, and what a default ACL passes on.
func TestACLs(t *testing.T) {
	s := newServer(t)
	v, _ := s.FS.Volume("main")
	must(t, v.WriteFile("f", []byte("secret"), 0o600))
	must(t, v.WriteFile("g", []byte("group"), 0o600))
	must(t, v.WriteFile("own", nil, 0o2775))
	must(t, v.Lchown("own", 4242, 0))
	must(t, v.Mkdir("d", 0o700))

	root := newACLClient(t, s, 0)
	user := newACLClient(t, s, 4242) // its only group is overflowGid
	expect := func(what string, got, want syscall.Errno) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	mode := func(p string) uint32 {
		t.Helper()
		fi, err := v.Lstat(p)
		must(t, err)
		return fi.Stat().Mode
	}

	// A named user entry lets 4242 read what the mode keeps from it.
	expect("read f", user.open(syscall.O_RDONLY, "f"), syscall.EACCES)
	ext := acl.ACL{
		{Tag: acl.UserObj, Perm: 6},
		{Tag: acl.User, Perm: 4, ID: 4242},
		{Tag: acl.GroupObj, Perm: 0},
		{Tag: acl.Mask, Perm: 4},
		{Tag: acl.Other, Perm: 0},
	}
	expect("set f's ACL", root.xattrSet(acl.AccessXattr, ext.Encode(), 0, "f"), 0)
	if m := mode("f"); m&0o777 != 0o640 {
		t.Errorf("f: mode %o after an ACL with mask r--, want 640", m&0o777)
	}
	if b, e := root.xattrGet(acl.AccessXattr, "f"); e != 0 || !bytes.Equal(b, ext.Encode()) {
		t.Errorf("f's ACL read back: % x, %v", b, e)
	}
	expect("read f", user.open(syscall.O_RDONLY, "f"), 0)
	expect("write f", user.open(syscall.O_WRONLY, "f"), syscall.EACCES)
	// chmod rewrites the mask: 0600 takes the entry's r away, 0640 gives it back.
	root.ok(&Msg{Type: Tsetattr, Fid: root.walk("f"), Attr: Attr{Valid: attrMode, Mode: 0o600}})
	expect("read f after chmod 600", user.open(syscall.O_RDONLY, "f"), syscall.EACCES)
	root.ok(&Msg{Type: Tsetattr, Fid: root.walk("f"), Attr: Attr{Valid: attrMode, Mode: 0o640}})
	expect("read f after chmod 640", user.open(syscall.O_RDONLY, "f"), 0)

	// A named group entry, for a group 4242 is in.
	grp := acl.ACL{
		{Tag: acl.UserObj, Perm: 6},
		{Tag: acl.GroupObj, Perm: 0},
		{Tag: acl.Group, Perm: 6, ID: overflowGid},
		{Tag: acl.Mask, Perm: 6},
		{Tag: acl.Other, Perm: 0},
	}
	expect("set g's ACL", root.xattrSet(acl.AccessXattr, grp.Encode(), 0, "g"), 0)
	expect("write g", user.open(syscall.O_RDWR, "g"), 0)
	// An ACL of only the base entries is the mode, and nothing is stored.
	expect("set g's base ACL", root.xattrSet(acl.AccessXattr, acl.FromMode(0o644).Encode(), 0, "g"), 0)
	if m := mode("g"); m&0o777 != 0o644 {
		t.Errorf("g: mode %o after a base ACL of 644", m&0o777)
	}
	if _, e := root.xattrGet(acl.AccessXattr, "g"); e != syscall.ENODATA {
		t.Errorf("g's base ACL is stored: %v", e)
	}
	expect("write g", user.open(syscall.O_RDWR, "g"), syscall.EACCES)
	expect("read g", user.open(syscall.O_RDONLY, "g"), 0)

	// A default ACL: 4242 may create in d, and what it creates inherits.
	dirACL := acl.ACL{
		{Tag: acl.UserObj, Perm: 7},
		{Tag: acl.User, Perm: 7, ID: 4242},
		{Tag: acl.GroupObj, Perm: 0},
		{Tag: acl.Mask, Perm: 7},
		{Tag: acl.Other, Perm: 0},
	}
	def := acl.ACL{
		{Tag: acl.UserObj, Perm: 7},
		{Tag: acl.User, Perm: 6, ID: 1000},
		{Tag: acl.GroupObj, Perm: 5},
		{Tag: acl.Mask, Perm: 7},
		{Tag: acl.Other, Perm: 0},
	}
	expect("set d's ACL", root.xattrSet(acl.AccessXattr, dirACL.Encode(), 0, "d"), 0)
	expect("set d's default ACL", root.xattrSet(acl.DefaultXattr, def.Encode(), 0, "d"), 0)
	dfid := user.walk("d")
	user.ok(&Msg{Type: Tlcreate, Fid: dfid, Name: "new", Flags: syscall.O_WRONLY, Mode: 0o666, Gid: overflowGid})
	wantACL, wantPerm := acl.Inherit(def, 0o666)
	if b, _ := v.GetXattr("d/new", acl.AccessXattr); !bytes.Equal(b, wantACL.Encode()) || mode("d/new")&0o777 != wantPerm {
		t.Errorf("d/new: ACL % x mode %o, want % x and %o", b, mode("d/new")&0o777, wantACL.Encode(), wantPerm)
	}
	user.ok(&Msg{Type: Tmkdir, Dfid: user.walk("d"), Name: "sub", Mode: 0o755, Gid: overflowGid})
	if b, _ := v.GetXattr("d/sub", acl.DefaultXattr); !bytes.Equal(b, def.Encode()) {
		t.Errorf("d/sub's default ACL: % x, want % x", b, def.Encode())
	}

	// Who may change ACLs: the owner (4242 owns own; not in its group 0,
	// so the set-group-ID bit goes), not others; a default ACL only on a
	// directory; a malformed ACL is refused when the value is complete.
	expect("4242 sets f's ACL", user.xattrSet(acl.AccessXattr, ext.Encode(), 0, "f"), syscall.EPERM)
	expect("4242 sets own's ACL", user.xattrSet(acl.AccessXattr, ext.Encode(), 0, "own"), 0)
	if m := mode("own"); m&0o7777 != 0o640 {
		t.Errorf("own: mode %o after its owner, outside its group, set an ACL; want 0640", m&0o7777)
	}
	expect("default ACL on a file", root.xattrSet(acl.DefaultXattr, def.Encode(), 0, "f"), syscall.EACCES)
	expect("malformed ACL", root.xattrSet(acl.AccessXattr, ext.Encode()[:10], 0, "f"), syscall.EINVAL)
	expect("ACL without owner", root.xattrSet(acl.AccessXattr, ext[1:].Encode(), 0, "f"), syscall.EINVAL)
	if b, _ := root.xattrGet(acl.AccessXattr, "f"); !bytes.Equal(b, ext.Chmod(0o640).Encode()) {
		t.Errorf("a refused ACL changed f's: % x", b)
	}
	// Removing the access ACL leaves the mode.
	expect("remove f's ACL", root.xattrSet(acl.AccessXattr, nil, 0, "f"), 0)
	if _, e := root.xattrGet(acl.AccessXattr, "f"); e != syscall.ENODATA || mode("f")&0o777 != 0o640 {
		t.Errorf("f after removing its ACL: %v, mode %o", e, mode("f")&0o777)
	}
}
