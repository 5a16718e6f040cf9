package cowfs

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cowfs/cowfs/internal/logtest"
	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/local"
	"github.com/cowfs/cowfs/store/mem"
)

// faultStore is a store that fails Commit while failCommits is set (changing
// nothing), counting the commits it failed, and fails Get of badBlob.
type faultStore struct {
	store.Store
	failCommits atomic.Bool
	failed      atomic.Int64
	badBlob     store.ID // set before Open; zero: none
}

var errInjected = errors.New("injected store failure")

func (s *faultStore) Commit(ctx context.Context, b store.Batch) error {
	if s.failCommits.Load() {
		s.failed.Add(1)
		return errInjected
	}
	return s.Store.Commit(ctx, b)
}

func (s *faultStore) Get(ctx context.Context, id store.ID) ([]byte, error) {
	if !s.badBlob.IsZero() && id == s.badBlob {
		return nil, errInjected
	}
	return s.Store.Get(ctx, id)
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: not %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// errAttr returns a record's "err" attribute as an error.
func errAttr(t *testing.T, r logtest.Record) error {
	t.Helper()
	err, ok := r.Attrs["err"].(error)
	if !ok {
		t.Fatalf("record %v: no err attribute holding an error", r)
	}
	return err
}

// TestLogBackgroundCommitFailure: a background commit that keeps failing is
// logged once, at Error, when it starts failing, and once at Info when a
// commit succeeds again; the failure is still returned by the next Commit,
// which logs nothing. A later run of failures is logged again.
func TestLogBackgroundCommitFailure(t *testing.T) {
	var rec logtest.Recorder
	st := &faultStore{Store: mem.New()}
	f, err := Open(st, &Options{CommitInterval: 2 * time.Millisecond, Logger: rec.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.CreateVolume("main")
	if err != nil {
		t.Fatal(err)
	}

	st.failCommits.Store(true)
	if err := v.WriteFile("x", []byte("not durable yet"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "5 failed background commits", func() bool { return st.failed.Load() >= 5 })
	recs := rec.Records(slog.LevelDebug)
	if len(recs) != 1 {
		t.Fatalf("after %d failed background commits, %d records, want 1: %v", st.failed.Load(), len(recs), recs)
	}
	if r := recs[0]; r.Level != slog.LevelError || r.Attrs["op"] != "background commit" || !errors.Is(errAttr(t, r), errInjected) {
		t.Errorf("record %v: want an Error of op background commit wrapping the store's error", r)
	}

	st.failCommits.Store(false)
	recs = rec.Wait(t, slog.LevelDebug, 2)
	if r := recs[1]; r.Level != slog.LevelInfo || r.Attrs["op"] != "background commit" || r.Attrs["failed_commits"].(int64) < 5 {
		t.Errorf("record %v: want an Info that background commits succeed again, after 5 or more failures", r)
	}
	if err := f.Commit(); !errors.Is(err, errInjected) {
		t.Errorf("Commit after the background failures: %v, want the kept failure", err)
	}
	got, err := v.ReadFile("x")
	if err != nil || string(got) != "not durable yet" {
		t.Errorf("x after recovery: %q, %v", got, err)
	}

	// A second run of failures is a new incident: logged again, once.
	failedBefore := st.failed.Load()
	st.failCommits.Store(true)
	if err := v.WriteFile("y", []byte("again"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "5 more failed background commits", func() bool { return st.failed.Load() >= failedBefore+5 })
	st.failCommits.Store(false)
	recs = rec.Wait(t, slog.LevelDebug, 4)
	if recs[2].Level != slog.LevelError || recs[3].Level != slog.LevelInfo {
		t.Errorf("second run of failures logged %v, want an Error then an Info", recs[2:])
	}
	if err := f.Close(); !errors.Is(err, errInjected) {
		t.Errorf("Close: %v, want the kept failure of the second run", err)
	}
	if recs := rec.Records(slog.LevelDebug); len(recs) != 4 {
		t.Errorf("%d records in all, want 4 (Commit and Close report their errors, they do not log them): %v", len(recs), recs)
	}
}

// TestLogZombieListUnreadable: an FS whose list of blobs waiting for
// deletion cannot be read still opens (the error has no caller to go to),
// and says so once, at Error, naming the blob.
func TestLogZombieListUnreadable(t *testing.T) {
	mst := keepOpen{mem.New()}
	f, err := Open(mst, &Options{ReleaseBudget: 2})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := f.CreateVolume("main")
	for i := range 20 {
		if err := v.WriteFile("f"+strconv.Itoa(i), randBytes(uint64(i), 20000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := v.Remove("f" + strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if f.Zombies() == 0 {
		t.Fatal("no blobs wait for deletion: the test needs a zombie list")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	zq, err := mst.GetRoot(context.Background(), zombieRoot)
	if err != nil {
		t.Fatal(err)
	}

	var rec logtest.Recorder
	st := &faultStore{Store: mst, badBlob: zq}
	f, err = Open(st, &Options{Logger: rec.Logger()})
	if err != nil {
		t.Fatalf("Open with an unreadable zombie list: %v", err)
	}
	recs := rec.Records(slog.LevelDebug)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1: %v", len(recs), recs)
	}
	if r := recs[0]; r.Level != slog.LevelError || r.Attrs["blob"] != zq.String() || !errors.Is(errAttr(t, r), errInjected) {
		t.Errorf("record %v: want an Error naming blob %s and wrapping the store's error", r, zq)
	}
	if err := f.Commit(); err != nil {
		t.Errorf("Commit: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if recs := rec.Records(slog.LevelDebug); len(recs) != 1 {
		t.Errorf("%d records after Commit and Close, want still 1: %v", len(recs), recs)
	}
}

// TestLogQuietNormalRun: ordinary work on the local store, with background
// commits and compaction running, logs nothing at the default level (Info)
// from the FS or the store; neither does an error returned to a caller.
func TestLogQuietNormalRun(t *testing.T) {
	var rec logtest.Recorder
	dir := t.TempDir()
	st, err := local.Open(dir, &local.Options{SegmentSize: 256 << 10, Logger: rec.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(st, &Options{CommitInterval: 2 * time.Millisecond, ReleaseBudget: 50, Logger: rec.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.CreateVolume("main")
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(1, 1<<20)
	for i := range 8 {
		if err := v.WriteFile("f"+strconv.Itoa(i), data[i<<16:], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := v.Clone("f0", "clone"); err != nil {
		t.Fatal(err)
	}
	src, _ := v.Open("f1")
	dst, _ := v.OpenFile("copy", os.O_RDWR|os.O_CREATE, 0o644)
	if _, err := CopyRange(src, 100, dst, 0, 300<<10); err != nil {
		t.Fatal(err)
	}
	view, err := src.ReadDeferred(0, 4096)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	dst.Close()
	if err := v.Snapshot("s1"); err != nil {
		t.Fatal(err)
	}
	if err := f.CloneVolume("main", "other"); err != nil {
		t.Fatal(err)
	}
	if got, err := v.ReadFile("clone"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("clone: %d bytes, %v", len(got), err)
	}
	// Errors returned to the caller are the caller's to report.
	if _, err := v.ReadFile("missing"); err == nil {
		t.Fatal("ReadFile of a missing file succeeded")
	}
	if _, err := f.CreateVolume("main"); err == nil {
		t.Fatal("CreateVolume of an existing volume succeeded")
	}
	view.Release()
	for i := range 8 {
		if err := v.Remove("f" + strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.DeleteSnapshot("s1"); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteVolume("other"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // background commits meanwhile
	if _, err := f.GC(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, f)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if recs := rec.Records(slog.LevelInfo); len(recs) != 0 {
		t.Errorf("a normal run logged %d records: %v", len(recs), recs)
	}
}
