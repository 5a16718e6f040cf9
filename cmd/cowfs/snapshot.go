package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cowfs/cowfs/ctl/ctlclient"
)

// snapshotCommand is `cowfs snapshot create|list|delete MOUNTPOINT [NAME]`:
// the snapshots of the volume mounted at MOUNTPOINT.
func snapshotCommand() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "snapshot create|list|delete MOUNTPOINT [NAME]",
		Short: "create, list or delete snapshots of a mounted volume",
		Long: "One of:\n\n" +
			"\tcowfs snapshot create MOUNTPOINT NAME\n" +
			"\tcowfs snapshot list [--json] MOUNTPOINT\n" +
			"\tcowfs snapshot delete MOUNTPOINT NAME\n\n" +
			"snapshot creates, lists or deletes read-only O(1) snapshots of the volume\n" +
			"mounted at MOUNTPOINT (any path inside the mount will do). A name is 1 to\n" +
			"100 of A-Z a-z 0-9 . _ -. The mount shows snapshot NAME, read-only, in\n" +
			"MOUNTPOINT/.cowfs/snapshots/NAME. list prints one snapshot per line: its\n" +
			"name and when it was taken.",
		Args: snapshotArgs,
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			switch len(args) {
			case 0:
				return []cobra.Completion{"create", "list", "delete"}, cobra.ShellCompDirectiveNoFileComp
			case 1:
				return nil, cobra.ShellCompDirectiveFilterDirs
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			if asJSON && args[0] != "list" {
				return usageErrorf("--json applies to list only")
			}
			return runSnapshot(args[0], args[1:], asJSON, c.OutOrStdout())
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "list: print the JSON array [{\"name\": ..., \"created\": RFC 3339 time}]")
	return c
}

// snapshotArgs checks the arguments of snapshot: an action, a mount point
// and, but for list, a name.
func snapshotArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usageErrorf("missing arguments")
	}
	switch args[0] {
	case "create", "delete":
		return argsBetween(3, 3)(c, args)
	case "list":
		return argsBetween(2, 2)(c, args)
	}
	return usageErrorf("unknown action %q (want create, list or delete)", args[0])
}

// runSnapshot runs snapshot action on the mount holding rest[0] (with the
// snapshot name rest[1] for create and delete).
func runSnapshot(action string, rest []string, asJSON bool, stdout io.Writer) error {
	mp, err := ctlclient.Locate(rest[0], true)
	if err != nil {
		return err
	}
	m := mp.Mount
	if action != "list" {
		change := m.CreateSnapshot
		if action == "delete" {
			change = m.DeleteSnapshot
		}
		if err := change(rest[1]); err != nil {
			return fmt.Errorf("%s %s: %w", action, rest[1], err)
		}
		return nil
	}
	if asJSON {
		reply, err := m.Exec("snapshot", "list")
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, reply)
		return nil
	}
	list, err := m.Snapshots()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	for _, s := range list {
		created := s.Created
		if t, err := time.Parse(time.RFC3339, s.Created); err == nil {
			created = t.Local().Format("2006-01-02 15:04:05 MST")
		}
		fmt.Fprintf(tw, "%s\t%s\n", s.Name, created)
	}
	return tw.Flush()
}
