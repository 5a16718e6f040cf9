// Command cowfs is the command-line front end of cowfs, a copy-on-write file
// server.
//
// Usage:
//
//	cowfs <command> [flags]
//
// Commands:
//
//	demo    run an end-to-end example on a store and check its results
//	fsck    check every invariant of a store; --repair deletes leaked blobs
//	scrub   read and verify every stored blob, referenced or not
//	gc      delete every blob waiting for deletion and compact the store
//	help    print this help
//
// Commands on a mounted volume, which talk to the mount through its control
// file MOUNTPOINT/.cowfs/ctl (see package ctl) and take paths in the mount:
//
//	clone     clone a file or directory tree in O(1): clone SRC DST
//	snapshot  create, list or delete snapshots of the volume:
//	          snapshot create|list|delete MOUNTPOINT [NAME]
//	du        logical, shared and exclusive bytes of paths: du [--json] PATH...
//	stats     cache and store counters of a mount: stats [--json] MOUNTPOINT
//
// A path belongs to the nearest directory above it (or itself) that is on the
// same device and holds .cowfs/ctl.
//
// # Stores
//
// Every command that opens a store takes --store SPEC: a directory path, the
// durable local store kept in that directory (created on first use by
// commands that write), or "mem:", an in-memory store that nothing outlives.
// Without --store a command uses the default local store, in the first of:
//
//	$COWFS_STORE
//	$XDG_DATA_HOME/cowfs   (if XDG_DATA_HOME is set to an absolute path)
//	$HOME/.local/share/cowfs
//
// The same rule holds for root. One process at a time may open a local
// store; a second one fails at once with the store's "in use" error.
//
// # Output and exit status
//
// Commands print human-readable lines on stdout; fsck, scrub, gc, du, stats
// and snapshot list print JSON instead with --json (each command's -h lists
// its fields). When stderr is a terminal and --json is not given, long
// operations draw a one-line progress bar on stderr. The exit status is 0 on
// success, 1 when a command ran and failed (a check found problems, the store
// is in use, ...), with a line "cowfs CMD: FAILED: ..." on stderr, and 2 for
// a bad command line.
//
// Each command lives in its own file as a function taking its arguments and
// the output streams; main only dispatches.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/cowfs/cowfs"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/local"
	"github.com/cowfs/cowfs/store/mem"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and failed
	exitUsage = 2 // bad command line
)

// command is one subcommand.
type command struct {
	name    string
	args    string // argument synopsis for the usage text
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// commands lists the subcommands in the order usage shows them.
var commands = []command{
	{"mount", "[--store S] [--volume NAME] MOUNTPOINT", "mount a volume with FUSE until unmounted or interrupted", runMount},
	{"serve", "[--store S] [--listen ADDR] [--cache-size N]", "serve every volume over 9P2000 until interrupted", runServe},
	{"demo", "[--store S] [--volume NAME]", "run an end-to-end example and verify it", runDemo},
	{"fsck", "[--store S] [--json] [--repair]", "check every invariant of a store; --repair deletes leaked blobs", runFsck},
	{"scrub", "[--store S] [--json]", "read and verify every stored blob, referenced or not", runScrub},
	{"gc", "[--store S] [--json]", "delete every blob waiting for deletion, then compact", runGC},
	{"clone", "SRC DST", "clone a file or directory tree in a mount, in O(1)", runClone},
	{"snapshot-file", "PATH", "serve a private O(1) snapshot of a file, for mmap(MAP_PRIVATE)", runSnapshotFile},
	{"snapshot", "create|list|delete MOUNTPOINT [NAME]", "create, list or delete snapshots of a mounted volume", runSnapshot},
	{"du", "[--json] PATH...", "logical, shared and exclusive bytes of paths in a mount", runDu},
	{"stats", "[--json] MOUNTPOINT", "cache and store counters of a mount", runStats},
	{"help", "", "print this help", nil},
}

// usageError is an error in the command line (exit status 2).
type usageError struct {
	msg   string
	shown bool // already reported (by the flag package)
}

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name != name || c.run == nil {
			continue
		}
		err := c.run(rest, stdout, stderr)
		var uerr *usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &uerr):
			if !uerr.shown {
				fmt.Fprintf(stderr, "cowfs %s: %v\nRun 'cowfs %s -h' for its flags.\n", name, err, name)
			}
			return exitUsage
		default:
			fmt.Fprintf(stderr, "cowfs %s: FAILED: %v\n", name, err)
			return exitFail
		}
	}
	fmt.Fprintf(stderr, "cowfs: unknown command %q\n\n", name)
	usage(stderr)
	return exitUsage
}

