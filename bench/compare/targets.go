package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"9fans.net/go/plan9"
	"9fans.net/go/plan9/client"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/store/local"
)

// Every cowfs target gets a cache of 2 GiB, so a 1 GiB file fits in it and
// the footprint test shows what clones share rather than the bound.
const (
	cacheBytes = 2 << 30
	cacheSize  = "2G"
)

// The targets, in the tables' column order.
var allTargets = []string{"btrfs", "xfs", "tmpfs", "loopback", "cowfs-fuse", "cowfs-api", "cowfs-9p"}

// Kinds of target: what the workloads reach them through.
const (
	posixKind = iota // a directory of the kernel's namespace
	apiKind          // the cowfs Go API, in process
	ninepKind        // the cowfs 9P server, through 9fans.net/go/plan9/client
)

// target is one file system under test.
type target struct {
	name    string
	kind    int
	dir     string // posixKind: where the test files go
	reflink bool   // FICLONE and FICLONERANGE are expected to work
	// snapshot takes a snapshot of the whole volume, if the target has them.
	snapshot func(name string) error
	// ctl runs a cowfs control command (cowfs-fuse, cowfs-9p).
	ctl func(cmd string) (string, error)
	// cacheBytes reports the cowfs data cache's bytes (cowfs targets).
	cacheBytes func() (int64, error)
	fs         *cowfs.FS     // apiKind
	vol        *cowfs.Volume // apiKind
	fsys       *client.Fsys  // ninepKind
	stops      []func()      // undo the setup, last first
}

// bench is one run: the targets made and the results gathered.
type bench struct {
	sz      sizes
	dir     string
	rep     *Report
	targets []*target
	bin     string // the cowfs binary, once built
}

func (b *bench) skip(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "compare: skipped:", msg)
	b.rep.Skipped = append(b.rep.Skipped, msg)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s compare: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// setup makes target name, or records why it cannot.
func (b *bench) setup(name string) {
	t := &target{name: name, kind: posixKind}
	var err error
	root := os.Geteuid() == 0
	switch name {
	case "btrfs", "xfs":
		if !root {
			b.skip("%s: needs root (loop device, mkfs, mount)", name)
			return
		}
		err = b.loopFS(t)
	case "tmpfs":
		if !root {
			b.skip("tmpfs: needs root (mount)")
			return
		}
		t.dir = filepath.Join(b.dir, "tmpfs")
		err = b.mount(t, "tmpfs", "tmpfs", t.dir, "mode=0755")
	case "loopback":
		if !root {
			b.skip("loopback: needs root (FUSE mount)")
			return
		}
		err = b.loopback(t)
	case "cowfs-fuse":
		if !root {
			b.skip("cowfs-fuse: needs root (FUSE mount)")
			return
		}
		err = b.cowfsMount(t)
	case "cowfs-api":
		t.kind = apiKind
		err = b.cowfsAPI(t)
	case "cowfs-9p":
		t.kind = ninepKind
		err = b.cowfs9P(t)
	default:
		err = fmt.Errorf("unknown target (known: %s)", strings.Join(allTargets, ", "))
	}
	if err != nil {
		b.stop(t)
		b.skip("%s: %v", name, err)
		return
	}
	b.targets = append(b.targets, t)
	b.rep.Targets = append(b.rep.Targets, name)
}

func (b *bench) stop(t *target) {
	for i := len(t.stops) - 1; i >= 0; i-- {
		t.stops[i]()
	}
	t.stops = nil
}

func (b *bench) teardown() {
	for _, t := range b.targets {
		b.stop(t)
	}
}

