package local

import (
	"errors"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cowfs/cowfs/internal/logtest"
	"github.com/cowfs/cowfs/store"
)

// TestLogBackgroundCompactionFailure: a segment whose background compaction
// fails (a corrupt live blob) is logged once, at Error, with the store and
// the error; the background compactions after it skip that segment and log
// nothing, and an explicit Compact returns the failure instead of logging it.
func TestLogBackgroundCompactionFailure(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	dir := t.TempDir()
	opt := &Options{SegmentSize: 256 << 10, NoAutoCompact: true}
	s := openStore(t, dir, opt)
	want := fill(t, s, rng, 100, 16<<10)
	closeStore(t, s)

	recs := blobExtents(t, dir)
	bySeg := map[uint32][]store.ID{}
	for id, r := range recs {
		bySeg[r.seg] = append(bySeg[r.seg], id)
	}
	nums := slices.Sorted(maps.Keys(bySeg))
	if len(nums) < 3 {
		t.Fatalf("%d segments, want 3 or more", len(nums))
	}
	a, b := nums[0], nums[1]
	segPath := func(n uint32) string { return filepath.Join(dir, segDirName, segName(n)) }
	var bad store.ID // a blob of segment a, made corrupt on disk
	for _, id := range bySeg[a] {
		if recs[id].size > 0 {
			bad = id
			break
		}
	}
	if bad.IsZero() || slices.Contains(append(bySeg[a], bySeg[b]...), want.roots["last"]) {
		t.Fatal("the fixture does not have the shape the test needs")
	}
	f, err := os.OpenFile(segPath(a), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{^want.data[bad][0]}, recs[bad].off); err != nil {
		t.Fatal(err)
	}
	f.Close()

	var rec logtest.Recorder
	s = openStore(t, dir, &Options{SegmentSize: 256 << 10, Logger: rec.Logger()})
	deleteAll := func(ids []store.ID, keep store.ID) {
		t.Helper()
		batch := store.Batch{Refs: map[store.ID]int64{}}
		for _, id := range ids {
			if id != keep {
				batch.Refs[id] = -want.refs[id]
				batch.Delete = append(batch.Delete, id)
			}
		}
		mustCommit(t, s, batch)
	}
	// Segment a holds only the corrupt blob now: under a quarter live.
	deleteAll(bySeg[a], bad)
	logged := rec.Wait(t, slog.LevelDebug, 1)
	if r := logged[0]; r.Level != slog.LevelError || r.Attrs["store"] != dir {
		t.Errorf("record %v: want an Error naming the store", r)
	} else if err, _ := r.Attrs["err"].(error); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("record %v: want its err to wrap ErrCorrupt", r)
	}

	// Segment b empties: the next background compaction removes it, and
	// does not try segment a again.
	deleteAll(bySeg[b], store.ID{})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(segPath(b)); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("segment b, empty, still there after 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := os.Stat(segPath(a)); err != nil {
		t.Errorf("segment a, which cannot be compacted: %v", err)
	}
	if err := s.Compact(); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("Compact: %v, want the corrupt blob's error", err)
	}
	closeStore(t, s) // waits for the background compactor to end
	if logged := rec.Records(slog.LevelDebug); len(logged) != 1 {
		t.Errorf("%d records, want 1: %v", len(logged), logged)
	}
}

// TestLogQuietCompaction: background compactions that succeed log nothing.
func TestLogQuietCompaction(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	dir := t.TempDir()
	var rec logtest.Recorder
	s := openStore(t, dir, &Options{SegmentSize: 128 << 10, Logger: rec.Logger()})
	want := fill(t, s, rng, 100, 16<<10)
	nSegs := len(segmentFiles(t, dir))
	batch := store.Batch{Refs: map[store.ID]int64{}}
	for id, n := range want.refs {
		if id != want.roots["last"] {
			batch.Refs[id] = -n
			batch.Delete = append(batch.Delete, id)
		}
	}
	mustCommit(t, s, batch)
	deadline := time.Now().Add(10 * time.Second)
	for len(segmentFiles(t, dir)) > 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(segmentFiles(t, dir)); n > 2 {
		t.Fatalf("%d segment files of %d remain: background compaction did not run", n, nSegs)
	}
	closeStore(t, s)
	if logged := rec.Records(slog.LevelDebug); len(logged) != 0 {
		t.Errorf("%d records, want none: %v", len(logged), logged)
	}
}
