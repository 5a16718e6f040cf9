package ninep

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"

	"9fans.net/go/plan9"
)

// TestPermissionsEnforced checks the mode bits against the attaching user
// (9P2000.L's n_uname): root makes a tree, and user 4242 (no entry in the
// user database, so no groups) is refused what the bits refuse.
func TestPermissionsEnforced(t *testing.T) {
	s := newServer(t)
	v, _ := s.FS.Volume("main")
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustDo(v.WriteFile("private", []byte("secret"), 0o600))
	mustDo(v.WriteFile("public", []byte("hello"), 0o644))
	mustDo(v.Mkdir("closed", 0o700))
	mustDo(v.WriteFile("closed/inside", nil, 0o644))
	mustDo(v.Mkdir("shared", 0o1777))
	mustDo(v.WriteFile("shared/roots", nil, 0o666))
	mustDo(v.Mkdir("ro", 0o755))

	const user = 4242
	r := dial(t, s)
	r.attachL(user, "")
	walk := func(fid uint32, names ...string) *Msg {
		t.Helper()
		return r.rpc(&Msg{Type: Twalk, Fid: 0, Newfid: fid, Names: names})
	}
	walk(1, "private")
	r.fails(&Msg{Type: Tlopen, Fid: 1, Flags: syscall.O_RDONLY}, syscall.EACCES)
	walk(2, "public")
	r.fails(&Msg{Type: Tlopen, Fid: 2, Flags: syscall.O_WRONLY}, syscall.EACCES)
	r.fails(&Msg{Type: Tsetattr, Fid: 2, Attr: Attr{Valid: attrMode, Mode: 0o666}}, syscall.EPERM)
	r.fails(&Msg{Type: Tsetattr, Fid: 2, Attr: Attr{Valid: setattrSize}}, syscall.EACCES)
	r.fails(&Msg{Type: Tsetattr, Fid: 2, Attr: Attr{Valid: attrUID, UID: user}}, syscall.EPERM)
	r.ok(&Msg{Type: Tlopen, Fid: 2, Flags: syscall.O_RDONLY})
	if rep := walk(3, "closed", "inside"); rep.Type != Twalk+1 || len(rep.Qids) != 1 {
		t.Errorf("walk into a 0700 directory of root's: %v, want a walk stopped after one name", rep)
	}
	walk(3, "closed")
	r.fails(&Msg{Type: Twalk, Fid: 3, Newfid: 8, Names: []string{"inside"}}, syscall.EACCES)
	r.fails(&Msg{Type: Tmkdir, Dfid: 0, Name: "mine", Mode: 0o755, Gid: 0}, syscall.EACCES)
	r.fails(&Msg{Type: Tunlinkat, Fid: 0, Name: "public"}, syscall.EACCES)
	walk(4, "ro")
	r.fails(&Msg{Type: Tlcreate, Fid: 4, Name: "x", Flags: syscall.O_WRONLY, Mode: 0o644}, syscall.EACCES)

	// In the sticky, world-writable directory the user makes a file of
	// its own (owned by it) and may remove only that one.
	walk(5, "shared")
	walk(6, "shared")
	r.ok(&Msg{Type: Tlcreate, Fid: 5, Name: "mine", Flags: syscall.O_WRONLY, Mode: 0o600, Gid: 0})
	a := r.ok(&Msg{Type: Tgetattr, Fid: 5, Mask: attrBasic})
	if a.Attr.UID != user || a.Attr.Mode != syscall.S_IFREG|0o600 {
		t.Errorf("new file: uid %d mode %o, want %d and 0600", a.Attr.UID, a.Attr.Mode, user)
	}
	// Gid 0 was asked for, but the user is not in group 0: the file gets
	// the group of users the machine does not know.
	if a.Attr.GID != overflowGid {
		t.Errorf("new file got group %d, want %d", a.Attr.GID, overflowGid)
	}
	// Linux refuses both with EPERM (the sticky bit), not EACCES.
	r.fails(&Msg{Type: Tunlinkat, Fid: 6, Name: "roots"}, syscall.EPERM)
	r.fails(&Msg{Type: Trenameat, Fid: 6, Name: "roots", Dfid: 6, NewName: "stolen"}, syscall.EPERM)
	r.ok(&Msg{Type: Tunlinkat, Fid: 6, Name: "mine"})

	// The control file is root's.
	walk(7, ".cowfs", "ctl")
	r.fails(&Msg{Type: Tlopen, Fid: 7, Flags: syscall.O_RDWR}, syscall.EACCES)

	// Root may do all of it.
	rr := dial(t, s)
	rr.attachL(0, "")
	rr.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 1, Names: []string{"closed", "inside"}})
	rr.ok(&Msg{Type: Tlopen, Fid: 1, Flags: syscall.O_RDWR})
	rr.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 2, Names: []string{".cowfs", "ctl"}})
	rr.ok(&Msg{Type: Tlopen, Fid: 2, Flags: syscall.O_RDWR})
}