// sh runs a command and returns its combined output on failure.
func sh(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (b *bench) mount(t *target, fstype, dev, dir, opts string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := sh("mount", "-t", fstype, "-o", opts, dev, dir); err != nil {
		return err
	}
	t.stops = append(t.stops, func() { sh("umount", dir) })
	return nil
}

// loopFS makes btrfs or XFS (with reflink) on a loop device over a sparse
// image in the work directory; btrfs files go in a subvolume, which is
// what its snapshots copy.
func (b *bench) loopFS(t *target) error {
	mkfs := map[string][]string{"btrfs": {"mkfs.btrfs", "-q", "-f"}, "xfs": {"mkfs.xfs", "-q", "-f", "-m", "reflink=1"}}[t.name]
	tools := []string{mkfs[0], "losetup"}
	if t.name == "btrfs" {
		tools = append(tools, "btrfs")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is missing (Debian packages btrfs-progs, xfsprogs, mount)", tool)
		}
	}
	img := filepath.Join(b.dir, t.name+".img")
	f, err := os.Create(img)
	if err != nil {
		return err
	}
	err = f.Truncate(b.sz.imageGiB << 30)
	f.Close()
	if err != nil {
		return err
	}
	// Direct I/O on the image keeps the loop device's reads out of the
	// page cache of the file under it, so Cached counts the file system's.
	out, err := exec.Command("losetup", "--direct-io=on", "--find", "--show", img).Output()
	if err != nil {
		return fmt.Errorf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.stops = append(t.stops, func() { sh("losetup", "-d", dev) })
	if err := sh(mkfs[0], append(mkfs[1:], dev)...); err != nil {
		return err
	}
	mnt := filepath.Join(b.dir, t.name)
	if err := b.mount(t, t.name, dev, mnt, "rw"); err != nil {
		return err
	}
	t.dir, t.reflink = mnt, true
	if t.name == "btrfs" {
		t.dir = filepath.Join(mnt, "vol")
		if err := sh("btrfs", "subvolume", "create", t.dir); err != nil {
			return err
		}
		t.snapshot = func(name string) error {
			return sh("btrfs", "subvolume", "snapshot", "-r", t.dir, filepath.Join(mnt, name))
		}
	}
	return nil
}

// moduleRoot is the directory of this module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		return "", fmt.Errorf("cannot find the module (go env GOMOD): %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// build builds a program of this module (or go-fuse's loopback example)
// into the work directory.
func (b *bench) build(pkg, name string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(b.dir, "bin", name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v: %s", pkg, err, out)
	}
	return bin, nil
}

// daemon starts a program and returns once it printed a line ending in
// "ready" (the cowfs commands) or the mount point shows up (loopback).
func (t *target) daemon(bin string, args []string, mnt string) (readyLine string, err error) {
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasSuffix(sc.Text(), "ready") {
				ready <- sc.Text()
			}
		}
		exited <- cmd.Wait()
	}()
	t.stops = append(t.stops, func() {
		if mnt != "" {
			sh("umount", mnt)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
		}
	})
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line := <-ready:
			return line, nil
		case err := <-exited:
			return "", fmt.Errorf("%s exited: %v: %s", filepath.Base(bin), err, stderr.String())
		case <-deadline:
			return "", fmt.Errorf("%s not ready after 60 s", filepath.Base(bin))
		case <-time.After(50 * time.Millisecond):
			if mnt != "" && mounted(mnt) {
				return "", nil
			}
		}
	}
}

// mounted reports whether dir is a mount point.
func mounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// loopback serves a tmpfs through go-fuse's loopback example (as root it
// uses FUSE passthrough for file data).
func (b *bench) loopback(t *target) error {
	bin, err := b.build("github.com/hanwen/go-fuse/v2/example/loopback", "loopback")
	if err != nil {
		return err
	}
	orig := filepath.Join(b.dir, "loopback-tmpfs")
	if err := b.mount(t, "tmpfs", "tmpfs", orig, "mode=0755"); err != nil {
		return err
	}
	t.dir = filepath.Join(b.dir, "loopback")
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return err
	}
	_, err = t.daemon(bin, []string{t.dir, orig}, t.dir)
	return err
}

func (b *bench) cowfsBin() (string, error) {
	if b.bin != "" {
		return b.bin, nil
	}
	bin, err := b.build("./cmd/cowfs", "cowfs")
	b.bin = bin
	return bin, err
}

