package cowfs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/internal/rope"
	"github.com/cowfs/cowfs/store"
)

// CheckReport is what the invariant checker found.
type CheckReport struct {
	Roots     int   // named roots walked
	Blobs     int64 // blobs stored
	Bytes     int64 // bytes stored
	Reachable int64 // blobs reachable from the roots
	Problems  []Problem
	// Leaked lists stored blobs that nothing references and whose stored
	// count is 0 (left by a crash before a commit): Repair deletes them.
	Leaked []store.ID
}

// Problem is one violated invariant.
type Problem struct {
	Blob store.ID // the blob concerned; zero if none
	Path string   // where: "ROOT:/path" of the first place it was reached
	What string
}

func (p Problem) String() string {
	s := p.Path + ": " + p.What
	if !p.Blob.IsZero() {
		s = fmt.Sprintf("%s (blob %s)", s, p.Blob.Short())
	}
	return s
}

// Err returns nil if no problem was found, or an error listing them all.
func (r *CheckReport) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cowfs check: %d problems:", len(r.Problems))
	for _, p := range r.Problems {
		b.WriteString("\n  " + p.String())
	}
	return errors.New(b.String())
}

// CheckOptions tune a check.
type CheckOptions struct {
	// All also reads and verifies the blobs nothing references (a scrub:
	// every stored byte is read once).
	All bool
	// Progress, if set, is called as blobs are verified, with how many are
	// done out of how many are stored.
	Progress func(done, total int64)
}

// Check commits, then verifies the whole store (see CheckStore).
func (f *FS) Check(ctx context.Context) (*CheckReport, error) {
	return f.CheckWith(ctx, CheckOptions{})
}

// CheckWith is Check with options.
func (f *FS) CheckWith(ctx context.Context, opt CheckOptions) (*CheckReport, error) {
	if err := f.lockFor(ctx, "check", ""); err != nil {
		return nil, err
	}
	defer f.unlockOp()
	if err := f.check("check"); err != nil {
		return nil, err
	}
	if err := f.commitLocked(nil); err != nil {
		return nil, wrapIO("check", "", err)
	}
	return f.checkLocked(ctx, opt)
}

// Repair deletes the leaked blobs a check found (and nothing else: every
// other problem needs a person) in one commit, and returns how many it
// deleted. rep must come from a check of this FS with nothing changed since
// (FS.Check commits first, so uncommitted data is never taken as leaked).
func (f *FS) Repair(ctx context.Context, rep *CheckReport) (int, error) {
	if len(rep.Leaked) == 0 {
		return 0, nil
	}
	if err := f.lockFor(ctx, "repair", ""); err != nil {
		return 0, err
	}
	defer f.unlockOp()
	if err := f.check("repair"); err != nil {
		return 0, err
	}
	if err := f.commitLocked(nil); err != nil {
		return 0, wrapIO("repair", "", err)
	}
	// Only blobs still at count 0 and still unreferenced by fresh work
	// (nor by a flush about to put them in its rope).
	inFlight, err := f.putJobBlobs(ctx)
	if err != nil {
		return 0, err
	}
	var del []store.ID
	for _, id := range rep.Leaked {
		info, err := f.st.Stat(ctx, id)
		if err != nil || info.Refs != 0 || f.fresh[id] || inFlight[id] {
			continue
		}
		del = append(del, id)
	}
	if len(del) == 0 {
		return 0, nil
	}
	f.readMu.Lock()
	defer f.readMu.Unlock()
	if err := f.st.Commit(ctx, store.Batch{Delete: del}); err != nil {
		return 0, wrapIO("repair", "", err)
	}
	for _, id := range del {
		f.nodes.Remove(id)
		f.data.Remove(id)
	}
	return len(del), nil
}

// CheckStore verifies every invariant of the volumes kept in st, which no
// FS may be changing meanwhile:
//   - every blob reachable from a root is stored and its bytes hash to its ID;
//   - every stored count equals the number of references recomputed from the
//     roots (a stored blob nothing references is reported as leaked);
//   - every tree is balanced, its summaries (lengths, counts, keys) exact and
//     directory names strictly ordered; extents lie inside their blobs,
//     and extended attribute values kept in blobs have their blob's size;
//   - directory subdirectory counts, hard-link name counts and link-table
//     link counts agree with what the directories hold;
//   - inode numbers are unique among everything reachable in each volume.
//
// It reports every difference it finds; it changes nothing.
func CheckStore(ctx context.Context, st store.Store) (*CheckReport, error) {
	f, err := Open(st, &Options{CacheBytes: 64 << 20})
	if err != nil {
		return nil, err
	}
	return f.checkLocked(ctx, CheckOptions{})
}

