package local

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/storetest"
	bolt "go.etcd.io/bbolt"
)

// childEnv makes the test binary act as a child process of a test (see
// TestMain) instead of running tests.
const childEnv = "COWFS_LOCAL_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "lock":
		lockChild()
	case "crash":
		crashChild()
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
}

// child returns a command that re-executes this test binary as a child of
// the given kind, with extra environment variables.
func child(kind string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+kind), env...)
	return cmd
}

func openStore(t testing.TB, dir string, opt *Options) *Store {
	t.Helper()
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func closeStore(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// randBytes returns n bytes from rng.
func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], rng.Uint64())
	binary.LittleEndian.PutUint64(seed[8:], rng.Uint64())
	rand.NewChaCha8(seed).Read(b)
	return b
}

func mustPut(t testing.TB, s *Store, b []byte) store.ID {
	t.Helper()
	id, err := s.Put(t.Context(), b)
	if err != nil || id != store.Sum(b) {
		t.Fatalf("Put(%d bytes): got %s, %v; want %s", len(b), id.Short(), err, store.Sum(b).Short())
	}
	return id
}

func mustCommit(t testing.TB, s *Store, b store.Batch) {
	t.Helper()
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// state is the committed contents of a store: what a test expects.
type state struct {
	roots map[string]store.ID
	refs  map[store.ID]int64
	data  map[store.ID][]byte
}

func newState() *state {
	return &state{roots: map[string]store.ID{}, refs: map[store.ID]int64{}, data: map[store.ID][]byte{}}
}

// diffState compares everything s holds with want: the blobs (List), their
// counts, sizes and bytes, the roots and Usage. It returns "" if they agree.
func diffState(t testing.TB, s *Store, want *state) string {
	t.Helper()
	var diffs []string
	got := map[store.ID]store.BlobInfo{}
	err := s.List(t.Context(), func(info store.BlobInfo) error {
		if _, dup := got[info.ID]; dup {
			return fmt.Errorf("blob %s listed twice", info.ID.Short())
		}
		got[info.ID] = info
		return nil
	})
	if err != nil {
		return fmt.Sprintf("List: %v", err)
	}
	var bytes int64
	for id, n := range want.refs {
		bytes += int64(len(want.data[id]))
		info, ok := got[id]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("blob %s (count %d) missing", id.Short(), n))
			continue
		}
		if info.Refs != n || info.Size != int64(len(want.data[id])) {
			diffs = append(diffs, fmt.Sprintf("blob %s: count %d size %d, want count %d size %d", id.Short(), info.Refs, info.Size, n, len(want.data[id])))
		}
		b, err := s.Get(t.Context(), id)
		if err != nil || !slices.Equal(b, want.data[id]) {
			diffs = append(diffs, fmt.Sprintf("Get(%s): %d bytes, %v; want the %d bytes put", id.Short(), len(b), err, len(want.data[id])))
		}
	}
	for id, info := range got {
		if _, ok := want.refs[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected blob %s (count %d)", id.Short(), info.Refs))
		}
	}
	roots, err := s.ListRoots(t.Context())
	if err != nil {
		return fmt.Sprintf("ListRoots: %v", err)
	}
	gotRoots := map[string]store.ID{}
	for _, r := range roots {
		gotRoots[r.Name] = r.ID
	}
	for name, id := range want.roots {
		if gotRoots[name] != id {
			diffs = append(diffs, fmt.Sprintf("root %q is %s, want %s", name, gotRoots[name].Short(), id.Short()))
		}
	}
	for name, id := range gotRoots {
		if _, ok := want.roots[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected root %q -> %s", name, id.Short()))
		}
	}
	u, err := s.Usage(t.Context())
	if want := (store.Usage{Blobs: int64(len(want.refs)), Bytes: bytes}); err != nil || u != want {
		diffs = append(diffs, fmt.Sprintf("Usage: %+v, %v; want %+v", u, err, want))
	}
	if len(diffs) > 10 {
		diffs = append(diffs[:10], fmt.Sprintf("... and %d more", len(diffs)-10))
	}
	return strings.Join(diffs, "\n")
}

// verifyClean runs Verify and bbolt's own checker and fails on any finding.
func verifyClean(t testing.TB, s *Store) {
	t.Helper()
	err := s.Verify(t.Context(), func(id store.ID, err error) {
		if err != nil {
			t.Errorf("Verify: blob %s: %v", id.Short(), err)
		}
	})
	if err != nil {
		t.Errorf("Verify: %v", err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("bbolt check: %v", err)
	}
}

// verifyFailures runs Verify and returns the blobs it reported, with errors.
func verifyFailures(t testing.TB, s *Store) map[store.ID]error {
	t.Helper()
	bad := map[store.ID]error{}
	err := s.Verify(t.Context(), func(id store.ID, err error) {
		if err != nil {
			bad[id] = err
		}
	})
	if err != nil {
		t.Errorf("Verify: %v", err)
	}
	return bad
}

// diskUsage is the space the files under dir take: the sum of st_blocks*512.
func diskUsage(t testing.TB, dir string, only func(path string) bool) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (only != nil && !only(path)) {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			return err
		}
		total += st.Blocks * 512
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, segDirName))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, filepath.Join(dir, segDirName, e.Name()))
	}
	return names
}

// fill puts and commits n blobs of random sizes up to max bytes, each with
// count 1, in batches, binding root "last" to the last one; it returns the
// committed state.
func fill(t testing.TB, s *Store, rng *rand.Rand, n, max int) *state {
	t.Helper()
	return fillInto(t, s, rng, newState(), n, max)
}

// fillInto is fill adding to st, the state s holds.
func fillInto(t testing.TB, s *Store, rng *rand.Rand, st *state, n, max int) *state {
	t.Helper()
	var prev store.ID
	for i := 0; i < n; {
		b := store.Batch{Refs: map[store.ID]int64{}}
		for j := 0; j < 10 && i < n; j, i = j+1, i+1 {
			data := randBytes(rng, rng.IntN(max+1))
			id := mustPut(t, s, data)
			b.Refs[id]++
			st.refs[id]++
			st.data[id] = data
			prev = id
		}
		b.Roots = []store.RootSwap{{Name: "last", Old: st.roots["last"], New: prev}}
		st.roots["last"] = prev
		mustCommit(t, s, b)
	}
	return st
}

func TestConformance(t *testing.T) {
	storetest.TestAll(t, func(t *testing.T) store.Store {
		return openStore(t, t.TempDir(), nil)
	})
}

