package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cowfs/cowfs"
)

// checkFields documents the JSON object of fsck and scrub.
const checkFields = `With --json, stdout holds one JSON object (sizes in bytes):

  store      the store checked: its spec (a directory, or "mem:")
  roots      named roots walked (volumes, snapshots, internal lists)
  blobs      blobs stored
  bytes      bytes stored
  reachable  blobs reachable from the roots
  problems   every problem found, in order (empty if none); each is
               blob     the blob concerned, full hex ID ("" if none)
               path     where the blob was first reached: ROOT:/path, ROOT
                        being v:VOLUME or s:VOLUME:SNAPSHOT ("<unreferenced>"
                        for a blob nothing references that scrub read; ""
                        for a leaked blob)
               what     what is wrong ("corrupt: ...", "leaked: ...", ...)
               message  the whole problem on one line, as printed without --json
  leaked     hex IDs of the leaked blobs (stored, count 0, referenced by
             nothing): those --repair deletes (empty if none)
  clean      true if problems is empty`

// repairFields documents the extra field of fsck --repair.
const repairFields = `
  repair     only with --repair: what it did, as an object
               deleted  leaked blobs deleted
               before   the check before the repair (roots, blobs, bytes,
                        reachable, problems, leaked); the fields above are
                        those of the check made after it`

// fsckCommand is `cowfs fsck`: check every invariant of the store (see
// cowfs.CheckStore), and with --repair delete the leaked blobs.
func fsckCommand() *cobra.Command {
	var (
		spec           string
		asJSON, repair bool
	)
	c := &cobra.Command{
		Use:   "fsck [--store S] [--json] [--repair]",
		Short: "check every invariant of a store; --repair deletes leaked blobs",
		Long: "fsck verifies every blob reachable from a root, recomputes every reference\n" +
			"count and compares it with the stored one, and checks the shape of every\n" +
			"tree and the inode numbers of every volume. It prints each problem and a\n" +
			"summary. With --repair it deletes the leaked blobs (the only problem it\n" +
			"repairs), says how many, and checks again. Exit status: 0 if no problem\n" +
			"remains, 1 otherwise.",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, _ []string) error {
			return runCheck("fsck", spec, asJSON, repair, false, c.OutOrStdout(), c.ErrOrStderr())
		},
		Annotations: map[string]string{fieldsAnnotation: checkFields + repairFields},
	}
	storeFlag(c, &spec)
	jsonFlag(c, &asJSON, "one JSON object")
	c.Flags().BoolVar(&repair, "repair", false, "delete the leaked blobs found (and nothing else), then check again")
	return c
}

// scrubCommand is `cowfs scrub`: fsck that also reads every stored blob
// nothing references, and never repairs.
func scrubCommand() *cobra.Command {
	var (
		spec   string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "scrub [--store S] [--json]",
		Short: "read and verify every stored blob, referenced or not",
		Long: "scrub is fsck that reads and verifies every stored blob, referenced or\n" +
			"not: every stored byte is read once. It names every corrupt blob and the\n" +
			"path it was reached by, and changes nothing. Exit status: 0 if no problem\n" +
			"was found, 1 otherwise.",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, _ []string) error {
			return runCheck("scrub", spec, asJSON, false, true, c.OutOrStdout(), c.ErrOrStderr())
		},
		Annotations: map[string]string{fieldsAnnotation: checkFields},
	}
	storeFlag(c, &spec)
	jsonFlag(c, &asJSON, "one JSON object")
	return c
}

// problemJSON is a cowfs.Problem in fsck's JSON output.
type problemJSON struct {
	Blob    string `json:"blob"`
	Path    string `json:"path"`
	What    string `json:"what"`
	Message string `json:"message"`
}

// checkJSON is a check report in fsck's JSON output.
type checkJSON struct {
	Roots     int           `json:"roots"`
	Blobs     int64         `json:"blobs"`
	Bytes     int64         `json:"bytes"`
	Reachable int64         `json:"reachable"`
	Problems  []problemJSON `json:"problems"`
	Leaked    []string      `json:"leaked"`
}

