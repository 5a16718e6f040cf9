package fusefs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Many clients at once on one mount: goroutines of this process using the
// os file API, and separate processes (dd, cat, mv). Run with -race: the
// server runs in this process too.

// concClients is how many clients each test runs at once.
const concClients = 16

// concSeed returns the seed of a test's random choices; COWFS_CONC_SEED
// replays a failure.
func concSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("COWFS_CONC_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("COWFS_CONC_SEED: %v", err)
		}
	}
	t.Logf("seed %d (set COWFS_CONC_SEED to replay)", seed)
	return seed
}

// concProc is a separate process run alongside the goroutines.
type concProc struct {
	cmd *exec.Cmd
	out bytes.Buffer
	err bytes.Buffer
}

// concStart starts a process whose stdout and stderr are kept apart.
func concStart(t *testing.T, name string, args ...string) *concProc {
	t.Helper()
	p := &concProc{cmd: toolCmd(name, args...)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// wait waits for the process and fails the test if it failed.
func (p *concProc) wait(t *testing.T) {
	t.Helper()
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("%s: %v: %s", strings.Join(p.cmd.Args, " "), err, p.err.Bytes())
	}
}

// TestConcurrentPrivateFiles has 16 goroutines each write, truncate and
// read back its own file at random offsets while dd and cat processes write
// and read other files; every file must hold exactly what its client wrote.
func TestConcurrentPrivateFiles(t *testing.T) {
	m := mountMem(t)
	seed := concSeed(t)
	tmp := t.TempDir()

	// Files the cat processes read, and inputs of the dd processes.
	const nproc = 4
	pre := make([][]byte, nproc)
	in := make([][]byte, nproc)
	for j := range nproc {
		pre[j] = toolRandBytes(300<<10 + j*4321)
		toolWriteFile(t, filepath.Join(m.dir, fmt.Sprintf("pre%d", j)), pre[j], 0o644)
		in[j] = toolRandBytes(500<<10 + j*12345)
		if err := os.WriteFile(filepath.Join(tmp, fmt.Sprintf("in%d", j)), in[j], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var procs []*concProc
	for j := range nproc {
		procs = append(procs,
			concStart(t, "dd", "if="+filepath.Join(tmp, fmt.Sprintf("in%d", j)),
				"of="+filepath.Join(m.dir, fmt.Sprintf("dd%d", j)), "bs=7777", "seek=3", "status=none"),
			concStart(t, "cat", filepath.Join(m.dir, fmt.Sprintf("pre%d", j))))
	}

	models := make([][]byte, concClients)
	var wg sync.WaitGroup
	for i := range concClients {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			name := fmt.Sprintf("c%02d", i)
			f, err := os.OpenFile(filepath.Join(m.dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			defer f.Close()
			var model []byte
			for op := range 40 {
				switch x := r.IntN(10); {
				case x < 6:
					off, n := r.IntN(1<<20), 1+r.IntN(64<<10)
					b := toolRandBytes(n)
					if k, err := f.WriteAt(b, int64(off)); err != nil || k != n {
						t.Errorf("%s op %d: write %d at %d: %d, %v", name, op, n, off, k, err)
						return
					}
					if len(model) < off+n {
						model = append(model, make([]byte, off+n-len(model))...)
					}
					copy(model[off:], b)
				case x < 7:
					size := r.IntN(len(model) + 100000)
					if err := f.Truncate(int64(size)); err != nil {
						t.Errorf("%s op %d: truncate %d: %v", name, op, size, err)
						return
					}
					if size < len(model) {
						model = model[:size]
					} else {
						model = append(model, make([]byte, size-len(model))...)
					}
				default:
					off, n := r.IntN(len(model)+1), r.IntN(128<<10)
					got := make([]byte, n)
					k, err := f.ReadAt(got, int64(off))
					want := model[off:min(off+n, len(model))]
					if (err != nil && err != io.EOF) || !bytes.Equal(got[:k], want) {
						t.Errorf("%s op %d: read %d at %d: %v, %s", name, op, n, off, err, toolDiff(got[:k], want))
						return
					}
				}
			}
			got, err := os.ReadFile(filepath.Join(m.dir, name))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			toolSame(t, name+" read back", got, model)
			models[i] = model
		})
	}
	wg.Wait()
	for _, p := range procs {
		p.wait(t)
	}
	if t.Failed() {
		t.FailNow()
	}
	for i, model := range models {
		toolSame(t, fmt.Sprintf("c%02d on the server", i), toolVolRead(t, m, fmt.Sprintf("c%02d", i)), model)
	}
	for j := range nproc {
		toolSame(t, fmt.Sprintf("cat pre%d", j), procs[2*j+1].out.Bytes(), pre[j])
		toolCheckContent(t, m, fmt.Sprintf("dd%d", j), append(make([]byte, 3*7777), in[j]...))
	}
}

// TestConcurrentSharedFile has 16 clients (14 goroutines with pwrite and
// two series of dd processes) fill disjoint 64 KiB regions of one file in
// random order and pieces, while readers check that every byte they see is
// either not yet written (zero) or final.
func TestConcurrentSharedFile(t *testing.T) {
	m := mountMem(t)
	seed := concSeed(t)
	const region, regions = 64 << 10, 8 * concClients
	want := toolRandBytes(region * regions)
	in := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(in, want, 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(m.dir, "shared")
	toolWriteFile(t, p, nil, 0o644)

	var writers, readers sync.WaitGroup
	done := make(chan struct{})
	for rd := range 2 {
		readers.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(100+rd)))
			f, err := os.Open(p)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			buf := make([]byte, 256<<10)
			zero := make([]byte, len(buf))
			for reads := 0; ; reads++ {
				select {
				case <-done:
					if reads == 0 {
						t.Errorf("reader %d read nothing while the writers ran", rd)
					}
					return
				default:
				}
				off, n := r.IntN(len(want)), 1+r.IntN(len(buf))
				k, err := f.ReadAt(buf[:n], int64(off))
				if err != nil && err != io.EOF {
					t.Errorf("reader %d: read %d at %d: %v", rd, n, off, err)
					return
				}
				// Each 512-byte run is either all written or all zero,
				// or, at a piece's edge, some of each: compare bytewise
				// only runs that are neither.
				for s := 0; s < k; s += 512 {
					e := min(s+512, k)
					got, fin := buf[s:e], want[off+s:off+e]
					if bytes.Equal(got, fin) || bytes.Equal(got, zero[:e-s]) {
						continue
					}
					for b := range got {
						if got[b] != 0 && got[b] != fin[b] {
							t.Errorf("reader %d: byte %d is %#x, neither 0 nor %#x", rd, off+s+b, got[b], fin[b])
							return
						}
					}
				}
			}
		})
	}
	for c := range concClients {
		var mine []int
		for reg := c; reg < regions; reg += concClients {
			mine = append(mine, reg)
		}
		r := rand.New(rand.NewPCG(seed, uint64(c)))
		r.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
		if c >= concClients-2 {
			// A series of dd processes, one per region.
			writers.Go(func() {
				for _, reg := range mine {
					out, err := toolCmd("dd", "if="+in, "of="+p, "bs=65536", "conv=notrunc", "status=none",
						"skip="+strconv.Itoa(reg), "seek="+strconv.Itoa(reg), "count=1").CombinedOutput()
					if err != nil {
						t.Errorf("dd region %d: %v: %s", reg, err, out)
						return
					}
				}
			})
			continue
		}
		writers.Go(func() {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			for _, reg := range mine {
				// The region in pieces, written in random order.
				cuts := []int{0, region}
				for range r.IntN(6) {
					cuts = append(cuts, r.IntN(region))
				}
				sort.Ints(cuts)
				order := r.Perm(len(cuts) - 1)
				for _, i := range order {
					a, b := reg*region+cuts[i], reg*region+cuts[i+1]
					if a == b {
						continue
					}
					if k, err := f.WriteAt(want[a:b], int64(a)); err != nil || k != b-a {
						t.Errorf("client %d: write [%d, %d): %d, %v", c, a, b, k, err)
						return
					}
				}
			}
		})
	}
	writers.Wait()
	close(done)
	readers.Wait()
	if t.Failed() {
		t.FailNow()
	}
	toolCheckContent(t, m, "shared", want)
}

