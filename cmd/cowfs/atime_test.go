package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cowfs/cowfs/internal/fusetest"
	"golang.org/x/sys/unix"
)

// mountOptions returns the per-mount options of the mount at dir, as
// /proc/self/mountinfo shows them.
func mountOptions(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 5 && f[4] == dir {
			return strings.Split(f[5], ",")
		}
	}
	t.Fatalf("%s is not mounted", dir)
	return nil
}

// TestMountAtime: cowfs mount does relatime by default and says so in the
// mount options; a read's access time update is committed when the mount
// stops and is there when it starts again; --atime=noatime and
// --atime=strictatime show in the options, and a bad mode is a usage error
// (of serve too).
func TestMountAtime(t *testing.T) {
	fusetest.Require(t)
	store, mnt := t.TempDir(), t.TempDir()
	d := startMount(t, store, mnt)
	if opts := mountOptions(t, mnt); !slices.Contains(opts, "relatime") {
		t.Errorf("default mount options %v, want relatime", opts)
	}
	p := filepath.Join(mnt, "f")
	if err := os.WriteFile(p, make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	hour := unix.NsecToTimespec(time.Now().Add(-time.Hour).UnixNano())
	if err := unix.UtimesNano(p, []unix.Timespec{hour, hour}); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Truncate(time.Second)
	if out, err := exec.Command("cat", p).CombinedOutput(); err != nil {
		t.Fatalf("cat: %v\n%s", err, out)
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	read := st.Atim
	if time.Unix(read.Unix()).Before(start) {
		t.Fatalf("atime %v after cat, want the time of the read", time.Unix(read.Unix()))
	}
	stop(t, d)
	d = startMount(t, store, mnt)
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if st.Atim != read {
		t.Errorf("atime %v after mounting again, want %v as read", st.Atim, read)
	}
	stop(t, d)

	for mode, want := range map[string]string{"noatime": "noatime", "strictatime": ""} {
		mnt := t.TempDir()
		t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
		d := startDaemon(t, "mount", "--store", "mem:", "--atime", mode, mnt)
		opts := mountOptions(t, mnt)
		if want != "" && !slices.Contains(opts, want) || want == "" && (slices.Contains(opts, "relatime") || slices.Contains(opts, "noatime")) {
			t.Errorf("--atime=%s: mount options %v", mode, opts)
		}
		stop(t, d)
	}
	if _, errs, status := cli(t, "mount", "--atime", "sometimes", "--store", "mem:", t.TempDir()); status != exitUsage || !strings.Contains(errs, "--atime") {
		t.Errorf("bad --atime: status %d, %q", status, errs)
	}
	if _, errs, status := cli(t, "serve", "--atime", "sometimes", "--store", "mem:"); status != exitUsage || !strings.Contains(errs, "--atime") {
		t.Errorf("serve with a bad --atime: status %d, %q", status, errs)
	}
}

// stop ends a daemon with SIGTERM and fails unless it exits 0.
func stop(t *testing.T, d *daemon) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	if status := d.wait(t); status != 0 {
		t.Fatalf("cowfs %s exited %d\n%s", d.cmd.Args[1], status, d.stderr)
	}
}
