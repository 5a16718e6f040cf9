package fusefs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/fusetest"
	"github.com/cowfs/cowfs/store/local"
	"golang.org/x/sys/unix"
)

// localMount is a volume of a local store mounted for a test that unmounts,
// closes and reopens it itself.
type localMount struct {
	storeDir, dir string
	fsys          *cowfs.FS
	srv           *Server
}

// mountLocal opens the local store in storeDir (volume "main", created if
// missing) and mounts it at a new temporary directory.
func mountLocal(t *testing.T, storeDir string, fopt *cowfs.Options) *localMount {
	t.Helper()
	fusetest.Require(t)
	st, err := local.Open(storeDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := cowfs.Open(st, fopt)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := fsys.Volume("main")
	if err != nil {
		vol, err = fsys.CreateVolume("main")
	}
	if err != nil {
		t.Fatal(err)
	}
	m := &localMount{storeDir: storeDir, dir: t.TempDir(), fsys: fsys}
	if m.srv, err = Mount(fsys, vol, m.dir, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.close(t) })
	return m
}

// close unmounts, checks and closes the store; a second call does nothing.
func (m *localMount) close(t *testing.T) {
	t.Helper()
	if m.srv == nil {
		return
	}
	if err := m.srv.Unmount(); err != nil {
		t.Errorf("unmount: %v", err)
		return
	}
	m.srv.Wait()
	m.srv = nil
	if rep, err := m.fsys.Check(context.Background()); err != nil {
		t.Errorf("check: %v", err)
	} else if err := rep.Err(); err != nil {
		t.Errorf("check: %v", err)
	}
	if err := m.fsys.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// tmpfsDir mounts a tmpfs for the test, as a local file system to compare
// with.
func tmpfsDir(t *testing.T) string { return fusetest.Tmpfs(t, "mode=0755") }

// timeCase is an access and a modification time to set, as timespecs
// (UTIME_OMIT leaves one unchanged).
type timeCase struct {
	name         string
	atime, mtime unix.Timespec
}

func ts(sec, nsec int64) unix.Timespec { return unix.Timespec{Sec: sec, Nsec: nsec} }

// timeCases reach from year 1 to 2486 and past (tmpfs keeps any 64-bit
// seconds), before 1970 with nanoseconds included.
var timeCases = []timeCase{
	{"1901", ts(-1<<31, 1), ts(-1<<31, 999999999)},
	{"1960", ts(-315619200, 123456789), ts(-315619200, 0)},
	{"just before 1970", ts(-1, 999999999), ts(-1, 0)},
	{"1970", ts(0, 0), ts(0, 1)},
	{"2038", ts(1<<31, 0), ts(1<<31-1, 999999999)},
	{"past 2262", ts(9223372037, 0), ts(9223372036, 854775808)},
	{"before 1678", ts(-9223372037, 145224191), ts(-9223372037, 145224192)},
	{"2486", ts(16299260415, 999999999), ts(16299260415, 0)},
	{"year 1", ts(-62135596800, 0), ts(-62135596800, 5)},
	{"omit atime", ts(0, unix.UTIME_OMIT), ts(-100, 100)},
	{"omit mtime", ts(-200, 200), ts(0, unix.UTIME_OMIT)},
}

// statTimes returns p's access, modification and change times.
func statTimes(t *testing.T, p string) (a, m, c unix.Timespec) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Atim, st.Mtim, st.Ctim
}

// TestTimesThroughMount: utimensat through the mount, by path and through
// an open file (futimens), keeps every time exactly as a tmpfs does: before
// 1970 with nanoseconds, from year 1 to 2486 and past, UTIME_OMIT
// honoured; the times read back the same from a snapshot and after
// unmounting, closing and reopening the local store. touch -d 1960-01-01
// and stat show 1960 (they showed 1970: times before it came back as 0).
func TestTimesThroughMount(t *testing.T) {
	storeDir := t.TempDir()
	m := mountLocal(t, storeDir, &cowfs.Options{Atime: cowfs.Noatime})
	ref := tmpfsDir(t)
	set := func(dir string, i int, c timeCase) {
		t.Helper()
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts(-5, 5), ts(-6, 6)}, 0); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{c.atime, c.mtime}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				t.Fatalf("%s: utimensat %s: %v", c.name, p, err)
			}
			return
		}
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.UtimesNanoAt(int(f.Fd()), "", []unix.Timespec{c.atime, c.mtime}, unix.AT_EMPTY_PATH); err != nil {
			t.Fatalf("%s: futimens %s: %v", c.name, p, err)
		}
	}
	want := map[int][2]unix.Timespec{}
	for i, c := range timeCases {
		set(m.dir, i, c)
		set(ref, i, c)
		a, mt, _ := statTimes(t, filepath.Join(ref, fmt.Sprintf("f%d", i)))
		want[i] = [2]unix.Timespec{a, mt}
	}
	check := func(dir, when string) {
		t.Helper()
		for i, c := range timeCases {
			a, mt, _ := statTimes(t, filepath.Join(dir, fmt.Sprintf("f%d", i)))
			if a != want[i][0] || mt != want[i][1] {
				t.Errorf("%s: %s: atime %v mtime %v, want (as on tmpfs) %v %v", when, c.name, a, mt, want[i][0], want[i][1])
			}
		}
	}
	check(m.dir, "through the mount")

	// The system's touch and stat on a time before 1970, to the nanosecond.
	p := filepath.Join(m.dir, "touched")
	toolRun(t, "touch", "-d", "1960-01-01T00:00:00.123456789Z", p)
	const want1960 = "-315619200 -315619199.876543211 1960-01-01 00:00:00.123456789 +0000" // as on tmpfs
	if out := strings.TrimSpace(toolCommand(t, []string{"TZ=UTC"}, "stat", "-c", "%X %.9Y %y", p)); out != want1960 {
		t.Errorf("stat after touch -d 1960-01-01T00:00:00.123456789Z: %q, want %q", out, want1960)
	}
	a, mt, _ := statTimes(t, p)
	if a != ts(-315619200, 123456789) || mt != a {
		t.Errorf("touch -d 1960-01-01T00:00:00.123456789Z: atime %v mtime %v", a, mt)
	}

	ctl := &testMount{dir: m.dir}
	ctlExec(t, ctl, "snapshot", "create", "s")
	check(filepath.Join(m.dir, ".cowfs", "snapshots", "s"), "in a snapshot")

	m.close(t)
	m = mountLocal(t, storeDir, &cowfs.Options{Atime: cowfs.Noatime})
	check(m.dir, "after a remount")
	check(filepath.Join(m.dir, ".cowfs", "snapshots", "s"), "in a snapshot after a remount")
	if a, mt, _ := statTimes(t, filepath.Join(m.dir, "touched")); a != ts(-315619200, 123456789) || mt != a {
		t.Errorf("after a remount: touched has atime %v mtime %v", a, mt)
	}
}

// TestTimesNowThroughMount: UTIME_NOW sets both times to one instant of
// the server's clock, as on Linux.
func TestTimesNowThroughMount(t *testing.T) {
	m := mountMem(t)
	p := filepath.Join(m.dir, "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts(-1, 1), ts(-2, 2)}, 0); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts(0, unix.UTIME_NOW), ts(0, unix.UTIME_NOW)}, 0); err != nil {
		t.Fatal(err)
	}
	a, mt, _ := statTimes(t, p)
	if a != mt || time.Unix(a.Unix()).Before(before.Truncate(time.Second)) {
		t.Errorf("after UTIME_NOW: atime %v mtime %v (before: %v)", a, mt, before)
	}
}
