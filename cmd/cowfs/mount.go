package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
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
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: cowfs mount [--store S] [--volume NAME] [--debug] MOUNTPOINT")
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
	if fi, err := os.Stat(mnt); err != nil {
		return fmt.Errorf("mount point: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("mount point %s is not a directory", mnt)
	}

	f, _, where, err := openFS(*spec, mayCreate, &cowfs.Options{CommitInterval: mountCommitInterval})
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
