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
//	help    print this help
//
// Each command lives in its own file as a function taking its arguments and
// the output streams; main only dispatches.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cowfs/cowfs/store"
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
	{"demo", "[--store mem:]", "run an end-to-end example and verify it", runDemo},
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

// usage prints the list of commands.
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
		fmt.Fprintf(w, "\t%-22s %s\n", synopsis, c.summary)
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

// openStore opens the store a --store flag names. Only the in-memory store
// exists so far: "mem:" (nothing persists past the process).
func openStore(spec string) (store.Store, error) {
	kind, _, _ := strings.Cut(spec, ":")
	switch kind {
	case "mem":
		if spec != "mem:" && spec != "mem" {
			return nil, usageErrorf("the mem store takes no location, got %q", spec)
		}
		return mem.New(), nil
	}
	return nil, usageErrorf("unknown store %q (supported: mem:)", spec)
}
