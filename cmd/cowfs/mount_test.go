package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"github.com/cowfs/cowfs/internal/fusetest"
	"github.com/cowfs/cowfs/privmap"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startMount runs `cowfs mount --store store mnt` and returns once it says
// the mount is ready. The test's cleanup stops it if the test did not.
func startMount(t *testing.T, store, mnt string) *daemon {
	t.Helper()
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) }) // if it was killed
	p := startDaemon(t, "mount", "--store", store, mnt)
	if !mounted(t, mnt) {
		t.Fatalf("cowfs mount said ready but %s is not mounted", mnt)
	}
	return p
}

// mounted reports whether dir is a mount point of a cowfs FUSE mount.
func mounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 8 && f[4] == dir && strings.Contains(l, " - fuse.cowfs ") {
			return true
		}
	}
	return false
}

// writeTree writes a few files, a directory and a symlink in dir and
// returns the files' contents by relative path.
func writeTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	big := make([]byte, 3<<20+17)
	rand.Read(big)
	files := map[string][]byte{
		"hello.txt":      []byte("hello, world\n"),
		"sub/big.bin":    big,
		"sub/deep/empty": {},
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("sub/big.bin", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	return files
}

// checkTree checks that dir holds files.
func checkTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", name, len(got), err, len(want))
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "link")); err != nil || target != "sub/big.bin" {
		t.Errorf("link: %q, %v", target, err)
	}
}

// TestMountUnmountRemount mounts a local store, writes, stops the mount
// with SIGTERM (exit 0, unmounted), checks the store, and finds everything
// again after mounting it anew.
func TestMountUnmountRemount(t *testing.T) {
	fusetest.Require(t)
	store, mnt := filepath.Join(t.TempDir(), "store"), t.TempDir()
	p := startMount(t, store, mnt)
	files := writeTree(t, mnt)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if status := p.wait(t); status != 0 {
		t.Fatalf("exit status %d after SIGTERM\n%s", status, p.stderr)
	}
	if mounted(t, mnt) {
		t.Fatal("still mounted after the mount command exited")
	}
	if out, errs, status := cli(t, "fsck", "--store", store); status != 0 {
		t.Fatalf("fsck: %d\n%s%s", status, out, errs)
	}
	p = startMount(t, store, mnt)
	checkTree(t, mnt, files)
	// An unmount by the user also ends the command with status 0.
	if err := syscall.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	if status := p.wait(t); status != 0 {
		t.Fatalf("exit status %d after umount\n%s", status, p.stderr)
	}
}

