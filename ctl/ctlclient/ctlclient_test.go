package ctlclient

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/ctl"
	"github.com/cowfs/cowfs/fusefs"
	"github.com/cowfs/cowfs/internal/control"
	"github.com/cowfs/cowfs/internal/fusetest"
	"github.com/cowfs/cowfs/store/mem"
)

// fakeMount makes dir look like a cowfs mount root to Locate: a regular
// file at dir/.cowfs/ctl.
func fakeMount(t *testing.T, dir string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Join(dir, control.DirName), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, control.CtlPath), nil, 0o600))
}

// must fails the test on an error of setting it up.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLocate(t *testing.T) {
	root := fusetest.TempDir(t)
	fakeMount(t, root)
	must(t, os.MkdirAll(filepath.Join(root, "a/b/c"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "nested/x"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "a/f"), []byte("f"), 0o644))
	must(t, os.Symlink("b", filepath.Join(root, "a/link")))
	// A symlink to the mount root inside it: a path, not the root.
	must(t, os.Symlink(root, filepath.Join(root, "a/toroot")))
	// A directory outside the mount, linked into it from outside.
	outside := fusetest.TempDir(t)
	must(t, os.Symlink(filepath.Join(root, "a"), filepath.Join(outside, "in")))
	// A second mount nested inside the first.
	nested := filepath.Join(root, "nested")
	fakeMount(t, nested)
	// A .cowfs/ctl that is a directory marks no mount.
	must(t, os.MkdirAll(filepath.Join(root, "a/b/.cowfs/ctl"), 0o755))

	tests := []struct {
		path     string
		follow   bool
		wantRoot string
		wantRel  string
	}{
		{root, true, root, "."},
		{root + "/", false, root, "."},
		{filepath.Join(root, "a/f"), false, root, "a/f"},
		{filepath.Join(root, "a/f"), true, root, "a/f"},
		{filepath.Join(root, "a/new"), false, root, "a/new"},
		{filepath.Join(root, "a/b/c"), true, root, "a/b/c"},
		{filepath.Join(root, "a/b/c/../../f"), false, root, "a/f"},
		{filepath.Join(root, "a/link"), false, root, "a/link"},
		{filepath.Join(root, "a/link"), true, root, "a/b"},
		{filepath.Join(root, "a/link/c"), false, root, "a/b/c"},
		{filepath.Join(root, "a/toroot"), false, root, "a/toroot"},
		{filepath.Join(outside, "in/f"), false, root, "a/f"},
		{filepath.Join(outside, "in"), true, root, "a"},
		{nested, true, nested, "."},
		{filepath.Join(nested, "x/y"), false, nested, "x/y"},
	}
	for _, tc := range tests {
		got, err := Locate(tc.path, tc.follow)
		if err != nil || got.Mount.Root != tc.wantRoot || got.Rel != tc.wantRel || got.Arg != tc.path {
			t.Errorf("Locate(%q, %v) = %+v, %v; want root %q, rel %q", tc.path, tc.follow, got, err, tc.wantRoot, tc.wantRel)
		}
	}

	// A relative path is relative to the working directory.
	t.Chdir(filepath.Join(root, "a"))
	if got, err := Locate("b/../f", false); err != nil || got.Mount.Root != root || got.Rel != "a/f" {
		t.Errorf("Locate of a relative path: %+v, %v", got, err)
	}

	for _, tc := range []struct {
		path   string
		follow bool
		want   string
	}{
		{filepath.Join(outside, "x"), false, filepath.Join(outside, "x") + " is not inside a cowfs mount"},
		{outside, true, outside + " is not inside a cowfs mount"},
		{filepath.Join(root, "nodir/x"), false, "no such file or directory"},
		{filepath.Join(root, "a/missing"), true, "no such file or directory"},
	} {
		if got, err := Locate(tc.path, tc.follow); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Locate(%q, %v) = %+v, %v; want an error with %q", tc.path, tc.follow, got, err, tc.want)
		}
	}
}

// TestFindMountDevice checks that a directory holding .cowfs/ctl is a
// mount only for paths on its own device.
func TestFindMountDevice(t *testing.T) {
	root := fusetest.TempDir(t)
	fakeMount(t, root)
	sub := filepath.Join(root, "sub")
	must(t, os.Mkdir(sub, 0o755))
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := findMount(sub, deviceOf(fi)); !ok || got != root {
		t.Fatalf("findMount on the same device: %q, %v", got, ok)
	}
	proc, err := os.Stat("/proc")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	if deviceOf(proc) == deviceOf(fi) {
		t.Skip("/proc is on the device of the temporary directory")
	}
	if got, ok := findMount(sub, deviceOf(proc)); ok {
		t.Fatalf("findMount for a path on another device found %q", got)
	}
}