type checker struct {
	f        *FS
	ctx      context.Context
	rep      *CheckReport
	inFlight map[store.ID]bool // blobs of flushes running outside the lock (FS.putJobBlobs)
	stored   map[store.ID]store.BlobInfo
	expected map[store.ID]int64
	seen     map[store.ID]bool
	where    map[store.ID]string // first path a blob was reached by
	trees    map[store.ID]bool   // tree roots whose shape was checked
	zombies  map[store.ID]bool   // listed as waiting for deletion
	opt      CheckOptions
}

func (f *FS) checkLocked(ctx context.Context, opt CheckOptions) (*CheckReport, error) {
	c := &checker{f: f, ctx: ctx, opt: opt, rep: &CheckReport{}, stored: map[store.ID]store.BlobInfo{},
		expected: map[store.ID]int64{}, seen: map[store.ID]bool{}, where: map[store.ID]string{}, trees: map[store.ID]bool{}, zombies: map[store.ID]bool{}}
	inFlight, err := f.putJobBlobs(ctx)
	if err != nil {
		return nil, err
	}
	c.inFlight = inFlight
	err = f.st.List(ctx, func(b store.BlobInfo) error {
		c.stored[b.ID] = b
		c.rep.Blobs++
		c.rep.Bytes += b.Size
		return nil
	})
	if err != nil {
		return nil, err
	}
	roots, err := f.st.ListRoots(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range roots {
		c.rep.Roots++
		c.expected[r.ID]++
		c.visit(btree.Child{ID: r.ID}, r.Name+":")
		if isVolumeRoot(r.Name) {
			if m, err := f.loadVolume(r.ID); err == nil {
				c.checkNames(r.Name, m)
			}
		}
	}
	c.rep.Reachable = int64(len(c.seen))
	ids := make([]store.ID, 0, len(c.stored))
	if opt.All {
		for id, info := range c.stored {
			if c.seen[id] {
				continue
			}
			c.seen[id] = true
			c.verify(id, info, "<unreferenced>")
		}
	}
	for id := range c.stored {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	for _, id := range ids {
		want, got := c.expected[id], c.stored[id].Refs
		switch {
		case c.zombies[id] && got != 0:
			c.problem(id, c.where[id], fmt.Sprintf("listed for deletion with count %d", got))
		case c.zombies[id]:
		case want == 0 && got == 0 && c.inFlight[id]:
			// Stored by a flush that has not yet put it in its rope.
		case want == 0 && got == 0:
			c.problem(id, "<unreferenced>", "leaked: stored but referenced by nothing")
			c.rep.Leaked = append(c.rep.Leaked, id)
		case want != got:
			c.problem(id, c.where[id], fmt.Sprintf("stored count %d, recomputed %d", got, want))
		}
	}
	return c.rep, ctx.Err()
}

func (c *checker) problem(id store.ID, path, what string) {
	c.rep.Problems = append(c.rep.Problems, Problem{Blob: id, Path: path, What: what})
}

// visit verifies a reachable blob once and counts its children's references.
func (c *checker) visit(ch btree.Child, path string) {
	if c.seen[ch.ID] {
		return
	}
	c.seen[ch.ID] = true
	c.where[ch.ID] = path
	info, ok := c.stored[ch.ID]
	if !ok {
		c.problem(ch.ID, path, "missing: referenced but not stored")
		return
	}
	b, ok := c.verify(ch.ID, info, path)
	if !ok {
		return
	}
	if ch.Raw {
		return
	}
	kind, _, err := btree.ParseHeader(b)
	if err != nil {
		c.problem(ch.ID, path, err.Error())
		return
	}
	child := func(k btree.Child, p string) {
		c.expected[k.ID]++
		c.visit(k, p)
	}
	switch kind {
	case btree.KindZombie:
		n, err := c.f.zombies.Decode(ch.ID, b)
		if err != nil {
			c.problem(ch.ID, path, err.Error())
			return
		}
		for _, k := range n.Kids {
			child(btree.Child{ID: k.ID}, path)
		}
		for _, z := range n.Items {
			// A zombie holds no reference, but its pointers still count.
			c.zombies[z.ID] = true
			c.visit(btree.Child{ID: z.ID, Raw: z.Raw}, path+"<zombie>")
		}
	case btree.KindVolume:
		m, err := c.f.decodeVolume(b)
		if err != nil {
			c.problem(ch.ID, path, err.Error())
			return
		}
		c.entry(m.root, path+"/", child)
		for i, d := range []dirtree.Dir{m.links, m.orphans, m.scopes} {
			side := []string{"<links>", "<orphans>", "<scopes>"}[i]
			c.dirTree(d, path+side)
			if !d.Empty() {
				child(btree.Child{ID: d.ID}, path+side)
			}
		}
	case btree.KindDir:
		n, err := c.f.dirs.Decode(ch.ID, b)
		if err != nil {
			c.problem(ch.ID, path, err.Error())
			return
		}
		for _, k := range n.Kids {
			child(btree.Child{ID: k.ID}, path)
		}
		for _, e := range n.Items {
			c.entry(e, strings.TrimSuffix(path, "/")+"/"+e.Name, child)
		}
	case btree.KindRope:
		n, err := c.f.ropes.Decode(ch.ID, b)
		if err != nil {
			c.problem(ch.ID, path, err.Error())
			return
		}
		for _, k := range n.Kids {
			child(btree.Child{ID: k.ID}, path)
		}
		for _, e := range n.Items {
			if e.Kind != rope.Data {
				continue
			}
			if bi, ok := c.stored[e.Blob]; ok && e.Off+e.N > bi.Size {
				c.problem(e.Blob, path, fmt.Sprintf("extent %d+%d reaches past the blob's %d bytes", e.Off, e.N, bi.Size))
			}
			child(btree.Child{ID: e.Blob, Raw: true}, path)
		}
	default:
		c.problem(ch.ID, path, fmt.Sprintf("unknown node kind %d", kind))
	}
}

// verify reads a blob and checks its bytes against its ID.
func (c *checker) verify(id store.ID, info store.BlobInfo, path string) ([]byte, bool) {
	if c.opt.Progress != nil {
		c.opt.Progress(int64(len(c.seen)), c.rep.Blobs)
	}
	b, err := c.f.st.Get(c.ctx, id)
	switch {
	case errors.Is(err, store.ErrCorrupt):
		c.problem(id, path, "corrupt: "+err.Error())
		return nil, false
	case err != nil:
		c.problem(id, path, "unreadable: "+err.Error())
		return nil, false
	case store.Sum(b) != id || int64(len(b)) != info.Size:
		c.problem(id, path, "corrupt: bytes do not match the blob's hash")
		return nil, false
	}
	return b, true
}

// entry checks one directory entry and visits the trees and blobs it
// points at.
func (c *checker) entry(e dirtree.Entry, path string, child func(btree.Child, string)) {
	for _, x := range e.Xattrs {
		if x.Blob.IsZero() {
			continue
		}
		if bi, ok := c.stored[x.Blob]; ok && bi.Size != int64(x.Size) {
			c.problem(x.Blob, path, fmt.Sprintf("attribute %s of %d bytes is in a blob of %d", x.Name, x.Size, bi.Size))
		}
		child(btree.Child{ID: x.Blob, Raw: true}, path+"<"+x.Name+">")
	}
	switch {
	case !e.Data.Empty():
		if e.Type() != dirtree.TypeReg {
			c.problem(e.Data.ID, path, "content on something not a regular file")
		}
		if !c.trees[e.Data.ID] {
			c.trees[e.Data.ID] = true
			for _, err := range c.f.ropes.Check(e.Data, false) {
				c.problem(e.Data.ID, path, err.Error())
			}
		}
		child(btree.Child{ID: e.Data.ID}, path)
	case !e.Dir.Empty():
		if !e.IsDir() {
			c.problem(e.Dir.ID, path, "directory tree on something not a directory")
		}
		c.dirTree(e.Dir, path)
		child(btree.Child{ID: e.Dir.ID}, path)
	}
}

// dirTree checks an ordered tree's shape once per root.
func (c *checker) dirTree(d dirtree.Dir, path string) {
	if d.Empty() || c.trees[d.ID] {
		return
	}
	c.trees[d.ID] = true
	for _, err := range c.f.dirs.Check(d, true) {
		c.problem(d.ID, path, err.Error())
	}
}

// checkNames walks a volume's namespace: counts in entries, hard links,
// and uniqueness of inode numbers.
func (c *checker) checkNames(rootName string, m volMeta) {
	t := c.f.dirs
	inos := map[uint64]string{}
	stubs := map[uint64]int64{}
	scopes := map[[2]uint64]uint64{}
	next := m.nextPrefix
	it := t.Seek(m.scopes, 0)
	for e, _, ok := it.Next(); ok; e, _, ok = it.Next() {
		if len(e.Name) != 16 {
			c.problem(store.ID{}, rootName+":<scopes>", "malformed scope key")
			continue
		}
		k := [2]uint64{beUint64(e.Name[:8]), beUint64(e.Name[8:])}
		scopes[k] = e.Local
	}
	claim := func(ino uint64, path string) {
		if other, dup := inos[ino]; dup {
			c.problem(store.ID{}, path, fmt.Sprintf("inode number %#x also used by %s", ino, other))
			return
		}
		inos[ino] = path
	}
	var walk func(d dirtree.Entry, prefix uint64, path string) (links uint64)
	walk = func(d dirtree.Entry, prefix uint64, path string) (links uint64) {
		var subdirs uint32
		it := t.Seek(d.Dir, 0)
		for e, _, ok := it.Next(); ok; e, _, ok = it.Next() {
			p := strings.TrimSuffix(path, "/") + "/" + e.Name
			if e.Link != 0 {
				stubs[e.Link]++
				links++
				if e.Links != 1 {
					c.problem(store.ID{}, p, fmt.Sprintf("link name counts %d link names, want 1", e.Links))
				}
				continue
			}
			pre := prefix
			if e.Scope != 0 {
				k := [2]uint64{prefix, e.Scope}
				var ok bool
				if pre, ok = scopes[k]; !ok {
					pre = next // not allocated yet: the engine would take the next
					next++
					scopes[k] = pre
				}
			}
			claim(pre<<localBits|e.Local, rootName+":"+p)
			if e.IsDir() {
				subdirs++
				if got := walk(e, pre, p); got != e.Links {
					c.problem(store.ID{}, rootName+":"+p, fmt.Sprintf("entry counts %d link names below, found %d", e.Links, got))
				}
				links += e.Links
			}
		}
		if err := it.Err(); err != nil {
			c.problem(store.ID{}, rootName+":"+path, err.Error())
		}
		if subdirs != d.Subdirs {
			c.problem(store.ID{}, rootName+":"+path, fmt.Sprintf("entry counts %d subdirectories, found %d", d.Subdirs, subdirs))
		}
		return links
	}
	claim(rootLocal, rootName+":/")
	if got := walk(m.root, 0, "/"); got != m.root.Links {
		c.problem(store.ID{}, rootName+":/", fmt.Sprintf("root counts %d link names, found %d", m.root.Links, got))
	}
	it = t.Seek(m.links, 0)
	for e, _, ok := it.Next(); ok; e, _, ok = it.Next() {
		id := beUint64(e.Name)
		claim(e.Local, fmt.Sprintf("%s:<link %d>", rootName, id))
		if int64(e.Nlink) != stubs[id] {
			c.problem(store.ID{}, fmt.Sprintf("%s:<link %d>", rootName, id), fmt.Sprintf("nlink %d, found %d names", e.Nlink, stubs[id]))
		}
		delete(stubs, id)
	}
	for id := range stubs {
		c.problem(store.ID{}, rootName+":", fmt.Sprintf("names of link %d, which has no inode", id))
	}
	it = t.Seek(m.orphans, 0)
	for e, _, ok := it.Next(); ok; e, _, ok = it.Next() {
		claim(e.Local, rootName+":<orphan>")
	}
}

func beUint64(s string) uint64 {
	var v uint64
	for i := 0; i < 8 && i < len(s); i++ {
		v = v<<8 | uint64(s[i])
	}
	return v
}
