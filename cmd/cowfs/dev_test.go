package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cowfs/cowfs/internal/fusetest"
)

// TestMountDev: with --dev, device nodes made in the mount open as the
// devices they name (/dev/null's numbers take writes, /dev/zero's give
// zeros) and /proc/mounts shows no nodev; without it the mount is nodev
// and opening one fails with EACCES. Both are nosuid.
func TestMountDev(t *testing.T) {
	fusetest.Require(t)
	for _, dev := range []bool{false, true} {
		mnt := t.TempDir()
		t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) }) // if it was killed
		args := []string{"mount", "--store", "mem:", mnt}
		if dev {
			args = append(args, "--dev")
		}
		p := startDaemon(t, args...)
		opts := mountOptions(t, mnt)
		if slices.Contains(opts, "nodev") == dev || !slices.Contains(opts, "nosuid") {
			t.Errorf("--dev %v: mount options %q", dev, opts)
		}
		null, zero := filepath.Join(mnt, "null"), filepath.Join(mnt, "zero")
		if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(zero, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
			t.Fatal(err)
		}
		w, werr := os.OpenFile(null, os.O_WRONLY, 0)
		r, rerr := os.Open(zero)
		if !dev {
			if !errors.Is(werr, syscall.EACCES) || !errors.Is(rerr, syscall.EACCES) {
				t.Errorf("open of device nodes on a nodev mount: %v, %v; want EACCES", werr, rerr)
			}
		} else {
			if werr != nil || rerr != nil {
				t.Fatalf("open of device nodes with --dev: %v, %v", werr, rerr)
			}
			if n, err := w.Write([]byte("into the void")); n != 13 || err != nil {
				t.Errorf("write to the null node: %d, %v", n, err)
			}
			buf := bytes.Repeat([]byte{0xff}, 1<<16)
			if _, err := io.ReadFull(r, buf); err != nil || !bytes.Equal(buf, make([]byte, len(buf))) {
				t.Errorf("read of the zero node: %v, or not zeros", err)
			}
			w.Close()
			r.Close()
			if b, err := os.ReadFile(null); err != nil || len(b) != 0 {
				t.Errorf("read of the null node: %q, %v; want nothing", b, err)
			}
		}
		var st unix.Stat_t
		if err := unix.Stat(null, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) || st.Size != 0 {
			t.Errorf("the null node after use: mode %o rdev %x size %d, %v", st.Mode, st.Rdev, st.Size, err)
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		if status := p.wait(t); status != 0 {
			t.Fatalf("exit status %d\n%s", status, p.stderr)
		}
	}
}

// TestMountDevNeedsRoot: a user other than root gets a clear error for
// --dev (fusermount3 would mount nodev anyway), and nothing is mounted.
func TestMountDevNeedsRoot(t *testing.T) {
	fusetest.Require(t)
	// The test binary, where nobody may run it.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "cowfs")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o777); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "mount", "--store", "mem:", "--dev", mnt)
	cmd.Env = cliEnviron(t)
	const nobody = 65534
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitFail || !strings.Contains(errb.String(), "--dev needs root") {
		t.Errorf("mount --dev as nobody: %v\n%s", err, errb.String())
	}
	if mounted(t, mnt) {
		t.Error("mounted anyway")
	}
}
