// Command cowfs is the command-line front end of cowfs, a copy-on-write file
// server.
//
// Usage:
//
//	cowfs <command> [arguments] [flags]
//
// Flags may come before or after the arguments (cowfs du PATH --json is
// cowfs du --json PATH), and an argument that starts with "-" follows "--".
// Commands:
//
//	mount       mount a volume with FUSE until unmounted or interrupted
//	serve       serve every volume over 9P2000 until interrupted
//	demo        run an end-to-end example on a store and check its results
//	fsck        check every invariant of a store; --repair deletes leaked blobs
//	scrub       read and verify every stored blob, referenced or not
//	gc          delete every blob waiting for deletion and compact the store
//	version     print the version of cowfs (also cowfs --version)
//	help        print the commands, or with a command every flag of it
//	completion  print a shell completion script: completion bash|zsh|fish|powershell
//
// Commands on a mounted volume, which talk to the mount through its control
// file MOUNTPOINT/.cowfs/ctl (see package ctl) and take paths in the mount:
//
//	clone          clone a file or directory tree in O(1): clone SRC DST
//	snapshot-file  serve a private O(1) snapshot of a file: snapshot-file PATH
//	snapshot       create, list or delete snapshots of the volume:
//	               snapshot create|list|delete MOUNTPOINT [NAME]
//	du             logical, shared and exclusive bytes of paths: du [--json] PATH...
//	stats          cache and store counters of a mount: stats [--json] MOUNTPOINT
//
// A path belongs to the nearest directory above it (or itself) that is on the
// same device and holds .cowfs/ctl.
//
// "cowfs help CMD" and "cowfs CMD -h" print every flag of CMD, and the fields
// of its JSON output, on stdout.
//
// # Stores
//
// Every command that opens a store takes --store SPEC, which package
// store/registry parses and opens: a directory path, the durable local
// store kept in that directory (created on first use by commands that
// write), or "mem:", an in-memory store that nothing outlives. Without
// --store a command uses the default store, the first of:
//
//	$COWFS_STORE             (any SPEC)
//	$XDG_DATA_HOME/cowfs     (if XDG_DATA_HOME is set to an absolute path)
//	$HOME/.local/share/cowfs
//
// The same rule holds for root. One process at a time may open a local
// store; a second one fails at once, saying which process holds it.
//
// # Logging
//
// mount and serve print a line ending in "ready" on stdout once they serve,
// and in normal operation nothing else. What an operator must act on (a
// failed background commit, a store error, a failed compaction, a recovered
// panic, a connection that ended with an error) is logged with log/slog on
// stderr: --log-level debug|info|warn|error chooses the least level logged
// (default warn, so that only warnings and errors show) and --log-format
// text|json the form of a record (default text). What go-fuse logs (its
// notes, and the trace of every request that mount --debug turns on) is
// logged at level info; --debug without --log-level sets the level to
// debug. A bad value of either flag is a usage error.
//
// # Output and exit status
//
// Commands print human-readable lines on stdout, sizes in binary units
// (KiB, MiB, ...); fsck, scrub, gc, du, stats and snapshot list print JSON
// instead with --json, sizes in bytes (each command's -h lists its fields).
// When stderr is a terminal and --json is not given, long operations draw a
// one-line progress bar on stderr. The exit status is 0 on success (help and
// -h included), 1 when a command ran and failed (a check found problems,
// the store is in use, ...), with a line "cowfs CMD: FAILED: ..." on stderr,
// and 2 for a bad command line.
//
// Each command lives in its own file as a function returning its
// cobra.Command (flags, arguments and help); run builds the tree of them and
// is the one parsing path.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/registry"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and failed
	exitUsage = 2 // bad command line
)

// commands lists the constructors of the subcommands, in the order help
// shows them; newRoot adds help and completion after them.
var commands = []func() *cobra.Command{
	mountCommand,
	serveCommand,
	demoCommand,
	fsckCommand,
	scrubCommand,
	gcCommand,
	cloneCommand,
	snapshotFileCommand,
	snapshotCommand,
	duCommand,
	statsCommand,
	versionCommand,
}

// usageError is an error in the command line (exit status 2).
type usageError struct {
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// failure is the error of a command that ran and failed (exit status 1):
// what a command's RunE returns, unless it is a usageError.
type failure struct{ err error }

func (e *failure) Error() string { return e.err.Error() }
func (e *failure) Unwrap() error { return e.err }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit status. Every
// command line goes through it: a fresh command tree each time, so no flag
// keeps a value from an earlier call.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(append([]string{}, args...)) // never nil: cobra reads os.Args for nil
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	name := ""
	if cmd != nil && cmd != root {
		name = strings.TrimPrefix(cmd.CommandPath(), root.Name()+" ")
	}
	var fail *failure
	switch {
	case errors.As(err, &fail):
		fmt.Fprintf(stderr, "cowfs %s: FAILED: %v\n", name, fail.err)
		return exitFail
	case errors.Is(err, errNoCommand):
		printHelp(stderr, root)
	case name == "" || name == "help":
		fmt.Fprintf(stderr, "%s: %v\nRun 'cowfs help' for the commands.\n", strings.TrimSpace("cowfs "+name), err)
	default:
		fmt.Fprintf(stderr, "cowfs %s: %v\nRun 'cowfs %s -h' for its flags.\n", name, err, name)
	}
	return exitUsage
}