// Small segments: every test that reads or writes much crosses segments.
func TestConformanceSmallSegments(t *testing.T) {
	storetest.TestAll(t, func(t *testing.T) store.Store {
		return openStore(t, t.TempDir(), &Options{SegmentSize: 4096})
	})
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	opt := &Options{SegmentSize: 64 << 10}
	s := openStore(t, dir, opt)
	want := fill(t, s, rng, 60, 20<<10)
	// Delete some, add references to others, add a root.
	var del []store.ID
	b := store.Batch{Refs: map[store.ID]int64{}}
	for id := range want.refs {
		if id == want.roots["last"] {
			continue
		}
		if len(del) < 20 {
			del = append(del, id)
			b.Refs[id] = -1
		} else if len(b.Refs) < 30 {
			b.Refs[id] = 2
		}
	}
	b.Delete = del
	empty := mustPut(t, s, nil)
	b.Refs[empty] = 1
	b.Roots = []store.RootSwap{{Name: "empty", New: empty}}
	mustCommit(t, s, b)
	for id, d := range b.Refs {
		want.refs[id] += d
	}
	for _, id := range del {
		delete(want.refs, id)
		delete(want.data, id)
	}
	want.refs[empty], want.data[empty], want.roots["empty"] = 1, []byte{}, empty
	// A pending blob that no batch names does not survive Close.
	pending := mustPut(t, s, []byte("never committed"))
	if d := diffState(t, s, want); !strings.Contains(d, "unexpected blob "+pending.Short()) {
		t.Errorf("before Close: want the pending blob listed besides the committed state, got diff:\n%s", d)
	}
	closeStore(t, s)

	for round := range 2 {
		s = openStore(t, dir, opt)
		if d := diffState(t, s, want); d != "" {
			t.Fatalf("reopen %d: state differs from the committed one:\n%s", round, d)
		}
		verifyClean(t, s)
		if _, err := s.Stat(t.Context(), pending); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("reopen %d: Stat of an uncommitted pending blob: want ErrNotFound, got %v", round, err)
		}
		closeStore(t, s)
	}
}

func TestInUse(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	x := mustPut(t, s, []byte("x"))
	mustCommit(t, s, store.Batch{Refs: map[store.ID]int64{x: 1}, Roots: []store.RootSwap{{Name: "r", New: x}}})

	// Another process.
	start := time.Now()
	out, err := child("lock", "COWFS_LOCAL_TEST_DIR="+dir).CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the second process took %v to fail, want at once", d)
	}
	want := fmt.Sprintf("store %s is in use by another process (pid %d)", dir, os.Getpid())
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "ErrInUse=true") {
		t.Errorf("second process opening the store: want an error wrapping ErrInUse containing %q, got:\n%s", want, out)
	}

	// This process again.
	if s2, err := Open(dir, nil); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "already open in this process") {
		if s2 != nil {
			s2.Close()
		}
		t.Errorf("second Open in the same process: want ErrInUse (already open in this process), got %v", err)
	}
	// The refused opens changed nothing.
	checkRoot(t, s, "r", x)
	closeStore(t, s)

	// Once closed, another process can open it.
	out, err = child("lock", "COWFS_LOCAL_TEST_DIR="+dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "opened") {
		t.Errorf("child opening the store after Close: want it opened, got %v:\n%s", err, out)
	}
}

func checkRoot(t testing.TB, s *Store, name string, want store.ID) {
	t.Helper()
	if got, err := s.GetRoot(t.Context(), name); err != nil || got != want {
		t.Errorf("GetRoot(%q): got %s, %v; want %s", name, got.Short(), err, want.Short())
	}
}

// lockChild tries to open the store in COWFS_LOCAL_TEST_DIR and says how it went.
func lockChild() {
	s, err := Open(os.Getenv("COWFS_LOCAL_TEST_DIR"), nil)
	if err != nil {
		fmt.Printf("error: %v\nErrInUse=%v\n", err, errors.Is(err, ErrInUse))
		os.Exit(0)
	}
	id, err := s.GetRoot(context.Background(), "r")
	fmt.Printf("opened; root r = %s, %v\n", id.Short(), err)
	if err := s.Close(); err != nil {
		fmt.Printf("close: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func TestOpenRefuses(t *testing.T) {
	t.Run("ForeignDirectory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, nil)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "not a cowfs store") {
			t.Errorf("Open of a directory holding another file: want ErrFormat (not a cowfs store), got %v", err)
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			t.Errorf("a refused Open changed the directory: it now holds %d entries", len(ents))
		}
	})

	t.Run("NewerVersion", func(t *testing.T) {
		dir := t.TempDir()
		closeStore(t, openStore(t, dir, nil))
		setMeta(t, dir, keyVersion, binary.BigEndian.AppendUint32(nil, formatVersion+1))
		_, err := Open(dir, nil)
		want := fmt.Sprintf("format version %d, newer than this cowfs reads", formatVersion+1)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), want) {
			t.Errorf("Open of a newer store: want ErrFormat containing %q, got %v", want, err)
		}
	})

	t.Run("UnknownVersion", func(t *testing.T) {
		dir := t.TempDir()
		closeStore(t, openStore(t, dir, nil))
		setMeta(t, dir, keyVersion, binary.BigEndian.AppendUint32(nil, 0))
		_, err := Open(dir, nil)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "format version 0") {
			t.Errorf("Open of a version-0 store: want ErrFormat naming version 0, got %v", err)
		}
	})

	t.Run("OtherBoltFile", func(t *testing.T) {
		dir := t.TempDir()
		closeStore(t, openStore(t, dir, nil))
		setMeta(t, dir, keyFormat, []byte("something else"))
		if _, err := Open(dir, nil); !errors.Is(err, ErrFormat) {
			t.Errorf("Open of an index of another format: want ErrFormat, got %v", err)
		}
	})

	t.Run("LostIndex", func(t *testing.T) {
		dir := t.TempDir()
		s := openStore(t, dir, nil)
		x := mustPut(t, s, []byte("x"))
		mustCommit(t, s, store.Batch{Refs: map[store.ID]int64{x: 1}})
		closeStore(t, s)
		if err := os.Remove(filepath.Join(dir, indexName)); err != nil {
			t.Fatal(err)
		}
		before := segmentFiles(t, dir)
		_, err := Open(dir, nil)
		if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "index is lost") {
			t.Errorf("Open of a store without index.db: want ErrCorrupt (index is lost), got %v", err)
		}
		if after := segmentFiles(t, dir); !slices.Equal(before, after) {
			t.Errorf("a refused Open touched the segments: %v, then %v", before, after)
		}
	})

	t.Run("EmptyIndex", func(t *testing.T) {
		dir := t.TempDir()
		s := openStore(t, dir, nil)
		x := mustPut(t, s, []byte("x"))
		mustCommit(t, s, store.Batch{Refs: map[store.ID]int64{x: 1}})
		closeStore(t, s)
		if err := os.Truncate(filepath.Join(dir, indexName), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, nil); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("Open with an empty index.db: want ErrCorrupt, got %v", err)
		}
		if fi, err := os.Stat(filepath.Join(dir, indexName)); err != nil || fi.Size() != 0 {
			t.Errorf("a refused Open rewrote index.db (%v)", err)
		}
	})
}

