package ninep

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"9fans.net/go/plan9"
	"9fans.net/go/plan9/client"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/control"
)

// serve starts a server (newServer's) on a TCP loopback listener and
// returns its FS and address.
func serve(t *testing.T) (*cowfs.FS, string) {
	t.Helper()
	s := newServer(t)
	addr, stop := serveOn(t, s)
	t.Cleanup(stop)
	return s.FS, addr
}

// serveOn serves s on a TCP loopback listener and returns its address and
// a function that closes the listener and waits for every connection's
// Serve to return (once its client hangs up).
func serveOn(t *testing.T, s *Server) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.Serve(c) })
		}
	})
	return ln.Addr().String(), func() {
		ln.Close()
		wg.Wait()
	}
}

func attach(t *testing.T, addr, aname string) *client.Fsys {
	t.Helper()
	c, err := client.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fsys, err := c.Attach(nil, "root", aname)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func readAll(t *testing.T, fsys *client.Fsys, name string) []byte {
	t.Helper()
	fid, err := fsys.Open(name, plan9.OREAD)
	if err != nil {
		t.Fatal(err)
	}
	defer fid.Close()
	b, err := io.ReadAll(fid)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFileOperations: create, write, read, stat, wstat (rename, truncate,
// chmod), directories and their listing, remove, through the 9fans client.
func TestFileOperations(t *testing.T) {
	f, addr := serve(t)
	fsys := attach(t, addr, "")
	dir, err := fsys.Create("d", plan9.OREAD, plan9.DMDIR|0o755)
	if err != nil {
		t.Fatal(err)
	}
	dir.Close()
	fid, err := fsys.Create("d/hello", plan9.ORDWR, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789"), 10000)
	if n, err := fid.WriteAt(data, 0); err != nil || n != len(data) {
		t.Fatalf("write: %d, %v", n, err)
	}
	fid.Close()
	if got := readAll(t, fsys, "d/hello"); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(data))
	}
	d, err := fsys.Stat("d/hello")
	if err != nil {
		t.Fatal(err)
	}
	if d.Length != uint64(len(data)) || d.Mode != 0o640 || d.Name != "hello" {
		t.Errorf("stat: %+v", d)
	}
	nd := plan9.Dir{}
	nd.Null()
	nd.Name, nd.Length, nd.Mode = "renamed", 5, 0o600
	if err := fsys.Wstat("d/hello", &nd); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, fsys, "d/renamed"); string(got) != "01234" {
		t.Errorf("after wstat: %q", got)
	}
	if _, err := fsys.Stat("d/hello"); err == nil {
		t.Error("old name still there after the rename")
	}
	dfid, err := fsys.Open("d", plan9.OREAD)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := dfid.Dirreadall()
	dfid.Close()
	if err != nil || len(ents) != 1 || ents[0].Name != "renamed" || ents[0].Mode != 0o600 {
		t.Fatalf("listing: %v, %v", ents, err)
	}
	if err := fsys.Remove("d/renamed"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Remove("d"); err != nil {
		t.Fatal(err)
	}
	v, _ := f.Volume("main")
	if list, err := v.ReadDir("."); err != nil || len(list) != 0 {
		t.Errorf("volume after removes: %v, %v", list, err)
	}
	if _, err := fsys.Open("missing", plan9.OREAD); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("open of a missing file: %v", err)
	}
}

// TestCtlCloneAndSnapshots drives clone and snapshots through .cowfs/ctl,
// which the root's listing does not show, and reads a snapshot attached
// as main@NAME, read-only.
func TestCtlCloneAndSnapshots(t *testing.T) {
	_, addr := serve(t)
	fsys := attach(t, addr, "main")
	fid, err := fsys.Create("a", plan9.OWRITE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fid.Write([]byte("original"))
	fid.Close()
	ctlFid, err := fsys.Open(".cowfs/ctl", plan9.ORDWR)
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"clone a b", "snapshot create s1"} {
		if _, err := ctlFid.Write([]byte(cmd)); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
	if _, err := ctlFid.Write([]byte("clone missing c")); err == nil {
		t.Error("clone of a missing file succeeded")
	}
	ctlFid.Close()
	if got := readAll(t, fsys, "b"); string(got) != "original" {
		t.Errorf("clone: %q", got)
	}
	root, err := fsys.Open(".", plan9.OREAD)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := root.Dirreadall()
	root.Close()
	for _, e := range ents {
		if e.Name == control.DirName {
			t.Error("the root's listing shows .cowfs")
		}
	}
	fid, _ = fsys.Open("a", plan9.OWRITE|plan9.OTRUNC)
	fid.Write([]byte("changed"))
	fid.Close()
	snap := attach(t, addr, "main@s1")
	if got := readAll(t, snap, "a"); string(got) != "original" {
		t.Errorf("snapshot: %q", got)
	}
	if _, err := snap.Open("a", plan9.OWRITE); err == nil {
		t.Error("a snapshot opened for writing")
	}
	if _, err := snap.Create("new", plan9.OWRITE, 0o644); err == nil {
		t.Error("a file created in a snapshot")
	}
}

// TestConcurrentClients runs several connections writing and reading their
// own files at once.
func TestConcurrentClients(t *testing.T) {
	_, addr := serve(t)
	var wg sync.WaitGroup
	for i := range 8 {
		fsys := attach(t, addr, "")
		wg.Go(func() {
			name := string(rune('a' + i))
			data := bytes.Repeat([]byte{byte(i)}, 50000+i)
			fid, err := fsys.Create(name, plan9.ORDWR, 0o644)
			if err != nil {
				t.Error(err)
				return
			}
			fid.WriteAt(data, 0)
			got := make([]byte, len(data))
			n, err := fid.ReadAt(got, 0)
			fid.Close()
			if err != nil && err != io.EOF || n != len(data) || !bytes.Equal(got, data) {
				t.Errorf("client %d: read %d, %v", i, n, err)
			}
		})
	}
	wg.Wait()
}

// TestSnapshotsDirectory reads snapshots through .cowfs/snapshots/, lists
// them, and shares a range through ctl's copyrange.
func TestSnapshotsDirectory(t *testing.T) {
	_, addr := serve(t)
	fsys := attach(t, addr, "")
	fid, err := fsys.Create("a", plan9.OWRITE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fid.Write([]byte("0123456789"))
	fid.Close()
	ctlFid, err := fsys.Open(".cowfs/ctl", plan9.ORDWR)
	if err != nil {
		t.Fatal(err)
	}
	defer ctlFid.Close()
	for _, cmd := range []string{"snapshot create before", "copyrange a 2 a 6 3"} {
		if _, err := ctlFid.Write([]byte(cmd)); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
	if got := readAll(t, fsys, "a"); string(got) != "0123452349" {
		t.Errorf("after copyrange: %q", got)
	}
	if got := readAll(t, fsys, ".cowfs/snapshots/before/a"); string(got) != "0123456789" {
		t.Errorf("snapshot: %q", got)
	}
	dir, err := fsys.Open(".cowfs/snapshots", plan9.OREAD)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := dir.Dirreadall()
	dir.Close()
	if err != nil || len(ents) != 1 || ents[0].Name != "before" || ents[0].Mode&plan9.DMDIR == 0 {
		t.Fatalf("snapshots listing: %v, %v", ents, err)
	}
	live, _ := fsys.Stat("a")
	old, _ := fsys.Stat(".cowfs/snapshots/before/a")
	if live == nil || old == nil || live.Qid.Path == old.Qid.Path {
		t.Errorf("a file and its snapshot share qid path: %v %v", live, old)
	}
	if _, err := fsys.Create(".cowfs/snapshots/before/new", plan9.OWRITE, 0o644); err == nil {
		t.Error("created a file in a snapshot")
	}
}
