package ninep

import (
	"syscall"
	"testing"

	"9fans.net/go/plan9"

	"github.com/cowfs/cowfs/acl"
)

// TestSetGIDAsLinux checks the set-group-ID rules Linux applies (and the
// mount gets from the kernel: fusefs's TestSetGIDMatchesKernel) over
// 9P2000.L and 9P2000, as user 4242, whose only group is overflowGid: its
// chmod or access-ACL change of a file or directory it owns in group 50
// clears the bit, a default ACL or a chmod in its own group keeps it; in a
// set-group-ID directory of group 50 a directory it makes takes the group
// and the bit whatever mode it asks for, a file or node it makes takes the
// group and loses the bit if it is group-executable; root's keep it.
func TestSetGIDAsLinux(t *testing.T) {
	s := newServer(t)
	v, _ := s.FS.Volume("main")
	for _, p := range []string{"dchmod", "dacl", "ddefault", "mine", "p9dir"} {
		must(t, v.Mkdir(p, 0o2775))
		must(t, v.Lchown(p, 4242, 50))
	}
	must(t, v.Lchown("mine", 4242, overflowGid))
	for _, p := range []string{"fchmod", "facl", "p9file"} {
		must(t, v.WriteFile(p, nil, 0o2775))
		must(t, v.Lchown(p, 4242, 50))
	}
	must(t, v.Mkdir("pub", 0o2777))
	must(t, v.Lchown("pub", 0, 50))

	user := newACLClient(t, s, 4242)
	root := newACLClient(t, s, 0)
	chmod := func(mode uint32, p string) {
		t.Helper()
		user.ok(&Msg{Type: Tsetattr, Fid: user.walk(p), Attr: Attr{Valid: attrMode, Mode: mode}})
	}
	access := acl.ACL{
		{Tag: acl.UserObj, Perm: 7},
		{Tag: acl.User, Perm: 5, ID: 1000},
		{Tag: acl.GroupObj, Perm: 7},
		{Tag: acl.Mask, Perm: 7},
		{Tag: acl.Other, Perm: 5},
	}
	chmod(0o2755, "dchmod")
	chmod(0o2755, "fchmod")
	chmod(0o2755, "mine")
	for _, p := range []string{"dacl", "facl"} {
		if e := user.xattrSet(acl.AccessXattr, access.Encode(), 0, p); e != 0 {
			t.Fatalf("set the access ACL of %s: %v", p, e)
		}
	}
	if e := user.xattrSet(acl.DefaultXattr, access.Encode(), 0, "ddefault"); e != 0 {
		t.Fatalf("set the default ACL of ddefault: %v", e)
	}

	// Entries made in pub by the user, then by root.
	mkdir := func(c *aclClient, name string, mode uint32) {
		t.Helper()
		c.ok(&Msg{Type: Tmkdir, Dfid: c.walk("pub"), Name: name, Mode: mode, Gid: 0})
	}
	create := func(c *aclClient, name string, mode uint32) {
		t.Helper()
		fid := c.walk("pub")
		c.ok(&Msg{Type: Tlcreate, Fid: fid, Name: name, Flags: syscall.O_WRONLY, Mode: mode, Gid: 0})
		c.ok(&Msg{Type: Tclunk, Fid: fid})
	}
	mknod := func(c *aclClient, name string, mode uint32) {
		t.Helper()
		c.ok(&Msg{Type: Tmknod, Dfid: c.walk("pub"), Name: name, Mode: syscall.S_IFIFO | mode, Gid: 0})
	}
	mkdir(user, "d", 0o755)
	mkdir(user, "zero", 0)
	mkdir(user, "asked", 0o2777)
	create(user, "x", 0o2755)
	create(user, "nox", 0o2745)
	mknod(user, "p", 0o2775)
	mknod(user, "nop", 0o2745)
	mkdir(root, "rd", 0o755)
	create(root, "rx", 0o2755)
	mknod(root, "rp", 0o2775)

	// 9P2000: a wstat of the mode keeps the set-ID bits, but not the
	// set-group-ID bit for an owner outside the group; a directory made
	// in pub inherits the bit.
	p := dial(t, s)
	p.version(Plan9, 8192)
	p.ok(&Msg{Type: Tattach, Afid: NoFid, Uname: "4242"})
	for i, name := range []string{"p9dir", "p9file"} {
		fid := uint32(1 + i)
		p.ok(&Msg{Type: Twalk, Fid: 0, Newfid: fid, Names: []string{name}})
		d := wstatNull()
		d.Mode = 0o755
		if name == "p9dir" {
			d.Mode |= plan9.DMDIR
		}
		st, _ := d.Bytes()
		p.ok(&Msg{Type: Twstat, Fid: fid, Stat: st})
	}
	p.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 3, Names: []string{"pub"}})
	p.ok(&Msg{Type: Tcreate, Fid: 3, Name: "p9", Perm: plan9.DMDIR | 0o777, OMode: plan9.OREAD})

	for path, want := range map[string]uint32{
		"dchmod": 0o755, "fchmod": 0o755, "mine": 0o2755,
		"dacl": 0o775, "facl": 0o775, "ddefault": 0o2775,
		"pub/d": 0o2755, "pub/zero": 0o2000, "pub/asked": 0o2777,
		"pub/x": 0o755, "pub/nox": 0o2745, "pub/p": 0o775, "pub/nop": 0o2745,
		"pub/rd": 0o2755, "pub/rx": 0o2755, "pub/rp": 0o2775,
		"p9dir": 0o755, "p9file": 0o755, "pub/p9": 0o2777,
	} {
		fi, err := v.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Stat()
		if st.Mode&0o7777 != want {
			t.Errorf("%s: mode %04o, want %04o", path, st.Mode&0o7777, want)
		}
		if wantGid := uint32(50); len(path) > 4 && path[:4] == "pub/" && st.GID != wantGid {
			t.Errorf("%s: group %d, want pub's %d", path, st.GID, wantGid)
		}
	}
}