// TestMountSIGKILL kills the mount daemon after an fsync: after a remount
// the store checks clean and the fsync'd data is there.
func TestMountSIGKILL(t *testing.T) {
	fusetest.Require(t)
	store, mnt := filepath.Join(t.TempDir(), "store"), t.TempDir()
	p := startMount(t, store, mnt)
	files := writeTree(t, mnt)
	f, err := os.OpenFile(filepath.Join(mnt, "hello.txt"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(mnt, "unsynced"), []byte("may be lost"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Kill()
	p.wait(t)
	if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if out, errs, status := cli(t, "fsck", "--store", store); status != 0 {
		t.Fatalf("fsck after SIGKILL: %d\n%s%s", status, out, errs)
	}
	startMount(t, store, mnt)
	checkTree(t, mnt, files)
}

// TestMountBusyDetaches stops a mount that still has an open file: the
// mount point is detached at once, the open file keeps working, and the
// command exits 0 once it is closed.
func TestMountBusyDetaches(t *testing.T) {
	fusetest.Require(t)
	store, mnt := filepath.Join(t.TempDir(), "store"), t.TempDir()
	p := startMount(t, store, mnt)
	f, err := os.Create(filepath.Join(mnt, "open"))
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(20 * time.Second)
	for mounted(t, mnt) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if mounted(t, mnt) {
		t.Fatalf("busy mount not detached\n%s", p.stderr)
	}
	if _, err := f.WriteString("still served"); err != nil {
		t.Errorf("write to the open file after detach: %v", err)
	}
	f.Close()
	if status := p.wait(t); status != 0 {
		t.Fatalf("exit status %d\n%s", status, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "detached") {
		t.Errorf("no word of the detach on stderr:\n%s", p.stderr)
	}
	startMount(t, store, mnt) // its cleanup stops it
	if got, err := os.ReadFile(filepath.Join(mnt, "open")); err != nil || string(got) != "still served" {
		t.Errorf("after remount: %q, %v", got, err)
	}
}

// TestMountFailures checks the clear failures of cowfs mount.
func TestMountFailures(t *testing.T) {
	fusetest.Require(t)
	missing := filepath.Join(t.TempDir(), "missing")
	if _, errs, status := cli(t, "mount", "--store", "mem:", missing); status != exitFail || !strings.Contains(errs, "mount point") {
		t.Errorf("missing mount point: status %d, %q", status, errs)
	}
	if _, errs, status := cli(t, "mount", "--store", "mem:"); status != exitUsage {
		t.Errorf("no mount point: status %d, %q", status, errs)
	}
	store, mnt := filepath.Join(t.TempDir(), "store"), t.TempDir()
	startMount(t, store, mnt)
	if _, errs, status := cli(t, "mount", "--store", store, t.TempDir()); status != exitFail || !strings.Contains(errs, "in use") {
		t.Errorf("store in use: status %d, %q", status, errs)
	}
}

// TestParseSize checks the sizes --cache-size takes.
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1073741824": 1 << 30, "512M": 512 << 20, "2G": 2 << 30, "2GiB": 2 << 30, "64k": 64 << 10, "1MB": 1 << 20, "0": 0} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1M", "1X", "1.5G", "9999999999T", "1GG"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
	if _, errs, status := cli(t, "mount", "--cache-size", "lots", "--store", "mem:", t.TempDir()); status != exitUsage || !strings.Contains(errs, "--cache-size") {
		t.Errorf("bad --cache-size: status %d, %q", status, errs)
	}
}

// fuseStat returns counter name of the mount's `cowfs stats --json`.
func fuseStat(t *testing.T, mnt, name string) int64 {
	t.Helper()
	out, errs, status := cli(t, "stats", "--json", mnt)
	if status != 0 {
		t.Fatalf("stats: %d: %s", status, errs)
	}
	var st struct {
		Frontend struct {
			Fuse map[string]int64 `json:"fuse"`
		} `json:"frontend"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("stats: %v\n%s", err, out)
	}
	v, ok := st.Frontend.Fuse[name]
	if !ok {
		t.Fatalf("stats has no %s:\n%s", name, out)
	}
	return v
}

// TestSnapshotFileMappedPrivately takes a file snapshot through the mount,
// maps it privately in this process (the mount daemon is another), and
// writes back only the pages this process changed: the rest is a clone.
func TestSnapshotFileMappedPrivately(t *testing.T) {
	fusetest.Require(t)
	store, mnt := filepath.Join(t.TempDir(), "store"), t.TempDir()
	startMount(t, store, mnt)
	orig := filepath.Join(mnt, "data")
	data := make([]byte, 4<<20+100)
	rand.Read(data)
	if err := os.WriteFile(orig, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, status := cli(t, "snapshot-file", orig)
	if status != 0 {
		t.Fatalf("snapshot-file: %d: %s", status, errs)
	}
	snap := strings.TrimSpace(out)
	if !strings.HasPrefix(snap, filepath.Join(mnt, ".cowfs", "files")+"/") {
		t.Fatalf("snapshot-file printed %q", snap)
	}
	// Later writes to the file never show in the snapshot.
	f, err := os.OpenFile(orig, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("changed after the snapshot"), 1000); err != nil {
		t.Fatal(err)
	}
	m, err := privmap.Map(snap)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b := m.Bytes()
	if !bytes.Equal(b, data) {
		t.Fatal("the mapped snapshot differs from the file as it was")
	}
	ps := os.Getpagesize()
	b[5*ps+1] = 'X'
	b[600*ps] = 'Y'
	if p, err := m.PrivatePages(); err != nil || len(p) != 2 || p[0] != 5 || p[1] != 600 {
		t.Fatalf("private pages %v, %v; want [5 600]", p, err)
	}
	writes, copied := fuseStat(t, mnt, "write_bytes"), fuseStat(t, mnt, "copy_range_bytes")
	written, err := m.WriteBack(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	if written != int64(2*ps) {
		t.Errorf("write-back wrote %d bytes, want 2 pages", written)
	}
	if d := fuseStat(t, mnt, "write_bytes") - writes; d != int64(2*ps) {
		t.Errorf("the mount received %d bytes of writes, want 2 pages", d)
	}
	if d := fuseStat(t, mnt, "copy_range_bytes") - copied; d != int64(len(data)) {
		t.Errorf("the mount shared %d bytes, want %d", d, len(data))
	}
	got, err := os.ReadFile(orig)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("after write-back the file differs from the mapping (%v)", err)
	}
	if err := os.Remove(snap); err != nil {
		t.Errorf("remove the snapshot: %v", err)
	}
}