// setMeta overwrites a key of the meta bucket of the closed store in dir.
func setMeta(t *testing.T, dir string, key, value []byte) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, indexName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(key, value) }); err != nil {
		t.Fatal(err)
	}
}

// --- Crash test ---

// The crash test runs a child that commits a deterministic sequence of
// batches, generated from a seed and the current state, so the parent can
// compute every state S_k the child goes through. The child prints
// "committed k" after the Commit that made S_k durable returns; the parent
// kills it at a random moment and checks that the store holds exactly S_k or
// S_k+1 (the Commit in flight at the kill may or may not have landed).

// crashModel is a crash-test state: roots bound to node blobs, each node
// naming data blobs; counts are references from roots and nodes.
type crashModel struct {
	*state
	children map[store.ID][]store.ID // of node blobs
}

func newCrashModel() *crashModel {
	return &crashModel{state: newState(), children: map[store.ID][]store.ID{}}
}

func (m *crashModel) clone() *crashModel {
	c := newCrashModel()
	for k, v := range m.roots {
		c.roots[k] = v
	}
	for k, v := range m.refs {
		c.refs[k] = v
	}
	for k, v := range m.data {
		c.data[k] = v
	}
	for k, v := range m.children {
		c.children[k] = v
	}
	return c
}

// crashStep is one step of the crash test.
type crashStep struct {
	puts    [][]byte    // blobs the batch names
	garbage [][]byte    // blobs put and named by nothing
	bad     store.Batch // a batch that must fail with ErrConflict, if it has roots
	batch   store.Batch
	next    *crashModel
}

func nodeBlob(j int, kids []store.ID) []byte {
	b := fmt.Appendf(nil, "node %d\n", j)
	for _, k := range kids {
		b = append(b, k[:]...)
	}
	return b
}

// genStep returns step j from state m; it depends only on m, seed and j.
func genStep(m *crashModel, seed uint64, j int) crashStep {
	rng := rand.New(rand.NewPCG(seed, uint64(j)))
	next := m.clone()
	var st crashStep
	var existing []store.ID // live data blobs
	for id := range m.refs {
		if _, node := m.children[id]; !node {
			existing = append(existing, id)
		}
	}
	slices.SortFunc(existing, compareIDs)
	size := func() int {
		if rng.IntN(3) == 0 {
			return rng.IntN(300)
		}
		return rng.IntN(48 << 10)
	}
	name := fmt.Sprintf("r%d", rng.IntN(4))
	old := m.roots[name]
	deltas := map[store.ID]int64{}
	var newRoot store.ID
	if old.IsZero() || rng.IntN(8) != 0 {
		var kids []store.ID
		seen := map[store.ID]bool{}
		for range rng.IntN(5) {
			var b []byte
			if len(existing) > 0 && rng.IntN(5) == 0 {
				b = m.data[existing[rng.IntN(len(existing))]]
			} else {
				b = randBytes(rng, size())
			}
			id := store.Sum(b)
			st.puts = append(st.puts, b)
			next.data[id] = b
			if !seen[id] {
				seen[id] = true
				kids = append(kids, id)
			}
		}
		for range rng.IntN(3) {
			if len(existing) > 0 {
				if id := existing[rng.IntN(len(existing))]; !seen[id] {
					seen[id] = true
					kids = append(kids, id)
				}
			}
		}
		node := nodeBlob(j, kids)
		newRoot = store.Sum(node)
		st.puts = append(st.puts, node)
		next.data[newRoot] = node
		next.children[newRoot] = kids
		deltas[newRoot]++
		for _, k := range kids {
			deltas[k]++
		}
	}
	if !old.IsZero() {
		// A node is referenced by its root only: it goes, and so does its
		// reference to each child.
		deltas[old]--
		for _, k := range m.children[old] {
			deltas[k]--
		}
	}
	st.batch = store.Batch{Refs: deltas, Roots: []store.RootSwap{{Name: name, Old: old, New: newRoot}}}
	for id, d := range deltas {
		if n := m.refs[id] + d; n == 0 {
			st.batch.Delete = append(st.batch.Delete, id)
			delete(next.refs, id)
			delete(next.data, id)
			delete(next.children, id)
		} else {
			next.refs[id] = n
		}
	}
	slices.SortFunc(st.batch.Delete, compareIDs)
	if newRoot.IsZero() {
		delete(next.roots, name)
	} else {
		next.roots[name] = newRoot
	}
	if rng.IntN(3) == 0 {
		st.garbage = append(st.garbage, randBytes(rng, size()))
	}
	if rng.IntN(10) == 0 {
		st.bad = st.batch
		st.bad.Roots = []store.RootSwap{{Name: name, Old: store.Sum([]byte("wrong")), New: newRoot}}
	}
	st.next = next
	return st
}

// crashModelOf reads the crash-test state back from a store.
func crashModelOf(s *Store) (*crashModel, error) {
	m := newCrashModel()
	roots, err := s.ListRoots(context.Background())
	if err != nil {
		return nil, err
	}
	for _, r := range roots {
		m.roots[r.Name] = r.ID
	}
	err = s.List(context.Background(), func(info store.BlobInfo) error {
		m.refs[info.ID] = info.Refs
		return nil
	})
	if err != nil {
		return nil, err
	}
	for id := range m.refs {
		if m.data[id], err = s.Get(context.Background(), id); err != nil {
			return nil, err
		}
	}
	for _, id := range m.roots {
		b := m.data[id]
		i := bytes.IndexByte(b, '\n')
		if i < 0 || (len(b)-i-1)%store.IDSize != 0 {
			return nil, fmt.Errorf("root blob %s is not a node", id.Short())
		}
		kids := []store.ID{}
		for k := b[i+1:]; len(k) > 0; k = k[store.IDSize:] {
			kids = append(kids, store.ID(k[:store.IDSize]))
		}
		m.children[id] = kids
	}
	return m, nil
}

