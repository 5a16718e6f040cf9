package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/cowfs/cowfs/ctl"
	"github.com/cowfs/cowfs/ctl/ctlclient"
)

// duFields documents the JSON array of du.
const duFields = `With --json, stdout holds one JSON array with an object per PATH:

  path       the path as given
  logical    bytes of the regular files (their sizes summed)
  shared     stored bytes also referenced by something else: another file,
             a clone, a snapshot
  exclusive  stored bytes only PATH references: removing it would free them`

// duCommand is `cowfs du PATH...`: the logical, shared and exclusive bytes
// of files and directory trees in cowfs mounts.
func duCommand() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "du [--json] PATH...",
		Short: "logical, shared and exclusive bytes of paths in a mount",
		Long: "du reports, for each file or directory tree PATH in a cowfs mount, its\n" +
			"logical size and the stored bytes it references, split into bytes shared\n" +
			"with anything else (clones, snapshots, range copies) and bytes only it\n" +
			"holds. A final symlink is followed. Holes store nothing.",
		Args: argsBetween(1, anyArgs),
		RunE: func(c *cobra.Command, paths []string) error {
			return runDu(paths, asJSON, c.OutOrStdout())
		},
		Annotations: map[string]string{fieldsAnnotation: duFields},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON array (fields below) instead of a table")
	return c
}

// runDu prints the usage of paths.
func runDu(paths []string, asJSON bool, stdout io.Writer) error {
	var rows []ctl.UsageReply
	for _, p := range paths {
		u, err := du(p)
		if err != nil {
			return err
		}
		rows = append(rows, u)
	}
	if asJSON {
		b, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return nil
	}
	fmt.Fprintf(stdout, "%10s %10s %10s  %s\n", "LOGICAL", "SHARED", "EXCLUSIVE", "PATH")
	for _, u := range rows {
		fmt.Fprintf(stdout, "%10s %10s %10s  %s\n", humanSize(u.Logical), humanSize(u.Shared), humanSize(u.Exclusive), u.Path)
	}
	return nil
}

// du asks the mount holding p for its usage.
func du(p string) (ctl.UsageReply, error) {
	mp, err := ctlclient.Locate(p, true)
	if err != nil {
		return ctl.UsageReply{}, err
	}
	rel, err := mp.VolumePath()
	if err != nil {
		return ctl.UsageReply{}, err
	}
	u, err := mp.Mount.Usage(rel)
	if err != nil {
		return ctl.UsageReply{}, fmt.Errorf("%s: %w", p, err)
	}
	u.Path = p
	return u, nil
}

// humanSize formats a byte count with a binary unit: "512 B", "1.5 KiB".
func humanSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB", "PiB", "EiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
