package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/fusefs"
)

// mountCommitInterval is how often a mount commits in the background, so
// written data is durable within that time even without fsync.
const mountCommitInterval = 5 * time.Second

// runMount mounts a volume and serves it until it is unmounted or the
// process is interrupted (SIGINT, SIGTERM): then it unmounts, commits and
// returns. A mount still in use when interrupted is detached (the kernel
// hides it at once and the server goes on serving the files still open
// until they are closed); a second interrupt stops serving them.
func runMount(args []string, stdout, stderr io.Writer) (err error) {
	fl := newFlags("mount", stderr)
	spec := storeFlag(fl)
	volName := fl.String("volume", "main", "the volume to mount (created if missing)")
	debug := fl.Bool("debug", false, "log every FUSE request on stderr")
	cacheSize := cacheSizeFlag(fl)
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: cowfs mount [--store S] [--volume NAME] [--cache-size N] [--debug] MOUNTPOINT")
		fmt.Fprintln(stderr, "Prints a line ending in \"ready\" on stdout once the mount is live.")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{msg: err.Error(), shown: true}
	}
	if fl.NArg() != 1 {
		return usageErrorf("want one MOUNTPOINT, got %q", fl.Args())
	}
	mnt := fl.Arg(0)
	cache, err := cacheSizeOf(*cacheSize)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(mnt); err != nil {
		return fmt.Errorf("mount point: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("mount point %s is not a directory", mnt)
	}

	f, _, where, err := openFS(*spec, mayCreate, &cowfs.Options{CommitInterval: mountCommitInterval, CacheBytes: cache})
	if err != nil {
		return err
	}
	defer closeFS(f, where, &err)
	vol, err := f.Volume(*volName)
	if errors.Is(err, os.ErrNotExist) {
		vol, err = f.CreateVolume(*volName)
	}
	if err != nil {
		return err
	}
	opt := &fusefs.Options{Debug: *debug}
	if where != "mem:" {
		opt.StoreDir = where
	}
	srv, err := fusefs.Mount(f, vol, mnt, opt)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	fmt.Fprintf(stdout, "cowfs mount: volume %s of store %s at %s: ready\n", *volName, where, mnt)

	detached := false
	for {
		select {
		case <-done:
			return nil // unmounted; the deferred closeFS commits
		case sig := <-sigs:
			if detached {
				fmt.Fprintf(stderr, "cowfs mount: %v again: closing the files still open\n", sig)
				return nil
			}
			if uerr := srv.Unmount(); uerr != nil {
				// Busy: detach it, and serve the open files until closed.
				if derr := detach(mnt); derr != nil {
					fmt.Fprintf(stderr, "cowfs mount: unmount %s: %v; detach: %v\n", mnt, uerr, derr)
					continue
				}
				fmt.Fprintf(stderr, "cowfs mount: %s was busy and is detached; serving its open files until they are closed\n", mnt)
			}
			detached = true
		}
	}
}

// detach unmounts mnt lazily: it leaves the namespace at once, and the files
// still open in it keep working until they are closed.
func detach(mnt string) error {
	if os.Geteuid() == 0 {
		return syscall.Unmount(mnt, syscall.MNT_DETACH)
	}
	out, err := exec.Command("fusermount3", "-u", "-z", mnt).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3 -u -z: %v: %s", err, out)
	}
	return nil
}

// cacheSizeFlag defines the --cache-size flag of the commands that serve
// (mount, serve).
func cacheSizeFlag(fl *flag.FlagSet) *string {
	return fl.String("cache-size", "", "bytes of decoded nodes and data the server caches, as 512M, 2G or 1073741824\n"+
		"(default a quarter of the machine's memory, at most 1G)")
}

// cacheSizeOf returns the cache size --cache-size asks for, or by default
// a quarter of the machine's memory, at most 1 GiB: a file server's reads
// of files it cannot cache fetch and verify whole blobs.
func cacheSizeOf(flag string) (int64, error) {
	if flag != "" {
		n, err := parseSize(flag)
		if err != nil || n <= 0 {
			return 0, usageErrorf("--cache-size %q: want a positive size such as 512M or 2G", flag)
		}
		return n, nil
	}
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 1 << 30, nil
	}
	return min(int64(si.Totalram)*int64(si.Unit)/4, 1<<30), nil
}

// parseSize parses a byte count with an optional binary suffix K, M, G or T
// (optionally followed by "iB" or "B"): "1073741824", "512M", "2GiB".
func parseSize(s string) (int64, error) {
	num := strings.TrimRight(s, "KMGTiBkmgtb")
	unit := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(s[len(num):], "B"), "i"))
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
	sh, ok := shift[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil || n < 0 || n > math.MaxInt64>>sh {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n << sh, nil
}
