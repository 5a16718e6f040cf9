package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/local"
)

// These tests run the real command (the test binary re-executed as cowfs)
// on local stores in temporary directories. The stores are made and
// damaged from the test with the library and package local.

// randomBytes returns n pseudo-random bytes, different for each seed.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	rand.NewChaCha8(s).Read(b)
	return b
}

// withFS opens the local store in dir as an FS, runs fn and closes it.
func withFS(t *testing.T, dir string, opt *cowfs.Options, fn func(f *cowfs.FS)) {
	t.Helper()
	st, err := local.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := cowfs.Open(st, opt)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	fn(f)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// withStore opens the local store in dir, runs fn and closes it.
func withStore(t *testing.T, dir string, fn func(st *local.Store)) {
	t.Helper()
	st, err := local.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fn(st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// makeVolume creates volume name in the store in dir holding files (path ->
// content), committed.
func makeVolume(t *testing.T, dir, name string, files map[string][]byte) {
	t.Helper()
	withFS(t, dir, nil, func(f *cowfs.FS) {
		v, err := f.CreateVolume(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range sortedKeys(files) {
			if err := v.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := v.WriteFile(p, files[p], 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// checkVolume checks that volume name of the store in dir holds files.
func checkVolume(t *testing.T, dir, name string, files map[string][]byte) {
	t.Helper()
	withFS(t, dir, nil, func(f *cowfs.FS) {
		v, err := f.Volume(name)
		if err != nil {
			t.Fatal(err)
		}
		for p, want := range files {
			got, err := v.ReadFile(p)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("volume %s: %s: %d bytes, %v; want the %d written", name, p, len(got), err, len(want))
			}
		}
	})
}

// leakBlob stores a blob that nothing references, as a crash between
// writing a blob and committing a tree that uses it could: stored, indexed,
// count 0.
func leakBlob(t *testing.T, dir string, data []byte) store.ID {
	t.Helper()
	var id store.ID
	withStore(t, dir, func(st *local.Store) {
		ctx := context.Background()
		var err error
		if id, err = st.Put(ctx, data); err != nil {
			t.Fatal(err)
		}
		// A commit that names the blob makes it durable; a second one takes
		// the count back to 0.
		if err := st.Commit(ctx, store.Batch{Refs: map[store.ID]int64{id: 1}}); err != nil {
			t.Fatal(err)
		}
		if err := st.Commit(ctx, store.Batch{Refs: map[store.ID]int64{id: -1}}); err != nil {
			t.Fatal(err)
		}
		if info, err := st.Stat(ctx, id); err != nil || info.Refs != 0 {
			t.Fatalf("leaked blob: %+v, %v", info, err)
		}
	})
	return id
}

// largestBlob returns the largest blob of the store in dir and its size.
func largestBlob(t *testing.T, dir string) (store.ID, int64) {
	t.Helper()
	var best store.BlobInfo
	withStore(t, dir, func(st *local.Store) {
		err := st.List(context.Background(), func(b store.BlobInfo) error {
			if b.Size > best.Size {
				best = b
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	return best.ID, best.Size
}

// corruptBlob flips a byte in the middle of every copy of blob id in the
// segment files of the store in dir. It finds the copies by their record
// headers (package local's format: "cwb1", 4 zero bytes, the big-endian
// size, the ID, then the bytes).
func corruptBlob(t *testing.T, dir string, id store.ID, size int64) {
	t.Helper()
	header := append([]byte("cwb1\x00\x00\x00\x00"), binary.BigEndian.AppendUint64(nil, uint64(size))...)
	header = append(header, id[:]...)
	segs, err := filepath.Glob(filepath.Join(dir, "segments", "*"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segment files in %s: %v", dir, err)
	}
	copies := 0
	for _, seg := range segs {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; ; {
			i := bytes.Index(b[off:], header)
			if i < 0 {
				break
			}
			at := int64(off+i+len(header)) + size/2
			f, err := os.OpenFile(seg, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte{b[at] ^ 0xff}, at); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			copies++
			off += i + len(header)
		}
	}
	if copies == 0 {
		t.Fatalf("blob %s not found in %v", id.Short(), segs)
	}
}

// report is the JSON object of fsck and scrub.
type report struct {
	Store     string
	Roots     int
	Blobs     int64
	Bytes     int64
	Reachable int64
	Problems  []struct{ Blob, Path, What, Message string }
	Leaked    []string
	Clean     bool
	Repair    *struct {
		Deleted int
		Before  struct {
			Roots     int
			Blobs     int64
			Bytes     int64
			Reachable int64
			Problems  []struct{ Blob, Path, What, Message string }
			Leaked    []string
		}
	}
}

// checkJSONRun runs `cowfs CMD --json --store dir args...`, checks its exit
// status and returns its report.
func checkJSONRun(t *testing.T, wantStatus int, cmd, dir string, args ...string) report {
	t.Helper()
	out, errOut, status := cli(t, append([]string{cmd, "--json", "--store", dir}, args...)...)
	if status != wantStatus {
		t.Fatalf("cowfs %s %v: status %d, want %d\nstdout:\n%s\nstderr:\n%s", cmd, args, status, wantStatus, out, errOut)
	}
	var rep report
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("cowfs %s --json: %v:\n%s", cmd, err, out)
	}
	if rep.Store != dir {
		t.Errorf("report names store %q, want %q", rep.Store, dir)
	}
	if rep.Clean != (len(rep.Problems) == 0) || rep.Problems == nil || rep.Leaked == nil {
		t.Errorf("inconsistent report: clean %v, problems %v, leaked %v", rep.Clean, rep.Problems, rep.Leaked)
	}
	switch {
	case wantStatus == 0 && errOut != "":
		t.Errorf("cowfs %s wrote to stderr: %q", cmd, errOut)
	case wantStatus == 1 && !strings.HasPrefix(errOut, "cowfs "+cmd+": FAILED: ") || strings.Contains(errOut, "\r"):
		t.Errorf("cowfs %s: stderr %q", cmd, errOut)
	}
	return rep
}

// TestDemoTwiceThenFsck runs the demo twice on one local store next to a
// volume of the user's, then checks the store.
func TestDemoTwiceThenFsck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keep := map[string][]byte{"notes/a.txt": []byte("mine\n"), "b.bin": randomBytes(1, 100_000)}
	makeVolume(t, dir, "keep", keep)

	for i := range 2 {
		out, errOut, status := cli(t, "demo", "--store", dir)
		if status != 0 {
			t.Fatalf("demo run %d: status %d\nstdout:\n%s\nstderr:\n%s", i+1, status, out, errOut)
		}
		checkDemoOutput(t, out)
		deleted := strings.Contains(out, `deleted volume "demo" left by an earlier demo`)
		if deleted != (i == 1) {
			t.Errorf("demo run %d: deleted an earlier demo volume: %v\n%s", i+1, deleted, out)
		}
	}
	checkVolume(t, dir, "keep", keep)
	withFS(t, dir, nil, func(f *cowfs.FS) {
		if names, err := f.Volumes(); err != nil || fmt.Sprint(names) != "[demo keep]" {
			t.Errorf("volumes %v, %v; want [demo keep]", names, err)
		}
	})

	rep := checkJSONRun(t, 0, "fsck", dir)
	if !rep.Clean || len(rep.Problems) != 0 || len(rep.Leaked) != 0 {
		t.Fatalf("fsck after two demos: %+v", rep)
	}
	// Roots: v:keep, v:demo and its snapshot.
	if rep.Roots < 3 || rep.Blobs == 0 || rep.Bytes < 4<<20 || rep.Reachable != rep.Blobs {
		t.Errorf("fsck summary: %+v", rep)
	}
	out, errOut, status := cli(t, "fsck", "--store", dir)
	if status != 0 || errOut != "" || !strings.Contains(out, "fsck: clean: no problems\n") {
		t.Errorf("fsck: status %d\nstdout:\n%s\nstderr:\n%s", status, out, errOut)
	}
}

// TestDemoLeavesOtherVolumeNamedDemo: the demo deletes only a volume it
// created.
func TestDemoLeavesOtherVolumeNamedDemo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mine := map[string][]byte{"precious.txt": []byte("not the demo's\n")}
	makeVolume(t, dir, "demo", mine)
	_, errOut, status := cli(t, "demo", "--store", dir)
	if status != 1 || !strings.Contains(errOut, `cowfs demo: FAILED: volume "demo" exists and was not created by cowfs demo`) {
		t.Fatalf("status %d, stderr %q", status, errOut)
	}
	checkVolume(t, dir, "demo", mine)
	out, errOut, status := cli(t, "demo", "--store", dir, "--volume", "demo2")
	if status != 0 || !strings.Contains(out, `volume "demo2" created`) {
		t.Fatalf("demo --volume demo2: status %d\n%s%s", status, out, errOut)
	}
	checkVolume(t, dir, "demo", mine)
}

// TestScrubFindsCorruptBlobs damages a blob a file uses and a blob nothing
// references: scrub names both, with the path the first was reached by;
// fsck, which reads only what is reachable, names the first and reports the
// second as leaked.
func TestScrubFindsCorruptBlobs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	makeVolume(t, dir, "t", map[string][]byte{
		"data/big.bin": randomBytes(2, 600_000),
		"small.txt":    []byte("small\n"),
	})
	used, usedSize := largestBlob(t, dir) // a data blob of big.bin
	if usedSize < 16<<10 {
		t.Fatalf("largest blob has %d bytes", usedSize)
	}
	leakData := randomBytes(3, 50_000)
	leaked := leakBlob(t, dir, leakData)
	if rep := checkJSONRun(t, 1, "scrub", dir); len(rep.Problems) != 1 {
		t.Fatalf("scrub before the damage: %+v", rep.Problems) // only the leak
	}
	corruptBlob(t, dir, used, usedSize)
	corruptBlob(t, dir, leaked, int64(len(leakData)))

	type finding struct{ blob, path string }
	corrupt := func(rep report) (found []finding) {
		for _, p := range rep.Problems {
			if strings.HasPrefix(p.What, "corrupt") {
				found = append(found, finding{p.Blob, p.Path})
				if !strings.Contains(p.Message, p.Blob[:12]) || !strings.HasPrefix(p.Message, p.Path+": corrupt") {
					t.Errorf("message %q does not name blob %s and path %s", p.Message, p.Blob, p.Path)
				}
			}
		}
		return found
	}

	rep := checkJSONRun(t, 1, "scrub", dir)
	want := []finding{{used.String(), "v:t:/data/big.bin"}, {leaked.String(), "<unreferenced>"}}
	if got := corrupt(rep); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("scrub found corrupt %v, want %v\n%+v", got, want, rep.Problems)
	}
	if rep.Clean || len(rep.Problems) != 3 { // two corrupt blobs, one leaked
		t.Errorf("scrub: %d problems: %+v", len(rep.Problems), rep.Problems)
	}

	out, errOut, status := cli(t, "scrub", "--store", dir)
	if status != 1 || !strings.HasPrefix(errOut, "cowfs scrub: FAILED: 3 problems in store ") {
		t.Errorf("scrub: status %d, stderr %q", status, errOut)
	}
	for _, line := range []string{
		"problem: v:t:/data/big.bin: corrupt: ",
		"(blob " + used.Short() + ")\n",
		"problem: <unreferenced>: corrupt: ",
		"(blob " + leaked.Short() + ")\n",
		"scrub: 3 problems (2 corrupt blobs, 1 leaked)\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("scrub output lacks %q:\n%s", line, out)
		}
	}

	rep = checkJSONRun(t, 1, "fsck", dir)
	want = want[:1]
	if got := corrupt(rep); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("fsck found corrupt %v, want %v\n%+v", got, want, rep.Problems)
	}
	if len(rep.Leaked) != 1 || rep.Leaked[0] != leaked.String() {
		t.Errorf("fsck leaked %v, want [%s]", rep.Leaked, leaked)
	}
	out, _, status = cli(t, "fsck", "--store", dir)
	if status != 1 || !strings.Contains(out, "problem: v:t:/data/big.bin: corrupt: ") || !strings.Contains(out, "(blob "+used.Short()+")") {
		t.Errorf("fsck: status %d:\n%s", status, out)
	}
}

// TestFsckRepairDeletesLeakedBlob: fsck reports a leaked blob, --repair
// deletes exactly it, and the store is clean afterwards.
func TestFsckRepairDeletesLeakedBlob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string][]byte{"a.bin": randomBytes(4, 200_000), "b.txt": []byte("b\n")}
	makeVolume(t, dir, "t", files)
	leaked := leakBlob(t, dir, randomBytes(5, 30_000))

	rep := checkJSONRun(t, 1, "fsck", dir)
	if len(rep.Problems) != 1 || rep.Problems[0].Blob != leaked.String() || !strings.HasPrefix(rep.Problems[0].What, "leaked") {
		t.Fatalf("fsck: %+v", rep.Problems)
	}
	blobsBefore := rep.Blobs

	out, errOut, status := cli(t, "fsck", "--repair", "--store", dir)
	if status != 0 || errOut != "" {
		t.Fatalf("fsck --repair: status %d\nstdout:\n%s\nstderr:\n%s", status, out, errOut)
	}
	for _, line := range []string{
		"problem: <unreferenced>: leaked: stored but referenced by nothing (blob " + leaked.Short() + ")\n",
		"fsck: 1 problem (0 corrupt blobs, 1 leaked)\n",
		"repair: deleted 1 leaked blob\n",
		"checking again after the repair\n",
		"fsck: clean: no problems\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("fsck --repair output lacks %q:\n%s", line, out)
		}
	}
	rep = checkJSONRun(t, 0, "fsck", dir)
	if !rep.Clean || rep.Blobs != blobsBefore-1 {
		t.Errorf("fsck after the repair: %d blobs (want %d): %+v", rep.Blobs, blobsBefore-1, rep)
	}
	withStore(t, dir, func(st *local.Store) {
		if _, err := st.Stat(context.Background(), leaked); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("leaked blob still stored: %v", err)
		}
	})
	checkVolume(t, dir, "t", files)

	// The same with --json, and on a clean store --repair deletes nothing.
	leaked = leakBlob(t, dir, randomBytes(6, 30_000))
	rep = checkJSONRun(t, 0, "fsck", dir, "--repair")
	if rep.Repair == nil || rep.Repair.Deleted != 1 || fmt.Sprint(rep.Repair.Before.Leaked) != "["+leaked.String()+"]" || !rep.Clean {
		t.Errorf("fsck --repair --json: %+v", rep)
	}
	rep = checkJSONRun(t, 0, "fsck", dir, "--repair")
	if rep.Repair == nil || rep.Repair.Deleted != 0 || !rep.Clean {
		t.Errorf("fsck --repair --json on a clean store: %+v", rep)
	}
	checkVolume(t, dir, "t", files)
}

// gcReport is the JSON object of gc.
type gcReport struct {
	Store      string
	FreedBlobs int64 `json:"freed_blobs"`
	FreedBytes int64 `json:"freed_bytes"`
	Commits    int
	Compacted  bool
	BlobsAfter int64 `json:"blobs_after"`
	BytesAfter int64 `json:"bytes_after"`
}

// TestGCAfterDeletingVolume deletes a volume with a release budget of one
// blob per commit, so nearly all of it waits for deletion; gc frees it.
func TestGCAfterDeletingVolume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := map[string][]byte{}
	for i := range 8 {
		big[fmt.Sprintf("f%d.bin", i)] = randomBytes(uint64(10+i), 100_000)
	}
	makeVolume(t, dir, "big", big)
	keep := map[string][]byte{"k.bin": randomBytes(20, 50_000)}
	makeVolume(t, dir, "keep", keep)

	var waiting int64
	var before store.Usage
	withFS(t, dir, &cowfs.Options{ReleaseBudget: 1}, func(f *cowfs.FS) {
		if err := f.DeleteVolume("big"); err != nil {
			t.Fatal(err)
		}
		waiting = f.Zombies()
	})
	withStore(t, dir, func(st *local.Store) {
		var err error
		if before, err = st.Usage(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	// The deleted volume's tree waits for deletion: its bytes are still
	// stored.
	if waiting < 1 || before.Bytes < 850_000 {
		t.Fatalf("%d blobs wait for deletion, the store holds %d bytes", waiting, before.Bytes)
	}

	out, errOut, status := cli(t, "gc", "--json", "--store", dir)
	if status != 0 || errOut != "" {
		t.Fatalf("gc: status %d\nstdout:\n%s\nstderr:\n%s", status, out, errOut)
	}
	var rep gcReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("gc --json: %v:\n%s", err, out)
	}
	if rep.Store != dir || rep.FreedBlobs < 8 || rep.FreedBytes < 800_000 || !rep.Compacted || rep.Commits < 1 {
		t.Errorf("gc freed too little: %+v", rep)
	}
	if rep.BlobsAfter != before.Blobs-rep.FreedBlobs || rep.BytesAfter != before.Bytes-rep.FreedBytes {
		t.Errorf("gc: store held %+v before, report %+v", before, rep)
	}
	withStore(t, dir, func(st *local.Store) {
		u, err := st.Usage(context.Background())
		if err != nil || u.Blobs != rep.BlobsAfter || u.Bytes != rep.BytesAfter {
			t.Errorf("store holds %+v (%v); gc said %d blobs, %d bytes", u, err, rep.BlobsAfter, rep.BytesAfter)
		}
	})
	checkVolume(t, dir, "keep", keep)
	if rep := checkJSONRun(t, 0, "fsck", dir); !rep.Clean {
		t.Errorf("fsck after gc: %+v", rep.Problems)
	}

	out, errOut, status = cli(t, "gc", "--store", dir)
	if status != 0 || errOut != "" || !strings.Contains(out, "gc: store "+dir+": freed 0 blobs (0 B) in 1 commit\n") ||
		!strings.Contains(out, "gc: the store compacted its files\n") {
		t.Errorf("second gc: status %d\nstdout:\n%s\nstderr:\n%s", status, out, errOut)
	}
}

// TestStoreInUse: while a process holds a local store, every command on it
// fails at once with the store's "in use" error.
func TestStoreInUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	makeVolume(t, dir, "t", map[string][]byte{"a": []byte("a")})
	st, err := local.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	pid := fmt.Sprint(os.Getpid())
	for _, args := range [][]string{
		{"demo", "--store", dir},
		{"fsck", "--store", dir},
		{"fsck", "--repair", "--json", "--store", dir},
		{"scrub", "--store", dir},
		{"gc", "--store", dir},
		{"mount", "--store", dir, t.TempDir()},
		{"serve", "--store", dir, "--listen", filepath.Join(t.TempDir(), "9p.sock")},
	} {
		out, errOut, status := cli(t, args...)
		// Said once: no "store is in use" after the same in other words.
		want := "cowfs " + args[0] + ": FAILED: store " + dir + " is in use by another process (pid " + pid + ")\n"
		if status != 1 || errOut != want || out != "" {
			t.Errorf("cowfs %q while the store is held: status %d\nstdout: %q\nstderr: %q\nwant stderr %q", args, status, out, errOut, want)
		}
	}
	// The same for the default store.
	_, errOut, status := cliEnv(t, []string{"COWFS_STORE=" + dir}, "fsck")
	if status != 1 || !strings.Contains(errOut, "is in use by another process (pid "+pid+")") {
		t.Errorf("fsck on the held default store: status %d, stderr %q", status, errOut)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, errOut, status := cli(t, "fsck", "--store", dir); status != 0 {
		t.Fatalf("fsck once the store is free: status %d, stderr %q", status, errOut)
	}
}
