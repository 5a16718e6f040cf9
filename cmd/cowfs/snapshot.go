package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/cowfs/cowfs/ctl"
)

// runSnapshot is `cowfs snapshot create|list|delete MOUNTPOINT [NAME]`:
// the snapshots of the volume mounted at MOUNTPOINT.
func runSnapshot(args []string, stdout, stderr io.Writer) error {
	flags := newFlags("snapshot", stderr)
	asJSON := flags.Bool("json", false, "list: print the JSON array [{\"name\": ..., \"created\": RFC 3339 time}]")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage:\n\n"+
			"\tcowfs snapshot create MOUNTPOINT NAME\n"+
			"\tcowfs snapshot list [--json] MOUNTPOINT\n"+
			"\tcowfs snapshot delete MOUNTPOINT NAME\n\n"+
			"snapshot creates, lists or deletes read-only O(1) snapshots of the volume\n"+
			"mounted at MOUNTPOINT (any path inside the mount will do). A name is 1 to\n"+
			"100 of A-Z a-z 0-9 . _ -. The mount shows snapshot NAME, read-only, in\n"+
			"MOUNTPOINT/.cowfs/snapshots/NAME. list prints one snapshot per line: its\n"+
			"name and when it was taken.\n\nFlags:\n")
		flags.PrintDefaults()
	}
	rest, err := parseArgs(flags, args, 1, len(args))
	if err != nil {
		return err
	}
	// Flags may also follow the action: cowfs snapshot list --json MNT.
	action := rest[0]
	want := 2 // arguments after the action
	switch action {
	case "create", "delete":
	case "list":
		want = 1
	default:
		return usageErrorf("unknown action %q (want create, list or delete)", action)
	}
	if rest, err = parseArgs(flags, rest[1:], want, want); err != nil {
		return err
	}
	if *asJSON && action != "list" {
		return usageErrorf("--json applies to list only")
	}
	mp, err := locate(rest[0], true)
	if err != nil {
		return err
	}
	if action != "list" {
		if _, err := ctlExec(mp.root, "snapshot", action, rest[1]); err != nil {
			return fmt.Errorf("%s %s: %w", action, rest[1], err)
		}
		return nil
	}
	reply, err := ctlExec(mp.root, "snapshot", "list")
	if err != nil {
		return err
	}
	if *asJSON {
		fmt.Fprint(stdout, reply)
		return nil
	}
	var list []ctl.SnapshotReply
	if err := json.Unmarshal([]byte(reply), &list); err != nil {
		return fmt.Errorf("bad reply %q: %w", reply, err)
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