// usage prints the list of commands and where the default store lives.
func usage(w io.Writer) {
	fmt.Fprintln(w, "cowfs is a copy-on-write file server.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "\tcowfs <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	fmt.Fprintln(w)
	for _, c := range commands {
		synopsis := strings.TrimSpace(c.name + " " + c.args)
		fmt.Fprintf(w, "\t%-46s %s\n", synopsis, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Stores (--store S):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "\tDIR    the local store in directory DIR (durable; one process at a time)")
	fmt.Fprintln(w, "\tmem:   an in-memory store; nothing outlives the command")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Without --store, commands use the default local store, in the first of")
	fmt.Fprintln(w, "$COWFS_STORE, $XDG_DATA_HOME/cowfs (if XDG_DATA_HOME is set) and")
	fmt.Fprintln(w, "$HOME/.local/share/cowfs; the same for root.")
	if dir, err := defaultStoreDir(os.Getenv); err == nil {
		fmt.Fprintf(w, "Here that is %s.\n", dir)
	} else {
		fmt.Fprintf(w, "Here there is none: %v.\n", err)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'cowfs <command> -h' for a command's flags.")
}

// newFlags returns a flag set for a subcommand that reports errors instead of
// exiting, writing its messages to stderr.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cowfs "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args into fs and rejects extra arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{msg: err.Error(), shown: true} // flag printed it
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected arguments %q", fs.Args())
	}
	return nil
}

// storeFlag defines the --store flag every command takes.
func storeFlag(fs *flag.FlagSet) *string {
	return fs.String("store", "", "the store: a directory (the local store kept there) or mem: (in memory);\n"+
		"default $COWFS_STORE, else $XDG_DATA_HOME/cowfs, else $HOME/.local/share/cowfs")
}

// defaultStoreDir returns the directory of the default local store:
// $COWFS_STORE, else $XDG_DATA_HOME/cowfs, else $HOME/.local/share/cowfs.
// An XDG_DATA_HOME that is not an absolute path is ignored, as the XDG base
// directory specification asks. getenv is os.Getenv outside tests.
func defaultStoreDir(getenv func(string) string) (string, error) {
	if dir := getenv("COWFS_STORE"); dir != "" {
		return dir, nil
	}
	if xdg := getenv("XDG_DATA_HOME"); xdg != "" && filepath.IsAbs(xdg) {
		return filepath.Join(xdg, "cowfs"), nil
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".local", "share", "cowfs"), nil
	}
	return "", errors.New("no default store: set --store, $COWFS_STORE, $XDG_DATA_HOME or $HOME")
}

// storeMode says whether openStore may create a local store that does not
// exist yet.
type storeMode int

const (
	mayCreate storeMode = iota // commands that write (demo)
	mustExist                  // commands that inspect or maintain (fsck, scrub, gc)
)

// openStore opens the store a --store flag names and returns it with the
// name to show for it: "mem:" (the in-memory store; nothing persists past
// the process) or a directory path (the local store kept there). An empty
// spec is the default local store (defaultStoreDir). A spec that looks like
// "kind:..." with a kind other than mem is refused as an unknown store; a
// relative directory whose name has a colon can be given as ./NAME.
//
// A local store is opened exclusively: if another process holds it, the
// store's error (wrapping local.ErrInUse, naming the directory and the pid)
// is returned as it is.
func openStore(spec string, mode storeMode) (store.Store, string, error) {
	if spec == "" {
		dir, err := defaultStoreDir(os.Getenv)
		if err != nil {
			return nil, "", err
		}
		return openLocal(dir, mode)
	}
	if kind, _, ok := strings.Cut(spec, ":"); ok && isStoreKind(kind) {
		switch kind {
		case "mem":
			if spec != "mem:" {
				return nil, "", usageErrorf("the mem store takes no location, got %q", spec)
			}
			return mem.New(), "mem:", nil
		}
		return nil, "", usageErrorf("unknown store %q (a store is a directory or mem:)", spec)
	}
	return openLocal(spec, mode)
}

// isStoreKind reports whether s could name a kind of store ("mem", "s3"):
// letters and digits, starting with a letter, and not a Windows-like drive
// letter or anything with a path separator.
func isStoreKind(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && r >= '0' && r <= '9':
		default:
			return false
		}
	}
	return true
}

// openLocal opens the local store in dir.
func openLocal(dir string, mode storeMode) (store.Store, string, error) {
	if mode == mustExist {
		fi, err := os.Stat(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, dir, fmt.Errorf("no store at %s (a command that writes, such as cowfs demo, creates one)", dir)
		case err != nil:
			return nil, dir, err
		case !fi.IsDir():
			return nil, dir, fmt.Errorf("store %s is not a directory", dir)
		}
	}
	st, err := local.Open(dir, nil)
	if err != nil {
		return nil, dir, err
	}
	return st, dir, nil
}

// commandContext returns a context that ends when the process is
// interrupted, so a long check stops cleanly (its progress bar cleared).
func commandContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt)
}

// openFS opens the store spec names and an FS on it with options opt (nil
// for the defaults). The caller closes the FS (which closes the store), for
// example with closeFS.
func openFS(spec string, mode storeMode, opt *cowfs.Options) (f *cowfs.FS, st store.Store, where string, err error) {
	st, where, err = openStore(spec, mode)
	if err != nil {
		return nil, nil, where, err
	}
	f, err = cowfs.Open(st, opt)
	if err != nil {
		st.Close()
		return nil, nil, where, fmt.Errorf("open store %s: %w", where, err)
	}
	return f, st, where, nil
}

// closeFS closes f and, if *err is nil, reports a failure to close in it.
func closeFS(f *cowfs.FS, where string, err *error) {
	if cerr := f.Close(); *err == nil && cerr != nil {
		*err = fmt.Errorf("close store %s: %w", where, cerr)
	}
}
