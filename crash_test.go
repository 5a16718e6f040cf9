package cowfs

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cowfs/cowfs/store/local"
)

// The crash test: a child process (this test binary, re-executed) runs a
// random workload on a local store — writes at random offsets, clones, range
// copies, snapshots, removals, syncs — and prints the state every commit
// point covers before and after it. The parent kills it with SIGKILL at a
// random moment, reopens the store, runs the checker (only blobs leaked by
// the crash may be reported; Repair deletes them) and compares the volume and
// its snapshots with what the child's last commit covered.
//
// Commit points are File.Sync and Volume.Snapshot; the child runs no
// background commits, so what is durable is exactly the state at the last
// commit point that finished, or the one in progress when the kill came.

const crashChildEnv = "COWFS_CRASH_CHILD"

// crashState is what a commit point covers: every file's content digest, and
// the snapshots with theirs.
type crashState struct {
	Files map[string]string            `json:"files"`
	Snaps map[string]map[string]string `json:"snaps"`
}

func TestCrash(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild(os.Getenv(crashChildEnv))
		return
	}
	kills := 50
	if testing.Short() {
		kills = 10
	}
	if n, err := strconv.Atoi(os.Getenv("COWFS_CRASH_KILLS")); err == nil && n > 0 {
		kills = n
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	// What the store held after the last round: the state if a child dies
	// before it reads the store.
	last := &crashState{Files: map[string]string{}, Snaps: map[string]map[string]string{}}
	for i := 0; i < kills; i++ {
		accept := crashRun(t, dir, time.Duration(20+rng.IntN(250))*time.Millisecond, i, last)
		last = crashVerify(t, dir, accept, i)
	}
}

// crashRun starts a child on dir, kills it after d, and returns the states
// the store may hold: the last commit point the child finished (or the state
// it started from), and every state announced after it.
func crashRun(t *testing.T, dir string, d time.Duration, round int, last *crashState) []*crashState {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir+"|"+strconv.Itoa(round))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := last                // durable for sure
	var announced []*crashState // maybe durable
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 16<<20)
	timer := time.AfterFunc(d, func() { cmd.Process.Signal(syscall.SIGKILL) })
	defer timer.Stop()
	for sc.Scan() {
		kind, body, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "START", "COMMIT":
			var s crashState
			if err := json.Unmarshal([]byte(body), &s); err != nil {
				t.Fatalf("round %d: child printed %q: %v", round, sc.Text(), err)
			}
			if kind == "START" {
				done = &s
			} else {
				announced = append(announced, &s)
			}
		case "DONE":
			done, announced = announced[len(announced)-1], nil
		case "FAIL":
			t.Fatalf("round %d: child failed: %s", round, body)
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	return append([]*crashState{done}, announced...)
}

// crashVerify reopens the store, checks it, and requires it to hold one of
// the accepted states; it returns the state found.
func crashVerify(t *testing.T, dir string, accept []*crashState, round int) *crashState {
	t.Helper()
	st, err := local.Open(dir, nil)
	if err != nil {
		t.Fatalf("round %d: reopen after kill: %v", round, err)
	}
	f, err := Open(st, nil)
	if err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	defer f.Close()
	ctx := context.Background()
	rep, err := f.Check(ctx)
	if err != nil {
		t.Fatalf("round %d: check: %v", round, err)
	}
	if len(rep.Problems) != len(rep.Leaked) {
		t.Fatalf("round %d: after a crash only leaked blobs may be reported: %v", round, rep.Err())
	}
	if _, err := f.Repair(ctx, rep); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, f)
	got := crashRead(t, f)
	for _, s := range accept {
		if crashEqual(got, s) {
			return got
		}
	}
	want, _ := json.Marshal(accept)
	have, _ := json.Marshal(got)
	t.Fatalf("round %d: the store holds\n%s\nwhich is none of the states the last commit may have left:\n%s", round, have, want)
	return nil
}

func crashEqual(a, b *crashState) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// crashRead returns the state the store holds (volume "crash").
func crashRead(t *testing.T, f *FS) *crashState {
	s := &crashState{Files: map[string]string{}, Snaps: map[string]map[string]string{}}
	v, err := f.Volume("crash")
	if err != nil {
		return s
	}
	s.Files = crashFiles(t, v)
	snaps, err := v.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	for _, sn := range snaps {
		sv, err := v.OpenSnapshot(sn.Name)
		if err != nil {
			t.Fatal(err)
		}
		s.Snaps[sn.Name] = crashFiles(t, sv)
	}
	return s
}

// crashFiles digests every file of a volume's root directory.
func crashFiles(t *testing.T, v *Volume) map[string]string {
	m := map[string]string{}
	infos, err := v.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	for _, fi := range infos {
		data, err := v.ReadFile(fi.Name())
		if err != nil {
			t.Fatalf("read %s: %v", fi.Name(), err)
		}
		m[fi.Name()] = digest(data)
	}
	return m
}

func digest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8]) + ":" + strconv.Itoa(len(b))
}

