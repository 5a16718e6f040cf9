// Package fusetest holds what the tests that mount a file system share.
package fusetest

import (
	"os"
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
