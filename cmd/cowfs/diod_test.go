package main

import (
	"bytes"
	crand "crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/store/local"
)

// diodTool returns the path of one of diod's client tools. They are
// needed: under CI a missing tool fails the test, elsewhere it skips.
func diodTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		p = filepath.Join("/usr/sbin", name)
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing (Debian package diod); CI must install it", name)
			}
			t.Skipf("%s is missing (Debian package diod)", name)
		}
	}
	return p
}

// runDiod runs a diod tool against addr and returns its stdout, its stderr
// and whether it exited 0.
func runDiod(t *testing.T, tool, addr string, args ...string) (stdout, stderr string, ok bool) {
	t.Helper()
	args = append([]string{"-s", addr}, args...)
	if tool != "diodload" { // which has no timeout flag
		args = append(args, "-t", "30")
	}
	cmd := exec.Command(diodTool(t, tool), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err == nil
}

// diodStore makes a local store holding volume main (a directory d with a
// 3 MiB random file, a private directory and a small file) and volume ctl
// with the files diodload uses: zero (1 MiB of zeros) and null.
func diodStore(t *testing.T) (dir string, big []byte) {
	big = make([]byte, 3<<20+17)
	crand.Read(big)
	dir = storeWith(t, func(f *cowfs.FS) {
		main, err := f.CreateVolume("main")
		must(t, err)
		must(t, main.Mkdir("d", 0o755))
		must(t, main.WriteFile("d/big", big, 0o644))
		must(t, main.WriteFile("hello", []byte("hello, world\n"), 0o644))
		must(t, main.Mkdir("private", 0o700))
		ctlVol, err := f.CreateVolume("ctl")
		must(t, err)
		must(t, ctlVol.WriteFile("zero", make([]byte, 1<<20), 0o644))
		must(t, ctlVol.WriteFile("null", nil, 0o666))
	})
	return dir, big
}

// storeWith makes a local store in a new directory, lets fill put into it
// what a test needs, and closes it for a daemon to open.
func storeWith(t *testing.T, fill func(*cowfs.FS)) string {
	dir := filepath.Join(t.TempDir(), "store")
	st, err := local.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := cowfs.Open(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	fill(f)
	must(t, f.Close()) // closes st too
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDiodTools runs diod's own clients, which speak 9P2000.L, against
// `cowfs serve` over TCP loopback: diodls lists (with -l, a walk and a
// getattr per entry), diodcat reads a 3 MiB file at two msizes, diodload
// reads and writes with 4 threads and then does getattrs, and the
// attaching user's permissions hold.
func TestDiodTools(t *testing.T) {
	diodTool(t, "diodls")
	store, big := diodStore(t)
	addr := freeAddr(t)
	d := startServe(t, store, addr)

	out, errs, ok := runDiod(t, "diodls", addr, "-a", "main")
	if !ok || out != "d\nhello\nprivate\n" && !sameLines(out, "d", "hello", "private") {
		t.Errorf("diodls: %q %q", out, errs)
	}
	out, errs, ok = runDiod(t, "diodls", addr, "-a", "main", "-l", "d")
	if !ok || !regexp.MustCompile(`(?m)^-rw-r--r--\.\s+1 root root\s+`+strconv.Itoa(len(big))+` .* big$`).MatchString(out) ||
		!strings.Contains(out, " .\n") || !strings.Contains(out, " ..\n") {
		t.Errorf("diodls -l d:\n%s%s", out, errs)
	}
	for _, msize := range []string{"65536", "8192"} {
		out, errs, ok = runDiod(t, "diodcat", addr, "-a", "main", "-m", msize, "d/big")
		if !ok || out != string(big) {
			t.Errorf("diodcat -m %s: %d bytes, equal %v, %q", msize, len(out), out == string(big), errs)
		}
	}
	if _, errs, ok = runDiod(t, "diodcat", addr, "-a", "main", "missing"); ok || !strings.Contains(errs, "No such file") {
		t.Errorf("diodcat of a missing file: ok %v, %q", ok, errs)
	}
	if _, errs, ok = runDiod(t, "diodls", addr, "-a", "nosuchvolume"); ok || !strings.Contains(errs, "No such file") {
		t.Errorf("diodls of a missing volume: ok %v, %q", ok, errs)
	}
	// As user 4242, the private directory (root's, 0700) cannot be listed.
	if _, errs, ok = runDiod(t, "diodls", addr, "-a", "main", "-u", "4242", "private"); ok || !strings.Contains(errs, "Permission denied") {
		t.Errorf("diodls of a 0700 directory as another user: ok %v, %q", ok, errs)
	}

	load := regexp.MustCompile(`^diodload: (\d+) ops/s, (\d+) rMB/s, (\d+) wMB/s\n$`)
	for _, args := range [][]string{{"-n", "4", "-r", "1"}, {"-n", "2", "-r", "1", "-g"}} {
		_, errs, ok = runDiod(t, "diodload", addr, args...)
		m := load.FindStringSubmatch(errs)
		if !ok || m == nil || m[1] == "0" {
			t.Errorf("diodload %v: ok %v, %q", args, ok, errs)
		}
	}

	// The writes reached volume ctl's null: read it back through 9P.
	d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(t); code != 0 {
		t.Fatalf("cowfs serve exited %d", code)
	}
	if out, errs, code := cli(t, "fsck", "--store", store); code != 0 {
		t.Errorf("fsck after diod's tools: exit %d\n%s%s", code, out, errs)
	}
	st, err := local.Open(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := cowfs.Open(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := f.Volume("ctl")
	if err != nil {
		t.Fatal(err)
	}
	null, err := v.ReadFile("null")
	if err != nil || len(null) != 65536-24 || !bytes.Equal(null, make([]byte, len(null))) {
		t.Errorf("null after diodload: %d bytes, %v; want %d zero bytes", len(null), err, 65536-24)
	}
}

func sameLines(out string, want ...string) bool {
	got := strings.Fields(out)
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}