func init() {
	cobra.EnableCommandSorting = false // help lists the commands in the order of commands
}

// errNoCommand is the usage error of a command line with no command.
var errNoCommand = &usageError{msg: "no command"}

// newRoot returns the command tree: the root command "cowfs" with every
// subcommand, help and completion.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "cowfs",
		Short:         "cowfs is a copy-on-write file server.",
		Version:       version(),
		SilenceErrors: true, // run reports errors, and exit statuses
		SilenceUsage:  true,
		// No Args: then cobra refuses an unknown command itself.
		RunE: func(*cobra.Command, []string) error {
			return errNoCommand
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.Flags().BoolP("version", "v", false, "print the version of cowfs, as cowfs version does")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &usageError{msg: err.Error()}
	})
	root.SetHelpFunc(func(c *cobra.Command, _ []string) { printHelp(c.OutOrStdout(), c) })
	for _, newCmd := range commands {
		c := newCmd()
		c.DisableFlagsInUseLine = true // each Use names its flags
		root.AddCommand(c)
	}
	root.SetHelpCommand(helpCommand())
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Use = "completion bash|zsh|fish|powershell"
			c.Short = "print a shell completion script"
			// Runnable, so that a missing or unknown shell is a usage
			// error rather than help.
			c.RunE = func(*cobra.Command, []string) error {
				return usageErrorf("want a shell: bash, zsh, fish or powershell")
			}
		}
	}
	markFailures(root)
	return root
}

// markFailures makes the errors of c's RunE, and of its subcommands',
// failures (exit status 1) unless they are usage errors. Errors cobra
// reports itself (an unknown command or flag, bad arguments) are not, so
// they exit 2.
func markFailures(c *cobra.Command) {
	if runE := c.RunE; runE != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			err := runE(cmd, args)
			var uerr *usageError
			if err != nil && !errors.As(err, &uerr) {
				return &failure{err}
			}
			return err
		}
	}
	for _, sub := range c.Commands() {
		markFailures(sub)
	}
}

// helpCommand is "cowfs help [COMMAND]": the root's help, or the help of
// COMMAND; an unknown COMMAND is a usage error.
func helpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "print this help, or every flag of COMMAND",
		Long:  "help prints the commands of cowfs, or the help of COMMAND: what it does,\nevery flag it takes and the fields of its JSON output.",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			var names []cobra.Completion
			if len(args) == 0 {
				for _, sub := range c.Root().Commands() {
					if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
						names = append(names, cobra.CompletionWithDesc(sub.Name(), sub.Short))
					}
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return usageErrorf("unknown command %q", strings.Join(args, " "))
			}
			printHelp(c.OutOrStdout(), cmd)
			return nil
		},
	}
}

// fieldsAnnotation is the cobra.Command annotation holding the description
// of a command's JSON output, which its help prints after the flags.
const fieldsAnnotation = "cowfs-json-fields"

// printHelp prints the help of c on w: for the root, the commands and where
// the default store lives; for a command, its synopsis, what it does, every
// flag, its subcommands (completion has some) and the fields of its JSON
// output.
func printHelp(w io.Writer, c *cobra.Command) {
	if !c.HasParent() {
		printRootHelp(w, c)
		return
	}
	c.InitDefaultHelpFlag() // so that "cowfs help CMD" lists -h too
	fmt.Fprintf(w, "Usage: %s\n", c.UseLine())
	if long := strings.TrimSpace(c.Long); long != "" {
		fmt.Fprintf(w, "\n%s\n", long)
	} else if c.Short != "" {
		fmt.Fprintf(w, "\n%s\n", c.Short)
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(w, "\nCommands:\n\n")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				fmt.Fprintf(w, "  %-12s %s\n", sub.Name(), sub.Short)
			}
		}
	}
	fmt.Fprintf(w, "\nFlags (before or after the arguments):\n%s", c.Flags().FlagUsages())
	if fields := c.Annotations[fieldsAnnotation]; fields != "" {
		fmt.Fprintf(w, "\n%s\n", fields)
	}
}