// TestUnknownUserRefused: a 9P2000 attach names a user; one the machine
// does not know is refused, a numeric one is taken as the uid.
func TestUnknownUserRefused(t *testing.T) {
	s := newServer(t)
	r := dial(t, s)
	r.version(Plan9, 8192)
	if rep := r.rpc(&Msg{Type: Tattach, Afid: NoFid, Uname: "no-such-user-here"}); rep.Type != Rerror {
		t.Errorf("attach as an unknown user: %v", rep)
	}
	r.ok(&Msg{Type: Tattach, Afid: NoFid, Uname: "4242"})
	r.ok(&Msg{Type: Tattach, Fid: 1, Afid: NoFid, Uname: "root"})
}

// TestConcurrentLinuxClients: 8 9P2000.L connections at once create,
// write, read back, rename and list in one directory.
func TestConcurrentLinuxClients(t *testing.T) {
	s := newServer(t)
	clients := make([]*raw, 8)
	for i := range clients {
		clients[i] = dial(t, s)
		clients[i].attachL(0, "")
	}
	var wg sync.WaitGroup
	for i, r := range clients {
		wg.Go(func() {
			for round := range 20 {
				name := fmt.Sprintf("c%d-%d", i, round)
				data := bytes.Repeat([]byte{byte(i), byte(round)}, 3000+i)
				if rep := r.rpc(&Msg{Type: Twalk, Fid: 0, Newfid: 1}); rep.Type != Twalk+1 {
					t.Errorf("client %d: %v", i, rep)
					return
				}
				steps := []*Msg{
					{Type: Tlcreate, Fid: 1, Name: name, Flags: syscall.O_RDWR, Mode: 0o644},
					{Type: Twrite, Fid: 1, Data: data},
					{Type: Tread, Fid: 1, Count: uint32(len(data))},
					{Type: Tclunk, Fid: 1},
					{Type: Trenameat, Fid: 0, Name: name, Dfid: 0, NewName: name + "-done"},
				}
				for _, m := range steps {
					rep := r.rpc(m)
					if rep.Type != m.Type+1 {
						t.Errorf("client %d: %v: %v", i, m, rep)
						return
					}
					if m.Type == Tread && !bytes.Equal(rep.Data, data) {
						t.Errorf("client %d: read back %d bytes, differing", i, len(rep.Data))
					}
				}
			}
		})
	}
	wg.Wait()
	v, _ := s.FS.Volume("main")
	list, err := v.ReadDir(".")
	if err != nil || len(list) != 8*20 {
		t.Fatalf("%d files, %v; want %d", len(list), err, 8*20)
	}
	for _, fi := range list {
		if !strings.HasSuffix(fi.Name(), "-done") {
			t.Errorf("file %s was not renamed", fi.Name())
		}
	}
}