// TestConcurrentAppendReaders has one writer append to a file while
// goroutines and cat processes read it: every reader sees a prefix of what
// is appended, at least every append that returned.
func TestConcurrentAppendReaders(t *testing.T) {
	m := mountMem(t)
	seed := concSeed(t)
	const total = 4 << 20
	stream := toolRandBytes(total)
	p := filepath.Join(m.dir, "log")
	toolWriteFile(t, p, nil, 0o644)

	var appended atomic.Int64 // bytes whose append returned
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		r := rand.New(rand.NewPCG(seed, 0))
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		for off := 0; off < total; {
			n := min(1+r.IntN(40000), total-off)
			if k, err := f.Write(stream[off : off+n]); err != nil || k != n {
				t.Errorf("append %d at %d: %d, %v", n, off, k, err)
				return
			}
			off += n
			appended.Store(int64(off))
		}
	})
	running := func() bool {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	checkPrefix := func(who string, got []byte) bool {
		if len(got) > total || !bytes.Equal(got, stream[:len(got)]) {
			t.Errorf("%s: %s", who, toolDiff(got, stream[:min(len(got), total)]))
			return false
		}
		return true
	}
	for rd := range concClients - 1 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(rd+1)))
			who := fmt.Sprintf("reader %d", rd)
			f, err := os.Open(p)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			buf := make([]byte, 512<<10)
			for running() {
				if rd%3 == 0 {
					// A fresh descriptor reads all it can: at least what
					// was appended before.
					acked := appended.Load()
					got, err := os.ReadFile(p)
					if err != nil || !checkPrefix(who+": whole file", got) || int64(len(got)) < acked {
						t.Errorf("%s: read %d bytes of %d appended: %v", who, len(got), acked, err)
						return
					}
					continue
				}
				// What was appended before the read began must be read in
				// full. fstat may count more, and then less again: while
				// an append is under way, the kernel reports the size the
				// server replied, but keeps its own (which bounds reads)
				// until the write returns.
				acked := appended.Load()
				fi, err := f.Stat()
				if err != nil {
					t.Errorf("%s: %v", who, err)
					return
				}
				size := fi.Size()
				if size < acked {
					t.Errorf("%s: size %d, with %d bytes appended", who, size, acked)
					return
				}
				if size == 0 {
					continue
				}
				off := r.Int64N(size)
				n := min(int64(1+r.IntN(len(buf))), size-off)
				k, err := f.ReadAt(buf[:n], off)
				if err != nil && err != io.EOF || int64(k) < min(n, max(0, acked-off)) {
					t.Errorf("%s: read %d at %d, %d bytes appended: %d, %v", who, n, off, acked, k, err)
					return
				}
				if !bytes.Equal(buf[:k], stream[off:off+int64(k)]) {
					t.Errorf("%s: read at %d: %s", who, off, toolDiff(buf[:k], stream[off:off+int64(k)]))
					return
				}
			}
		})
	}
	// Two series of cat processes.
	for c := range 2 {
		wg.Go(func() {
			for i := 0; running() && i < 20; i++ {
				out, err := toolCmd("cat", p).Output()
				if err != nil || !checkPrefix(fmt.Sprintf("cat %d.%d", c, i), out) {
					t.Errorf("cat: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	toolCheckContent(t, m, "log", stream)
}

// TestConcurrentDirOps has 16 goroutines create, write, link, rename and
// unlink entries of one directory, each mostly its own names (whose every
// result a model predicts) and some contended ones, with mv processes
// racing too. Each contended operation has exactly one winner, and the
// final listing is what the successful operations make.
func TestConcurrentDirOps(t *testing.T) {
	m := mountMem(t)
	seed := concSeed(t)
	dir := filepath.Join(m.dir, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	at := func(name string) string { return filepath.Join(dir, name) }
	const contended = 4
	for k := range contended {
		toolWriteFile(t, at(fmt.Sprintf("victim-%d", k)), []byte("victim"), 0o644)
		toolWriteFile(t, at(fmt.Sprintf("src-%d", k)), []byte(fmt.Sprintf("orig-%d", k)), 0o644)
		toolWriteFile(t, at(fmt.Sprintf("mvsrc-%d", k)), []byte(fmt.Sprintf("mv-%d", k)), 0o644)
	}
	// Three mv processes race to move each mvsrc-K.
	type mvRace struct {
		k, p int
		proc *concProc
	}
	var mvs []mvRace
	for k := range contended {
		for p := range 3 {
			mvs = append(mvs, mvRace{k, p, concStart(t, "mv", at(fmt.Sprintf("mvsrc-%d", k)), at(fmt.Sprintf("mvdst-%d-%d", k, p)))})
		}
	}

	type client struct {
		model       map[string]string // own name → content
		exclWins    []int
		victimWins  []int
		srcWins     []int
		mkdirWins   []int
		hotContents []string
	}
	clients := make([]*client, concClients)
	write := func(p, s string, flag int) error {
		f, err := os.OpenFile(p, os.O_WRONLY|flag, 0o644)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(s); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	var wg sync.WaitGroup
	for g := range concClients {
		c := &client{model: map[string]string{}}
		clients[g] = c
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(g)))
			own := func() string { return fmt.Sprintf("g%02d-%d", g, r.IntN(6)) }
			fail := func(format string, args ...any) {
				t.Errorf("client %d: "+format, append([]any{g}, args...)...)
			}
			// expect checks err against the model's prediction.
			expect := func(op string, err error, want error) {
				if want == nil && err != nil || want != nil && !errors.Is(err, want) {
					fail("%s: %v, want %v", op, err, want)
				}
			}
			var ops []func()
			for i := range 60 {
				ops = append(ops, func() {
					a, b := own(), own()
					_, aok := c.model[a]
					_, bok := c.model[b]
					switch r.IntN(6) {
					case 0: // exclusive create
						tok := fmt.Sprintf("%s by op %d", a, i)
						err := write(at(a), tok, os.O_CREATE|os.O_EXCL)
						if aok {
							expect("create "+a, err, fs.ErrExist)
						} else if expect("create "+a, err, nil); err == nil {
							c.model[a] = tok
						}
					case 1:
						err := os.Remove(at(a))
						if !aok {
							expect("unlink "+a, err, fs.ErrNotExist)
						} else if expect("unlink "+a, err, nil); err == nil {
							delete(c.model, a)
						}
					case 2:
						if a == b {
							return
						}
						err := os.Rename(at(a), at(b))
						switch {
						case !aok:
							expect("rename "+a, err, fs.ErrNotExist)
						case bok && c.model[a] == c.model[b]:
							// Two links to one file: rename does nothing.
							expect("rename "+a+" "+b+" (links of one file)", err, nil)
						default:
							if expect("rename "+a+" "+b, err, nil); err == nil {
								c.model[b] = c.model[a]
								delete(c.model, a)
							}
						}
					case 3:
						err := os.Link(at(a), at(b))
						switch {
						case !aok:
							expect("link "+a, err, fs.ErrNotExist)
						case bok:
							expect("link "+a+" "+b, err, fs.ErrExist)
						default:
							if expect("link "+a+" "+b, err, nil); err == nil {
								c.model[b] = c.model[a]
							}
						}
					case 4: // overwrite, through every link
						if !aok {
							return
						}
						tok := fmt.Sprintf("%s rewritten by op %d", a, i)
						if err := write(at(a), tok, os.O_TRUNC); err != nil {
							fail("rewrite %s: %v", a, err)
							return
						}
						old := c.model[a]
						for name, s := range c.model {
							if s == old {
								c.model[name] = tok
							}
						}
					case 5:
						got, err := os.ReadFile(at(a))
						if !aok {
							expect("read "+a, err, fs.ErrNotExist)
						} else if err != nil || string(got) != c.model[a] {
							fail("read %s: %q, %v; want %q", a, got, err, c.model[a])
						}
					}
				})
			}
			for k := range contended {
				ops = append(ops,
					func() {
						err := write(at(fmt.Sprintf("excl-%d", k)), fmt.Sprintf("excl-%d by %d", k, g), os.O_CREATE|os.O_EXCL)
						if err == nil {
							c.exclWins = append(c.exclWins, k)
						} else if !errors.Is(err, fs.ErrExist) {
							fail("create excl-%d: %v", k, err)
						}
					},
					func() {
						err := os.Remove(at(fmt.Sprintf("victim-%d", k)))
						if err == nil {
							c.victimWins = append(c.victimWins, k)
						} else if !errors.Is(err, fs.ErrNotExist) {
							fail("unlink victim-%d: %v", k, err)
						}
					},
					func() {
						err := os.Rename(at(fmt.Sprintf("src-%d", k)), at(fmt.Sprintf("moved-%d-g%02d", k, g)))
						if err == nil {
							c.srcWins = append(c.srcWins, k)
						} else if !errors.Is(err, fs.ErrNotExist) {
							fail("rename src-%d: %v", k, err)
						}
					},
					func() {
						err := os.Mkdir(at(fmt.Sprintf("dir-%d", k)), 0o755)
						if err == nil {
							c.mkdirWins = append(c.mkdirWins, k)
						} else if !errors.Is(err, fs.ErrExist) {
							fail("mkdir dir-%d: %v", k, err)
						}
					})
			}
			for j := range 3 {
				ops = append(ops, func() {
					tmp, s := at(fmt.Sprintf("g%02d-hot%d", g, j)), fmt.Sprintf("hot from %d.%d", g, j)
					if err := write(tmp, s, os.O_CREATE|os.O_EXCL); err != nil {
						fail("create %s: %v", tmp, err)
						return
					}
					if err := os.Rename(tmp, at("hot")); err != nil {
						fail("rename onto hot: %v", err)
						return
					}
					c.hotContents = append(c.hotContents, s)
				})
			}
			r.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
			for _, op := range ops {
				op()
			}
		})
	}
	wg.Wait()
	mvWins := map[int][]int{}
	for _, mv := range mvs {
		err := mv.proc.cmd.Wait()
		if err == nil {
			mvWins[mv.k] = append(mvWins[mv.k], mv.p)
		} else if !strings.Contains(mv.proc.err.String(), "No such file or directory") {
			t.Errorf("mv %d.%d: %v: %s", mv.k, mv.p, err, mv.proc.err.Bytes())
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// What the directory must hold.
	want := map[string]string{} // name → content ("" for a directory)
	var hot []string
	wins := func(what string, k int, count int) {
		if count != 1 {
			t.Errorf("%s-%d: %d winners, want 1", what, k, count)
		}
	}
	for k := range contended {
		var excl, victim, src, mkdir int
		for g, c := range clients {
			if slices.Contains(c.exclWins, k) {
				excl++
				want[fmt.Sprintf("excl-%d", k)] = fmt.Sprintf("excl-%d by %d", k, g)
			}
			if slices.Contains(c.victimWins, k) {
				victim++
			}
			if slices.Contains(c.srcWins, k) {
				src++
				want[fmt.Sprintf("moved-%d-g%02d", k, g)] = fmt.Sprintf("orig-%d", k)
			}
			if slices.Contains(c.mkdirWins, k) {
				mkdir++
				want[fmt.Sprintf("dir-%d", k)] = ""
			}
		}
		wins("excl", k, excl)
		wins("victim", k, victim)
		wins("src", k, src)
		wins("dir", k, mkdir)
		wins("mvsrc", k, len(mvWins[k]))
		for _, p := range mvWins[k] {
			want[fmt.Sprintf("mvdst-%d-%d", k, p)] = fmt.Sprintf("mv-%d", k)
		}
	}
	for _, c := range clients {
		for name, s := range c.model {
			want[name] = s
		}
		hot = append(hot, c.hotContents...)
	}
	var names []string
	for name := range want {
		names = append(names, name)
	}
	names = append(names, "hot")
	sort.Strings(names)

	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, e := range ents {
		listed = append(listed, e.Name())
	}
	if !slices.Equal(listed, names) {
		t.Errorf("listing:\n%q\nwant\n%q", listed, names)
	}
	infos, err := m.vol.ReadDir("d")
	if err != nil {
		t.Fatal(err)
	}
	var server []string
	for _, fi := range infos {
		server = append(server, fi.Name())
	}
	sort.Strings(server)
	if !slices.Equal(server, names) {
		t.Errorf("listing on the server:\n%q\nwant\n%q", server, names)
	}
	for name, s := range want {
		fi, err := os.Lstat(at(name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if s == "" {
			if !fi.IsDir() {
				t.Errorf("%s: %v, want a directory", name, fi.Mode())
			}
			continue
		}
		toolCheckContent(t, m, "d/"+name, []byte(s))
	}
	got, err := os.ReadFile(at("hot"))
	if err != nil || !slices.Contains(hot, string(got)) {
		t.Errorf("hot: %q, %v; want one of the %d files renamed onto it", got, err, len(hot))
	}
	// Link counts agree with the names sharing a file.
	for name := range want {
		var st syscall.Stat_t
		if err := syscall.Lstat(at(name), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
			continue
		}
		links := 0
		for other := range want {
			var o syscall.Stat_t
			if syscall.Lstat(at(other), &o) == nil && o.Ino == st.Ino {
				links++
			}
		}
		if int(st.Nlink) != links {
			t.Errorf("%s: nlink %d, but %d names share inode %d", name, st.Nlink, links, st.Ino)
		}
	}
}

// TestConcurrentSetattrAfterClose has two goroutines loop open, write,
// close, then utimes, chmod and truncate by path, 20,000 times each, every
// other time on a file they share and otherwise on one of their own: none
// of those calls may fail. The kernel releases a closed file after close(2)
// returns and sends a change by path without a handle, so a server that
// served such a change through another open of the node answered EBADF
// about once in 1,000 (rsync -a: "failed to set times").
func TestConcurrentSetattrAfterClose(t *testing.T) {
	m := mountMem(t)
	const clients, iterations = 2, 20000
	line := func(g int) string { return fmt.Sprintf("client %d\n", g) }
	var wg sync.WaitGroup
	var failures atomic.Int64
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			shared, own := filepath.Join(m.dir, "shared"), filepath.Join(m.dir, "own"+strconv.Itoa(g))
			data := []byte(line(g))
			mtime := time.Unix(1700000000, 0)
			for i := range iterations {
				p := shared
				if i%2 == 1 {
					p = own
				}
				fail := func(what string, err error) bool {
					if err == nil {
						return false
					}
					if failures.Add(1) <= 10 {
						t.Errorf("client %d, iteration %d: %s: %v", g, i, what, err)
					}
					return true
				}
				f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
				if fail("open", err) {
					return
				}
				_, err = f.WriteAt(data, int64(g*len(data)))
				if fail("write", err) || fail("close", f.Close()) ||
					fail("utimes", os.Chtimes(p, mtime, mtime.Add(time.Duration(i)))) ||
					fail("chmod", os.Chmod(p, os.FileMode(0o600+i%4/2*0o44))) ||
					fail("truncate", os.Truncate(p, int64(clients*len(data)))) {
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d calls failed", n)
	}
	b, err := os.ReadFile(filepath.Join(m.dir, "shared"))
	if want := line(0) + line(1); err != nil || string(b) != want {
		t.Errorf("shared: %q, %v; want %q", b, err, want)
	}
	for g := range clients {
		b, err := os.ReadFile(filepath.Join(m.dir, "own"+strconv.Itoa(g)))
		want := strings.Repeat("\x00", g*len(line(g))) + line(g)
		if err != nil || !strings.HasPrefix(string(b), want) || len(b) != clients*len(line(g)) {
			t.Errorf("own%d: %q, %v; want %q then zeros", g, b, err, want)
		}
	}
}