const crashSegmentSize = 256 << 10

// crashChild commits crash-test steps until it is killed.
func crashChild() {
	fail := func(format string, args ...any) {
		fmt.Printf("error: "+format+"\n", args...)
		os.Exit(1)
	}
	seed, _ := strconv.ParseUint(os.Getenv("COWFS_LOCAL_TEST_SEED"), 10, 64)
	j, _ := strconv.Atoi(os.Getenv("COWFS_LOCAL_TEST_STEP"))
	s, err := Open(os.Getenv("COWFS_LOCAL_TEST_DIR"), &Options{SegmentSize: crashSegmentSize})
	if err != nil {
		fail("open: %v", err)
	}
	m, err := crashModelOf(s)
	if err != nil {
		fail("read state: %v", err)
	}
	ctx := context.Background()
	fmt.Println("ready")
	for ; ; j++ {
		st := genStep(m, seed, j)
		for _, b := range append(st.puts, st.garbage...) {
			if id, err := s.Put(ctx, b); err != nil || id != store.Sum(b) {
				fail("put: %v", err)
			}
		}
		if len(st.bad.Roots) > 0 {
			if err := s.Commit(ctx, st.bad); !errors.Is(err, store.ErrConflict) {
				fail("commit of a conflicting batch: want ErrConflict, got %v", err)
			}
		}
		if err := s.Commit(ctx, st.batch); err != nil {
			fail("commit %d: %v", j+1, err)
		}
		fmt.Printf("committed %d\n", j+1)
		m = st.next
		if j%7 == 0 {
			for id, want := range m.data {
				if got, err := s.Get(ctx, id); err != nil || !bytes.Equal(got, want) {
					fail("get %s after commit %d: %v", id.Short(), j+1, err)
				}
				break
			}
		}
		if j%50 == 49 {
			if err := s.Compact(); err != nil {
				fail("compact: %v", err)
			}
		}
	}
}

func TestCrash(t *testing.T) {
	kills := 20
	if v := os.Getenv("COWFS_CRASH_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("COWFS_CRASH_KILLS=%q: want a positive number", v)
		}
		kills = n
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()

	m := newCrashModel() // the state the store holds: S_step
	step := 0
	states, maxStep := 0, 0
	var startup time.Duration // how long the last child took to be ready
	for kill := range kills {
		cmd := child("crash",
			"COWFS_LOCAL_TEST_DIR="+dir,
			"COWFS_LOCAL_TEST_SEED="+strconv.FormatUint(seed, 10),
			"COWFS_LOCAL_TEST_STEP="+strconv.Itoa(step))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		committed, exited := step, false
		var errLines []string
		read := func(line string) {
			if n, ok := strings.CutPrefix(line, "committed "); ok {
				committed, _ = strconv.Atoi(n)
			} else if line != "ready" {
				errLines = append(errLines, line)
			}
		}
		// Mostly: wait for the child to be running, then kill it at a random
		// moment. Sometimes: kill it while it starts, inside Open's recovery
		// (which deletes and truncates files) if the moment is right.
		var delay time.Duration
		if rng.IntN(5) == 0 && startup > 0 {
			delay = time.Duration(rng.Int64N(int64(startup)))
		} else {
			if line, ok := <-lines; !ok || line != "ready" {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("kill %d: child did not start: %q\n%s", kill, line, stderr.String())
			}
			startup = time.Since(started)
			delay = time.Duration(rng.IntN(250)) * time.Millisecond
		}
		deadline := time.After(delay)
	wait:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					exited = true
					break wait
				}
				read(line)
			case <-deadline:
				break wait
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		for line := range lines {
			read(line)
		}
		_ = cmd.Wait()
		if exited || len(errLines) > 0 {
			t.Fatalf("kill %d: child stopped by itself: %s\n%s", kill, strings.Join(errLines, "\n"), stderr.String())
		}

		// The store holds S_committed or S_committed+1.
		for step < committed {
			m = genStep(m, seed, step).next
			step++
		}
		s := openStore(t, dir, &Options{SegmentSize: crashSegmentSize})
		d := diffState(t, s, m.state)
		if d != "" {
			ahead := genStep(m, seed, step).next
			if d2 := diffState(t, s, ahead.state); d2 != "" {
				t.Fatalf("kill %d: after commit %d the store holds neither S_%d:\n%s\nnor S_%d:\n%s", kill, committed, step, d, step+1, d2)
			}
			m = ahead
			step++
		}
		verifyClean(t, s)
		closeStore(t, s)
		states += step - maxStep
		maxStep = step
	}
	t.Logf("%d kills, %d commits checked, ending at state %d", kills, states, step)
	if step < kills {
		t.Errorf("only %d commits in %d runs: the child is not getting to commit", step, kills)
	}
}

// --- Torn files ---