// TestPermissionEdges: names that are not entries, symlinks, set-ID bits,
// group bits, xattrs and 9P2000's own paths, as user 4242 (whose only
// group is overflowGid) unless said otherwise.
func TestPermissionEdges(t *testing.T) {
	s := newServer(t)
	v, _ := s.FS.Volume("main")
	must(t, v.Mkdir("tmp", 0o1777))
	must(t, v.WriteFile("tmp/roots", []byte("root's"), 0o666))
	must(t, v.WriteFile("secret", []byte("secret"), 0o600))
	must(t, v.WriteFile("grp", []byte("group"), 0o604))
	must(t, v.Lchown("grp", 0, overflowGid))
	must(t, v.WriteFile("shared", nil, 0o666))
	must(t, v.WriteFile("suid", []byte("x"), 0o6777))
	must(t, v.Mkdir("home", 0o777))
	must(t, v.Lchown("home", 4242, overflowGid))
	must(t, v.Mkdir("sgiddir", 0o2777))
	must(t, v.Lchown("sgiddir", 0, 50))

	r := dial(t, s)
	r.attachL(4242, "")
	walk := func(fid uint32, names ...string) {
		t.Helper()
		r.ok(&Msg{Type: Twalk, Fid: 0, Newfid: fid, Names: names})
	}
	// ".." names no entry to remove, rename or link.
	walk(1, "home")
	r.fails(&Msg{Type: Trenameat, Fid: 1, Name: "..", Dfid: 1, NewName: "stolen"}, syscall.EINVAL)
	r.fails(&Msg{Type: Tunlinkat, Fid: 1, Name: "..", Flags: atRemoveDir}, syscall.EINVAL)
	r.fails(&Msg{Type: Tmkdir, Dfid: 1, Name: "..", Mode: 0o755}, syscall.EINVAL)

	// A symlink's own mode and size cannot change (the target's would).
	r.ok(&Msg{Type: Tsymlink, Fid: 1, Name: "l", Target: "../secret"})
	walk(2, "home", "l")
	r.fails(&Msg{Type: Tsetattr, Fid: 2, Attr: Attr{Valid: attrMode, Mode: 0o666}}, syscall.EOPNOTSUPP)
	r.fails(&Msg{Type: Tsetattr, Fid: 2, Attr: Attr{Valid: setattrSize}}, syscall.EINVAL)
	if got, _ := v.ReadFile("secret"); string(got) != "secret" {
		t.Errorf("secret is now %q", got)
	}

	// Group bits apply to group members even where other's would allow.
	walk(3, "grp")
	r.fails(&Msg{Type: Tlopen, Fid: 3, Flags: syscall.O_RDONLY}, syscall.EACCES)

	// A set-group-ID file for a group one is not in loses the bit; one
	// may drop a file's set-ID bits where one may write it.
	walk(7, "sgiddir")
	r.ok(&Msg{Type: Tlcreate, Fid: 7, Name: "sgid", Flags: syscall.O_WRONLY, Mode: 0o2755, Gid: 0})
	if a := r.ok(&Msg{Type: Tgetattr, Fid: 7, Mask: attrBasic}); a.Attr.Mode&syscall.S_ISGID != 0 || a.Attr.GID != 50 {
		t.Errorf("created mode %o group %d: want the directory's group 50, set-group-ID dropped", a.Attr.Mode, a.Attr.GID)
	}
	walk(4, "suid")
	r.fails(&Msg{Type: Tsetattr, Fid: 4, Attr: Attr{Valid: attrMode, Mode: 0o666}}, syscall.EPERM)
	r.ok(&Msg{Type: Tsetattr, Fid: 4, Attr: Attr{Valid: attrMode, Mode: 0o777}})
	if fi, _ := v.Lstat("suid"); fi.Stat().Mode&0o7777 != 0o777 {
		t.Errorf("suid is mode %o after dropping its set-ID bits", fi.Stat().Mode&0o7777)
	}

	// user.* attributes follow the write bit, not ownership.
	walk(5, "shared")
	r.ok(&Msg{Type: Txattrcreate, Fid: 5, Name: "user.tag", Size: 1})
	r.ok(&Msg{Type: Twrite, Fid: 5, Data: []byte("x")})
	r.ok(&Msg{Type: Tclunk, Fid: 5})
	walk(5, "shared")
	r.fails(&Msg{Type: Txattrcreate, Fid: 5, Name: "trusted.tag", Size: 1}, syscall.EPERM)

	// fsync of a directory commits.
	r.ok(&Msg{Type: Tlopen, Fid: 1, Flags: syscall.O_RDONLY | syscall.O_DIRECTORY})
	r.ok(&Msg{Type: Tfsync, Fid: 1})
	// An open fid may be cloned in 9P2000.L, not walked in place.
	r.ok(&Msg{Type: Twalk, Fid: 1, Newfid: 6})
	r.fails(&Msg{Type: Twalk, Fid: 1, Newfid: 1}, syscall.EBUSY)

	// 9P2000: the same checks; a rename in a sticky directory; Twstat all
	// or nothing; ORCLOSE spares a file that took the name.
	p := dial(t, s)
	p.version(Plan9, 8192)
	p.ok(&Msg{Type: Tattach, Afid: NoFid, Uname: "4242"})
	p.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 1, Names: []string{"secret"}})
	p.fails(&Msg{Type: Topen, Fid: 1, OMode: 0}, syscall.EACCES)
	p.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 2, Names: []string{"shared"}})
	p.fails(&Msg{Type: Topen, Fid: 2, OMode: plan9.OEXEC}, syscall.EACCES)
	p.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 3, Names: []string{"tmp", "roots"}})
	d := wstatNull()
	d.Name = "mine"
	st, _ := d.Bytes()
	p.fails(&Msg{Type: Twstat, Fid: 3, Stat: st}, syscall.EPERM) // the sticky bit, as Linux
	p.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 4, Names: []string{"home"}})
	p.ok(&Msg{Type: Tcreate, Fid: 4, Name: "a", Perm: 0o644, OMode: plan9.OWRITE})
	p.ok(&Msg{Type: Twrite, Fid: 4, Data: []byte("aaaa")})
	p.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 5, Names: []string{"home"}})
	p.ok(&Msg{Type: Tcreate, Fid: 5, Name: "b", Perm: 0o644, OMode: plan9.OWRITE})
	d = wstatNull()
	d.Name, d.Length, d.Mode = "b", 0, 0o600
	st, _ = d.Bytes()
	p.fails(&Msg{Type: Twstat, Fid: 4, Stat: st}, syscall.EEXIST)
	if fi, _ := v.Lstat("home/a"); fi.Size() != 4 || fi.Stat().Mode&0o777 != 0o644 {
		t.Errorf("a failed Twstat changed a: size %d mode %o", fi.Size(), fi.Stat().Mode&0o777)
	}
	p.ok(&Msg{Type: Twalk, Fid: 0, Newfid: 6, Names: []string{"home", "b"}})
	p.ok(&Msg{Type: Topen, Fid: 6, OMode: plan9.OREAD | 0x40}) // ORCLOSE
	if rep := p.rpc(&Msg{Type: Twalk, Fid: 6, Newfid: 7}); rep.Type != Rerror || !strings.Contains(rep.Ename, "walk of open fid") {
		t.Errorf("9P2000 walk of an open fid: %v", rep)
	}
	must(t, v.Rename("home/b", "home/b-moved", 0))
	must(t, v.WriteFile("home/b", []byte("new"), 0o644))
	p.rpc(&Msg{Type: Tclunk, Fid: 6})
	if got, err := v.ReadFile("home/b"); err != nil || string(got) != "new" {
		t.Errorf("ORCLOSE removed the file that took the name: %q, %v", got, err)
	}
}
