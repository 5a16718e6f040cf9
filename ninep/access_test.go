package ninep

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
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
	r.fails(&Msg{Type: Tunlinkat, Fid: 6, Name: "roots"}, syscall.EACCES)
	r.fails(&Msg{Type: Trenameat, Fid: 6, Name: "roots", Dfid: 6, NewName: "stolen"}, syscall.EACCES)
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
