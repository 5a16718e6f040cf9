package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/ctl"
	"github.com/cowfs/cowfs/fusefs"
	"github.com/cowfs/cowfs/internal/fusetest"
	"github.com/cowfs/cowfs/store/mem"
)

// serveMem mounts a fresh volume of an in-memory store in a temporary
// directory, served by this process, and returns the directory. The test's
// cleanup unmounts it.
func serveMem(t *testing.T) string {
	t.Helper()
	fusetest.Require(t)
	fsys, err := cowfs.Open(mem.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := fsys.CreateVolume("main")
	if err != nil {
		t.Fatal(err)
	}
	dir := fusetest.TempDir(t)
	srv, err := fusefs.Mount(fsys, vol, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
			return
		}
		srv.Wait()
		if err := fsys.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return dir
}

// cowfsOK runs `cowfs args...` in this process, fails the test unless it
// succeeds, and returns its stdout.
func cowfsOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if status := run(args, &out, &errb); status != 0 || errb.Len() != 0 {
		t.Fatalf("cowfs %q: status %d\n%s%s", args, status, out.String(), errb.String())
	}
	return out.String()
}

// cowfsFails runs `cowfs args...` and checks that it fails with status 1
// and a message holding want.
func cowfsFails(t *testing.T, want string, args ...string) {
	t.Helper()
	var out, errb bytes.Buffer
	status := run(args, &out, &errb)
	if status != 1 || !strings.HasPrefix(errb.String(), "cowfs "+args[0]+": FAILED: ") || !strings.Contains(errb.String(), want) {
		t.Errorf("cowfs %q: status %d, stderr %q; want 1 and %q", args, status, errb.String(), want)
	}
}

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMountVerbs runs clone, du, snapshot and stats against a real mount
// and checks their results through the mount.
func TestMountVerbs(t *testing.T) {
	mnt := serveMem(t)
	data := make([]byte, 1<<20+3)
	rand.Read(data)
	mkdirs(t, filepath.Join(mnt, "src/sub"))
	for name, b := range map[string][]byte{"src/data.bin": data, "src/sub/small.txt": []byte("small\n")} {
		if err := os.WriteFile(filepath.Join(mnt, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("data.bin", filepath.Join(mnt, "src/link")); err != nil {
		t.Fatal(err)
	}

	// clone of a file, whose name the kernel has just seen missing.
	copyPath := filepath.Join(mnt, "copy.bin")
	if _, err := os.Stat(copyPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat %s before the clone: %v", copyPath, err)
	}
	if out := cowfsOK(t, "clone", filepath.Join(mnt, "src/data.bin"), copyPath); out != "" {
		t.Errorf("clone printed %q", out)
	}
	if !bytes.Equal(mustReadFile(t, copyPath), data) {
		t.Fatal("the clone differs from its source")
	}

	// du: the clone shares all its bytes with its source.
	var usage []ctl.UsageReply
	out := cowfsOK(t, "du", "--json", copyPath, mnt)
	if err := json.Unmarshal([]byte(out), &usage); err != nil {
		t.Fatalf("du --json: %v\n%s", err, out)
	}
	n := int64(len(data))
	if len(usage) != 2 || usage[0] != (ctl.UsageReply{Path: copyPath, Logical: n, Shared: n}) ||
		usage[1].Path != mnt || usage[1].Logical != 2*n+6 {
		t.Fatalf("du --json: %+v", usage)
	}
	want := "   LOGICAL     SHARED  EXCLUSIVE  PATH\n" +
		"   1.0 MiB    1.0 MiB        0 B  " + copyPath + "\n"
	if out := cowfsOK(t, "du", copyPath); out != want {
		t.Errorf("du printed\n%s\nwant\n%s", out, want)
	}

	// The clone is independent of its source.
	f, err := os.OpenFile(copyPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("new"), 10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !bytes.Equal(mustReadFile(t, filepath.Join(mnt, "src/data.bin")), data) {
		t.Fatal("writing the clone changed its source")
	}
	if got := mustReadFile(t, copyPath); string(got[10:13]) != "new" {
		t.Fatal("the write to the clone is lost")
	}

	// clone of a directory tree, by relative paths, one with a space; and
	// of a symlink, which is cloned, not followed.
	t.Chdir(mnt)
	cowfsOK(t, "clone", "src", "tree copy")
	if got := mustReadFile(t, filepath.Join(mnt, "tree copy/sub/small.txt")); string(got) != "small\n" {
		t.Fatalf("tree copy/sub/small.txt = %q", got)
	}
	if got := mustReadFile(t, filepath.Join(mnt, "tree copy/link")); !bytes.Equal(got, data) {
		t.Fatal("tree copy/link does not lead to the cloned data")
	}
	cowfsOK(t, "clone", "src/link", "src/link2")
	if target, err := os.Readlink(filepath.Join(mnt, "src/link2")); err != nil || target != "data.bin" {
		t.Fatalf("cloned symlink: %q, %v", target, err)
	}

	// Snapshots.
	cowfsOK(t, "snapshot", "create", mnt, "s1")
	if err := os.WriteFile(filepath.Join(mnt, "src/sub/small.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := cowfsOK(t, "snapshot", "list", "src"); !strings.HasPrefix(out, "s1  ") || strings.Count(out, "\n") != 1 {
		t.Errorf("snapshot list:\n%s", out)
	}
	var snaps []ctl.SnapshotReply
	out = cowfsOK(t, "snapshot", "list", "--json", mnt)
	if err := json.Unmarshal([]byte(out), &snaps); err != nil || len(snaps) != 1 || snaps[0].Name != "s1" {
		t.Fatalf("snapshot list --json: %v\n%s", err, out)
	}
	if got := mustReadFile(t, filepath.Join(mnt, ".cowfs/snapshots/s1/src/sub/small.txt")); string(got) != "small\n" {
		t.Fatalf("the snapshot holds %q", got)
	}
	cowfsFails(t, "file exists", "snapshot", "create", mnt, "s1")
	cowfsFails(t, "names are", "snapshot", "create", mnt, "bad:name")
	cowfsFails(t, "no such file", "snapshot", "delete", mnt, "nosuch")
	cowfsOK(t, "snapshot", "delete", mnt, "s1")
	if out := cowfsOK(t, "snapshot", "list", "--json", mnt); out != "[]\n" {
		t.Errorf("snapshot list --json with no snapshot: %q", out)
	}
	if _, err := os.Stat(filepath.Join(mnt, ".cowfs/snapshots/s1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted snapshot still shown: %v", err)
	}

	// stats.
	var st ctl.StatsReply
	out = cowfsOK(t, "stats", "--json", mnt)
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("stats --json: %v\n%s", err, out)
	}
	if st.Volume != "main" || st.Store.Bytes < n || st.Frontend["fuse"] == nil {
		t.Errorf("stats --json:\n%s", out)
	}
	if out := cowfsOK(t, "stats", "src"); !strings.Contains(out, "node cache") || !strings.Contains(out, "store ") {
		t.Errorf("stats:\n%s", out)
	}

	// Failures leave the files alone.
	cowfsFails(t, "file exists", "clone", "src/data.bin", "copy.bin")
	cowfsFails(t, "no such file", "clone", "missing", "x")
	cowfsFails(t, "not in its volume", "du", ".cowfs/snapshots")
	if got := mustReadFile(t, copyPath); len(got) != len(data) || string(got[10:13]) != "new" {
		t.Fatal("a failed clone changed its destination")
	}
	if _, err := os.Lstat(filepath.Join(mnt, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed clone made x: %v", err)
	}

	// Two mounts: a clone cannot cross them.
	other := serveMem(t)
	cowfsFails(t, "are in different cowfs mounts", "clone", copyPath, filepath.Join(other, "y"))
}

// TestMountVerbErrors checks the command lines clone, snapshot, du and
// stats refuse (status 2) and their clear failures outside a mount
// (status 1).
func TestMountVerbErrors(t *testing.T) {
	// Two directories that look like cowfs mount roots to the verbs.
	fake := func() string {
		d := fusetest.TempDir(t)
		must(t, os.MkdirAll(filepath.Join(d, ".cowfs"), 0o755))
		must(t, os.WriteFile(filepath.Join(d, ".cowfs/ctl"), nil, 0o600))
		return d
	}
	outside, m1, m2 := fusetest.TempDir(t), fake(), fake()
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