// printRootHelp prints the list of commands and where the default store
// lives.
func printRootHelp(w io.Writer, root *cobra.Command) {
	root.InitDefaultHelpFlag()
	root.InitDefaultVersionFlag()
	fmt.Fprintln(w, root.Short)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "\tcowfs <command> [arguments] [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags may come before or after the arguments, as in cowfs du PATH --json;")
	fmt.Fprintln(w, "an argument that starts with - follows --.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	fmt.Fprintln(w)
	const width = 46
	for _, c := range root.Commands() {
		if !c.IsAvailableCommand() && c.Name() != "help" {
			continue
		}
		if len(c.Use) > width {
			fmt.Fprintf(w, "\t%s\n\t%-*s %s\n", c.Use, width, "", c.Short)
		} else {
			fmt.Fprintf(w, "\t%-*s %s\n", width, c.Use, c.Short)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags of cowfs itself:")
	fmt.Fprint(w, root.Flags().FlagUsages())
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Stores (--store S):")
	fmt.Fprintln(w)
	for _, b := range registry.Backends() {
		fmt.Fprintf(w, "\t%-6s %s\n", b.Form, b.Doc)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Without --store, commands use the default store: $COWFS_STORE (any S)")
	fmt.Fprintln(w, "if set, else the local store in the first of $XDG_DATA_HOME/cowfs")
	fmt.Fprintln(w, "(if XDG_DATA_HOME is set) and $HOME/.local/share/cowfs; the same for root.")
	if spec, err := registry.Default(os.Getenv); err == nil {
		fmt.Fprintf(w, "Here that is %s.\n", spec)
	} else {
		fmt.Fprintf(w, "Here there is none: %v.\n", err)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'cowfs help <command>' or 'cowfs <command> -h' for every flag of a command.")
}

// argsBetween is a cobra.PositionalArgs that wants lo to hi arguments.
func argsBetween(lo, hi int) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) < lo:
			return usageErrorf("missing arguments")
		case len(args) > hi:
			return usageErrorf("unexpected arguments %q", args[hi:])
		}
		return nil
	}
}

// noArgs is a cobra.PositionalArgs that wants no argument.
var noArgs = argsBetween(0, 0)

// anyArgs is the most arguments argsBetween can be asked for.
const anyArgs = int(^uint(0) >> 1)

// storeFlag defines the --store flag of the commands that open a store,
// completed with directory names.
func storeFlag(c *cobra.Command, spec *string) {
	var forms []string
	for _, b := range registry.Backends() {
		forms = append(forms, b.Form)
	}
	c.Flags().StringVar(spec, "store", "", "the store `S`, one of "+strings.Join(forms, ", ")+" (cowfs help says what each is);\n"+
		"default $COWFS_STORE, else $XDG_DATA_HOME/cowfs, else $HOME/.local/share/cowfs")
	c.MarkFlagDirname("store")
}

// jsonFlag defines the --json flag, with what it prints.
func jsonFlag(c *cobra.Command, asJSON *bool, what string) {
	c.Flags().BoolVar(asJSON, "json", false, "print "+what+" (fields below) instead of lines")
}

// dirArgs completes the first n arguments with directory names (mount
// points) and nothing after them.
func dirArgs(n int) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) < n {
			return nil, cobra.ShellCompDirectiveFilterDirs
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// storeMode says whether openStore may create a store that does not exist
// yet.
type storeMode int

const (
	mayCreate storeMode = iota // commands that write (demo)
	mustExist                  // commands that inspect or maintain (fsck, scrub, gc)
)

// openStore opens the store a --store flag names, through the registry of
// stores (package store/registry), and returns it with the spec to show for
// it. An empty spec is the default store (registry.Default). A spec the
// registry cannot parse is a usage error. logger (nil discards) receives
// what the store logs.
func openStore(spec string, mode storeMode, logger *slog.Logger) (store.Store, string, error) {
	fromFlag := spec != ""
	if !fromFlag {
		var err error
		if spec, err = registry.Default(os.Getenv); err != nil {
			return nil, "", fmt.Errorf("%w, or give --store", err)
		}
	}
	st, err := registry.Open(context.Background(), spec, &registry.Options{MustExist: mode == mustExist, Logger: logger})
	switch {
	case err == nil:
		return st, spec, nil
	case errors.Is(err, registry.ErrSpec) && fromFlag:
		return nil, spec, usageErrorf("%v", err)
	case errors.Is(err, registry.ErrNoStore):
		return nil, spec, fmt.Errorf("%w (a command that writes, such as cowfs demo, creates one)", err)
	}
	return nil, spec, err
}

// commandContext returns a context that ends when the process is
// interrupted, so a long check stops cleanly (its progress bar cleared).
func commandContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt)
}

// openFS opens the store spec names and an FS on it with options opt (nil
// for the defaults); the store logs to opt.Logger. The caller closes the FS
// (which closes the store), for example with closeFS.
func openFS(spec string, mode storeMode, opt *cowfs.Options) (f *cowfs.FS, st store.Store, where string, err error) {
	var logger *slog.Logger
	if opt != nil {
		logger = opt.Logger
	}
	st, where, err = openStore(spec, mode, logger)
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
