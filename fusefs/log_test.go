package fusefs

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/logtest"
	"golang.org/x/sys/unix"
)

// TestLogHandlerPanic: a handler's panic is logged once, at Error, with the
// volume, the mount point, the panic value and the stack; the request
// fails with EIO and the mount goes on serving.
func TestLogHandlerPanic(t *testing.T) {
	var rec logtest.Recorder
	m := mountMemWith(t, nil, &Options{Logger: rec.Logger(), panicOnStatfs: true})
	var st syscall.Statfs_t
	if err := syscall.Statfs(m.dir, &st); !errors.Is(err, syscall.EIO) {
		t.Errorf("statfs of a mount whose statfs panics: %v, want EIO", err)
	}
	p := filepath.Join(m.dir, "after")
	if err := os.WriteFile(p, []byte("still served"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(p); err != nil || string(got) != "still served" {
		t.Errorf("after the panic: %q, %v", got, err)
	}
	if err := m.unmount(); err != nil {
		t.Fatal(err)
	}
	recs := rec.Records(slog.LevelInfo)
	if len(recs) != 1 {
		t.Fatalf("%d records at Info or above, want 1: %v", len(recs), recs)
	}
	r := recs[0]
	stack, _ := r.Attrs["stack"].(string)
	if r.Level != slog.LevelError || r.Attrs["panic"] != "statfs: panicOnStatfs is set" ||
		r.Attrs["volume"] != "main" || r.Attrs["mountpoint"] != m.dir || !strings.Contains(stack, "fusefs.(*mount).statfs") {
		t.Errorf("record %v: want an Error with the volume, the mount point, the panic value and a stack through mount.statfs", r)
	}
}

// TestLogGoFuseMessages: go-fuse's own lines are records of the mount's
// logger at Debug, so nothing of go-fuse's reaches the default level
// (TestLogQuietNormalRun); with Options.Debug its request trace is logged
// at Info.
func TestLogGoFuseMessages(t *testing.T) {
	var rec logtest.Recorder
	m := mountMemWith(t, nil, &Options{Logger: rec.Logger(), Debug: true})
	if _, err := os.Stat(filepath.Join(m.dir, "nothing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat of a missing file: %v", err)
	}
	if err := m.unmount(); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rec.Records(slog.LevelDebug) {
		if r.Attrs["component"] != "go-fuse" || r.Level != slog.LevelInfo {
			t.Errorf("record %v: want go-fuse's trace at Info", r)
		}
		found = found || strings.Contains(r.Message, "LOOKUP") && strings.Contains(r.Message, `"nothing"`)
	}
	if !found {
		t.Errorf("no record of the LOOKUP of %q in go-fuse's trace: %v", "nothing", rec.Records(slog.LevelDebug))
	}
}

// TestLogQuietNormalRun: ordinary work through the kernel, with background
// commits, control commands, errors answered to the caller and a clean
// unmount, logs nothing at the default level, neither from the mount nor
// from the FS.
func TestLogQuietNormalRun(t *testing.T) {
	var rec logtest.Recorder
	t.Cleanup(func() { // runs last, once the FS is closed
		if recs := rec.Records(slog.LevelInfo); len(recs) != 0 {
			t.Errorf("a normal run logged %d records: %v", len(recs), recs)
		}
	})
	m := mountMemWith(t, &cowfs.Options{CommitInterval: 2 * time.Millisecond, Logger: rec.Logger()}, &Options{Logger: rec.Logger()})
	dir := filepath.Join(m.dir, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := toolRandBytes(3 << 20)
	for i := range 10 {
		if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)), data[i<<10:], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.Open(filepath.Join(dir, "f0"))
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.Create(filepath.Join(m.dir, "copy"))
	if err != nil {
		t.Fatal(err)
	}
	copyRange(t, src, 0, dst, 0, int64(len(data)))
	if err := dst.Sync(); err != nil {
		t.Fatal(err)
	}
	src.Close()
	dst.Close()
	if got, err := os.ReadFile(filepath.Join(m.dir, "copy")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("copy: %d bytes, %v", len(got), err)
	}
	if out, err := toolCmd("cp", "-r", dir, filepath.Join(m.dir, "d2")).CombinedOutput(); err != nil {
		t.Fatalf("cp -r: %v: %s", err, out)
	}
	if err := os.Rename(filepath.Join(m.dir, "d2"), filepath.Join(m.dir, "d3")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d/f1", filepath.Join(m.dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "f2"), filepath.Join(m.dir, "hard")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(dir, "f3"), "user.k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "f4"), 100); err != nil {
		t.Fatal(err)
	}
	ctlExec(t, m, "snapshot", "create", "s1")
	if got, err := os.ReadFile(filepath.Join(m.dir, ".cowfs", "snapshots", "s1", "d", "f5")); err != nil || !bytes.Equal(got, data[5<<10:]) {
		t.Fatalf("snapshot: %d bytes, %v", len(got), err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(m.dir, &st); err != nil {
		t.Fatal(err)
	}
	// Errors answered to the caller are not the server's to log.
	if _, err := os.Stat(filepath.Join(m.dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat of a missing file: %v", err)
	}
	if err := os.Remove(dir); err == nil {
		t.Fatal("rmdir of a full directory succeeded")
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 10 {
		t.Fatalf("readdir: %d entries, %v", len(ents), err)
	}
	for _, e := range ents {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // background commits meanwhile
	if err := m.unmount(); err != nil {
		t.Fatal(err)
	}
}

// TestLogNoSpliceAttempts reads a file with 1 MiB direct reads, the size
// whose reply (1 MiB of data and a header) outgrows a 1 MiB pipe: go-fuse
// logged "trySplice: splice: want 1052688 bytes, max pipe size 1048576"
// once per read, a thousand lines for a cold read of 1 GiB. Nothing of the
// kind may be logged, at any level.
func TestLogNoSpliceAttempts(t *testing.T) {
	var rec logtest.Recorder
	m := mountMemWith(t, nil, &Options{Logger: rec.Logger()})
	p := filepath.Join(m.dir, "f")
	data := toolRandBytes(8 << 20)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := toolRun(t, "dd", "if="+p, "of=/dev/null", "bs=1M", "iflag=direct")
	if !strings.Contains(out, "8388608 bytes") {
		t.Fatalf("dd read: %s", out)
	}
	if st := m.srv.Stats(); st.ReadBytes < int64(len(data)) || st.Reads > 8+1 {
		t.Fatalf("the mount served %d reads of %d bytes; want 8 of 1 MiB", st.Reads, st.ReadBytes)
	}
	if err := m.unmount(); err != nil {
		t.Fatal(err)
	}
	for _, r := range rec.Records(slog.LevelDebug) {
		if strings.Contains(strings.ToLower(r.String()), "splice") {
			t.Errorf("logged %v", r)
		}
	}
}