// TestVolumePath checks that paths in the control directory are no paths
// of the volume.
func TestVolumePath(t *testing.T) {
	for rel, ok := range map[string]bool{".": true, "a/b": true, ".cowfsx": true, "a/.cowfs": true, ".cowfs": false, ".cowfs/snapshots/s/a": false} {
		p := Path{Arg: "arg", Mount: Mount{Root: "/m"}, Rel: rel}
		got, err := p.VolumePath()
		if ok && (err != nil || got != rel) || !ok && (err == nil || !strings.Contains(err.Error(), "arg is in the control directory of the cowfs mount at /m")) {
			t.Errorf("VolumePath of %q: %q, %v", rel, got, err)
		}
	}
}

// TestCommands runs every command the package sends through the control
// file of a real mount and checks the parsed replies, the refusals (an
// *Error with the errno and the text read back) and arguments that need
// quoting.
func TestCommands(t *testing.T) {
	fusetest.Require(t)
	fsys, err := cowfs.Open(mem.New(), nil)
	must(t, err)
	vol, err := fsys.CreateVolume("main")
	must(t, err)
	root := fusetest.TempDir(t)
	srv, err := fusefs.Mount(fsys, vol, root, nil)
	must(t, err)
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		srv.Wait()
		fsys.Close()
	})
	m := Mount{Root: root}
	const src = "it's a file"
	data := []byte("some content\n")
	must(t, os.WriteFile(filepath.Join(root, src), data, 0o644))

	if reply, err := m.Exec("help"); err != nil || !strings.HasPrefix(reply, "commands") {
		t.Errorf("help: %q, %v", reply, err)
	}
	if err := m.Clone(src, "copy ''"); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(root, "copy ''")); err != nil || string(got) != string(data) {
		t.Errorf("the clone holds %q, %v", got, err)
	}
	refused := func(what string, err error, errno syscall.Errno, text string) {
		t.Helper()
		var e *Error
		if !errors.As(err, &e) || e.Errno != errno || !errors.Is(err, errno) || !strings.Contains(e.Text, text) || strings.HasPrefix(e.Text, "cowfs: ") {
			t.Errorf("%s: %#v, want an *Error with %v and text %q", what, err, errno, text)
		}
	}
	refused("clone onto a file", m.Clone(src, "copy ''"), syscall.EEXIST, "file exists")
	_, err = m.Exec("frob", "x")
	refused("an unknown command", err, syscall.EINVAL, "unknown command")

	u, err := m.Usage("/" + src)
	if err != nil || u != (ctl.UsageReply{Path: src, Logical: int64(len(data)), Shared: int64(len(data))}) {
		t.Errorf("Usage: %+v, %v", u, err)
	}
	st, err := m.Stats()
	if err != nil || st.Volume != "main" {
		t.Fatalf("Stats: %+v, %v", st, err)
	}
	if fuse, ok := st.Frontend["fuse"].(map[string]any); !ok {
		t.Errorf("Stats: frontend %v", st.Frontend)
	} else if n, ok := fuse["ctl_commands"].(json.Number); !ok || n.String() == "0" {
		t.Errorf("Stats: ctl_commands %#v, want a json.Number above 0", fuse["ctl_commands"])
	}

	must(t, m.CreateSnapshot("s1"))
	if list, err := m.Snapshots(); err != nil || len(list) != 1 || list[0].Name != "s1" || list[0].Created == "" {
		t.Errorf("Snapshots: %+v, %v", list, err)
	}
	refused("a second snapshot s1", m.CreateSnapshot("s1"), syscall.EEXIST, "file exists")
	must(t, m.DeleteSnapshot("s1"))
	refused("deleting a missing snapshot", m.DeleteSnapshot("s1"), syscall.ENOENT, "no such file")
	if list, err := m.Snapshots(); err != nil || len(list) != 0 {
		t.Errorf("Snapshots after the delete: %+v, %v", list, err)
	}

	served, err := m.SnapshotFile(src)
	if err != nil || served != filepath.Join(root, ".cowfs/files/1") {
		t.Fatalf("SnapshotFile: %q, %v", served, err)
	}
	if got, err := os.ReadFile(served); err != nil || string(got) != string(data) {
		t.Errorf("the served snapshot holds %q, %v", got, err)
	}

	if _, err := (Mount{Root: fusetest.TempDir(t)}).Exec("help"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Exec outside a mount: %v, want ENOENT opening the control file", err)
	}
}