// buildTornFixture makes a committed store with several segments, deleted
// blobs and roots, closes it, and returns its committed state.
func buildTornFixture(t *testing.T, dir string, rng *rand.Rand) *state {
	s := openStore(t, dir, &Options{SegmentSize: 64 << 10, NoAutoCompact: true})
	want := fill(t, s, rng, 80, 12<<10)
	var del []store.ID
	refs := map[store.ID]int64{}
	for id := range want.refs {
		if id != want.roots["last"] && len(del) < 15 {
			del = append(del, id)
			refs[id] = -1
		}
	}
	mustCommit(t, s, store.Batch{Refs: refs, Delete: del})
	for _, id := range del {
		delete(want.refs, id)
		delete(want.data, id)
	}
	closeStore(t, s)
	return want
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// blobExtents returns where each indexed blob of the closed store in dir is.
func blobExtents(t *testing.T, dir string) map[store.ID]blobRec {
	t.Helper()
	s := openStore(t, dir, &Options{NoAutoCompact: true})
	defer closeStore(t, s)
	recs := map[store.ID]blobRec{}
	if err := s.eachIndexed(t.Context(), func(info store.BlobInfo, r blobRec) error {
		recs[info.ID] = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestTornSegment(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	fixture := t.TempDir()
	want := buildTornFixture(t, fixture, rng)
	recs := blobExtents(t, fixture)
	segs := segmentFiles(t, fixture)
	if len(segs) < 3 {
		t.Fatalf("fixture has %d segments, want several", len(segs))
	}
	for trial := range 30 {
		dir := t.TempDir()
		copyDir(t, fixture, dir)
		victim := segs[rng.IntN(len(segs))]
		path := filepath.Join(dir, segDirName, filepath.Base(victim))
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		cut := rng.Int64N(fi.Size() + 1)
		if err := os.Truncate(path, cut); err != nil {
			t.Fatal(err)
		}
		num, _ := parseSegName(filepath.Base(victim))
		s, err := Open(dir, nil)
		if err != nil {
			t.Errorf("trial %d: segment %d cut to %d bytes: Open: %v (want it to open: the index is intact)", trial, num, cut, err)
			continue
		}
		// Blobs in the cut-off part fail with ErrCorrupt; all others read.
		lost := map[store.ID]bool{}
		for id, r := range recs {
			if r.seg == num && r.off+r.size > cut && r.size > 0 {
				lost[id] = true
			}
		}
		checkReads(t, fmt.Sprintf("trial %d (segment %d cut to %d)", trial, num, cut), s, want, lost)
		// The counts and roots are all there, and the store takes new commits.
		usable(t, s, want)
		closeStore(t, s)
	}
}

// checkReads checks that exactly the blobs in lost fail to read, with
// ErrCorrupt naming the blob, in Get and Verify; the others read
// back what was put; the counts and roots are those of want.
func checkReads(t *testing.T, what string, s *Store, want *state, lost map[store.ID]bool) {
	t.Helper()
	for id, data := range want.data {
		got, err := s.Get(t.Context(), id)
		if lost[id] {
			if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), id.String()) || !strings.Contains(err.Error(), segDirName+"/") {
				t.Errorf("%s: Get(%s) of a damaged blob: want ErrCorrupt naming the blob and its segment file, got %d bytes, %v", what, id.Short(), len(got), err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: Get(%s) of an intact blob: got %d bytes, %v; want the %d bytes put", what, id.Short(), len(got), err, len(data))
		}
		if info, err := s.Stat(t.Context(), id); err != nil || info.Refs != want.refs[id] {
			t.Errorf("%s: Stat(%s): %+v, %v; want count %d", what, id.Short(), info, err, want.refs[id])
		}
	}
	bad := verifyFailures(t, s)
	for id, err := range bad {
		if !lost[id] {
			t.Errorf("%s: Verify reported intact blob %s: %v", what, id.Short(), err)
		} else if !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("%s: Verify reported blob %s with %v, want ErrCorrupt", what, id.Short(), err)
		}
	}
	for id := range lost {
		if bad[id] == nil {
			t.Errorf("%s: Verify did not report damaged blob %s", what, id.Short())
		}
	}
	for name, id := range want.roots {
		checkRoot(t, s, name, id)
	}
}

// usable checks that s takes a new commit after recovery.
func usable(t *testing.T, s *Store, want *state) {
	t.Helper()
	x := mustPut(t, s, []byte(fmt.Sprintf("after recovery %d", rand.Int())))
	mustCommit(t, s, store.Batch{Refs: map[store.ID]int64{x: 1}, Roots: []store.RootSwap{{Name: "new", Old: want.roots["new"], New: x}}})
	if got, err := s.Get(t.Context(), x); err != nil || store.Sum(got) != x {
		t.Errorf("Get of a blob committed after recovery: %v", err)
	}
	if err := s.Verify(t.Context(), func(store.ID, error) {}); err != nil {
		t.Errorf("Verify after recovery: %v", err)
	}
}

func TestTornIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	fixture := t.TempDir()
	want := buildTornFixture(t, fixture, rng)
	fi, err := os.Stat(filepath.Join(fixture, indexName))
	if err != nil {
		t.Fatal(err)
	}
	size, page := fi.Size(), int64(os.Getpagesize())
	cuts := []int64{0, 1, page - 1, page, page + 1, 2 * page, 3 * page, size - 1, size}
	for range 25 {
		cuts = append(cuts, rng.Int64N(size+1), rng.Int64N(size/page+1)*page)
	}
	opened := 0
	for _, cut := range cuts {
		dir := t.TempDir()
		copyDir(t, fixture, dir)
		if err := os.Truncate(filepath.Join(dir, indexName), cut); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, nil)
		if err != nil {
			if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), indexName) {
				t.Errorf("index.db cut to %d of %d bytes: Open: want ErrCorrupt naming index.db, got %v", cut, size, err)
			}
			continue
		}
		opened++
		// It opened: then it is the committed state, whole.
		if d := diffState(t, s, want); d != "" {
			t.Errorf("index.db cut to %d of %d bytes opened, but the state differs:\n%s", cut, size, d)
		}
		verifyClean(t, s)
		usable(t, s, want)
		closeStore(t, s)
	}
	t.Logf("index.db of %d bytes (page %d): %d of %d cuts opened, the rest refused", size, page, opened, len(cuts))
}

// --- Damaged index entries ---

