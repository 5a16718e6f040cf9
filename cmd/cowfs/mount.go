package main

import (
	"errors"
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

	"github.com/spf13/cobra"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/fusefs"
)

// mountCommitInterval is how often a mount commits in the background, so
// written data is durable within that time even without fsync.
const mountCommitInterval = 5 * time.Second

// mountFlags are the flags of cowfs mount.
type mountFlags struct {
	store, volume, cacheSize, atime string
	debug, dev                      bool
	logs                            logFlags
}

// mountCommand is `cowfs mount MOUNTPOINT`.
func mountCommand() *cobra.Command {
	var fl mountFlags
	c := &cobra.Command{
		Use:   "mount [--store S] [--volume NAME] [flags] MOUNTPOINT",
		Short: "mount a volume with FUSE until unmounted or interrupted",
		Long: "mount mounts volume NAME of the store at MOUNTPOINT with FUSE and serves it\n" +
			"in the foreground. It prints a line ending in \"ready\" on stdout once the\n" +
			"mount is live, and in normal operation nothing else. Unmounting, SIGINT or\n" +
			"SIGTERM ends it: it commits and exits 0. A mount still in use when\n" +
			"interrupted is detached (gone from the namespace at once) and its open\n" +
			"files are served until they are closed; a second signal stops at once.\n" +
			"It commits every 5 s in the background. Reads update access times as\n" +
			"--atime says (relatime by default, as Linux mounts), shown in the mount's\n" +
			"options. What an operator must act on is logged on stderr (--log-level,\n" +
			"--log-format). The mount is nosuid and nodev, as FUSE mounts are by\n" +
			"default; --dev (root only) lets device nodes in it be opened.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("want one MOUNTPOINT, got %q", args)
			}
			return nil
		},
		ValidArgsFunction: dirArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if fl.debug && !c.Flags().Changed("log-level") {
				fl.logs.level = "debug" // else the trace asked for would not show
			}
			return runMount(args[0], &fl, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	storeFlag(c, &fl.store)
	c.Flags().StringVar(&fl.volume, "volume", "main", "the volume `NAME` to mount (created if missing)")
	c.Flags().BoolVar(&fl.debug, "debug", false, "log every FUSE request (go-fuse's trace, at level info; without\n"+
		"--log-level, --debug sets it to debug)")
	c.Flags().BoolVar(&fl.dev, "dev", false, "let device nodes in the mount be opened (mount without nodev; root only)")
	cacheSizeFlag(c, &fl.cacheSize)
	atimeFlag(c, &fl.atime)
	fl.logs.add(c)
	return c
}

// runMount mounts a volume and serves it until it is unmounted or the
// process is interrupted (SIGINT, SIGTERM): then it unmounts, commits and
// returns. A mount still in use when interrupted is detached (the kernel
// hides it at once and the server goes on serving the files still open
// until they are closed); a second interrupt stops serving them.
func runMount(mnt string, fl *mountFlags, stdout, stderr io.Writer) (err error) {
	logger, err := fl.logs.logger(stderr)
	if err != nil {
		return err
	}
	defer captureStdLog(logger)()
	cache, err := cacheSizeOf(fl.cacheSize)
	if err != nil {
		return err
	}
	if fl.dev && os.Geteuid() != 0 {
		// Before the store is opened: the mount would fail anyway.
		return errors.New("--dev needs root: fusermount3 mounts nodev for other users")
	}
	atime, err := atimeOf(fl.atime)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(mnt); err != nil {
		return fmt.Errorf("mount point: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("mount point %s is not a directory", mnt)
	}

	f, _, where, err := openFS(fl.store, mayCreate, &cowfs.Options{CommitInterval: mountCommitInterval, CacheBytes: cache, Atime: atime, Logger: logger})
	if err != nil {
		return err
	}
	defer closeFS(f, where, &err)
	vol, err := f.Volume(fl.volume)
	if errors.Is(err, os.ErrNotExist) {
		vol, err = f.CreateVolume(fl.volume)
	}
	if err != nil {
		return err
	}
	srv, err := fusefs.Mount(f, vol, mnt, &fusefs.Options{Dev: fl.dev, Debug: fl.debug, Logger: logger})
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	fmt.Fprintf(stdout, "cowfs mount: volume %s of store %s at %s: ready\n", fl.volume, where, mnt)

	detached := false
	for {
		select {
		case <-done:
			return nil // unmounted; the deferred closeFS commits
		case sig := <-sigs:
			if detached {
				logger.Warn("signal again: closing the files still open", "signal", sig.String(), "mountpoint", mnt)
				return nil
			}
			if uerr := srv.Unmount(); uerr != nil {
				// Busy: detach it, and serve the open files until closed.
				if derr := detach(mnt); derr != nil {
					logger.Error("cannot unmount or detach", "mountpoint", mnt, "unmount", uerr, "detach", derr)
					continue
				}
				logger.Warn("mount point was busy and is detached; serving its open files until they are closed", "mountpoint", mnt)
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
func cacheSizeFlag(c *cobra.Command, size *string) {
	c.Flags().StringVar(size, "cache-size", "", "cache `N` bytes of decoded nodes and data, as 512M, 2G or 1073741824\n"+
		"(default a quarter of the machine's memory, at most 1G)")
}

// atimeFlag defines the --atime flag of the commands that serve.
func atimeFlag(c *cobra.Command, mode *string) {
	c.Flags().StringVar(mode, "atime", "relatime", "when reads update access times: `MODE` relatime (when the access time is\n"+
		"not after the modification or change time, or is a day old), noatime, strictatime;\n"+
		"an update alone makes no commit, it goes with the next one")
	c.RegisterFlagCompletionFunc("atime", cobra.FixedCompletions([]string{"relatime", "noatime", "strictatime"}, cobra.ShellCompDirectiveNoFileComp))
}

// atimeOf parses --atime.
func atimeOf(flag string) (cowfs.AtimeMode, error) {
	m, err := cowfs.ParseAtimeMode(flag)
	if err != nil {
		return 0, usageErrorf("--atime %q: want relatime, noatime or strictatime", flag)
	}
	return m, nil
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
