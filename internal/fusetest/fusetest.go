// Package fusetest holds what the tests that mount a file system share.
package fusetest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Require skips a test that needs to mount when this machine cannot (it
// needs root and /dev/fuse), except under CI (CI=true), where such a test
// must run and so fails instead.
func Require(t testing.TB) {
	t.Helper()
	_, err := os.Stat("/dev/fuse")
	if os.Geteuid() == 0 && err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("FUSE tests must run under CI: need root and /dev/fuse (euid %d, /dev/fuse: %v)", os.Geteuid(), err)
	}
	t.Skip("needs root and /dev/fuse")
}

// RequireRoot skips a test that needs root (to mount a tmpfs, to act as
// other users), except under CI, where it fails instead.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("this test must run under CI: it needs root (euid %d)", os.Geteuid())
	}
	t.Skip("needs root")
}

// Tmpfs mounts a new tmpfs with the given mount options (e.g. "mode=0755",
// "size=16m") on a temporary directory and returns it; the test's cleanup
// unmounts it. It needs root, as RequireRoot says.
func Tmpfs(t testing.TB, options string) string {
	t.Helper()
	RequireRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, options); err != nil {
		t.Fatalf("mount a tmpfs (%s) on %s: %v", options, dir, err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// TempDir is t.TempDir with its symlinks resolved: the path a mount made
// there has in the mount table, and the mount root ctlclient.Locate
// reports.
func TempDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}
