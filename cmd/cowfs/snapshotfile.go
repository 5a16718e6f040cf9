package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/cowfs/cowfs/ctl/ctlclient"
)

// snapshotFileCommand is `cowfs snapshot-file PATH`: take a private
// snapshot of a file in O(1) and print the path of the read-only file that
// serves it.
func snapshotFileCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "snapshot-file PATH",
		Short: "serve a private O(1) snapshot of a file, for mmap(MAP_PRIVATE)",
		Long: "snapshot-file takes a private snapshot of the file PATH in a cowfs mount,\n" +
			"in O(1) whatever its size, and prints the path of a read-only file in the\n" +
			"mount's .cowfs/files/ that holds it. Mapping that file with\n" +
			"mmap(MAP_PRIVATE) is a deferred read: pages fill on first touch, and later\n" +
			"writes to PATH never show (package privmap writes such a mapping back).\n" +
			"Removing the file releases the snapshot.",
		Args: argsBetween(1, 1),
		RunE: func(c *cobra.Command, args []string) error {
			return runSnapshotFile(args[0], c.OutOrStdout())
		},
	}
}

// runSnapshotFile snapshots the file at path and prints where it is served.
func runSnapshotFile(path string, stdout io.Writer) error {
	p, err := ctlclient.Locate(path, true)
	if err != nil {
		return err
	}
	rel, err := p.VolumePath()
	if err != nil {
		return err
	}
	served, err := p.Mount.SnapshotFile(rel)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Arg, err)
	}
	fmt.Fprintln(stdout, served)
	return nil
}
