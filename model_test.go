package cowfs

// Model-based test: random operation sequences applied to cowfs volumes on
// the mem store and to a naive in-memory model (paths to nodes holding their
// bytes, mode, xattrs and the inode number cowfs gave them; hard links are
// shared nodes), compared after every step: every file's content byte for
// byte, listings, types, permissions, sizes, link counts, symlink targets
// and where they lead, xattrs, and inode numbers (unique, shared by hard
// links, stable across rename, reopen and clones). The invariant checker
// (FS.Check) runs after every step; at the end everything is deleted and
// the store must be empty.
//
// The default run (100 sequences of up to 40 steps) takes about half a
// minute with -race on two cores. Longer runs:
//
//	COWFS_MODEL_STEPS=150 go test -run 'TestModel$' -rapid.checks=3000
//
// COWFS_MODEL_STEPS bounds the number of steps of one sequence (default 40);
// -rapid.checks sets the number of sequences, -rapid.seed replays one.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/local"
	"github.com/cowfs/cowfs/store/mem"
	"pgregory.net/rapid"
)

// mdlStore is a store whose Close does nothing, so that an FS can be
// abandoned and a new one opened on the same store. If fault is set and
// armed, it fails one chosen Put or Commit (changing nothing).
type mdlStore struct {
	store.Store
	fault *mdlFault
}

func (mdlStore) Close() error { return nil }

// mdlFault fails the countdown-th Put or Commit after being armed.
type mdlFault struct {
	armed     bool
	countdown int
	fired     string // what failed
}

var errMdlInjected = errors.New("injected store failure")

// mdlFaultMu serializes inject: an FS makes Puts in parallel.
var mdlFaultMu sync.Mutex

func (s mdlStore) inject(what string) error {
	mdlFaultMu.Lock()
	defer mdlFaultMu.Unlock()
	if s.fault == nil || !s.fault.armed {
		return nil
	}
	if s.fault.countdown--; s.fault.countdown > 0 {
		return nil
	}
	s.fault.armed, s.fault.fired = false, what
	return errMdlInjected
}

func (s mdlStore) Put(ctx context.Context, data []byte) (store.ID, error) {
	if err := s.inject("Put"); err != nil {
		return store.ID{}, err
	}
	return s.Store.Put(ctx, data)
}

func (s mdlStore) Commit(ctx context.Context, b store.Batch) error {
	if err := s.inject("Commit"); err != nil {
		return err
	}
	return s.Store.Commit(ctx, b)
}

const mdlVol = "vol"

// mdlMaxFile bounds the model's file sizes (offsets are drawn to stay below).
const mdlMaxFile = 6 << 20

type mdlKind int

const (
	mdlReg mdlKind = iota + 1
	mdlDir
	mdlSym
)

func (k mdlKind) String() string {
	switch k {
	case mdlReg:
		return "file"
	case mdlDir:
		return "directory"
	case mdlSym:
		return "symlink"
	}
	return "kind?" + strconv.Itoa(int(k))
}

// mdlNode is an inode of the model. Hard links are several directory
// entries pointing at one *mdlNode.
type mdlNode struct {
	id     int
	kind   mdlKind
	perm   uint32
	data   []byte
	target string
	kids   map[string]*mdlNode
	xattrs map[string]string
	ino    uint64 // the number cowfs gave it, once seen (0: not seen yet)
}

type mdlHandle struct {
	id     int
	vol    *mdlVolume
	f      *File
	n      *mdlNode
	path   string // the path it was opened with
	append bool
	wronly bool
	off    int64
}

// writable reports whether the handle was opened for writing.
func (h *mdlHandle) writable() bool { return h.f.flag&(os.O_RDWR|os.O_WRONLY) != 0 }

// mdlVolume is a volume and its model.
type mdlVolume struct {
	name  string
	v     *Volume
	root  *mdlNode
	snaps map[string]*mdlNode // live snapshots: the model as it was
}

type mdl struct {
	st      store.Store
	fault   *mdlFault
	opt     Options
	f       *FS
	vols    []*mdlVolume // vols[0] is mdlVol, which always exists
	nextID  int
	handles []*mdlHandle
	step    int
}

// drawVol draws the volume an action works on: mostly the main one.
func (m *mdl) drawVol(t *rapid.T) *mdlVolume {
	if len(m.vols) == 1 || mdlIntn(4).Draw(t, "otherVolume") > 0 {
		return m.vols[0]
	}
	return mdlPickFrom(m.vols[1:]).Draw(t, "volume")
}

func mdlSteps() int {
	if s := os.Getenv("COWFS_MODEL_STEPS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 40
}

func TestModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runMdl(t, mem.New()) })
}

// TestModelLocal is TestModel on the local store.
func TestModelLocal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runMdl(t, mdlLocalStore(t)) })
}

