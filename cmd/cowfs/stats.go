package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/cowfs/cowfs/ctl"
)

// statsFields documents the JSON object of stats.
const statsFields = `With --json, stdout holds the JSON object of the control command stats:

  volume     the volume mounted
  cache      the caches shared by every file, volume and snapshot:
               nodes      decoded tree nodes
               data       data blob bytes
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
  frontend   counters of the mount (requests served), if it has any`

// runStats is `cowfs stats MOUNTPOINT`: the cache and store counters of a
// mount.
func runStats(args []string, stdout, stderr io.Writer) error {
	flags := newFlags("stats", stderr)
	asJSON := flags.Bool("json", false, "print one JSON object (fields below) instead of lines")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage: cowfs stats [--json] MOUNTPOINT\n\n"+
			"stats prints the counters of the cowfs mount at MOUNTPOINT (any path\n"+
			"inside it will do): its caches, what its store holds, the blobs waiting\n"+
			"for deletion and the requests the mount served.\n\nFlags:\n")
		flags.PrintDefaults()
		fmt.Fprintf(stderr, "\n%s\n", statsFields)
	}
	rest, err := parseArgs(flags, args, 1, 1)
	if err != nil {
		return err
	}
	mp, err := locate(rest[0], true)
	if err != nil {
		return err
	}
	reply, err := ctlExec(mp.root, "stats")
	if err != nil {
		return err
	}
	if *asJSON {
		fmt.Fprint(stdout, reply)
		return nil
	}
	var st ctl.StatsReply
	dec := json.NewDecoder(bytes.NewReader([]byte(reply)))
	dec.UseNumber() // frontend counters print as integers
	if err := dec.Decode(&st); err != nil {
		return fmt.Errorf("bad reply %q: %w", reply, err)
	}
	fmt.Fprintf(stdout, "volume      %s\n", st.Volume)
	for _, c := range []struct {
		name string
		c    ctl.CacheCounters
	}{{"node cache", st.Cache.Nodes}, {"data cache", st.Cache.Data}} {
		fmt.Fprintf(stdout, "%-11s %d entries, %s; %d hits, %d misses, %d evictions\n",
			c.name, c.c.Entries, humanSize(c.c.Bytes), c.c.Hits, c.c.Misses, c.c.Evictions)
	}
	fmt.Fprintf(stdout, "store       %d %s, %s\n", st.Store.Blobs, plural(st.Store.Blobs, "blob", "blobs"), humanSize(st.Store.Bytes))
	fmt.Fprintf(stdout, "zombies     %d\n", st.Zombies)
	printCounters(stdout, "", st.Frontend)
	return nil
}

// printCounters prints the mount's counters, one per line, sorted; nested
// objects' names are joined with dots ("fuse.reads 12").
func printCounters(w io.Writer, prefix string, m map[string]any) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if sub, ok := m[k].(map[string]any); ok {
			printCounters(w, prefix+k+".", sub)
			continue
		}
		fmt.Fprintf(w, "mount       %s%s %v\n", prefix, k, m[k])
	}
}