// fsckJSON is the JSON object fsck and scrub print.
type fsckJSON struct {
	Store string `json:"store"`
	checkJSON
	Clean  bool        `json:"clean"`
	Repair *repairJSON `json:"repair,omitempty"`
}

type repairJSON struct {
	Deleted int       `json:"deleted"`
	Before  checkJSON `json:"before"`
}

func toCheckJSON(rep *cowfs.CheckReport) checkJSON {
	c := checkJSON{Roots: rep.Roots, Blobs: rep.Blobs, Bytes: rep.Bytes, Reachable: rep.Reachable,
		Problems: []problemJSON{}, Leaked: []string{}}
	for _, p := range rep.Problems {
		id := ""
		if !p.Blob.IsZero() {
			id = p.Blob.String()
		}
		c.Problems = append(c.Problems, problemJSON{Blob: id, Path: p.Path, What: p.What, Message: p.String()})
	}
	for _, id := range rep.Leaked {
		c.Leaked = append(c.Leaked, id.String())
	}
	return c
}

// runCheck runs fsck (all false) or scrub (all true) and reports.
func runCheck(name, spec string, asJSON, repair, all bool, stdout, stderr io.Writer) (err error) {
	f, _, where, err := openFS(spec, mustExist, nil)
	if err != nil {
		return err
	}
	defer closeFS(f, where, &err)
	ctx, cancel := commandContext()
	defer cancel()

	check := func() (*cowfs.CheckReport, error) {
		bar := newProgress(stderr, name, "blobs", asJSON)
		defer bar.Done()
		bar.Note("listing the stored blobs")
		rep, err := f.CheckWith(ctx, cowfs.CheckOptions{All: all, Progress: bar.Update})
		if err != nil {
			return nil, fmt.Errorf("check store %s: %w", where, err)
		}
		return rep, nil
	}
	say := func(format string, args ...any) {
		if !asJSON {
			fmt.Fprintf(stdout, format+"\n", args...)
		}
	}
	rep, err := check()
	if err != nil {
		return err
	}
	printReport(say, name, where, rep, all)

	var rj *repairJSON
	if repair {
		rj = &repairJSON{Before: toCheckJSON(rep)}
		n, err := f.Repair(ctx, rep)
		if err != nil {
			return fmt.Errorf("repair store %s: %w", where, err)
		}
		rj.Deleted = n
		say("repair: deleted %d leaked %s", n, plural(int64(n), "blob", "blobs"))
		if others := len(rep.Problems) - len(rep.Leaked); others > 0 {
			say("repair: %d other %s need a person: fsck repairs nothing else", others, plural(int64(others), "problem", "problems"))
		}
		if n > 0 {
			say("")
			say("checking again after the repair")
			if rep, err = check(); err != nil {
				return err
			}
			printReport(say, name, where, rep, all)
		}
	}
	if asJSON {
		out := fsckJSON{Store: where, checkJSON: toCheckJSON(rep), Clean: len(rep.Problems) == 0, Repair: rj}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
	}
	if n := len(rep.Problems); n > 0 {
		return fmt.Errorf("%d %s in store %s", n, plural(int64(n), "problem", "problems"), where)
	}
	return nil
}

// printReport prints a check's problems and its summary.
func printReport(say func(string, ...any), name, where string, rep *cowfs.CheckReport, all bool) {
	corrupt := 0
	for _, p := range rep.Problems {
		say("problem: %s", p.String())
		if strings.HasPrefix(p.What, "corrupt") {
			corrupt++
		}
	}
	read := "reachable blobs read and verified"
	if all {
		read = "every stored blob read and verified"
	}
	say("%s: store %s: %d %s, %d %s (%s), %d reachable (%s)", name, where, rep.Roots, plural(int64(rep.Roots), "root", "roots"),
		rep.Blobs, plural(rep.Blobs, "blob", "blobs"), humanSize(rep.Bytes), rep.Reachable, read)
	switch {
	case len(rep.Problems) == 0:
		say("%s: clean: no problems", name)
	default:
		say("%s: %d %s (%d corrupt %s, %d leaked)", name, len(rep.Problems), plural(int64(len(rep.Problems)), "problem", "problems"),
			corrupt, plural(int64(corrupt), "blob", "blobs"), len(rep.Leaked))
	}
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