// mdlLocalStore opens a local store in a new directory, which goes when
// the check ends.
func mdlLocalStore(t *rapid.T) store.Store {
	dir, err := os.MkdirTemp("", "cowfs-model-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	st, err := local.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// runMdl runs one check of the model on st.
func runMdl(t *rapid.T, st store.Store) {
	m := newMdl(t, st)
	steps := int(mdlSpan(t, 1, int64(mdlSteps()), "steps"))
	for m.step = 0; m.step < steps; m.step++ {
		m.doStep(t)
	}
	m.finish(t)
}

func newMdl(t *rapid.T, st store.Store) *mdl {
	m := &mdl{st: st, fault: &mdlFault{}}
	switch mdlIntn(5).Draw(t, "flushBytes") {
	case 0, 1:
		m.opt.FlushBytes = 64 << 10
	case 2:
		m.opt.FlushBytes = 16 << 10
	case 3:
		m.opt.FlushBytes = 1 // every buffered write is cut into blobs at once
	}
	switch mdlIntn(4).Draw(t, "smallCache") {
	case 0:
		m.opt.CacheBytes = 256 << 10
	case 1:
		m.opt.CacheBytes = 4 << 10 // almost nothing stays cached
	}
	if mdlIntn(3).Draw(t, "smallInodeCache") == 0 {
		m.opt.MaxInodes = 4 // nearly every commit drops the clean inodes
	}
	if mdlIntn(3).Draw(t, "smallReleaseBudget") == 0 {
		m.opt.ReleaseBudget = 3 // most deletions wait as zombies (zombies.go)
	}
	t.Logf("options %+v", m.opt)
	f, err := Open(mdlStore{m.st, m.fault}, &m.opt)
	if err != nil {
		t.Fatalf("Open: expected success, got %v", err)
	}
	m.f = f
	v, err := f.CreateVolume(mdlVol)
	if err != nil {
		t.Fatalf("CreateVolume: expected success, got %v", err)
	}
	m.vols = []*mdlVolume{{name: mdlVol, v: v, root: m.newNode(mdlDir, 0o755), snaps: map[string]*mdlNode{}}}
	m.compare(t)
	return m
}

func (m *mdl) newNode(k mdlKind, perm uint32) *mdlNode {
	m.nextID++
	n := &mdlNode{id: m.nextID, kind: k, perm: perm}
	if k == mdlDir {
		n.kids = map[string]*mdlNode{}
	}
	return n
}

// copyTree deep-copies n, keeping hard links among the copies (seen maps
// originals to copies). Copies are new inodes: their numbers are unknown.
func (m *mdl) copyTree(n *mdlNode, seen map[*mdlNode]*mdlNode) *mdlNode {
	if c, ok := seen[n]; ok {
		return c
	}
	c := m.newNode(n.kind, n.perm)
	seen[n] = c
	c.data = bytes.Clone(n.data)
	c.target = n.target
	if n.xattrs != nil {
		c.xattrs = map[string]string{}
		for k, v := range n.xattrs {
			c.xattrs[k] = v
		}
	}
	for name, k := range n.kids {
		c.kids[name] = m.copyTree(k, seen)
	}
	return c
}

// ---- actions ----

type mdlAction struct {
	name   string
	weight int
	fn     func(*mdl, *rapid.T)
}

var mdlActions = []mdlAction{
	{"mkdir", 6, (*mdl).actMkdir},
	{"open", 9, (*mdl).actOpen},
	{"writeAt", 14, (*mdl).actWriteAt},
	{"write", 6, (*mdl).actWrite},
	{"read", 3, (*mdl).actRead},
	{"readAt", 3, (*mdl).actReadAt},
	{"seek", 3, (*mdl).actSeek},
	{"truncate", 5, (*mdl).actTruncate},
	{"truncatePath", 2, (*mdl).actTruncatePath},
	{"fallocate", 9, (*mdl).actFallocate},
	{"copyRange", 8, (*mdl).actCopyRange},
	{"clone", 6, (*mdl).actClone},
	{"snapshot", 3, (*mdl).actSnapshot},
	{"deleteSnapshot", 2, (*mdl).actDeleteSnapshot},
	{"verifySnapshot", 2, (*mdl).actVerifySnapshot},
	{"rename", 9, (*mdl).actRename},
	{"link", 5, (*mdl).actLink},
	{"remove", 6, (*mdl).actRemove},
	{"removeOpen", 3, (*mdl).actRemoveOpen},
	{"symlink", 2, (*mdl).actSymlink},
	{"xattr", 2, (*mdl).actXattr},
	{"chmod", 1, (*mdl).actChmod},
	{"reopen", 2, (*mdl).actReopen},
	{"close", 5, (*mdl).actClose},
	{"commit", 2, (*mdl).actCommit},
	{"failedCommit", 2, (*mdl).actFailedCommit},
	{"efbig", 1, (*mdl).actEFBIG},
	{"newVolume", 2, (*mdl).actNewVolume},
	{"deleteVolume", 1, (*mdl).actDeleteVolume},
	{"copyFromSnapshot", 2, (*mdl).actCopyFromSnapshot},
	{"manyEntries", 2, (*mdl).actManyEntries},
	{"fragment", 2, (*mdl).actFragment},
}

func (m *mdl) action(t *rapid.T) {
	total := 0
	for _, a := range mdlActions {
		total += a.weight
	}
	r := mdlIntn(total).Draw(t, "action")
	for _, a := range mdlActions {
		if r < a.weight {
			a.fn(m, t)
			return
		}
		r -= a.weight
	}
}

// doStep runs one step: one action, or (one step in eight) a burst of a few
// actions with nothing in between (no comparison, no commit), so that
// operations meet each other's uncommitted, unflushed state. Then it compares
// everything and runs the invariant checker (which commits).
func (m *mdl) doStep(t *rapid.T) {
	n := 1
	if mdlIntn(8).Draw(t, "burst") == 0 {
		n = rapid.IntRange(2, 6).Draw(t, "burstLen")
	}
	for i := 0; i < n; i++ {
		m.action(t)
	}
	m.compare(t)
	mdlCheckFS(t, m.f, fmt.Sprintf("after step %d", m.step))
}

func (m *mdl) logf(t *rapid.T, format string, args ...any) {
	t.Logf("step %d: "+format, append([]any{m.step}, args...)...)
}

// ---- paths ----

var mdlNames = []string{"a", "b", "c", "d", "e", "f"}

func mdlJoin(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func mdlSplit(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func mdlSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type mdlEntry struct {
	path string
	n    *mdlNode
}

// entries lists every name below root (not root itself), sorted by path.
func mdlEntries(root *mdlNode) []mdlEntry {
	var out []mdlEntry
	var walk func(dir string, d *mdlNode)
	walk = func(dir string, d *mdlNode) {
		for _, k := range mdlSortedKeys(d.kids) {
			n := d.kids[k]
			p := mdlJoin(dir, k)
			out = append(out, mdlEntry{p, n})
			if n.kind == mdlDir {
				walk(p, n)
			}
		}
	}
	walk("", root)
	return out
}

// nameCounts counts the names of every reachable node.
func mdlNameCounts(root *mdlNode) map[*mdlNode]int {
	c := map[*mdlNode]int{root: 1}
	for _, e := range mdlEntries(root) {
		c[e.n]++
	}
	return c
}

func mdlSubdirs(d *mdlNode) uint32 {
	var n uint32
	for _, k := range d.kids {
		if k.kind == mdlDir {
			n++
		}
	}
	return n
}

type mdlRes struct {
	dirs   []*mdlNode // the directories walked, root to parent
	parent *mdlNode
	name   string
	node   *mdlNode // nil if the name does not exist
}

// mdlResolve walks p in the model. Paths drawn by drawPath never go through a
// symlink, so the model need not follow any.
func mdlResolve(root *mdlNode, p string) (mdlRes, syscall.Errno) {
	parts := mdlSplit(p)
	if len(parts) == 0 {
		return mdlRes{dirs: []*mdlNode{root}, parent: root, node: root}, 0
	}
	cur := root
	dirs := []*mdlNode{root}
	for _, c := range parts[:len(parts)-1] {
		k := cur.kids[c]
		switch {
		case k == nil:
			return mdlRes{}, syscall.ENOENT
		case k.kind == mdlReg:
			return mdlRes{}, syscall.ENOTDIR
		case k.kind == mdlSym:
			panic("model: drawn path " + p + " goes through a symlink")
		}
		cur = k
		dirs = append(dirs, k)
	}
	last := parts[len(parts)-1]
	return mdlRes{dirs: dirs, parent: cur, name: last, node: cur.kids[last]}, 0
}

// drawPath draws a path: an existing entry (with probability existing%), a
// new or existing name in an existing directory, and sometimes a path
// through a regular file (ENOTDIR) or a missing directory (ENOENT).
func (vs *mdlVolume) drawPath(t *rapid.T, label string, existing int) string {
	ents := mdlEntries(vs.root)
	dirs := []string{""}
	var regs []string
	for _, e := range ents {
		switch e.n.kind {
		case mdlDir:
			dirs = append(dirs, e.path)
		case mdlReg:
			regs = append(regs, e.path)
		}
	}
	var p string
	c := mdlIntn(100).Draw(t, label+".how")
	switch {
	case c < existing && len(ents) > 0:
		p = mdlPickFrom(ents).Draw(t, label).path
	case c < 95 || (c < 97 && len(regs) == 0):
		d := mdlPickFrom(dirs).Draw(t, label+".dir")
		p = mdlJoin(d, mdlPickFrom(mdlNames).Draw(t, label+".name"))
	case c < 97:
		r := mdlPickFrom(regs).Draw(t, label+".file")
		p = mdlJoin(r, mdlPickFrom(mdlNames).Draw(t, label+".name"))
	default:
		d := mdlPickFrom(dirs).Draw(t, label+".dir")
		p = mdlJoin(mdlJoin(d, "missing"), mdlPickFrom(mdlNames).Draw(t, label+".name"))
	}
	if mdlIntn(10).Draw(t, label+".slash") == 0 {
		p = "/" + p
	}
	return p
}

// ---- unbiased draws ----

// mdlUniform draws an integer in [0, span] uniformly from fair bits, so
// that it still shrinks towards 0. rapid's integer generators prefer small
// values and the ends of a range, which would make the first and last
// choices of every selection far more frequent than the others.
func mdlUniform(t *rapid.T, span uint64) uint64 {
	nbits := max(1, bits.Len64(span)) // a Custom generator must draw something
	for {
		var u uint64
		for i := 0; i < nbits; i++ {
			if rapid.Bool().Draw(t, "bit") {
				u |= 1 << i
			}
		}
		if u <= span {
			return u
		}
	}
}

// mdlIntn draws an integer in [0, n) uniformly (see mdlUniform).
func mdlIntn(n int) *rapid.Generator[int] {
	return rapid.Custom(func(t *rapid.T) int { return int(mdlUniform(t, uint64(n-1))) })
}

// mdlPickFrom draws one of s uniformly (see mdlUniform).
func mdlPickFrom[E any](s []E) *rapid.Generator[E] {
	return rapid.Custom(func(t *rapid.T) E { return s[mdlUniform(t, uint64(len(s)-1))] })
}

// mdlRange draws an integer in [lo, hi] uniformly (see mdlUniform).
func mdlRange(lo, hi int64) *rapid.Generator[int64] {
	return rapid.Custom(func(t *rapid.T) int64 { return lo + int64(mdlUniform(t, uint64(hi-lo))) })
}

// mdlSpan draws an integer in [lo, hi]: half the time uniformly, half the
// time with rapid's preference for small values and the ends.
func mdlSpan(t *rapid.T, lo, hi int64, label string) int64 {
	if rapid.Bool().Draw(t, label+".uniform") {
		return mdlRange(lo, hi).Draw(t, label)
	}
	return rapid.Int64Range(lo, hi).Draw(t, label)
}

// ---- data ----

var mdlCorpus = sync.OnceValue(func() []byte {
	r := rand.New(rand.NewPCG(7, 7))
	b := make([]byte, 3<<20)
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
})

// drawSize: mostly small (around the 4 KiB inline limit), often up to
// 200 KiB, rarely up to ~1 MiB.
func mdlDrawSize(t *rapid.T, label string) int {
	switch c := mdlIntn(100).Draw(t, label+".class"); {
	case c < 40:
		return mdlIntn(5001).Draw(t, label)
	case c < 70:
		return int(mdlSpan(t, 4000, 70<<10, label))
	case c < 92:
		return int(mdlSpan(t, 60<<10, 200<<10, label))
	default:
		return int(mdlSpan(t, 200<<10, 1100<<10, label))
	}
}

// drawData draws bytes to write: random, zeros, or a slice of a fixed
// corpus (so that different writes share content and chunks dedup).
func mdlDrawData(t *rapid.T, label string) []byte {
	n := mdlDrawSize(t, label+".len")
	kind := mdlIntn(10).Draw(t, label+".kind")
	seed := rapid.Uint64().Draw(t, label+".seed")
	b := make([]byte, n)
	switch {
	case kind == 0:
	case kind <= 3:
		c := mdlCorpus()
		copy(b, c[seed%uint64(len(c)-n):])
	default:
		r := rand.New(rand.NewPCG(seed, uint64(n)))
		for i := 0; i < n; i += 8 {
			v := r.Uint64()
			for j := 0; j < 8 && i+j < n; j++ {
				b[i+j] = byte(v >> (8 * j))
			}
		}
	}
	return b
}

// drawOff draws an offset for a file of size size: mostly inside it, often
// a little past it, sometimes far past it (a sparse gap). need is the length
// that will be written there; the end stays below mdlMaxFile.
func mdlDrawOff(t *rapid.T, label string, size int64, need int64) int64 {
	var off int64
	switch c := mdlIntn(100).Draw(t, label+".class"); {
	case c < 65:
		off = mdlSpan(t, 0, size, label)
	case c < 90:
		off = mdlSpan(t, size, size+300<<10, label)
	default:
		off = mdlSpan(t, 0, 4<<20, label)
	}
	if off+need > mdlMaxFile {
		off = max(0, mdlMaxFile-need)
	}
	return off
}

func mdlWriteAt(d []byte, off int64, p []byte) []byte {
	if len(p) == 0 {
		return d // writing nothing changes nothing, not even the size
	}
	if end := off + int64(len(p)); end > int64(len(d)) {
		d = append(d, make([]byte, end-int64(len(d)))...)
	}
	copy(d[off:], p)
	return d
}

func mdlResize(d []byte, size int64) []byte {
	if size <= int64(len(d)) {
		return d[:size:size]
	}
	return append(d, make([]byte, size-int64(len(d)))...)
}

// ---- expectations ----

func mdlErrnoName(e syscall.Errno) string {
	if e == 0 {
		return "success"
	}
	names := map[syscall.Errno]string{
		syscall.ENOENT: "ENOENT", syscall.EEXIST: "EEXIST", syscall.ENOTDIR: "ENOTDIR",
		syscall.EISDIR: "EISDIR", syscall.ENOTEMPTY: "ENOTEMPTY", syscall.EINVAL: "EINVAL",
		syscall.EPERM: "EPERM", syscall.EBADF: "EBADF", syscall.EROFS: "EROFS",
		syscall.EFBIG: "EFBIG", syscall.ENODATA: "ENODATA", syscall.EOPNOTSUPP: "EOPNOTSUPP",
		syscall.ENXIO: "ENXIO", syscall.EBUSY: "EBUSY", syscall.ELOOP: "ELOOP",
	}
	if s, ok := names[e]; ok {
		return s
	}
	return fmt.Sprintf("errno %d (%v)", int(e), e)
}

// mdlSentinel is the io/fs error a cowfs error with errno e must match.
func mdlSentinel(e syscall.Errno) error {
	switch e {
	case syscall.ENOENT:
		return fs.ErrNotExist
	case syscall.EEXIST, syscall.ENOTEMPTY:
		return fs.ErrExist
	case syscall.EINVAL:
		return fs.ErrInvalid
	case syscall.EPERM, syscall.EACCES, syscall.EROFS:
		return fs.ErrPermission
	case syscall.EOPNOTSUPP:
		return errors.ErrUnsupported
	}
	return nil
}

// mdlCheckErr verifies that err is what the model says: nil for want 0, else
// a *cowfs.Error carrying errno want that matches want and its io/fs error.
func mdlCheckErr(what string, err error, want syscall.Errno) error {
	if want == 0 {
		if err != nil {
			return fmt.Errorf("%s: expected success, got error %v", what, err)
		}
		return nil
	}
	if err == nil {
		return fmt.Errorf("%s: expected %s, got success", what, mdlErrnoName(want))
	}
	var ce *Error
	if !errors.As(err, &ce) {
		return fmt.Errorf("%s: expected a *cowfs.Error with %s, got %T: %v", what, mdlErrnoName(want), err, err)
	}
	if ce.Errno != want || Errno(err) != want {
		return fmt.Errorf("%s: expected %s, got %s (%v)", what, mdlErrnoName(want), mdlErrnoName(ce.Errno), err)
	}
	if !errors.Is(err, want) {
		return fmt.Errorf("%s: expected errors.Is(err, %s) to hold for %v", what, mdlErrnoName(want), err)
	}
	if s := mdlSentinel(want); s != nil && !errors.Is(err, s) {
		return fmt.Errorf("%s: expected errors.Is(err, %v) to hold for %s error %v", what, s, mdlErrnoName(want), err)
	}
	return nil
}

func mdlExpect(t *rapid.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if e := mdlCheckErr(what, err, want); e != nil {
		t.Fatal(e)
	}
}

// mdlDiff describes how got differs from want.
func mdlDiff(got, want []byte) string {
	if len(got) != len(want) {
		n := min(len(got), len(want))
		for i := 0; i < n; i++ {
			if got[i] != want[i] {
				return fmt.Sprintf("expected %d bytes, got %d; first difference at offset %d (expected %#x, got %#x)", len(want), len(got), i, want[i], got[i])
			}
		}
		return fmt.Sprintf("expected %d bytes, got %d (the common prefix matches)", len(want), len(got))
	}
	for i := range got {
		if got[i] != want[i] {
			j := i
			for j < len(got) && got[j] != want[j] {
				j++
			}
			return fmt.Sprintf("%d bytes as expected in length, but bytes [%d,%d) differ (first: expected %#x, got %#x)", len(got), i, j, want[i], got[i])
		}
	}
	return ""
}

// ---- handles ----

const mdlMaxHandles = 6

func (m *mdl) drawHandle(t *rapid.T, label string) *mdlHandle {
	if len(m.handles) == 0 {
		return nil
	}
	return mdlPickFrom(m.handles).Draw(t, label)
}

// handle draws an open handle, opening a file (a new one if need be) when
// none is open.
func (m *mdl) handle(t *rapid.T, label string) *mdlHandle {
	if h := m.drawHandle(t, label); h != nil {
		return h
	}
	vs := m.drawVol(t)
	var regs []string
	for _, e := range mdlEntries(vs.root) {
		if e.n.kind == mdlReg {
			regs = append(regs, e.path)
		}
	}
	var p string
	if len(regs) > 0 && rapid.Bool().Draw(t, label+".existing") {
		p = mdlPickFrom(regs).Draw(t, label+".path")
	} else {
		p = mdlPickFrom(mdlNames).Draw(t, label+".new")
	}
	r, e := mdlResolve(vs.root, p)
	if e != 0 || (r.node != nil && r.node.kind != mdlReg) {
		return nil
	}
	m.open(t, vs, p, os.O_RDWR|os.O_CREATE, 0o644)
	if len(m.handles) == 0 {
		return nil
	}
	return m.handles[len(m.handles)-1]
}

func mdlFlagString(flag int) string {
	var s []string
	switch flag & (os.O_WRONLY | os.O_RDWR) {
	case os.O_WRONLY:
		s = append(s, "O_WRONLY")
	case os.O_RDWR:
		s = append(s, "O_RDWR")
	default:
		s = append(s, "O_RDONLY")
	}
	for _, f := range []struct {
		bit  int
		name string
	}{{os.O_CREATE, "O_CREATE"}, {os.O_EXCL, "O_EXCL"}, {os.O_TRUNC, "O_TRUNC"}, {os.O_APPEND, "O_APPEND"}} {
		if flag&f.bit != 0 {
			s = append(s, f.name)
		}
	}
	return strings.Join(s, "|")
}

func (m *mdl) open(t *rapid.T, vs *mdlVolume, p string, flag int, perm uint32) {
	what := fmt.Sprintf("%s: OpenFile(%q, %s, %#o)", vs.name, p, mdlFlagString(flag), perm)
	r, want := mdlResolve(vs.root, p)
	write := flag&(os.O_WRONLY|os.O_RDWR) != 0
	if want == 0 {
		switch {
		case r.node == nil && flag&os.O_CREATE == 0:
			want = syscall.ENOENT
		case r.node == nil:
		case flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
			want = syscall.EEXIST
		case r.node.kind == mdlDir && (write || flag&os.O_CREATE != 0):
			want = syscall.EISDIR
		case r.node.kind == mdlSym:
			m.logf(t, "skip %s: the model does not follow symlinks", what)
			return
		}
	}
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	f, err := vs.v.OpenFile(p, flag, perm)
	mdlExpect(t, what, err, want)
	if want != 0 {
		return
	}
	n := r.node
	if n == nil {
		n = m.newNode(mdlReg, perm&0o7777)
		r.parent.kids[r.name] = n
	}
	if flag&os.O_TRUNC != 0 && n.kind == mdlReg && write {
		n.data = nil
	}
	m.nextID++
	h := &mdlHandle{id: m.nextID, vol: vs, f: f, n: n, path: vs.name + ":" + p, append: flag&os.O_APPEND != 0, wronly: flag&os.O_WRONLY != 0}
	m.handles = append(m.handles, h)
	if n.kind != mdlReg {
		// Directories opened read-only are of no use to the actions: close.
		m.closeHandle(t, h)
	}
}

func (m *mdl) closeHandle(t *rapid.T, h *mdlHandle) {
	m.logf(t, "close handle %d (%s)", h.id, h.path)
	mdlExpect(t, fmt.Sprintf("Close of handle %d (%s)", h.id, h.path), h.f.Close(), 0)
	m.handles = slices.DeleteFunc(m.handles, func(x *mdlHandle) bool { return x == h })
	mdlExpect(t, fmt.Sprintf("second Close of handle %d (%s)", h.id, h.path), h.f.Close(), syscall.EBADF)
}

func (m *mdl) actOpen(t *rapid.T) {
	vs := m.drawVol(t)
	if len(m.handles) >= mdlMaxHandles {
		m.closeHandle(t, m.drawHandle(t, "tooMany"))
		return
	}
	p := vs.drawPath(t, "path", 50)
	flag := mdlPickFrom([]int{
		os.O_RDWR, os.O_RDWR | os.O_CREATE, os.O_RDWR | os.O_CREATE | os.O_EXCL,
		os.O_RDWR | os.O_CREATE | os.O_TRUNC, os.O_RDWR | os.O_APPEND,
		os.O_RDWR | os.O_CREATE | os.O_APPEND, os.O_WRONLY | os.O_CREATE, os.O_RDONLY,
		os.O_RDONLY | os.O_CREATE,
	}).Draw(t, "flag")
	perm := mdlPickFrom([]uint32{0o644, 0o600, 0o755, 0o4755}).Draw(t, "perm")
	m.open(t, vs, p, flag, perm)
}

// actManyEntries creates or removes many entries of one directory, so that
// directory trees grow past one node and shrink back.
func (m *mdl) actManyEntries(t *rapid.T) {
	vs := m.drawVol(t)
	dirs := []string{""}
	for _, e := range mdlEntries(vs.root) {
		if e.n.kind == mdlDir {
			dirs = append(dirs, e.path)
		}
	}
	dir := mdlPickFrom(dirs).Draw(t, "dir")
	d, _ := mdlResolve(vs.root, dir)
	seed := rapid.Uint64().Draw(t, "seed")
	rnd := rand.New(rand.NewPCG(seed, 1))
	if rapid.Bool().Draw(t, "remove") {
		var names []string
		for _, k := range mdlSortedKeys(d.node.kids) {
			if n := d.node.kids[k]; strings.HasPrefix(k, "m") && (n.kind != mdlDir || len(n.kids) == 0) {
				names = append(names, k)
			}
		}
		m.logf(t, "%s: remove most of %d entries m* of %q", vs.name, len(names), dir)
		for _, k := range names {
			if rnd.IntN(5) == 0 {
				continue
			}
			p := mdlJoin(dir, k)
			mdlExpect(t, vs.name+": Remove("+p+")", vs.v.Remove(p), 0)
			delete(d.node.kids, k)
		}
		return
	}
	n := int(mdlSpan(t, 20, 150, "n"))
	m.logf(t, "%s: create up to %d entries m* in %q", vs.name, n, dir)
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("m%03d", rnd.IntN(400))
		p := mdlJoin(dir, k)
		var want syscall.Errno
		if d.node.kids[k] != nil {
			want = syscall.EEXIST
		}
		switch rnd.IntN(8) {
		case 0:
			mdlExpect(t, vs.name+": Mkdir("+p+")", vs.v.Mkdir(p, 0o755), want)
			if want == 0 {
				d.node.kids[k] = m.newNode(mdlDir, 0o755)
			}
		case 1:
			mdlExpect(t, vs.name+": Symlink(x, "+p+")", vs.v.Symlink("x", p), want)
			if want == 0 {
				n := m.newNode(mdlSym, 0o777)
				n.target = "x"
				d.node.kids[k] = n
			}
		default:
			data := []byte(strings.Repeat(k, rnd.IntN(3000)))
			f, err := vs.v.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			mdlExpect(t, vs.name+": OpenFile("+p+", O_CREATE|O_EXCL)", err, want)
			if want != 0 {
				continue
			}
			if _, err := f.Write(data); err != nil {
				t.Fatalf("%s: Write of %d bytes to new file %s: expected success, got %v", vs.name, len(data), p, err)
			}
			mdlExpect(t, vs.name+": Close("+p+")", f.Close(), 0)
			n := m.newNode(mdlReg, 0o644)
			n.data = data
			d.node.kids[k] = n
		}
	}
}

// actFragment makes many small writes, copies and hole punches into one
// file, so that its rope grows to many extents and several levels.
func (m *mdl) actFragment(t *rapid.T) {
	h := m.handle(t, "h")
	if h == nil || !h.writable() || h.append {
		return
	}
	seed := rapid.Uint64().Draw(t, "seed")
	rnd := rand.New(rand.NewPCG(seed, 2))
	n := int(mdlSpan(t, 20, 300, "n"))
	span := max(int64(len(h.n.data)), 1<<10) + 64<<10
	m.logf(t, "%d small changes within %d bytes of handle %d %s", n, span, h.id, h.path)
	for i := 0; i < n; i++ {
		off := rnd.Int64N(span)
		size := int64(len(h.n.data))
		switch rnd.IntN(4) {
		case 0, 1:
			p := make([]byte, 1+rnd.IntN(3000))
			for j := range p {
				p[j] = byte(rnd.Uint32())
			}
			if _, err := h.f.WriteAt(p, off); err != nil {
				t.Fatalf("WriteAt(handle %d %s, %d bytes, off %d) (fragmenting): expected success, got %v", h.id, h.path, len(p), off, err)
			}
			h.n.data = mdlWriteAt(h.n.data, off, p)
		case 2:
			if size == 0 || h.wronly {
				continue
			}
			soff := rnd.Int64N(size)
			k := min(size-soff, 1+rnd.Int64N(5000))
			got, err := CopyRange(h.f, soff, h.f, off, k)
			if err != nil || got != k {
				t.Fatalf("CopyRange(handle %d %s, %d -> %d, %d) (fragmenting): expected %d bytes copied, got (%d, %v)", h.id, h.path, soff, off, k, k, got, err)
			}
			h.n.data = mdlWriteAt(h.n.data, off, bytes.Clone(h.n.data[soff:soff+k]))
		case 3:
			k := 1 + rnd.Int64N(3000)
			if err := h.f.Fallocate(FallocPunchHole|FallocKeepSize, off, k); err != nil {
				t.Fatalf("Fallocate(punch, handle %d %s, %d, %d) (fragmenting): expected success, got %v", h.id, h.path, off, k, err)
			}
			if end := min(off+k, size); off < end {
				clear(h.n.data[off:end])
			}
		}
	}
}

func (m *mdl) actClose(t *rapid.T) {
	if h := m.drawHandle(t, "h"); h != nil {
		m.closeHandle(t, h)
	}
}

func (m *mdl) actWriteAt(t *rapid.T) {
	h := m.handle(t, "h")
	if h == nil {
		return
	}
	data := mdlDrawData(t, "data")
	off := mdlDrawOff(t, "off", int64(len(h.n.data)), int64(len(data)))
	var want syscall.Errno
	switch {
	case h.append:
		want = syscall.EINVAL
	case !h.writable():
		want = syscall.EBADF
	}
	what := fmt.Sprintf("WriteAt(handle %d %s, %d bytes, off %d)", h.id, h.path, len(data), off)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	n, err := h.f.WriteAt(data, off)
	mdlExpect(t, what, err, want)
	if want != 0 {
		return
	}
	if n != len(data) {
		t.Fatalf("%s: expected to write %d bytes, wrote %d", what, len(data), n)
	}
	h.n.data = mdlWriteAt(h.n.data, off, data)
	if len(data) > 0 && mdlIntn(4).Draw(t, "checkOff") == 0 {
		// pwrite leaves the file offset alone.
		pos, err := h.f.Seek(0, io.SeekCurrent)
		mdlExpect(t, what+" then Seek(0, SeekCurrent)", err, 0)
		if pos != h.off {
			t.Fatalf("%s moved the file offset: expected %d after it, got %d", what, h.off, pos)
		}
	}
}

func (m *mdl) actWrite(t *rapid.T) {
	h := m.handle(t, "h")
	if h == nil {
		return
	}
	data := mdlDrawData(t, "data")
	if !h.append && h.off+int64(len(data)) > mdlMaxFile {
		h.off = 0
		if _, err := h.f.Seek(0, io.SeekStart); err != nil {
			t.Fatalf("Seek(0, SeekStart) of handle %d: expected success, got %v", h.id, err)
		}
	}
	if h.append && int64(len(h.n.data)+len(data)) > mdlMaxFile {
		data = data[:0]
	}
	var want syscall.Errno
	if !h.writable() {
		want = syscall.EBADF
	}
	what := fmt.Sprintf("Write(handle %d %s append=%v offset %d, %d bytes)", h.id, h.path, h.append, h.off, len(data))
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	n, err := h.f.Write(data)
	mdlExpect(t, what, err, want)
	if want != 0 {
		return
	}
	if n != len(data) {
		t.Fatalf("%s: expected to write %d bytes, wrote %d", what, len(data), n)
	}
	if len(data) == 0 {
		return
	}
	off := h.off
	if h.append {
		off = int64(len(h.n.data))
	}
	h.n.data = mdlWriteAt(h.n.data, off, data)
	h.off = off + int64(len(data))
}

func (m *mdl) actRead(t *rapid.T) {
	h := m.handle(t, "h")
	if h == nil {
		return
	}
	n := int(mdlSpan(t, 0, 300<<10, "n"))
	buf := make([]byte, n)
	what := fmt.Sprintf("Read(handle %d %s at offset %d, %d bytes)", h.id, h.path, h.off, n)
	m.logf(t, "%s", what)
	got, err := h.f.Read(buf)
	if h.wronly {
		mdlExpect(t, what, err, syscall.EBADF)
		return
	}
	size := int64(len(h.n.data))
	var want []byte
	if h.off < size {
		want = h.n.data[h.off:min(size, h.off+int64(n))]
	}
	switch {
	case n > 0 && len(want) == 0:
		if err != io.EOF || got != 0 {
			t.Fatalf("%s: expected (0, io.EOF) at or past the end (size %d), got (%d, %v)", what, size, got, err)
		}
	case err != nil:
		t.Fatalf("%s: expected %d bytes and no error, got (%d, %v)", what, len(want), got, err)
	}
	if d := mdlDiff(buf[:got], want); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
	h.off += int64(got)
}

func (m *mdl) actReadAt(t *rapid.T) {
	h := m.handle(t, "h")
	if h == nil {
		return
	}
	size := int64(len(h.n.data))
	off := mdlSpan(t, 0, size+1000, "off")
	n := int(mdlSpan(t, 0, 300<<10, "n"))
	buf := make([]byte, n)
	what := fmt.Sprintf("ReadAt(handle %d %s, off %d, %d bytes)", h.id, h.path, off, n)
	m.logf(t, "%s", what)
	got, err := h.f.ReadAt(buf, off)
	if h.wronly {
		mdlExpect(t, what, err, syscall.EBADF)
		return
	}
	var want []byte
	if off < size {
		want = h.n.data[off:min(size, off+int64(n))]
	}
	if len(want) < n {
		if err != io.EOF {
			t.Fatalf("%s: expected %d bytes and io.EOF (size %d), got (%d, %v)", what, len(want), size, got, err)
		}
	} else if err != nil {
		t.Fatalf("%s: expected %d bytes and no error, got (%d, %v)", what, len(want), got, err)
	}
	if d := mdlDiff(buf[:got], want); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
}

func (m *mdl) actSeek(t *rapid.T) {
	h := m.handle(t, "h")
	if h == nil {
		return
	}
	size := int64(len(h.n.data))
	whence := mdlPickFrom([]int{io.SeekStart, io.SeekCurrent, io.SeekEnd, SeekData, SeekHole}).Draw(t, "whence")
	var off int64
	switch whence {
	case io.SeekStart, SeekData, SeekHole:
		off = mdlSpan(t, -2, size+100, "off")
	case io.SeekCurrent:
		off = mdlSpan(t, -h.off-2, size-h.off+100, "off")
	case io.SeekEnd:
		off = mdlSpan(t, -size-2, 100, "off")
	}
	what := fmt.Sprintf("Seek(handle %d %s, %d, whence %d) at offset %d of %d bytes", h.id, h.path, off, whence, h.off, size)
	m.logf(t, "%s", what)
	pos, err := h.f.Seek(off, whence)
	switch whence {
	case io.SeekStart, io.SeekCurrent, io.SeekEnd:
		want := off
		if whence == io.SeekCurrent {
			want += h.off
		} else if whence == io.SeekEnd {
			want += size
		}
		if want < 0 {
			mdlExpect(t, what, err, syscall.EINVAL)
			return
		}
		mdlExpect(t, what, err, 0)
		if pos != want {
			t.Fatalf("%s: expected position %d, got %d", what, want, pos)
		}
	case SeekData, SeekHole:
		if off < 0 || off >= size {
			want := syscall.ENXIO
			if off < 0 {
				// lseek(2) gives ENXIO for offsets past the end; a negative
				// one is either EINVAL or ENXIO.
				if Errno(err) == syscall.EINVAL {
					want = syscall.EINVAL
				}
			}
			mdlExpect(t, what, err, want)
			return
		}
		if whence == SeekData {
			if err != nil {
				// ENXIO: no data after off, so everything there reads as zeros.
				mdlExpect(t, what, err, syscall.ENXIO)
				if i := bytes.IndexFunc(h.n.data[off:], func(r rune) bool { return r != 0 }); i >= 0 {
					t.Fatalf("%s: ENXIO (no data after %d), but the file holds non-zero data at %d", what, off, off+int64(i))
				}
				return
			}
			if pos < off || pos >= size {
				t.Fatalf("%s: expected a position in [%d,%d), got %d", what, off, size, pos)
			}
			if bytes.ContainsFunc(h.n.data[off:pos], func(r rune) bool { return r != 0 }) {
				t.Fatalf("%s: skipped [%d,%d) as a hole, but it holds non-zero bytes", what, off, pos)
			}
		} else {
			mdlExpect(t, what, err, 0)
			if pos < off || pos > size {
				t.Fatalf("%s: expected a position in [%d,%d], got %d", what, off, size, pos)
			}
			if pos < size && h.n.data[pos] != 0 {
				t.Fatalf("%s: position %d is said to be in a hole but holds %#x", what, pos, h.n.data[pos])
			}
		}
	}
	h.off = pos
}

func (m *mdl) actTruncate(t *rapid.T) {
	h := m.handle(t, "h")
	if h == nil {
		return
	}
	size := int64(len(h.n.data))
	ns := mdlSpan(t, 0, min(size+300<<10, mdlMaxFile), "size")
	if mdlIntn(4).Draw(t, "shrink") == 0 {
		ns = mdlSpan(t, 0, size, "small")
	}
	var want syscall.Errno
	if !h.writable() {
		want = syscall.EBADF
	}
	what := fmt.Sprintf("Truncate(handle %d %s, %d) of %d bytes", h.id, h.path, ns, size)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	mdlExpect(t, what, h.f.Truncate(ns), want)
	if want == 0 {
		h.n.data = mdlResize(h.n.data, ns)
	}
}

func (m *mdl) actTruncatePath(t *rapid.T) {
	vs := m.drawVol(t)
	p := vs.drawPath(t, "path", 80)
	r, want := mdlResolve(vs.root, p)
	var ns int64
	if want == 0 {
		switch {
		case r.node == nil:
			want = syscall.ENOENT
		case r.node.kind == mdlDir:
			want = syscall.EISDIR
		case r.node.kind == mdlSym:
			return
		default:
			ns = mdlSpan(t, 0, int64(len(r.node.data))+100<<10, "size")
		}
	}
	what := vs.name + ": " + fmt.Sprintf("Volume.Truncate(%q, %d)", p, ns)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	mdlExpect(t, what, vs.v.Truncate(p, ns), want)
	if want == 0 {
		r.node.data = mdlResize(r.node.data, ns)
	}
}

func (m *mdl) actFallocate(t *rapid.T) {
	h := m.handle(t, "h")
	if h == nil {
		return
	}
	mode := mdlPickFrom([]uint32{
		0, FallocKeepSize, FallocPunchHole | FallocKeepSize, FallocPunchHole | FallocKeepSize,
		FallocZeroRange, FallocZeroRange | FallocKeepSize, FallocInsertRange, FallocInsertRange,
		FallocCollapseRange, FallocCollapseRange, FallocPunchHole,
	}).Draw(t, "mode")
	size := int64(len(h.n.data))
	var off, n int64
	switch c := mdlIntn(20).Draw(t, "range"); {
	case c == 0:
		off, n = mdlSpan(t, -5, size, "off"), mdlSpan(t, -5, 0, "n")
	case c == 1:
		off, n = mdlSpan(t, -5, -1, "off"), mdlSpan(t, 1, 100, "n")
	case c < 15:
		off = mdlSpan(t, 0, size, "off")
		n = mdlSpan(t, 1, max(1, size-off+10), "n")
	default:
		off = mdlSpan(t, 0, size+200<<10, "off")
		n = mdlSpan(t, 1, 300<<10, "n")
	}
	grows := mode == 0 || mode == FallocZeroRange
	if (grows && off+n > mdlMaxFile) || (mode == FallocInsertRange && size+n > mdlMaxFile) {
		return
	}
	var want syscall.Errno
	switch {
	case !h.writable():
		want = syscall.EBADF
	case off < 0 || n <= 0:
		want = syscall.EINVAL
	case mode == FallocPunchHole:
		want = syscall.EOPNOTSUPP
	case mode == FallocInsertRange && off >= size:
		want = syscall.EINVAL
	case mode == FallocCollapseRange && off+n >= size:
		want = syscall.EINVAL
	}
	what := fmt.Sprintf("Fallocate(handle %d %s, mode %#x, off %d, len %d) of %d bytes", h.id, h.path, mode, off, n, size)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	mdlExpect(t, what, h.f.Fallocate(mode, off, n), want)
	if want != 0 {
		return
	}
	d := h.n.data
	switch mode {
	case 0:
		if off+n > size {
			d = mdlResize(d, off+n)
		}
	case FallocPunchHole | FallocKeepSize, FallocZeroRange | FallocKeepSize:
		if end := min(off+n, size); off < end {
			clear(d[off:end])
		}
	case FallocZeroRange:
		if off+n > size {
			d = mdlResize(d, off+n)
		}
		clear(d[off : off+n])
	case FallocInsertRange:
		d = slices.Concat(d[:off], make([]byte, n), d[off:])
	case FallocCollapseRange:
		d = slices.Concat(d[:off], d[off+n:])
	}
	h.n.data = d
}

func (m *mdl) actCopyRange(t *rapid.T) {
	src := m.handle(t, "src")
	if src == nil {
		return
	}
	dst := src
	if mdlIntn(3).Draw(t, "sameHandle") > 0 {
		dst = m.handle(t, "dst")
	}
	ssize, dsize := int64(len(src.n.data)), int64(len(dst.n.data))
	soff := mdlSpan(t, 0, ssize+100, "soff")
	n := mdlSpan(t, 0, ssize+100, "n")
	if mdlIntn(10).Draw(t, "negative") == 0 {
		n = -1
	}
	doff := mdlDrawOff(t, "doff", dsize, min(n, ssize))
	var want syscall.Errno
	switch {
	case src.wronly, !dst.writable():
		want = syscall.EBADF
	case dst.append:
		want = syscall.EBADF
	case n < 0:
		want = syscall.EINVAL
	}
	what := fmt.Sprintf("CopyRange(handle %d %s off %d (of %d bytes) -> handle %d %s off %d (of %d bytes), len %d)",
		src.id, src.path, soff, ssize, dst.id, dst.path, doff, dsize, n)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	got, err := CopyRange(src.f, soff, dst.f, doff, n)
	mdlExpect(t, what, err, want)
	if want != 0 {
		return
	}
	var copied int64
	if soff < ssize {
		copied = min(n, ssize-soff)
	}
	if got != copied {
		t.Fatalf("%s: expected to copy %d bytes, copied %d", what, copied, got)
	}
	if copied > 0 {
		piece := bytes.Clone(src.n.data[soff : soff+copied])
		dst.n.data = mdlWriteAt(dst.n.data, doff, piece)
	}
}

func (m *mdl) actMkdir(t *rapid.T) {
	vs := m.drawVol(t)
	p := vs.drawPath(t, "path", 10)
	perm := mdlPickFrom([]uint32{0o755, 0o700, 0o1777}).Draw(t, "perm")
	r, want := mdlResolve(vs.root, p)
	if want == 0 && r.node != nil {
		want = syscall.EEXIST
	}
	what := vs.name + ": " + fmt.Sprintf("Mkdir(%q, %#o)", p, perm)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	mdlExpect(t, what, vs.v.Mkdir(p, perm), want)
	if want == 0 {
		if r.parent.perm&syscall.S_ISGID != 0 {
			perm |= syscall.S_ISGID // a set-group-ID directory's subdirectory inherits the bit
		}
		r.parent.kids[r.name] = m.newNode(mdlDir, perm)
	}
}

func (m *mdl) actSymlink(t *rapid.T) {
	vs := m.drawVol(t)
	p := vs.drawPath(t, "path", 10)
	target := mdlPickFrom([]string{"a", "../b", "/c/d", "nowhere", "a/b/c", ".", "..", "b/..", "/", "a/../c", "f/./e"}).Draw(t, "target")
	r, want := mdlResolve(vs.root, p)
	if want == 0 && r.node != nil {
		want = syscall.EEXIST
	}
	what := vs.name + ": " + fmt.Sprintf("Symlink(%q, %q)", target, p)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	mdlExpect(t, what, vs.v.Symlink(target, p), want)
	if want == 0 {
		n := m.newNode(mdlSym, 0o777)
		n.target = target
		r.parent.kids[r.name] = n
	}
}

func (m *mdl) actRemove(t *rapid.T) {
	vs := m.drawVol(t)
	p := vs.drawPath(t, "path", 75)
	r, want := mdlResolve(vs.root, p)
	if want == 0 {
		switch {
		case r.node == nil:
			want = syscall.ENOENT
		case r.node == vs.root:
			return
		case r.node.kind == mdlDir && len(r.node.kids) > 0:
			want = syscall.ENOTEMPTY
		}
	}
	what := vs.name + ": " + fmt.Sprintf("Remove(%q)", p)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	mdlExpect(t, what, vs.v.Remove(p), want)
	if want == 0 {
		delete(r.parent.kids, r.name)
	}
}

// actRemoveOpen removes a name of an open file, which stays usable.
func (m *mdl) actRemoveOpen(t *rapid.T) {
	h := m.drawHandle(t, "h")
	if h == nil {
		return
	}
	vs := h.vol
	var paths []string
	for _, e := range mdlEntries(vs.root) {
		if e.n == h.n {
			paths = append(paths, e.path)
		}
	}
	if len(paths) == 0 {
		return
	}
	p := mdlPickFrom(paths).Draw(t, "path")
	what := vs.name + ": " + fmt.Sprintf("Remove(%q) while handle %d is open on it", p, h.id)
	m.logf(t, "%s", what)
	mdlExpect(t, what, vs.v.Remove(p), 0)
	r, _ := mdlResolve(vs.root, p)
	delete(r.parent.kids, r.name)
}

// within reports whether d is n or lies below it (d is in dirs).
func mdlWithin(dirs []*mdlNode, n *mdlNode) bool {
	return slices.Contains(dirs, n)
}

func (m *mdl) actRename(t *rapid.T) {
	vs := m.drawVol(t)
	oldp := vs.drawPath(t, "old", 80)
	newp := vs.drawPath(t, "new", 40)
	flags := mdlPickFrom([]int{0, 0, 0, RenameNoReplace, RenameExchange}).Draw(t, "flags")
	rs, want := mdlResolve(vs.root, oldp)
	var rd mdlRes
	if want == 0 {
		rd, want = mdlResolve(vs.root, newp)
	}
	noop := false
	if want == 0 {
		switch {
		case rs.node == nil:
			want = syscall.ENOENT
		case rs.node == vs.root || rd.node == vs.root:
			return
		case flags&RenameExchange != 0 && rd.node == nil:
			want = syscall.ENOENT
		case flags&RenameNoReplace != 0 && rd.node != nil:
			want = syscall.EEXIST
		case rs.node == rd.node:
			noop = true
		case rs.node.kind == mdlDir && mdlWithin(rd.dirs, rs.node):
			want = syscall.EINVAL
		case flags&RenameExchange != 0:
			if rd.node.kind == mdlDir && mdlWithin(rs.dirs, rd.node) {
				want = syscall.EINVAL
			}
		case rd.node != nil:
			switch {
			case rs.node.kind == mdlDir && rd.node.kind != mdlDir:
				want = syscall.ENOTDIR
			case rs.node.kind != mdlDir && rd.node.kind == mdlDir:
				want = syscall.EISDIR
			case rd.node.kind == mdlDir && len(rd.node.kids) > 0:
				want = syscall.ENOTEMPTY
			}
		}
	}
	what := vs.name + ": " + fmt.Sprintf("Rename(%q, %q, %d)", oldp, newp, flags)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	mdlExpect(t, what, vs.v.Rename(oldp, newp, flags), want)
	if want != 0 || noop {
		return
	}
	if flags&RenameExchange != 0 {
		rs.parent.kids[rs.name], rd.parent.kids[rd.name] = rd.node, rs.node
		return
	}
	delete(rs.parent.kids, rs.name)
	rd.parent.kids[rd.name] = rs.node
}

func (m *mdl) actLink(t *rapid.T) {
	vs := m.drawVol(t)
	oldp := vs.drawPath(t, "old", 85)
	newp := vs.drawPath(t, "new", 15)
	rs, want := mdlResolve(vs.root, oldp)
	var rd mdlRes
	if want == 0 {
		switch {
		case rs.node == nil:
			want = syscall.ENOENT
		case rs.node.kind == mdlDir:
			want = syscall.EPERM
		}
	}
	if want == 0 {
		rd, want = mdlResolve(vs.root, newp)
		if want == 0 && rd.node != nil {
			want = syscall.EEXIST
		}
	}
	what := vs.name + ": " + fmt.Sprintf("Link(%q, %q)", oldp, newp)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	mdlExpect(t, what, vs.v.Link(oldp, newp), want)
	if want == 0 {
		rd.parent.kids[rd.name] = rs.node
	}
}

func (m *mdl) actClone(t *rapid.T) {
	vs := m.drawVol(t)
	src := vs.drawPath(t, "src", 85)
	dst := vs.drawPath(t, "dst", 15)
	rs, want := mdlResolve(vs.root, src)
	var rd mdlRes
	if want == 0 && rs.node == nil {
		want = syscall.ENOENT
	}
	if want == 0 {
		rd, want = mdlResolve(vs.root, dst)
		if want == 0 && rd.node != nil {
			want = syscall.EEXIST
		}
	}
	what := vs.name + ": " + fmt.Sprintf("Clone(%q, %q)", src, dst)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	mdlExpect(t, what, vs.v.Clone(src, dst), want)
	if want == 0 {
		rd.parent.kids[rd.name] = m.copyTree(rs.node, map[*mdlNode]*mdlNode{})
	}
}

func (m *mdl) actXattr(t *rapid.T) {
	vs := m.drawVol(t)
	p := vs.drawPath(t, "path", 85)
	name := mdlPickFrom([]string{"user.a", "user.b", "trusted.c"}).Draw(t, "name")
	remove := mdlIntn(4).Draw(t, "remove") == 0
	flags := mdlPickFrom([]int{0, 0, XattrCreate, XattrReplace}).Draw(t, "flags")
	// 30 repetitions of "value" are past dirtree.XattrInlineMax: a blob.
	value := strings.Repeat(mdlPickFrom([]string{"", "x", "value"}).Draw(t, "value"), mdlPickFrom([]int{0, 1, 2, 3, 30}).Draw(t, "rep"))
	r, want := mdlResolve(vs.root, p)
	if want == 0 && r.node == nil {
		want = syscall.ENOENT
	}
	var exists bool
	if want == 0 {
		_, exists = r.node.xattrs[name]
		switch {
		case remove && !exists:
			want = syscall.ENODATA
		case !remove && exists && flags == XattrCreate:
			want = syscall.EEXIST
		case !remove && !exists && flags == XattrReplace:
			want = syscall.ENODATA
		}
	}
	var err error
	var what string
	if remove {
		what = vs.name + ": " + fmt.Sprintf("RemoveXattr(%q, %q)", p, name)
		err = vs.v.RemoveXattr(p, name)
	} else {
		what = vs.name + ": " + fmt.Sprintf("SetXattr(%q, %q, %q, %d)", p, name, value, flags)
		err = vs.v.SetXattr(p, name, []byte(value), flags)
	}
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	mdlExpect(t, what, err, want)
	if want != 0 {
		return
	}
	if remove {
		delete(r.node.xattrs, name)
		return
	}
	if r.node.xattrs == nil {
		r.node.xattrs = map[string]string{}
	}
	r.node.xattrs[name] = value
}

func (m *mdl) actChmod(t *rapid.T) {
	vs := m.drawVol(t)
	p := vs.drawPath(t, "path", 85)
	mode := uint32(rapid.IntRange(0, 0o7777).Draw(t, "mode"))
	r, want := mdlResolve(vs.root, p)
	if want == 0 && r.node == nil {
		want = syscall.ENOENT
	}
	if want == 0 && r.node.kind == mdlSym {
		return
	}
	what := vs.name + ": " + fmt.Sprintf("Chmod(%q, %#o)", p, mode)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	mdlExpect(t, what, vs.v.Chmod(p, mode), want)
	if want == 0 {
		r.node.perm = mode
	}
}

var mdlSnapNames = []string{"s1", "s2", "s3", "s4"}

func (m *mdl) actSnapshot(t *rapid.T) {
	vs := m.drawVol(t)
	name := mdlPickFrom(mdlSnapNames).Draw(t, "name")
	if mdlIntn(10).Draw(t, "invalid") == 0 {
		name = mdlPickFrom([]string{"bad/name", "", ".."}).Draw(t, "badName")
	}
	var want syscall.Errno
	switch {
	case !validName(name):
		want = syscall.EINVAL
	case vs.snaps[name] != nil:
		want = syscall.EEXIST
	}
	what := vs.name + ": " + fmt.Sprintf("Snapshot(%q)", name)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	mdlExpect(t, what, vs.v.Snapshot(name), want)
	if want == 0 {
		vs.snaps[name] = m.copyTree(vs.root, map[*mdlNode]*mdlNode{})
	}
}

func (m *mdl) actDeleteSnapshot(t *rapid.T) {
	vs := m.drawVol(t)
	name := mdlPickFrom(mdlSnapNames).Draw(t, "name")
	if live := mdlSortedKeys(vs.snaps); len(live) > 0 && mdlIntn(4).Draw(t, "live") > 0 {
		name = mdlPickFrom(live).Draw(t, "liveName")
	}
	var want syscall.Errno
	if vs.snaps[name] == nil {
		want = syscall.ENOENT
	}
	what := vs.name + ": " + fmt.Sprintf("DeleteSnapshot(%q)", name)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	mdlExpect(t, what, vs.v.DeleteSnapshot(name), want)
	delete(vs.snaps, name)
	m.checkSnapshotList(t, vs)
}

func (m *mdl) checkSnapshotList(t *rapid.T, vs *mdlVolume) {
	infos, err := vs.v.Snapshots()
	mdlExpect(t, vs.name+": Snapshots()", err, 0)
	var got []string
	for _, s := range infos {
		got = append(got, s.Name)
	}
	want := mdlSortedKeys(vs.snaps)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: Snapshots(): expected %q, got %q", vs.name, want, got)
	}
}

func (m *mdl) actVerifySnapshot(t *rapid.T) {
	vs := m.drawVol(t)
	names := mdlSortedKeys(vs.snaps)
	if len(names) == 0 {
		return
	}
	m.verifySnapshot(t, vs, mdlPickFrom(names).Draw(t, "name"))
}

func (m *mdl) verifySnapshot(t *rapid.T, vs *mdlVolume, name string) {
	m.logf(t, "verify snapshot %q of %s", name, vs.name)
	sv, err := vs.v.OpenSnapshot(name)
	mdlExpect(t, fmt.Sprintf("OpenSnapshot(%q)", name), err, 0)
	if !sv.ReadOnly() {
		t.Fatalf("OpenSnapshot(%q): expected a read-only volume, got a writable one", name)
	}
	if err := mdlCompareTree(sv, vs.snaps[name], false); err != nil {
		t.Fatalf("snapshot %q of %s: %v", name, vs.name, err)
	}
	// Every change to a snapshot fails with EROFS.
	w := fmt.Sprintf("snapshot %q of %s: ", name, vs.name)
	mdlExpect(t, w+"Mkdir", sv.Mkdir("newdir", 0o755), syscall.EROFS)
	_, err = sv.OpenFile("newfile", os.O_RDWR|os.O_CREATE, 0o644)
	mdlExpect(t, w+"OpenFile(O_CREATE)", err, syscall.EROFS)
	if ents := mdlEntries(vs.snaps[name]); len(ents) > 0 {
		e := ents[0]
		mdlExpect(t, w+"Remove("+e.path+")", sv.Remove(e.path), syscall.EROFS)
		mdlExpect(t, w+"Rename("+e.path+")", sv.Rename(e.path, "renamed", 0), syscall.EROFS)
		if e.n.kind == mdlReg {
			_, err := sv.OpenFile(e.path, os.O_WRONLY, 0)
			mdlExpect(t, w+"OpenFile("+e.path+", O_WRONLY)", err, syscall.EROFS)
			mdlExpect(t, w+"Truncate("+e.path+")", sv.Truncate(e.path, 0), syscall.EROFS)
		}
	}
	mdlExpect(t, w+"Snapshot", sv.Snapshot("x"), syscall.EROFS)
}

func (m *mdl) actReopen(t *rapid.T) {
	m.logf(t, "reopen: commit, abandon the FS, open a new one on the same store")
	mdlExpect(t, "Commit before reopen", m.f.Commit(), 0)
	f, err := Open(mdlStore{m.st, m.fault}, &m.opt)
	if err != nil {
		t.Fatalf("Open after reopen: expected success, got %v", err)
	}
	m.f = f
	for _, vs := range m.vols {
		vs.v, err = f.Volume(vs.name)
		mdlExpect(t, "Volume("+vs.name+") after reopen", err, 0)
		m.checkSnapshotList(t, vs)
	}
	// Handles belonged to the old FS: they are gone, and so are orphans.
	m.handles = nil
	m.checkVolumeList(t)
}

func (m *mdl) checkVolumeList(t *rapid.T) {
	names, err := m.f.Volumes()
	mdlExpect(t, "Volumes()", err, 0)
	var want []string
	for _, vs := range m.vols {
		want = append(want, vs.name)
	}
	sort.Strings(want)
	if !slices.Equal(names, want) {
		t.Fatalf("Volumes(): expected %q, got %q", want, names)
	}
}

var mdlVolNames = []string{"vol2", "vol3"}

// actNewVolume creates a second volume, empty or as a clone of another.
func (m *mdl) actNewVolume(t *rapid.T) {
	name := mdlPickFrom(append([]string{"bad name", mdlVol}, mdlVolNames...)).Draw(t, "name")
	clone := rapid.Bool().Draw(t, "clone")
	var src *mdlVolume
	var want syscall.Errno
	switch {
	case !validName(name):
		want = syscall.EINVAL
	case slices.ContainsFunc(m.vols, func(vs *mdlVolume) bool { return vs.name == name }):
		want = syscall.EEXIST
	}
	var err error
	var what string
	if clone {
		src = mdlPickFrom(m.vols).Draw(t, "src")
		what = fmt.Sprintf("CloneVolume(%q, %q)", src.name, name)
		m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
		err = m.f.CloneVolume(src.name, name)
	} else {
		what = fmt.Sprintf("CreateVolume(%q)", name)
		m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
		_, err = m.f.CreateVolume(name)
	}
	mdlExpect(t, what, err, want)
	if want != 0 {
		return
	}
	v, err := m.f.Volume(name)
	mdlExpect(t, fmt.Sprintf("Volume(%q)", name), err, 0)
	vs := &mdlVolume{name: name, v: v, snaps: map[string]*mdlNode{}}
	if clone {
		vs.root = m.copyTree(src.root, map[*mdlNode]*mdlNode{})
	} else {
		vs.root = m.newNode(mdlDir, 0o755)
	}
	m.vols = append(m.vols, vs)
	m.checkVolumeList(t)
	m.checkSnapshotList(t, vs)
}

// actDeleteVolume deletes a volume other than the main one (EBUSY while
// files are open on it).
func (m *mdl) actDeleteVolume(t *rapid.T) {
	name := mdlPickFrom(mdlVolNames).Draw(t, "name")
	if len(m.vols) > 1 && mdlIntn(4).Draw(t, "existing") > 0 {
		name = mdlPickFrom(m.vols[1:]).Draw(t, "vol").name
	}
	i := slices.IndexFunc(m.vols, func(vs *mdlVolume) bool { return vs.name == name })
	var want syscall.Errno
	switch {
	case i < 0:
		want = syscall.ENOENT
	case slices.ContainsFunc(m.handles, func(h *mdlHandle) bool { return h.vol == m.vols[i] }):
		want = syscall.EBUSY
	}
	what := fmt.Sprintf("DeleteVolume(%q)", name)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	mdlExpect(t, what, m.f.DeleteVolume(name), want)
	if want == 0 {
		m.vols = slices.Delete(m.vols, i, i+1)
		m.checkVolumeList(t)
	}
}

// actCopyFromSnapshot copies a range of a file of a snapshot into an open
// file (restoring part of an old version), holding the snapshot file open
// meanwhile (so deleting the snapshot is refused).
func (m *mdl) actCopyFromSnapshot(t *rapid.T) {
	vs := m.drawVol(t)
	names := mdlSortedKeys(vs.snaps)
	if len(names) == 0 {
		return
	}
	name := mdlPickFrom(names).Draw(t, "snap")
	var files []mdlEntry
	for _, e := range mdlEntries(vs.snaps[name]) {
		if e.n.kind == mdlReg {
			files = append(files, e)
		}
	}
	if len(files) == 0 {
		return
	}
	src := mdlPickFrom(files).Draw(t, "file")
	dst := m.handle(t, "dst")
	if dst == nil {
		return
	}
	sv, err := vs.v.OpenSnapshot(name)
	mdlExpect(t, fmt.Sprintf("%s: OpenSnapshot(%q)", vs.name, name), err, 0)
	sf, err := sv.Open(src.path)
	mdlExpect(t, fmt.Sprintf("%s@%s: Open(%q)", vs.name, name, src.path), err, 0)
	mdlExpect(t, fmt.Sprintf("%s: DeleteSnapshot(%q) while a file of it is open", vs.name, name), vs.v.DeleteSnapshot(name), syscall.EBUSY)
	size := int64(len(src.n.data))
	soff := mdlSpan(t, 0, size, "soff")
	n := mdlSpan(t, 0, size-soff+10, "n")
	doff := mdlDrawOff(t, "doff", int64(len(dst.n.data)), n)
	var want syscall.Errno
	if !dst.writable() || dst.append {
		want = syscall.EBADF
	}
	what := fmt.Sprintf("CopyRange(%s@%s:%s off %d (of %d bytes) -> handle %d %s off %d, len %d)", vs.name, name, src.path, soff, size, dst.id, dst.path, doff, n)
	m.logf(t, "%s (expect %s)", what, mdlErrnoName(want))
	got, err := CopyRange(sf, soff, dst.f, doff, n)
	mdlExpect(t, what, err, want)
	mdlExpect(t, fmt.Sprintf("%s@%s: Close(%q)", vs.name, name, src.path), sf.Close(), 0)
	if want != 0 {
		return
	}
	copied := min(n, size-soff)
	if got != copied {
		t.Fatalf("%s: expected to copy %d bytes, copied %d", what, copied, got)
	}
	if copied > 0 {
		dst.n.data = mdlWriteAt(dst.n.data, doff, bytes.Clone(src.n.data[soff:soff+copied]))
	}
}

// actFailedCommit makes one store call of a commit fail: the commit reports
// EIO and nothing visible changes; a later commit stores everything.
func (m *mdl) actFailedCommit(t *rapid.T) {
	// Something to commit.
	mdlPickFrom([]func(*mdl, *rapid.T){(*mdl).actWriteAt, (*mdl).actMkdir, (*mdl).actClone, (*mdl).actRename, (*mdl).actLink, (*mdl).actFallocate}).Draw(t, "change")(m, t)
	k := int(mdlSpan(t, 1, 12, "failAt"))
	*m.fault = mdlFault{armed: true, countdown: k}
	err := m.f.Commit()
	fired := m.fault.fired
	*m.fault = mdlFault{}
	if fired == "" {
		m.logf(t, "Commit with a failure at store call %d: the commit made fewer calls", k)
		mdlExpect(t, "Commit (no failure injected)", err, 0)
		return
	}
	m.logf(t, "Commit with store call %d (%s) failing (expect EIO)", k, fired)
	mdlExpect(t, fmt.Sprintf("Commit with store call %d (%s) failing", k, fired), err, syscall.EIO)
	if !errors.Is(err, errMdlInjected) {
		t.Fatalf("Commit with a failing store: expected the error to wrap the store's, got %v", err)
	}
}

func (m *mdl) actCommit(t *rapid.T) {
	if h := m.drawHandle(t, "h"); h != nil && rapid.Bool().Draw(t, "sync") {
		m.logf(t, "Sync(handle %d)", h.id)
		mdlExpect(t, fmt.Sprintf("Sync(handle %d)", h.id), h.f.Sync(), 0)
		return
	}
	m.logf(t, "Commit")
	mdlExpect(t, "Commit", m.f.Commit(), 0)
}

// actEFBIG tries operations that would make a file larger than rope.MaxSize.
func (m *mdl) actEFBIG(t *rapid.T) {
	h := m.handle(t, "h")
	if h == nil || h.append || !h.writable() {
		return
	}
	n := mdlSpan(t, 1, 100, "n")
	off := rope.MaxSize - n + mdlSpan(t, 1, 1000, "past")
	what := fmt.Sprintf("handle %d %s", h.id, h.path)
	m.logf(t, "EFBIG checks at offset %d on %s", off, what)
	_, err := h.f.WriteAt(make([]byte, n), off)
	mdlExpect(t, fmt.Sprintf("WriteAt(%d bytes at %d) on %s", n, off, what), err, syscall.EFBIG)
	mdlExpect(t, fmt.Sprintf("Truncate(%d) on %s", off+n, what), h.f.Truncate(off+n), syscall.EFBIG)
	mdlExpect(t, fmt.Sprintf("Fallocate(0, %d, %d) on %s", off, n, what), h.f.Fallocate(0, off, n), syscall.EFBIG)
	if size := int64(len(h.n.data)); size > 0 {
		// Inserting makes the file larger than rope.MaxSize.
		ins := rope.MaxSize - size + mdlSpan(t, 1, 1000, "insPast")
		mdlExpect(t, fmt.Sprintf("Fallocate(insert, 0, %d) on %s of %d bytes", ins, what, size), h.f.Fallocate(FallocInsertRange, 0, ins), syscall.EFBIG)
	}
}

// ---- comparison ----

// compare checks the whole volume, and every open handle, against the model.
func (m *mdl) compare(t *rapid.T) {
	for _, vs := range m.vols {
		if err := mdlCompareTree(vs.v, vs.root, true); err != nil {
			t.Fatalf("after step %d: volume %s: %v", m.step, vs.name, err)
		}
		m.compareHandles(t, vs)
	}
}

// compareHandles checks the open files of volume vs: size, link count,
// inode number (stable, and unique in the volume) and, for unlinked files,
// the content.
func (m *mdl) compareHandles(t *rapid.T, vs *mdlVolume) {
	names := mdlNameCounts(vs.root)
	byIno := map[uint64]*mdlNode{}
	for _, e := range append(mdlEntries(vs.root), mdlEntry{"/", vs.root}) {
		byIno[e.n.ino] = e.n
	}
	for _, h := range m.handles {
		if h.vol != vs {
			continue
		}
		what := fmt.Sprintf("handle %d (opened as %s)", h.id, h.path)
		fi, err := h.f.Stat()
		if err != nil {
			t.Fatalf("%s: Stat: expected success, got %v", what, err)
		}
		st := fi.Stat()
		if st.Size != int64(len(h.n.data)) {
			t.Fatalf("%s: expected size %d, got %d", what, len(h.n.data), st.Size)
		}
		if want := uint32(names[h.n]); st.Nlink != want {
			t.Fatalf("%s: expected nlink %d, got %d", what, want, st.Nlink)
		}
		if h.n.ino != 0 && st.Ino != h.n.ino {
			t.Fatalf("%s: expected inode number %#x (as seen before), got %#x", what, h.n.ino, st.Ino)
		}
		if other, ok := byIno[st.Ino]; ok && other != h.n {
			t.Fatalf("%s: inode number %#x is also that of another file", what, st.Ino)
		}
		h.n.ino = st.Ino
		byIno[st.Ino] = h.n
		if names[h.n] == 0 && !h.wronly {
			// Unlinked: only the handle can show its content.
			got := make([]byte, len(h.n.data)+1)
			k, err := h.f.ReadAt(got, 0)
			if err != io.EOF {
				t.Fatalf("%s (unlinked): ReadAt of the whole file: expected io.EOF after %d bytes, got (%d, %v)", what, len(h.n.data), k, err)
			}
			if d := mdlDiff(got[:k], h.n.data); d != "" {
				t.Fatalf("%s (unlinked): content: %s", what, d)
			}
		}
	}
}

// mdlCompareTree compares volume v with the model tree root: listings,
// types, permissions, sizes, link counts, contents, symlink targets,
// xattrs, and inode numbers (unique; hard links share one). If live, inode
// numbers must also be those seen before (stable across rename, reopen and
// clones of a containing directory), and are recorded.
func mdlCompareTree(v *Volume, root *mdlNode, live bool) error {
	names := mdlNameCounts(root)
	inoOf := map[*mdlNode]uint64{}
	byIno := map[uint64]*mdlNode{}
	checkInfo := func(p string, fi *FileInfo, n *mdlNode) error {
		st := fi.Stat()
		var typ uint32
		switch n.kind {
		case mdlReg:
			typ = syscall.S_IFREG
		case mdlDir:
			typ = syscall.S_IFDIR
		case mdlSym:
			typ = syscall.S_IFLNK
		}
		if st.Mode&syscall.S_IFMT != typ || fi.IsDir() != (n.kind == mdlDir) {
			return fmt.Errorf("%s: expected a %v (mode %#o), got mode %#o", p, n.kind, typ|n.perm, st.Mode)
		}
		if st.Mode&0o7777 != n.perm {
			return fmt.Errorf("%s: expected permissions %#o, got %#o", p, n.perm, st.Mode&0o7777)
		}
		var nlink uint32
		switch n.kind {
		case mdlDir:
			nlink = 2 + mdlSubdirs(n)
			if st.Extents != int64(len(n.kids)) {
				return fmt.Errorf("%s: expected %d entries (Stat.Extents), got %d", p, len(n.kids), st.Extents)
			}
		case mdlReg:
			nlink = uint32(names[n])
			if st.Size != int64(len(n.data)) || fi.Size() != st.Size {
				return fmt.Errorf("%s: expected size %d, got %d", p, len(n.data), st.Size)
			}
		case mdlSym:
			nlink = uint32(names[n])
			if st.Size != int64(len(n.target)) {
				return fmt.Errorf("%s: symlink: expected size %d, got %d", p, len(n.target), st.Size)
			}
		}
		if st.Nlink != nlink {
			return fmt.Errorf("%s: expected nlink %d, got %d", p, nlink, st.Nlink)
		}
		if st.Ino == 0 {
			return fmt.Errorf("%s: expected a non-zero inode number, got 0", p)
		}
		if prev, ok := inoOf[n]; ok && prev != st.Ino {
			return fmt.Errorf("%s: expected inode number %#x (that of another name of the same file, or of another stat of it), got %#x", p, prev, st.Ino)
		}
		if other, ok := byIno[st.Ino]; ok && other != n {
			return fmt.Errorf("%s: inode number %#x is also the number of a different file (model #%d, this is #%d)", p, st.Ino, other.id, n.id)
		}
		if live {
			if n.ino != 0 && n.ino != st.Ino {
				return fmt.Errorf("%s: inode number changed: expected %#x as seen before, got %#x", p, n.ino, st.Ino)
			}
			n.ino = st.Ino
		}
		inoOf[n], byIno[st.Ino] = st.Ino, n
		return nil
	}
	fi, err := v.Lstat("/")
	if err != nil {
		return fmt.Errorf("Lstat(/): expected success, got %v", err)
	}
	if err := checkInfo("/", fi, root); err != nil {
		return err
	}
	var walk func(dir string, d *mdlNode) error
	walk = func(dir string, d *mdlNode) error {
		shown := dir
		if shown == "" {
			shown = "/"
		}
		infos, err := v.ReadDir(shown)
		if err != nil {
			return fmt.Errorf("ReadDir(%q): expected success, got %v", shown, err)
		}
		keys := mdlSortedKeys(d.kids)
		var got []string
		for _, fi := range infos {
			got = append(got, fi.Name())
		}
		if !slices.Equal(got, keys) {
			return fmt.Errorf("ReadDir(%q): expected names %q, got %q", shown, keys, got)
		}
		if err := mdlReadDirPaged(v, shown, keys); err != nil {
			return err
		}
		for i, k := range keys {
			n := d.kids[k]
			p := mdlJoin(dir, k)
			if err := checkInfo(p+" (from ReadDir)", infos[i], n); err != nil {
				return err
			}
			fi, err := v.Lstat(p)
			if err != nil {
				return fmt.Errorf("Lstat(%q): expected success, got %v", p, err)
			}
			if fi.Name() != k {
				return fmt.Errorf("Lstat(%q): expected name %q, got %q", p, k, fi.Name())
			}
			if err := checkInfo(p, fi, n); err != nil {
				return err
			}
			switch n.kind {
			case mdlReg:
				b, err := v.ReadFile(p)
				if err != nil {
					return fmt.Errorf("ReadFile(%q): expected %d bytes, got error %v", p, len(n.data), err)
				}
				if d := mdlDiff(b, n.data); d != "" {
					return fmt.Errorf("ReadFile(%q): %s", p, d)
				}
			case mdlSym:
				target, err := v.Readlink(p)
				if err != nil || target != n.target {
					return fmt.Errorf("Readlink(%q): expected %q, got (%q, %v)", p, n.target, target, err)
				}
				if err := mdlCheckFollow(v, root, d, dir, p, n); err != nil {
					return err
				}
			case mdlDir:
				if err := walk(p, n); err != nil {
					return err
				}
			}
			xs, err := v.ListXattr(p)
			if err != nil {
				return fmt.Errorf("ListXattr(%q): expected success, got %v", p, err)
			}
			if want := mdlSortedKeys(n.xattrs); !slices.Equal(xs, want) {
				return fmt.Errorf("ListXattr(%q): expected %q, got %q", p, want, xs)
			}
			for _, x := range xs {
				val, err := v.GetXattr(p, x)
				if err != nil || string(val) != n.xattrs[x] {
					return fmt.Errorf("GetXattr(%q, %q): expected %q, got (%q, %v)", p, x, n.xattrs[x], val, err)
				}
			}
		}
		return nil
	}
	return walk("", root)
}

// mdlFollow resolves path p from directory chain dirs (root first) as
// POSIX does: "." and ".." (which stays at the root), symlinks followed
// (the last one only if follow; absolute targets restart at the root), at
// most 40 of them (ELOOP), ENOTDIR for anything but a directory followed
// by more of the path, ENOENT for a missing name.
func mdlFollow(root *mdlNode, dirs []*mdlNode, p string, follow bool) (*mdlNode, syscall.Errno) {
	stack := slices.Clone(dirs)
	if strings.HasPrefix(p, "/") {
		stack = stack[:1]
	}
	parts := mdlSplit(p)
	links := 0
	for len(parts) > 0 {
		name := parts[0]
		parts = parts[1:]
		cur := stack[len(stack)-1]
		if cur.kind != mdlDir {
			return nil, syscall.ENOTDIR
		}
		switch name {
		case ".":
			if len(parts) == 0 {
				return cur, 0
			}
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			if len(parts) == 0 {
				return stack[len(stack)-1], 0
			}
			continue
		}
		k := cur.kids[name]
		switch {
		case k == nil:
			return nil, syscall.ENOENT
		case k.kind == mdlSym && (len(parts) > 0 || follow):
			if links++; links > 40 {
				return nil, syscall.ELOOP
			}
			if strings.HasPrefix(k.target, "/") {
				stack = stack[:1]
			}
			parts = append(mdlSplit(k.target), parts...)
			if len(parts) == 0 {
				return stack[len(stack)-1], 0
			}
			continue
		case len(parts) == 0:
			return k, 0
		}
		stack = append(stack, k)
	}
	return stack[len(stack)-1], 0
}

// mdlCheckFollow compares Stat (which follows symlinks) of symlink p, in
// directory d (path dir), with where the model says it leads.
func mdlCheckFollow(v *Volume, root, d *mdlNode, dir, p string, n *mdlNode) error {
	r, e := mdlResolve(root, mdlJoin(dir, "x"))
	if e != 0 || r.parent != d {
		return fmt.Errorf("model: cannot find the directory of %s", p)
	}
	want, errno := mdlFollow(root, r.dirs, n.target, true)
	fi, err := v.Stat(p)
	if errno != 0 {
		if e := mdlCheckErr(fmt.Sprintf("Stat(%q) of a symlink to %q", p, n.target), err, errno); e != nil {
			return e
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("Stat(%q) of a symlink to %q: expected the model's #%d (a %v), got %v", p, n.target, want.id, want.kind, err)
	}
	st := fi.Stat()
	if want.kind == mdlReg && st.Size != int64(len(want.data)) || (st.Mode&syscall.S_IFMT == syscall.S_IFDIR) != (want.kind == mdlDir) {
		return fmt.Errorf("Stat(%q) of a symlink to %q: expected the model's #%d (a %v of size %d), got mode %#o size %d", p, n.target, want.id, want.kind, len(want.data), st.Mode, st.Size)
	}
	if want.ino != 0 && st.Ino != want.ino {
		return fmt.Errorf("Stat(%q) of a symlink to %q: expected inode %#x (the model's #%d), got %#x", p, n.target, want.ino, want.id, st.Ino)
	}
	return nil
}

// mdlReadDirPaged lists dir through File.ReadDir, two entries at a time.
func mdlReadDirPaged(v *Volume, dir string, want []string) error {
	f, err := v.Open(dir)
	if err != nil {
		return fmt.Errorf("Open(%q) of a directory: expected success, got %v", dir, err)
	}
	defer f.Close()
	var got []string
	for {
		des, err := f.ReadDir(2)
		for _, de := range des {
			got = append(got, de.Name())
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("File.ReadDir(2) of %q: expected entries or io.EOF, got %v", dir, err)
		}
		if len(des) == 0 || len(des) > 2 {
			return fmt.Errorf("File.ReadDir(2) of %q: expected 1 or 2 entries before io.EOF, got %d", dir, len(des))
		}
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("File.ReadDir(2) pages of %q: expected names %q, got %q", dir, want, got)
	}
	return nil
}

// ---- end of a sequence ----

func (m *mdl) finish(t *rapid.T) {
	m.step = -1
	m.logf(t, "finish: close everything, delete snapshots and volumes")
	for len(m.handles) > 0 {
		m.closeHandle(t, m.handles[0])
	}
	m.compare(t)
	mdlCheckFS(t, m.f, "at the end, before deleting")
	for _, vs := range m.vols {
		for _, name := range mdlSortedKeys(vs.snaps) {
			m.verifySnapshot(t, vs, name)
			mdlExpect(t, fmt.Sprintf("%s: DeleteSnapshot(%q)", vs.name, name), vs.v.DeleteSnapshot(name), 0)
			delete(vs.snaps, name)
		}
		m.checkSnapshotList(t, vs)
	}
	for _, vs := range m.vols {
		mdlExpect(t, fmt.Sprintf("DeleteVolume(%q)", vs.name), m.f.DeleteVolume(vs.name), 0)
		if _, err := vs.v.Stat("/"); err == nil {
			t.Fatalf("Stat on volume %s after DeleteVolume: expected an error, got success", vs.name)
		}
	}
	m.vols = nil
	m.checkVolumeList(t)
	mdlExpect(t, "Commit after DeleteVolume", m.f.Commit(), 0)
	for i := 0; m.f.Zombies() > 0; i++ {
		if i > 10000 {
			t.Fatalf("%d zombies still waiting after 10000 commits", m.f.Zombies())
		}
		mdlExpect(t, "Commit to work through zombies", m.f.Commit(), 0)
		if i%50 == 0 {
			mdlCheckFS(t, m.f, "while working through zombies")
		}
	}
	ctx := context.Background()
	u, err := m.st.Usage(ctx)
	if err != nil {
		t.Fatalf("Usage: expected success, got %v", err)
	}
	if u != (store.Usage{}) {
		var left []string
		m.st.List(ctx, func(b store.BlobInfo) error {
			left = append(left, fmt.Sprintf("%s (%d bytes, count %d)", b.ID.Short(), b.Size, b.Refs))
			return nil
		})
		sort.Strings(left)
		t.Fatalf("after deleting everything: expected an empty store, got %+v: %s", u, strings.Join(left, ", "))
	}
	roots, err := m.st.ListRoots(ctx)
	if err != nil || len(roots) != 0 {
		t.Fatalf("after deleting everything: expected no roots, got (%v, %v)", roots, err)
	}
	mdlExpect(t, "Volume after DeleteVolume", func() error { _, err := m.f.Volume(mdlVol); return err }(), syscall.ENOENT)
	mdlExpect(t, "Close", m.f.Close(), 0)
}

// mdlCheckFS runs the invariant checker (which commits first) and fails on
// anything it reports.
func mdlCheckFS(t *rapid.T, f *FS, when string) {
	t.Helper()
	rep, err := f.Check(context.Background())
	if err != nil {
		t.Fatalf("Check %s: expected success, got %v", when, err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("Check %s: expected no problems, got %v", when, err)
	}
}