// cowfsMount mounts a fresh store's volume main with `cowfs mount`.
func (b *bench) cowfsMount(t *target) error {
	bin, err := b.cowfsBin()
	if err != nil {
		return err
	}
	t.dir = filepath.Join(b.dir, "cowfs-fuse")
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return err
	}
	if _, err := t.daemon(bin, []string{"mount", "--cache-size", cacheSize, "--store", filepath.Join(b.dir, "cowfs-fuse-store"), t.dir}, ""); err != nil {
		return err
	}
	t.ctl = func(cmd string) (string, error) { return fileCtl(filepath.Join(t.dir, ".cowfs", "ctl"), cmd) }
	t.snapshot = func(name string) error {
		_, err := t.ctl("snapshot create " + name)
		return err
	}
	t.cacheBytes = func() (int64, error) { return statsBytes(t.ctl) }
	return nil
}

// fileCtl runs a command through a mount's control file.
func fileCtl(path, cmd string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Write([]byte(cmd + "\n")); err != nil {
		reply, _ := io.ReadAll(f)
		return "", fmt.Errorf("%s: %v: %s", cmd, err, strings.TrimSpace(string(reply)))
	}
	reply, err := io.ReadAll(f)
	return string(reply), err
}

// cowfsAPI opens a fresh local store in process.
func (b *bench) cowfsAPI(t *target) error {
	st, err := local.Open(filepath.Join(b.dir, "cowfs-api-store"), nil)
	if err != nil {
		return err
	}
	if t.fs, err = cowfs.Open(st, &cowfs.Options{CacheBytes: cacheBytes}); err != nil {
		st.Close()
		return err
	}
	t.stops = append(t.stops, func() { t.fs.Close() })
	if t.vol, err = t.fs.Volume("main"); errors.Is(err, os.ErrNotExist) {
		t.vol, err = t.fs.CreateVolume("main")
	}
	if err != nil {
		return err
	}
	t.snapshot = t.vol.Snapshot
	t.cacheBytes = func() (int64, error) {
		_, data := t.fs.CacheStats()
		return data.Bytes, nil
	}
	return nil
}

// cowfs9P runs `cowfs serve` on a fresh store and attaches to it as root.
func (b *bench) cowfs9P(t *target) error {
	bin, err := b.cowfsBin()
	if err != nil {
		return err
	}
	line, err := t.daemon(bin, []string{"serve", "--cache-size", cacheSize, "--store", filepath.Join(b.dir, "cowfs-9p-store"), "--listen", "127.0.0.1:0"}, "")
	if err != nil {
		return err
	}
	// "cowfs serve: store S on tcp ADDR: ready"
	f := strings.Fields(strings.TrimSuffix(line, ": ready"))
	if len(f) < 2 {
		return fmt.Errorf("cannot read the address in %q", line)
	}
	c, err := client.Dial("tcp", f[len(f)-1])
	if err != nil {
		return err
	}
	t.stops = append(t.stops, func() { c.Close() })
	if t.fsys, err = c.Attach(nil, "root", ""); err != nil {
		return err
	}
	t.ctl = func(cmd string) (string, error) {
		fid, err := t.fsys.Open(".cowfs/ctl", plan9.ORDWR)
		if err != nil {
			return "", err
		}
		defer fid.Close()
		if _, err := fid.Write([]byte(cmd)); err != nil {
			return "", fmt.Errorf("%s: %v", cmd, err)
		}
		reply, err := io.ReadAll(fid)
		return string(reply), err
	}
	t.snapshot = func(name string) error {
		_, err := t.ctl("snapshot create " + name)
		return err
	}
	t.cacheBytes = func() (int64, error) { return statsBytes(t.ctl) }
	return nil
}

// statsBytes reads the data cache's bytes from ctl's stats reply.
func statsBytes(ctl func(string) (string, error)) (int64, error) {
	reply, err := ctl("stats")
	if err != nil {
		return 0, err
	}
	var st struct {
		Cache struct {
			Data struct {
				Bytes int64 `json:"bytes"`
			} `json:"data"`
		} `json:"cache"`
	}
	if err := jsonUnmarshal(reply, &st); err != nil {
		return 0, fmt.Errorf("stats reply: %v", err)
	}
	return st.Cache.Data.Bytes, nil
}
