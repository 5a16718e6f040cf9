package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cowfs/cowfs/ctl"
	"github.com/cowfs/cowfs/ctl/ctlclient"
)

// statsFields documents the JSON object of stats, and what its counters
// count.
const statsFields = `With --json, stdout holds the JSON object of the control command stats
(sizes in bytes):

  volume     the volume mounted
  cache      the caches shared by every file, volume and snapshot:
               nodes      decoded tree nodes read from the store
               data       data blobs read from the store
             each with
               hits       lookups found in the cache
               misses     lookups that read the store
               evictions  entries dropped to stay within the bound
               bytes      bytes held
               entries    entries held
  store      what the store holds:
               blobs      number of blobs
               bytes      their bytes
  zombies    blobs waiting for deletion (cowfs gc deletes them all)
  frontend   counters of the mount, if it has any:
               fuse       the FUSE requests it served since it started:
                 reads             read requests
                 read_bytes        bytes they read
                 writes            write requests
                 write_bytes       bytes they wrote
                 copy_ranges       copy_file_range requests (cp uses them)
                 copy_range_bytes  bytes they shared, cloned rather than copied
                 fsyncs            fsync requests (each commits)
                 ctl_commands      control-file commands run (cowfs clone,
                                   snapshot, du, stats, ... each run one)
                 ctl_failures      control-file commands that failed
                 handle_lookups    files found by inode number for file
                                   handles (open_by_handle_at, NFS) whose
                                   inode the kernel had dropped

Only reads from the store go through the caches. The tree of a volume
that the mount has loaded or built stays in memory, so the node cache
counts only reads of trees stored before (after a remount, in a snapshot,
or once the mount dropped a tree it no longer used): on a fresh mount whose
files were all written since it started, its hits and misses stay at zero.
Reads that the kernel's page cache answers never reach the mount, so
reading a file again usually counts no second lookup of its data.

Without --json, sizes show in binary units (KiB, MiB, ...) and the mount's
counters under one heading, "mount (fuse)", a count and its bytes on one
line ("reads  12 (1.0 MiB)").`

// statsCommand is `cowfs stats MOUNTPOINT`: the cache and store counters of
// a mount.
func statsCommand() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "stats [--json] MOUNTPOINT",
		Short: "cache and store counters of a mount",
		Long: "stats prints the counters of the cowfs mount at MOUNTPOINT (any path\n" +
			"inside it will do): its caches, what its store holds, the blobs waiting\n" +
			"for deletion and the requests the mount served.",
		Args:              argsBetween(1, 1),
		ValidArgsFunction: dirArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return runStats(args[0], asJSON, c.OutOrStdout())
		},
		Annotations: map[string]string{fieldsAnnotation: statsFields},
	}
	jsonFlag(c, &asJSON, "one JSON object")
	return c
}

// runStats prints the stats of the mount holding path p.
func runStats(p string, asJSON bool, stdout io.Writer) error {
	mp, err := ctlclient.Locate(p, true)
	if err != nil {
		return err
	}
	if asJSON {
		reply, err := mp.Mount.Exec("stats")
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, reply)
		return nil
	}
	st, err := mp.Mount.Stats() // frontend counters are json.Number: they print as integers
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "volume      %s\n", st.Volume)
	for _, c := range []struct {
		name string
		c    ctl.CacheCounters
	}{{"node cache", st.Cache.Nodes}, {"data cache", st.Cache.Data}} {
		fmt.Fprintf(stdout, "%-11s %s in %d %s; %d %s, %d %s, %d %s\n",
			c.name, humanSize(c.c.Bytes), c.c.Entries, plural(c.c.Entries, "entry", "entries"),
			c.c.Hits, plural(c.c.Hits, "hit", "hits"), c.c.Misses, plural(c.c.Misses, "miss", "misses"),
			c.c.Evictions, plural(c.c.Evictions, "eviction", "evictions"))
	}
	fmt.Fprintf(stdout, "store       %s in %d %s\n", humanSize(st.Store.Bytes), st.Store.Blobs, plural(st.Store.Blobs, "blob", "blobs"))
	fmt.Fprintf(stdout, "zombies     %d %s waiting for deletion\n", st.Zombies, plural(st.Zombies, "blob", "blobs"))
	printCounters(stdout, "mount", st.Frontend)
	return nil
}

// printCounters prints the counters in m under the heading title, one per
// line, sorted, each nested object under a heading of its own ("mount
// (fuse)"). A count "Xs" and a size "X_bytes" share a line: "reads  12
// (1.0 MiB)"; other sizes ("..._bytes") print in binary units.
func printCounters(w io.Writer, title string, m map[string]any) {
	var names, groups []string
	for k, v := range m {
		if _, ok := v.(map[string]any); ok {
			groups = append(groups, k)
		} else {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	slices.Sort(groups)
	type line struct{ name, value string }
	var lines []line
	width := 0
	for _, k := range names {
		if size, ok := strings.CutSuffix(k, "_bytes"); ok {
			if _, paired := m[size+"s"]; paired {
				continue // on the line of its count
			}
		}
		value := counterValue(k, m[k])
		if size, ok := m[strings.TrimSuffix(k, "s")+"_bytes"]; ok && strings.HasSuffix(k, "s") {
			value += " (" + counterValue("_bytes", size) + ")"
		}
		lines = append(lines, line{k, value})
		width = max(width, len(k))
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, title)
		for _, l := range lines {
			fmt.Fprintf(w, "  %-*s  %s\n", width, l.name, l.value)
		}
	}
	for _, g := range groups {
		printCounters(w, title+" ("+g+")", m[g].(map[string]any))
	}
}

// counterValue formats counter name's value v: a size if name ends in
// "_bytes", else the number as it is.
func counterValue(name string, v any) string {
	if n, ok := v.(json.Number); ok && strings.HasSuffix(name, "_bytes") {
		if i, err := n.Int64(); err == nil {
			return humanSize(i)
		}
	}
	return fmt.Sprint(v)
}