// Malformed index entries (as a bug or a bad disk could leave them) give
// errors wrapping ErrCorrupt, at Open or in the calls that meet them, and
// never a panic or a huge allocation.
func TestCorruptIndexEntries(t *testing.T) {
	type ids struct{ x, y store.ID }
	cases := []struct {
		name   string
		mutate func(tx *bolt.Tx, v ids) error
		check  func(t *testing.T, s *Store, v ids)
	}{
		{"HugeSize", func(tx *bolt.Tx, v ids) error {
			r, _ := decodeBlobRec(v.x[:], tx.Bucket(bucketBlobs).Get(v.x[:]))
			r.size = 1 << 62
			return tx.Bucket(bucketBlobs).Put(v.x[:], r.encode())
		}, func(t *testing.T, s *Store, v ids) {
			wantCorrupt(t, "Get", get(s, v.x))
		}},
		{"ShortEntry", func(tx *bolt.Tx, v ids) error {
			return tx.Bucket(bucketBlobs).Put(v.x[:], []byte{1, 2, 3})
		}, func(t *testing.T, s *Store, v ids) {
			wantCorrupt(t, "Get", get(s, v.x))
			_, err := s.Stat(t.Context(), v.x)
			wantCorrupt(t, "Stat", err)
			wantCorrupt(t, "List", s.List(t.Context(), func(store.BlobInfo) error { return nil }))
			wantCorrupt(t, "Commit", s.Commit(t.Context(), store.Batch{Refs: map[store.ID]int64{v.x: 1}}))
			wantCorrupt(t, "Put", func() error { _, err := s.Put(t.Context(), []byte("blob x")); return err }())
		}},
		{"UnknownSegment", func(tx *bolt.Tx, v ids) error {
			r, _ := decodeBlobRec(v.x[:], tx.Bucket(bucketBlobs).Get(v.x[:]))
			r.seg = 999
			return tx.Bucket(bucketBlobs).Put(v.x[:], r.encode())
		}, func(t *testing.T, s *Store, v ids) {
			wantCorrupt(t, "Get", get(s, v.x))
		}},
		{"PastSegmentEnd", func(tx *bolt.Tx, v ids) error {
			r, _ := decodeBlobRec(v.x[:], tx.Bucket(bucketBlobs).Get(v.x[:]))
			r.off += 1 << 20
			return tx.Bucket(bucketBlobs).Put(v.x[:], r.encode())
		}, func(t *testing.T, s *Store, v ids) {
			wantCorrupt(t, "Get", get(s, v.x))
		}},
		{"BadRoot", func(tx *bolt.Tx, v ids) error {
			return tx.Bucket(bucketRoots).Put([]byte("r"), []byte{1, 2, 3, 4, 5})
		}, func(t *testing.T, s *Store, v ids) {
			_, err := s.GetRoot(t.Context(), "r")
			wantCorrupt(t, "GetRoot", err)
			_, err = s.ListRoots(t.Context())
			wantCorrupt(t, "ListRoots", err)
			wantCorrupt(t, "Commit", s.Commit(t.Context(), store.Batch{Roots: []store.RootSwap{{Name: "r", Old: v.x, New: v.y}}}))
		}},
		{"BadCounter", func(tx *bolt.Tx, v ids) error {
			return tx.Bucket(bucketMeta).Put(keyBlobs, []byte("abc"))
		}, func(t *testing.T, s *Store, v ids) {
			_, err := s.Usage(t.Context())
			wantCorrupt(t, "Usage", err)
			wantCorrupt(t, "Commit", s.Commit(t.Context(), store.Batch{Refs: map[store.ID]int64{v.y: 1}}))
		}},
		{"BadSegmentEntry", func(tx *bolt.Tx, v ids) error {
			return tx.Bucket(bucketSegments).Put(segKey(1), []byte{1})
		}, nil},
		{"MissingBucket", func(tx *bolt.Tx, v ids) error {
			return tx.DeleteBucket(bucketExtents)
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, &Options{NoAutoCompact: true})
			v := ids{mustPut(t, s, []byte("blob x")), mustPut(t, s, []byte("blob y"))}
			mustCommit(t, s, store.Batch{Refs: map[store.ID]int64{v.x: 1, v.y: 1}, Roots: []store.RootSwap{{Name: "r", New: v.x}}})
			closeStore(t, s)
			db, err := bolt.Open(filepath.Join(dir, indexName), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error { return c.mutate(tx, v) }); err != nil {
				t.Fatal(err)
			}
			db.Close()
			s, err = Open(dir, &Options{NoAutoCompact: true})
			if c.check == nil {
				wantCorrupt(t, "Open", err)
				if s != nil {
					s.Close()
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			c.check(t, s, v)
			err = s.Verify(t.Context(), func(store.ID, error) {})
			wantCorrupt(t, "Verify (index invariants)", err)
			_ = s.Compact() // must not panic
		})
	}
}

func get(s *Store, id store.ID) error {
	_, err := s.Get(context.Background(), id)
	return err
}

func wantCorrupt(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("%s with a damaged index entry: want an error wrapping ErrCorrupt, got %v", what, err)
	}
}

// --- Bit flips ---

func TestBitFlips(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	dir := t.TempDir()
	want := buildTornFixture(t, dir, rng)
	recs := blobExtents(t, dir)
	segs := segmentFiles(t, dir)
	lost := map[store.ID]bool{} // damaged so far
	for round := range 5 {
		// Flip a few random bytes (some in record headers or garbage, which
		// no blob's hash covers) and note which blobs they hit.
		for range 1 + rng.IntN(6) {
			path := segs[rng.IntN(len(segs))]
			num, _ := parseSegName(filepath.Base(path))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) == 0 {
				continue
			}
			pos := rng.Int64N(int64(len(b)))
			b[pos] ^= byte(1 + rng.IntN(255))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			for id, r := range recs {
				if r.seg == num && pos >= r.off && pos < r.off+r.size {
					lost[id] = true
				}
			}
		}
		s := openStore(t, dir, &Options{NoAutoCompact: true})
		checkReads(t, fmt.Sprintf("round %d", round), s, want, lost)
		closeStore(t, s)
	}
	if len(lost) == 0 || len(lost) == len(want.data) {
		t.Errorf("%d of %d blobs damaged: want some damaged and some intact", len(lost), len(want.data))
	}
}

// --- Space ---

func TestSpaceReclaimed(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	dir := t.TempDir()
	s := openStore(t, dir, &Options{SegmentSize: 1 << 20, NoAutoCompact: true})
	want := fill(t, s, rng, 300, 32<<10)
	isSeg := func(path string) bool {
		return strings.Contains(path, string(filepath.Separator)+segDirName+string(filepath.Separator))
	}
	full, fullSegs := diskUsage(t, dir, nil), diskUsage(t, dir, isSeg)
	nSegs := len(segmentFiles(t, dir))

	// Delete 90% of the blobs.
	b := store.Batch{Refs: map[store.ID]int64{}}
	kept := 0
	for id := range want.refs {
		if id == want.roots["last"] || kept < len(want.refs)/10 {
			kept++
			continue
		}
		b.Refs[id] = -1
		b.Delete = append(b.Delete, id)
	}
	mustCommit(t, s, b)
	for _, id := range b.Delete {
		delete(want.refs, id)
		delete(want.data, id)
	}
	punched, punchedSegs := diskUsage(t, dir, nil), diskUsage(t, dir, isSeg)
	if err := s.Compact(); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	compacted, compactedSegs := diskUsage(t, dir, nil), diskUsage(t, dir, isSeg)
	t.Logf("on-disk size: %d KiB full (segments %d KiB in %d files), %d KiB after deleting 90%% (segments %d KiB), %d KiB after Compact (segments %d KiB in %d files)",
		full>>10, fullSegs>>10, nSegs, punched>>10, punchedSegs>>10, compacted>>10, compactedSegs>>10, len(segmentFiles(t, dir)))
	if punchedSegs > fullSegs/2 {
		t.Errorf("segments take %d bytes after deleting 90%% of the blobs, %d before: want holes punched", punchedSegs, fullSegs)
	}
	if compacted >= punched || compactedSegs > fullSegs/5 {
		t.Errorf("on-disk size after Compact %d (segments %d), before %d (segments %d), full %d: want it to shrink to the live data", compacted, compactedSegs, punched, punchedSegs, fullSegs)
	}
	if n := len(segmentFiles(t, dir)); n > 2 || n >= nSegs {
		t.Errorf("%d segment files after Compact, %d before: want the sparse ones removed", n, nSegs)
	}
	if d := diffState(t, s, want); d != "" {
		t.Errorf("after Compact:\n%s", d)
	}
	verifyClean(t, s)
	closeStore(t, s)
	s = openStore(t, dir, nil)
	if d := diffState(t, s, want); d != "" {
		t.Errorf("after Compact and reopen:\n%s", d)
	}
	closeStore(t, s)
}

