package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeMount makes dir look like a cowfs mount root to locate: a regular
// file at dir/.cowfs/ctl.
func fakeMount(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, controlDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, controlFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// realTempDir is t.TempDir with its symlinks resolved, as locate reports
// mount roots.
func realTempDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLocate(t *testing.T) {
	root := realTempDir(t)
	fakeMount(t, root)
	mkdirs(t, filepath.Join(root, "a/b/c"), filepath.Join(root, "nested/x"))
	if err := os.WriteFile(filepath.Join(root, "a/f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("b", filepath.Join(root, "a/link")); err != nil {
		t.Fatal(err)
	}
	// A symlink to the mount root inside it: a path, not the root.
	if err := os.Symlink(root, filepath.Join(root, "a/toroot")); err != nil {
		t.Fatal(err)
	}
	// A directory outside the mount, linked into it from outside.
	outside := realTempDir(t)
	if err := os.Symlink(filepath.Join(root, "a"), filepath.Join(outside, "in")); err != nil {
		t.Fatal(err)
	}
	// A second mount nested inside the first.
	nested := filepath.Join(root, "nested")
	fakeMount(t, nested)
	// A .cowfs/ctl that is a directory marks no mount.
	mkdirs(t, filepath.Join(root, "a/b/.cowfs/ctl"))

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
		got, err := locate(tc.path, tc.follow)
		if err != nil || got.root != tc.wantRoot || got.rel != tc.wantRel || got.arg != tc.path {
			t.Errorf("locate(%q, %v) = %+v, %v; want root %q, rel %q", tc.path, tc.follow, got, err, tc.wantRoot, tc.wantRel)
		}
	}

	// A relative path is relative to the working directory.
	t.Chdir(filepath.Join(root, "a"))
	if got, err := locate("b/../f", false); err != nil || got.root != root || got.rel != "a/f" {
		t.Errorf("locate of a relative path: %+v, %v", got, err)
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
		if got, err := locate(tc.path, tc.follow); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("locate(%q, %v) = %+v, %v; want an error with %q", tc.path, tc.follow, got, err, tc.want)
		}
	}
}

// TestFindMountDevice checks that a directory holding .cowfs/ctl is a
// mount only for paths on its own device.
func TestFindMountDevice(t *testing.T) {
	root := realTempDir(t)
	fakeMount(t, root)
	sub := filepath.Join(root, "sub")
	mkdirs(t, sub)
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

// TestMountVerbErrors checks the command lines clone, snapshot, du and
// stats refuse (status 2) and their clear failures outside a mount
// (status 1).
func TestMountVerbErrors(t *testing.T) {
	outside := realTempDir(t)
	m1, m2 := realTempDir(t), realTempDir(t)
	fakeMount(t, m1)
	fakeMount(t, m2)
	tests := []struct {
		args   []string
		status int
		stderr string
	}{
		{[]string{"clone"}, 2, "missing arguments"},
		{[]string{"clone", "a"}, 2, "missing arguments"},
		{[]string{"clone", "a", "b", "c"}, 2, `unexpected arguments ["c"]`},
		{[]string{"clone", "--json", "a", "b"}, 2, "unknown flag: --json"},
		{[]string{"snapshot"}, 2, "missing arguments"},
		{[]string{"snapshot", "frob", outside}, 2, `unknown action "frob"`},
		{[]string{"snapshot", "create", outside}, 2, "missing arguments"},
		{[]string{"snapshot", "delete", outside}, 2, "missing arguments"},
		{[]string{"snapshot", "list", outside, "x"}, 2, `unexpected arguments ["x"]`},
		{[]string{"snapshot", "create", "--json", outside, "x"}, 2, "--json applies to list only"},
		{[]string{"du"}, 2, "missing arguments"},
		{[]string{"du", "--bogus", outside}, 2, "unknown flag: --bogus"},
		{[]string{"du", outside, "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"stats"}, 2, "missing arguments"},
		{[]string{"stats", outside, outside}, 2, "unexpected arguments"},

		{[]string{"clone", outside + "/a", outside + "/b"}, 1, "cowfs clone: FAILED: " + outside + "/a is not inside a cowfs mount\n"},
		{[]string{"clone", m1 + "/a", outside + "/b"}, 1, "cowfs clone: FAILED: " + outside + "/b is not inside a cowfs mount\n"},
		{[]string{"clone", m1 + "/a", m2 + "/b"}, 1, "are in different cowfs mounts (" + m1 + " and " + m2 + ")"},
		{[]string{"clone", m1 + "/.cowfs/ctl", m1 + "/b"}, 1, "in the control directory of the cowfs mount at " + m1},
		{[]string{"clone", m1 + "/a", m1 + "/nodir/b"}, 1, "no such file or directory"},
		{[]string{"snapshot", "list", outside}, 1, "cowfs snapshot: FAILED: " + outside + " is not inside a cowfs mount\n"},
		{[]string{"snapshot", "create", outside, "s"}, 1, "is not inside a cowfs mount"},
		{[]string{"du", outside}, 1, "cowfs du: FAILED: " + outside + " is not inside a cowfs mount\n"},
		{[]string{"du", m1 + "/missing"}, 1, "no such file or directory"},
		{[]string{"stats", outside}, 1, "cowfs stats: FAILED: " + outside + " is not inside a cowfs mount\n"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		status := run(tc.args, &out, &errb)
		if status != tc.status || !strings.Contains(errb.String(), tc.stderr) || out.Len() != 0 {
			t.Errorf("cowfs %q: status %d, stdout %q, stderr %q; want %d and %q", tc.args, status, out.String(), errb.String(), tc.status, tc.stderr)
		}
	}
	for _, name := range []string{"clone", "snapshot", "du", "stats"} {
		var out, errb bytes.Buffer
		if status := run([]string{name, "-h"}, &out, &errb); status != 0 || !strings.Contains(out.String(), "cowfs "+name) || errb.Len() != 0 {
			t.Errorf("cowfs %s -h: status %d, stdout %q, stderr %q", name, status, out.String(), errb.String())
		}
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{
		0:         "0 B",
		1023:      "1023 B",
		1024:      "1.0 KiB",
		1536:      "1.5 KiB",
		300000:    "293.0 KiB",
		5 << 30:   "5.0 GiB",
		1<<63 - 1: "8.0 EiB",
	} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
