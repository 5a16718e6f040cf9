package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// runSnapshotFile is `cowfs snapshot-file PATH`: take a private snapshot of
// a file in O(1) and print the path of the read-only file that serves it.
func runSnapshotFile(args []string, stdout, stderr io.Writer) error {
	flags := newFlags("snapshot-file", stderr)
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage: cowfs snapshot-file PATH\n\n"+
			"snapshot-file takes a private snapshot of the file PATH in a cowfs mount,\n"+
			"in O(1) whatever its size, and prints the path of a read-only file in the\n"+
			"mount's .cowfs/files/ that holds it. Mapping that file with\n"+
			"mmap(MAP_PRIVATE) is a deferred read: pages fill on first touch, and later\n"+
			"writes to PATH never show (package privmap writes such a mapping back).\n"+
			"Removing the file releases the snapshot.\n")
	}
	rest, err := parseArgs(flags, args, 1, 1)
	if err != nil {
		return err
	}
	p, err := locate(rest[0], true)
	if err != nil {
		return err
	}
	rel, err := p.volumePath()
	if err != nil {
		return err
	}
	reply, err := ctlExec(p.root, "snapshot-file", rel)
	if err != nil {
		return fmt.Errorf("%s: %w", p.arg, err)
	}
	fmt.Fprintln(stdout, filepath.Join(p.root, strings.TrimSpace(reply)))
	return nil
}