// Background compaction runs by itself after deleting commits.
func TestAutoCompact(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	dir := t.TempDir()
	s := openStore(t, dir, &Options{SegmentSize: 256 << 10})
	want := fill(t, s, rng, 100, 16<<10)
	nSegs := len(segmentFiles(t, dir))
	b := store.Batch{Refs: map[store.ID]int64{}}
	for id := range want.refs {
		if id != want.roots["last"] {
			b.Refs[id] = -1
			b.Delete = append(b.Delete, id)
			delete(want.refs, id)
			delete(want.data, id)
		}
	}
	mustCommit(t, s, b)
	deadline := time.Now().Add(10 * time.Second)
	for len(segmentFiles(t, dir)) > 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(segmentFiles(t, dir)); n > 2 {
		t.Errorf("%d segment files remain (of %d) after deleting all blobs but one: want background compaction to remove the empty ones", n, nSegs)
	}
	if d := diffState(t, s, want); d != "" {
		t.Errorf("after background compaction:\n%s", d)
	}
	verifyClean(t, s)
	closeStore(t, s)
}

// Commits that delete, background and explicit compaction, and readers, all
// at once on small segments: readers never see an error other than
// ErrNotFound for a blob deleted under them, nor wrong bytes, and the end
// state is exactly what the writers committed.
func TestConcurrentCompaction(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, &Options{SegmentSize: 32 << 10})
	const writers, commits = 2, 150
	models := make([]*state, writers)
	done := make(chan struct{})
	errc := make(chan error, 16)
	var live sync.Map // store.ID -> bool: blobs some writer committed
	var wg, rg sync.WaitGroup
	for w := range writers {
		models[w] = newState()
		wg.Go(func() {
			m := models[w]
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			name := fmt.Sprintf("w%d", w)
			var held []store.ID
			for range commits {
				b := store.Batch{Refs: map[store.ID]int64{}}
				var next []store.ID
				for range 3 {
					data := randBytes(rng, 64+rng.IntN(6<<10))
					id, err := s.Put(t.Context(), data)
					if err != nil {
						errc <- err
						return
					}
					b.Refs[id]++
					m.refs[id]++
					m.data[id] = data
					next = append(next, id)
				}
				for _, id := range held {
					b.Refs[id]--
					if m.refs[id]--; m.refs[id] == 0 {
						b.Delete = append(b.Delete, id)
						delete(m.refs, id)
						delete(m.data, id)
					}
				}
				b.Roots = []store.RootSwap{{Name: name, Old: m.roots[name], New: next[0]}}
				m.roots[name] = next[0]
				if err := s.Commit(t.Context(), b); err != nil {
					errc <- err
					return
				}
				for _, id := range next {
					live.Store(id, true)
				}
				held = next
			}
		})
	}
	for range 2 {
		rg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				live.Range(func(k, _ any) bool {
					id := k.(store.ID)
					got, err := s.Get(t.Context(), id)
					if err == nil && store.Sum(got) != id {
						errc <- fmt.Errorf("Get(%s) returned wrong bytes", id.Short())
					} else if err != nil && !errors.Is(err, store.ErrNotFound) {
						errc <- fmt.Errorf("Get(%s) while compacting: %w", id.Short(), err)
					}
					return rng1() != 0
				})
			}
		})
	}
	rg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := s.Compact(); err != nil {
				errc <- fmt.Errorf("Compact: %w", err)
			}
		}
	})
	wg.Wait()
	close(done)
	rg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	want := newState()
	for _, m := range models {
		for k, v := range m.refs {
			want.refs[k] += v
			want.data[k] = m.data[k]
		}
		for k, v := range m.roots {
			want.roots[k] = v
		}
	}
	if d := diffState(t, s, want); d != "" {
		t.Errorf("end state:\n%s", d)
	}
	verifyClean(t, s)
	closeStore(t, s)
	s = openStore(t, dir, nil)
	if d := diffState(t, s, want); d != "" {
		t.Errorf("end state after reopen:\n%s", d)
	}
	closeStore(t, s)
}

// A blob moved by a compaction or deleted by a commit between finding it and
// reading it: the read finds it again, or reports it gone; it never reports
// corruption.
func TestReadRaces(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	s := openStore(t, t.TempDir(), &Options{SegmentSize: 256 << 10, NoAutoCompact: true})
	defer closeStore(t, s)
	st := fill(t, s, rng, 40, 64<<10) // several segments
	// keep must not be in the current segment, which Compact leaves alone,
	// and victim not in keep's, whose live bytes must drop below the
	// compaction threshold.
	var keep, victim store.ID
	seg := map[store.ID]*segment{}
	for id := range st.refs {
		l, err := s.lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		seg[id] = l.seg
		if keep.IsZero() && l.seg != s.cur && len(st.data[id]) < 16<<10 {
			keep = id // small: alone it leaves its segment mostly dead
		}
	}
	for id := range st.refs {
		if victim.IsZero() && id != keep && seg[id] != seg[keep] && len(st.data[id]) > 32<<10 {
			victim = id
		}
	}
	if keep.IsZero() || victim.IsZero() {
		t.Fatal("no blob fit for the test")
	}
	// Leave keep and victim; the other segments empty out.
	b := store.Batch{Refs: map[store.ID]int64{}}
	for id := range st.refs {
		if id != keep && id != victim {
			b.Refs[id] = -1
			b.Delete = append(b.Delete, id)
		}
	}
	mustCommit(t, s, b)
	before, _ := s.lookup(keep)
	// Moved: the hook compacts keep's segment away under the read.
	once := true
	testHookRead = func() {
		if once {
			once = false
			if err := s.Compact(); err != nil {
				t.Errorf("Compact: %v", err)
			}
		}
	}
	got, err := s.Get(t.Context(), keep)
	testHookRead = nil
	after, _ := s.lookup(keep)
	if before.seg == after.seg {
		t.Fatalf("Compact did not move the blob (segment %d): the test tests nothing", before.seg.num)
	}
	if err != nil || !bytes.Equal(got, st.data[keep]) {
		t.Errorf("Get of a blob compaction moved during the read: got %d bytes, %v; want its bytes", len(got), err)
	}
	// Deleted: the hook deletes victim (and punches its blocks) under the read.
	once = true
	testHookRead = func() {
		if once {
			once = false
			mustCommit(t, s, store.Batch{Refs: map[store.ID]int64{victim: -1}, Delete: []store.ID{victim}})
		}
	}
	_, err = s.Get(t.Context(), victim)
	testHookRead = nil
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of a blob deleted during the read: want ErrNotFound, got %v", err)
	}
}