// crashChild runs the workload until killed.
func crashChild(arg string) {
	dir, roundStr, _ := strings.Cut(arg, "|")
	round, _ := strconv.Atoi(roundStr)
	fail := func(format string, args ...any) {
		fmt.Printf("FAIL %s\n", fmt.Sprintf(format, args...))
		os.Exit(1)
	}
	st, err := local.Open(dir, nil)
	if err != nil {
		fail("open store: %v", err)
	}
	f, err := Open(st, &Options{FlushBytes: 256 << 10})
	if err != nil {
		fail("open: %v", err)
	}
	v, err := f.Volume("crash")
	if err != nil {
		if v, err = f.CreateVolume("crash"); err != nil {
			fail("create volume: %v", err)
		}
	}
	// The model: file contents, and the snapshots' contents.
	files := map[string][]byte{}
	snaps := map[string]map[string]string{}
	infos, _ := v.ReadDir("/")
	for _, fi := range infos {
		data, err := v.ReadFile(fi.Name())
		if err != nil {
			fail("read %s: %v", fi.Name(), err)
		}
		files[fi.Name()] = data
	}
	if list, err := v.Snapshots(); err == nil {
		for _, sn := range list {
			sv, err := v.OpenSnapshot(sn.Name)
			if err != nil {
				fail("open snapshot: %v", err)
			}
			snaps[sn.Name] = map[string]string{}
			sinfos, _ := sv.ReadDir("/")
			for _, fi := range sinfos {
				data, _ := sv.ReadFile(fi.Name())
				snaps[sn.Name][fi.Name()] = digest(data)
			}
		}
	}
	state := func() string {
		s := crashState{Files: map[string]string{}, Snaps: snaps}
		for p, b := range files {
			s.Files[p] = digest(b)
		}
		out, _ := json.Marshal(s)
		return string(out)
	}
	fmt.Printf("START %s\n", state())
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(round)))
	names := []string{"a", "b", "c", "d", "e"}
	pick := func() string { return names[rng.IntN(len(names))] }
	for step := 0; ; step++ {
		p := pick()
		switch op := rng.IntN(10); {
		case op < 4: // write at a random offset
			data := make([]byte, 1+rng.IntN(300<<10))
			for i := range data {
				data[i] = byte(rng.IntN(4)) // compressible-ish, many repeats: exercises dedup
			}
			off := rng.IntN(len(files[p]) + 1000)
			fh, err := v.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				fail("open %s: %v", p, err)
			}
			if _, err := fh.WriteAt(data, int64(off)); err != nil {
				fail("write: %v", err)
			}
			fh.Close()
			old := files[p]
			if len(old) < off+len(data) {
				old = append(old, make([]byte, off+len(data)-len(old))...)
			}
			copy(old[off:], data)
			files[p] = old
		case op == 4: // clone
			q := pick()
			_, srcOK := files[p]
			if _, dstExists := files[q]; !srcOK || dstExists {
				continue
			}
			if err := v.Clone(p, q); err != nil {
				fail("clone: %v", err)
			}
			files[q] = append([]byte{}, files[p]...)
		case op == 5: // range copy at unaligned offsets
			q := pick()
			src, ok1 := files[p]
			if _, ok2 := files[q]; !ok1 || !ok2 || len(src) == 0 {
				continue
			}
			soff := rng.IntN(len(src))
			n := 1 + rng.IntN(len(src)-soff)
			doff := rng.IntN(len(files[q]) + 1)
			s, _ := v.Open(p)
			d, _ := v.OpenFile(q, os.O_RDWR, 0)
			if _, err := CopyRange(s, int64(soff), d, int64(doff), int64(n)); err != nil {
				fail("copy range: %v", err)
			}
			s.Close()
			d.Close()
			piece := append([]byte(nil), src[soff:soff+n]...)
			dst := files[q]
			if len(dst) < doff+n {
				dst = append(dst, make([]byte, doff+n-len(dst))...)
			}
			copy(dst[doff:], piece)
			files[q] = dst
		case op == 6: // remove
			if _, ok := files[p]; !ok {
				continue
			}
			if err := v.Remove(p); err != nil {
				fail("remove: %v", err)
			}
			delete(files, p)
		case op == 7: // snapshot: commits everything, then adds the snapshot
			name := "s" + strconv.Itoa(round) + "-" + strconv.Itoa(step)
			fmt.Printf("COMMIT %s\n", state())
			s := map[string]string{}
			for q, b := range files {
				s[q] = digest(b)
			}
			snaps[name] = s
			fmt.Printf("COMMIT %s\n", state())
			if err := v.Snapshot(name); err != nil {
				fail("snapshot: %v", err)
			}
			fmt.Println("DONE")
			if len(snaps) > 3 { // keep a few: delete the oldest
				var all []string
				for n := range snaps {
					all = append(all, n)
				}
				sort.Strings(all)
				delete(snaps, all[0])
				fmt.Printf("COMMIT %s\n", state())
				if err := v.DeleteSnapshot(all[0]); err != nil {
					fail("delete snapshot: %v", err)
				}
				fmt.Println("DONE")
			}
		default: // sync: a commit point
			fh, err := v.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				fail("open: %v", err)
			}
			if _, ok := files[p]; !ok {
				files[p] = []byte{}
			}
			fmt.Printf("COMMIT %s\n", state())
			if err := fh.Sync(); err != nil {
				fail("sync: %v", err)
			}
			fmt.Println("DONE")
			fh.Close()
		}
	}
}
