package fusefs

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cowfs/cowfs"
	"golang.org/x/sys/unix"
)

// mountOptions returns the per-mount options /proc/self/mountinfo shows
// for the mount at dir.
func mountOptions(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 5 && fields[4] == dir {
			return strings.Split(fields[5], ",")
		}
	}
	t.Fatalf("%s is not in /proc/self/mountinfo", dir)
	return nil
}

// utimes sets p's access and modification times.
func utimes(t *testing.T, p string, atime, mtime time.Time) {
	t.Helper()
	if err := unix.UtimesNano(p, []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}); err != nil {
		t.Fatal(err)
	}
}

func atimeOf(t *testing.T, p string) time.Time {
	t.Helper()
	a, _, _ := statTimes(t, p)
	return time.Unix(a.Unix())
}

// TestRelatimeThroughMount: the mount says relatime and does it: cat and
// ls update the access time when it is not after the modification time
// or is a day old, also for a file whose pages the kernel has cached
// (written in whole pages), and leave it otherwise; the update survives a
// remount (it is committed at unmount); reading a snapshot changes nothing.
func TestRelatimeThroughMount(t *testing.T) {
	storeDir := t.TempDir()
	m := mountLocal(t, storeDir, nil)
	if opts := mountOptions(t, m.dir); !slices.Contains(opts, "relatime") {
		t.Errorf("mount options %v, want relatime", opts)
	}
	hour := time.Now().Add(-time.Hour).Truncate(time.Second)
	small, paged, dir := filepath.Join(m.dir, "small"), filepath.Join(m.dir, "paged"), filepath.Join(m.dir, "d")
	if err := os.WriteFile(small, []byte("small"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(paged, make([]byte, 8192), 0o644); err != nil { // whole pages: cached
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{small, paged, dir} {
		utimes(t, p, hour, hour)
	}
	start := time.Now().Truncate(time.Second)
	toolRun(t, "cat", small, paged)
	toolRun(t, "ls", dir)
	read := map[string]time.Time{}
	for _, p := range []string{small, paged, dir} {
		a := atimeOf(t, p)
		if a.Before(start) {
			t.Errorf("%s: atime %v after a read with atime = mtime, want the time of the read (>= %v)", filepath.Base(p), a, start)
		}
		read[p] = a
	}
	toolRun(t, "cat", small, paged)
	toolRun(t, "ls", dir)
	for _, p := range []string{small, paged, dir} {
		if a := atimeOf(t, p); !a.Equal(read[p]) {
			t.Errorf("%s: a second read moved atime from %v to %v (relatime: atime is after mtime and recent)", filepath.Base(p), read[p], a)
		}
	}
	twoDays := time.Now().Add(-48 * time.Hour)
	utimes(t, small, twoDays, twoDays.Add(-time.Hour))
	start = time.Now().Truncate(time.Second)
	toolRun(t, "cat", small)
	if a := atimeOf(t, small); a.Before(start) {
		t.Errorf("small: atime %v after a read of a file read two days ago, want >= %v", a, start)
	}
	read[small] = atimeOf(t, small)

	ctl := &testMount{dir: m.dir}
	ctlExec(t, ctl, "snapshot", "create", "s")
	snapFile := filepath.Join(m.dir, ".cowfs", "snapshots", "s", "paged")
	utimes(t, paged, hour, hour) // the snapshot's stays as it was
	before := atimeOf(t, snapFile)
	toolRun(t, "cat", snapFile)
	time.Sleep(1100 * time.Millisecond) // past the kernel's attribute cache
	if a := atimeOf(t, snapFile); !a.Equal(before) {
		t.Errorf("reading a snapshot's file moved its atime from %v to %v", before, a)
	}

	m.close(t)
	m = mountLocal(t, storeDir, nil)
	for _, p := range []string{small, dir} {
		if a := atimeOf(t, filepath.Join(m.dir, filepath.Base(p))); !a.Equal(read[p]) {
			t.Errorf("%s after a remount: atime %v, want %v", filepath.Base(p), a, read[p])
		}
	}
}

// TestAtimeOptionsThroughMount: noatime and strictatime mounts say so in
// the mount options and do as they say.
func TestAtimeOptionsThroughMount(t *testing.T) {
	for _, c := range []struct {
		mode       cowfs.AtimeMode
		option     string // in the mount options; "" for neither relatime nor noatime
		first, now bool   // whether a first read (atime = mtime) and a second one update
	}{{cowfs.Noatime, "noatime", false, false}, {cowfs.Strictatime, "", true, true}} {
		t.Run(c.mode.String(), func(t *testing.T) {
			m := mountMemWith(t, &cowfs.Options{Atime: c.mode}, &Options{})
			opts := mountOptions(t, m.dir)
			switch {
			case c.option != "" && !slices.Contains(opts, c.option):
				t.Errorf("mount options %v, want %s", opts, c.option)
			case c.option == "" && (slices.Contains(opts, "relatime") || slices.Contains(opts, "noatime")):
				t.Errorf("mount options %v, want neither relatime nor noatime", opts)
			}
			p := filepath.Join(m.dir, "f")
			if err := os.WriteFile(p, make([]byte, 8192), 0o644); err != nil {
				t.Fatal(err)
			}
			hour := time.Now().Add(-time.Hour).Truncate(time.Second)
			utimes(t, p, hour, hour)
			toolRun(t, "cat", p)
			first := atimeOf(t, p)
			if first.After(hour) != c.first {
				t.Errorf("atime %v after a first read (it was %v)", first, hour)
			}
			time.Sleep(1100 * time.Millisecond)
			toolRun(t, "cat", p)
			if second := atimeOf(t, p); second.After(first) != c.now {
				t.Errorf("atime %v after a second read (it was %v)", second, first)
			}
		})
	}
}
