package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/cowfs/cowfs/store"
)

// gcFields documents the JSON object of gc.
const gcFields = `With --json, stdout holds one JSON object (sizes in bytes):

  store        the store collected: its spec (a directory, or "mem:")
  freed_blobs  blobs deleted
  freed_bytes  bytes of the blobs deleted
  commits      commits made to work through the blobs waiting for deletion
  compacted    true if the store compacted its files (the local store does)
  blobs_after  blobs the store holds now
  bytes_after  bytes the store holds now`

// gcJSON is the JSON object gc prints.
type gcJSON struct {
	Store      string `json:"store"`
	FreedBlobs int64  `json:"freed_blobs"`
	FreedBytes int64  `json:"freed_bytes"`
	Commits    int    `json:"commits"`
	Compacted  bool   `json:"compacted"`
	BlobsAfter int64  `json:"blobs_after"`
	BytesAfter int64  `json:"bytes_after"`
}

// gcCommand is `cowfs gc`.
func gcCommand() *cobra.Command {
	var (
		spec   string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "gc [--store S] [--json]",
		Short: "delete every blob waiting for deletion, then compact",
		Long: "gc commits until no blob waits for deletion (a commit deletes a bounded\n" +
			"number of blobs; the rest of a large deletion waits in a list), then lets\n" +
			"the store give back the space of deleted blobs (the local store compacts\n" +
			"its segment files). It prints what it freed.",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, _ []string) error {
			return runGC(spec, asJSON, c.OutOrStdout(), c.ErrOrStderr())
		},
		Annotations: map[string]string{fieldsAnnotation: gcFields},
	}
	storeFlag(c, &spec)
	jsonFlag(c, &asJSON, "one JSON object")
	return c
}

// runGC deletes every blob waiting for deletion (a commit deletes at most a
// budget of blobs; deleting a large volume leaves the rest waiting), then
// lets the store compact its files.
func runGC(spec string, asJSON bool, stdout, stderr io.Writer) (err error) {
	f, st, where, err := openFS(spec, mustExist, nil)
	if err != nil {
		return err
	}
	defer closeFS(f, where, &err)
	ctx, cancel := commandContext()
	defer cancel()

	bar := newProgress(stderr, "gc", "blobs deleted", asJSON)
	total := f.Zombies()
	_, compacts := st.(store.Compacter)
	rep, err := f.GC(ctx, func(waiting int64) {
		total = max(total, waiting)
		switch {
		case waiting > 0:
			bar.Update(total-waiting, total)
		case compacts:
			bar.Note("compacting the store")
		}
	})
	bar.Done()
	if err != nil {
		return fmt.Errorf("gc of store %s: %w", where, err)
	}
	if asJSON {
		b, err := json.MarshalIndent(gcJSON{Store: where, FreedBlobs: rep.Blobs, FreedBytes: rep.Bytes, Commits: rep.Commits,
			Compacted: rep.Compacted, BlobsAfter: rep.BlobsAfter, BytesAfter: rep.BytesAfter}, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return nil
	}
	fmt.Fprintf(stdout, "gc: store %s: freed %d %s (%s) in %d %s\n", where,
		rep.Blobs, plural(rep.Blobs, "blob", "blobs"), humanSize(rep.Bytes), rep.Commits, plural(int64(rep.Commits), "commit", "commits"))
	if rep.Compacted {
		fmt.Fprintln(stdout, "gc: the store compacted its files")
	} else {
		fmt.Fprintln(stdout, "gc: the store has no files to compact")
	}
	fmt.Fprintf(stdout, "gc: the store now holds %d %s (%s)\n", rep.BlobsAfter, plural(rep.BlobsAfter, "blob", "blobs"), humanSize(rep.BytesAfter))
	return nil
}