// rng1 returns a random number in [0, 8), for sampling.
func rng1() int { return rand.IntN(8) }

// --- Full disk ---

func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("TestFullDisk needs root to mount a small tmpfs, and CI=true forbids skipping it")
		}
		t.Skip("TestFullDisk needs root to mount a small tmpfs (run as root, or in CI)")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m"); err != nil {
		t.Fatalf("mount a 4 MiB tmpfs on %s: %v", mnt, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	// Ballast the test removes to free space.
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mnt, "store")
	rng := rand.New(rand.NewPCG(13, 14))
	s := openStore(t, dir, &Options{SegmentSize: 512 << 10, NoAutoCompact: true})
	want := fill(t, s, rng, 20, 16<<10)

	// Fill the disk the way the engine would: put, then commit.
	var full error
	for i := 0; i < 1000 && full == nil; i++ {
		data := randBytes(rng, 64<<10)
		id, err := s.Put(t.Context(), data)
		if err != nil {
			full = err
			break
		}
		b := store.Batch{
			Refs:  map[store.ID]int64{id: 1},
			Roots: []store.RootSwap{{Name: "last", Old: want.roots["last"], New: id}},
		}
		if full = s.Commit(t.Context(), b); full == nil {
			want.refs[id], want.data[id], want.roots["last"] = 1, data, id
		}
	}
	if !errors.Is(full, syscall.ENOSPC) {
		t.Fatalf("filling a 4 MiB file system: want an error wrapping ENOSPC, got %v", full)
	}
	t.Logf("full after %d blobs: %v", len(want.refs), full)
	// Still consistent and readable, while full.
	if d := diffState(t, s, want); d != "" {
		t.Errorf("on a full disk:\n%s", d)
	}
	verifyClean(t, s)
	// Free space, and the store carries on.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	fillInto(t, s, rng, want, 5, 16<<10)

	// Now fill the disk to the last byte with a file, so that the index
	// itself runs out of room: commits that add roots (no new blob bytes)
	// fail once bbolt needs a page it never wrote.
	ballast2 := filepath.Join(mnt, "ballast2")
	fillFile(t, ballast2)
	target := want.roots["last"]
	indexFull := error(nil)
	for i := 0; i < 2000 && indexFull == nil; i++ {
		name := fmt.Sprintf("root-%04d-%s", i, strings.Repeat("x", 200))
		indexFull = s.Commit(t.Context(), store.Batch{
			Refs:  map[store.ID]int64{target: 1},
			Roots: []store.RootSwap{{Name: name, New: target}},
		})
		if indexFull == nil {
			want.refs[target]++
			want.roots[name] = target
		}
	}
	if !errors.Is(indexFull, syscall.ENOSPC) {
		t.Fatalf("adding roots on a full file system: want an error wrapping ENOSPC, got %v", indexFull)
	}
	t.Logf("index full after %d roots: %v", len(want.roots), indexFull)
	if d := diffState(t, s, want); d != "" {
		t.Errorf("after the index ran out of space:\n%s", d)
	}
	verifyClean(t, s)
	if err := os.Remove(ballast2); err != nil {
		t.Fatal(err)
	}
	fillInto(t, s, rng, want, 5, 16<<10)
	if d := diffState(t, s, want); d != "" {
		t.Errorf("after freeing space:\n%s", d)
	}
	closeStore(t, s)
	s = openStore(t, dir, nil)
	if d := diffState(t, s, want); d != "" {
		t.Errorf("after freeing space and reopening:\n%s", d)
	}
	verifyClean(t, s)
	closeStore(t, s)
}

// fillFile writes zeros to path until the file system is full.
func fillFile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for n := 2048; n > 0; n /= 2 { // and the last partial block
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
}

// --- Benchmarks ---

func BenchmarkPut64KiB(b *testing.B) {
	data := make([]byte, 64<<10)
	b.SetBytes(int64(len(data)))
	s := openStore(b, b.TempDir(), nil)
	var i uint64
	for b.Loop() {
		i++
		if i%1024 == 0 { // bound the disk used: every Put stores a new blob
			b.StopTimer()
			closeStore(b, s)
			s = openStore(b, b.TempDir(), nil)
			b.StartTimer()
		}
		binary.LittleEndian.PutUint64(data, i)
		if _, err := s.Put(b.Context(), data); err != nil {
			b.Fatal(err)
		}
	}
	closeStore(b, s)
}

func BenchmarkGet64KiB(b *testing.B) {
	s := openStore(b, b.TempDir(), nil)
	defer closeStore(b, s)
	ids := make([]store.ID, 64)
	refs := map[store.ID]int64{}
	for i := range ids {
		data := make([]byte, 64<<10)
		binary.LittleEndian.PutUint64(data, uint64(i))
		ids[i] = mustPut(b, s, data)
		refs[ids[i]] = 1
	}
	mustCommit(b, s, store.Batch{Refs: refs})
	b.SetBytes(64 << 10)
	i := 0
	for b.Loop() {
		if _, err := s.Get(b.Context(), ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// One 4 KiB blob, one reference and one root swap per commit: the latency of
// a durable commit.
func BenchmarkCommitSmall(b *testing.B) {
	s := openStore(b, b.TempDir(), nil)
	defer closeStore(b, s)
	data := make([]byte, 4<<10)
	var prev store.ID
	var i uint64
	for b.Loop() {
		i++
		binary.LittleEndian.PutUint64(data, i)
		id, err := s.Put(b.Context(), data)
		if err != nil {
			b.Fatal(err)
		}
		err = s.Commit(b.Context(), store.Batch{
			Refs:  map[store.ID]int64{id: 1},
			Roots: []store.RootSwap{{Name: "bench", Old: prev, New: id}},
		})
		if err != nil {
			b.Fatal(err)
		}
		prev = id
	}
}
